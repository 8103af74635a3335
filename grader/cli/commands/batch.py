"""``grader batch SOURCE --out DIR``: grade a whole course's submissions in parallel."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from grader.cli.commands.grade import add_grading_options, options_from, prepare
from grader.cli.main import EXIT_HARNESS, EXIT_OK, HarnessError, UsageError
from grader.course.batch import run_batch
from grader.course.finish import PipelineGrader
from grader.course.gradebook import Gradebook, rescore
from grader.course.moodle import ingest
from grader.course.outputs import rewrite_outputs, summary_table
from grader.course.pool import BatchOptions, GradeFn, kernel_env
from grader.course.progress import Progress
from grader.pack.rubric import pack_fingerprint, resolve_rubric_dir
from grader.safety.escape import terminal_safe

DESCRIPTION = """\
Grade every submission in SOURCE: a folder of notebooks, a Moodle "Download all submissions" zip,
or that zip unpacked. Writes DIR/<id>/result.json (and the reports) for each submission, where <id>
is the Moodle participant id for Moodle input and the notebook's name without .ipynb otherwise;
DIR/grades.csv (id, name, one column per subtask, auto_points, manual_points, total); and
DIR/index.html, the course overview with the similarity report.

Submissions graded before with the same notebook content and the same rubric are skipped (use
--force to grade them again); a batch that was stopped, even with kill -9, resumes where it was.
If only the rubric's points changed, the stored check results are re-scored without running anything.
"""

EPILOG = """\
exit codes: 0 every submission has a result (whatever its score); 1 the grader itself failed on at
least one submission (it is retried by the next run) or could not start; 2 wrong usage.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "batch",
        help="grade a folder of notebooks or a Moodle zip in parallel",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", type=Path, metavar="SOURCE", help="folder of notebooks, Moodle zip, or unpacked Moodle download")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="notebooks graded at once (default: one per CPU core, fewer if memory is short)")
    p.add_argument("--gradebook", type=Path, metavar="FILE", help="SQLite gradebook (default: DIR/gradebook.sqlite)")
    p.add_argument("--force", action="store_true", help="grade again even submissions that did not change")
    p.add_argument("--threads-per-kernel", type=int, default=1, metavar="N",
                   help="threads each kernel's numeric libraries may use (default: 1; OMP_NUM_THREADS etc.)")
    p.add_argument("--no-warm-kernels", action="store_true",
                   help="start each kernel when its submission comes up, instead of while the previous one runs")
    p.add_argument("--no-fork-kernels", action="store_true",
                   help="start every kernel fresh instead of forking it from a process that has imported the "
                        "libraries once (forking needs bubblewrap and root; elsewhere kernels start fresh anyway)")
    p.add_argument("--spawn-workers", action="store_true",
                   help="start each worker as a fresh process that does its own warm-up and starts its own zygote, "
                        "instead of forking the workers from one that did both once")
    p.add_argument("--no-pin", action="store_true",
                   help="let kernels run on any core (default: each worker and its kernels on cores of their own)")
    p.add_argument("--hard-timeout", type=float, default=3600.0, metavar="SECONDS",
                   help="stop grading one submission after this long, beyond the rubric's own limits (default: 3600)")
    p.add_argument("--template", type=Path, metavar="NOTEBOOK",
                   help="the assignment's template notebook: code everyone was given is ignored by the similarity report")
    p.add_argument("--no-similarity", action="store_true", help="skip the similarity report")
    p.add_argument("--cluster", metavar="local|tcp://HOST:PORT|FILE.yaml",
                   help="grade on Dask workers: a local cluster (--workers of them), a running scheduler, or a "
                        "Slurm cluster file (see docs/CLUSTER.md); this process still writes every result")
    p.add_argument("--gpu", action="store_true",
                   help="with --cluster: the submissions need a GPU and go only to workers with a GPU resource "
                        "(also set by the rubric's limits: gpu: true)")
    add_grading_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, grade_fn: GradeFn | None = None) -> int:
    if not args.source.exists():
        raise UsageError(f"{args.source}: no such file or folder")
    if args.workers < 0 or args.threads_per_kernel < 1:
        raise UsageError("--workers must be 0 or more and --threads-per-kernel 1 or more")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    try:
        found = ingest(args.source, out / ".sources")
    except (ValueError, OSError) as exc:
        raise UsageError(terminal_safe(str(exc))) from exc
    if not found.submissions:
        raise UsageError(f"{args.source}: no submissions found (no .ipynb files and no Moodle participant folders)")
    if found.moodle:
        for name in found.stray:  # names from the zip: no escape sequence reaches the terminal
            print(f"grader: not in any participant's folder, not graded: {terminal_safe(name)}", file=sys.stderr)
    elif found.stray:  # a plain folder: its other files (data, READMEs) in one line
        shown = ", ".join(terminal_safe(n) for n in found.stray[:5])
        more = f" and {len(found.stray) - 5} more" if len(found.stray) > 5 else ""
        print(f"grader: {len(found.stray)} file(s) hold no notebook and are not graded: {shown}{more}", file=sys.stderr)
    for note in found.skipped:
        print(f"grader: {terminal_safe(note)}", file=sys.stderr)

    env = kernel_env(args.threads_per_kernel)
    gradebook_path: Path = args.gradebook or out / "gradebook.sqlite"
    points: dict[str, float] = {}
    manual_max: dict[str, float] = {}
    cluster_spec = _cluster_spec(args)
    gpu = bool(getattr(args, "gpu", False))
    grade_fn_is_ours = grade_fn is None
    if grade_fn is None:
        rubric: Any = prepare(args.rubric, args.kernel_env)  # loads the rubric, checks and activates the store (workers inherit it)
        rubric_hash = rubric.fingerprint(args.kernel_env)
        gpu = gpu or rubric.limits.gpu
        points = {c.id: c.points for c in rubric.checks}
        manual_max = {m.id: m.points for m in rubric.manual}
        # The kernel must not read other submissions, their results or the gradebook.
        hide = outermost(p.resolve() for p in (args.source, out, gradebook_path))
        options = options_from(args, env_overrides=env, torch_threads=args.threads_per_kernel, hide_paths=hide,
                               write_result=False, gpu=gpu)  # the batch writes result.json once, with manual scores
        grade_fn = PipelineGrader(options)
    else:  # a caller's own grade function (tests, other front ends)
        rubric_hash = pack_fingerprint(resolve_rubric_dir(args.rubric) if args.rubric else None)
    batch_options = BatchOptions(workers=args.workers, threads_per_kernel=args.threads_per_kernel, force=args.force,
                           hard_timeout_s=args.hard_timeout if args.hard_timeout > 0 else None,
                           warm_kernels=not getattr(args, "no_warm_kernels", False),
                           fork_kernels=not getattr(args, "no_fork_kernels", False),
                           pin_kernels=not getattr(args, "no_pin", False),
                           fork_workers=not getattr(args, "spawn_workers", False))
    cluster = None
    if cluster_spec is not None:
        from grader.cluster.run import ClusterBatch

        # workers must grade with the client's rubric; a caller's own grade function brings its own
        cluster = ClusterBatch(cluster_spec, rubric_hash=rubric_hash if grade_fn_is_ours else "",
                               rubric=args.rubric, kernel_env=getattr(args, "kernel_env", None), gpu=gpu,
                               local_workers=args.workers)
    with Gradebook(gradebook_path) as gb:
        gb.set_meta("out_dir", str(out.resolve()))
        progress = Progress(len(found.submissions))
        summary = _run_batch(found.submissions, out, grade_fn, gb, rubric_hash=rubric_hash, options=batch_options,
                             progress=progress, cluster=cluster)
        if points or manual_max:
            changed = rescore(gb, points, manual_max)
            if changed:
                print(f"grader: re-scored {len(changed)} submission(s) with the rubric's new points", file=sys.stderr)
                for warning in rewrite_outputs(gb, changed):
                    print(f"grader: warning: {terminal_safe(warning)}", file=sys.stderr)
        from grader.course.outputs import write_grades_csv
        from grader.reports.overview import write_overview

        entries = gb.entries()
        write_grades_csv(entries, out / "grades.csv")
        similar = None
        if not args.no_similarity:
            from grader.course.similarity import find_similar, write_report

            # a notebook the grader refused (bad input: too large, too deep, too many cells) is not
            # read again here; similarity reads only what grading could read
            refused = {e.submission.id for e in entries if e.result.status == "error" and e.result.error_kind == "bad_input"}
            notebooks = {s.id: s.notebook for s in found.submissions if s.notebook is not None and s.id not in refused}
            teams = {e.submission.id: e.result.team for e in entries}
            similar = find_similar(notebooks, template=args.template, teams=teams)
            write_report(similar, out / "similarity.json")
        write_overview(gb, out, similarity=similar)
        print(summary_table(summary, entries))
        print(f"\n{len(summary.outcomes)} submission(s), {len(summary.graded)} graded now with {summary.workers} worker(s) "
              f"in {summary.wall_s:.1f}s; grades: {out / 'grades.csv'}; overview: {out / 'index.html'}")
    return EXIT_HARNESS if summary.harness_failures else EXIT_OK


