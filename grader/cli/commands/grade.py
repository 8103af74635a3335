"""``grader grade PATH... --out DIR``: grade notebooks (files or folders) into DIR/<id>/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.cli.main import EXIT_OK, HarnessError, UsageError
from grader.safety.escape import safe_id, terminal_safe, unique_ids


def add_grading_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `grade`, `check` and `batch` (defaults come from the rubric file)."""
    p.add_argument("--rubric", default=None, help="rubric folder or name under rubrics/ (default: $GRADER_RUBRIC, or the only pack installed)")
    p.add_argument("--no-sandbox", action="store_true", help="run kernels without the sandbox (trusted notebooks only)")
    p.add_argument("--cell-timeout", type=float, default=None, help="seconds per cell (default: the rubric's)")
    p.add_argument("--deadline", type=float, default=None, help="seconds for a whole notebook (default: the rubric's)")
    p.add_argument("--max-train-steps", type=int, default=None, help="training steps allowed per Trainer.train() (default: the rubric's)")
    p.add_argument("--memory-gib", type=float, default=None, help="address-space cap of a kernel in GiB (default: the rubric's)")
    p.add_argument("--keep-workdir", action="store_true", help="keep each kernel's working folder (for debugging)")
    p.add_argument("--kernel-env", default=None, metavar="NAME",
                   help="kernel environment the notebooks run in (default: the rubric's; `grader env list` shows them)")


def options_from(args: argparse.Namespace, **extra: object):  # -> GradeOptions
    from grader.steps.pipeline import GradeOptions

    return GradeOptions(
        rubric=args.rubric,
        sandbox=not args.no_sandbox,
        cell_timeout=args.cell_timeout,
        deadline=args.deadline,
        max_train_steps=args.max_train_steps,
        memory_gib=args.memory_gib,
        keep_workdir=args.keep_workdir,
        kernel_env=getattr(args, "kernel_env", None),
        **extra,  # type: ignore[arg-type]
    )


def collect_notebooks(paths: list[str]) -> list[Path]:
    """Files as given; folders searched for *.ipynb (checkpoints skipped). Missing paths are usage errors."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        elif p.exists():
            found.append(p)
        else:
            raise UsageError(f"{raw}: no such file or folder")
    if not found:
        raise UsageError("no notebooks found in " + ", ".join(paths))
    return found


def prepare(rubric_name: object, env_name: str | None = None) -> object:
    """Load the rubric and make sure the store and the kernel environment are there and the store
    active; harness errors otherwise."""
    from grader.kernel.envs import EnvMissing, interpreter
    from grader.kernel.store import StoreMissing, activate, check_store, store_root
    from grader.pack.rubric import RubricError, load_rubric

    try:
        rubric = load_rubric(rubric_name)  # type: ignore[arg-type]
        interpreter(rubric.kernel.env(env_name))
    except RubricError as exc:
        raise HarnessError(str(exc)) from exc
    except EnvMissing as exc:
        raise HarnessError(str(exc), hint="`bash scripts/setup.sh` builds every environment the rubric declares") from exc
    try:
        if rubric.store_builder:
            check_store(store_root())
    except StoreMissing as exc:
        raise HarnessError(str(exc), hint="run `grader store build` (or `grader store fetch` with internet)") from exc
    activate()
    return rubric


def run_grade(args: argparse.Namespace) -> int:
    from grader.steps.pipeline import grade_submission, submission_id

    notebooks = collect_notebooks(args.paths)
    rubric = prepare(args.rubric, args.kernel_env)
    out = Path(args.out)
    ids = [submission_id(nb) for nb in notebooks]
    dupes = {i for i in ids if ids.count(i) > 1}
    # two notebooks of one name: the folder's name goes first; ids stay safe and distinct
    ids = unique_ids([safe_id(f"{nb.parent.name}-{sid}") if sid in dupes else sid for nb, sid in zip(notebooks, ids, strict=True)])
    for nb, sid in zip(notebooks, ids, strict=True):
        result = grade_submission(nb, out / sid, options_from(args, submission_id=sid), rubric=rubric)  # type: ignore[arg-type]
        if result.status == "graded":
            line = f"{sid}: {result.auto_points:g} / {result.auto_max:g} automatic"
            if result.manual_max:
                line += f", {result.manual_max:g} manual pending" if result.manual_points is None else f", {result.manual_points:g} / {result.manual_max:g} manual"
            if result.kernel_status != "ok":
                line += f" [{result.kernel_status}]"
        else:
            line = f"{sid}: ERROR ({result.error_kind}): {result.error}"
        print(terminal_safe(line), flush=True)  # the error names the student's file: no escape sequences
        if result.error_kind == "grader":
            print(f"  see {out / sid / 'grader.log'}", file=sys.stderr)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grade", help="grade notebooks into DIR/<id>/ (result.json, report.html, report.md)",
                       description="Grade each notebook (PATH may be files or folders) into DIR/<id>/. Exit 0 when every file got a result, whatever the scores; 1 when the harness or rubric failed; 2 on wrong usage.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--out", required=True, metavar="DIR")
    add_grading_options(p)
    p.set_defaults(handler=run_grade)