def _cluster_spec(args: argparse.Namespace) -> Any:
    """The parsed ``--cluster`` value (``None`` without one); a bad value or cluster file is a usage error.

    A rubric given as a relative folder becomes absolute: Dask workers may not share our cwd."""
    value = getattr(args, "cluster", None)
    if not value:
        return None
    from grader.cluster.spec import ClusterConfigError, parse_cluster

    try:
        spec = parse_cluster(value)
    except ClusterConfigError as exc:
        raise UsageError(str(exc)) from exc
    if args.rubric and Path(args.rubric).is_dir():
        args.rubric = str(Path(args.rubric).resolve())
    return spec


def _run_batch(*args: Any, cluster: Any, **kwargs: Any) -> Any:
    """``run_batch``, with a cluster's failures (no workers, a worker without the store) as harness errors."""
    if cluster is None:
        return run_batch(*args, **kwargs)
    from grader.cluster.run import ClusterError

    try:
        return run_batch(*args, cluster=cluster, **kwargs)
    except ClusterError as exc:
        raise HarnessError(str(exc), hint=exc.hint) from exc


def outermost(paths: Iterable[Path]) -> tuple[Path, ...]:
    """The paths that are not inside another one (the sandbox cannot hide a path in a hidden folder)."""
    unique = sorted(set(paths), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for p in unique:
        if not any(p == k or k in p.parents for k in kept):
            kept.append(p)
    return tuple(kept)
