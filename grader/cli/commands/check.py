"""``grader check NOTEBOOK``: a student's self-check (public checks only) printed in the terminal."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from grader.cli.commands.grade import add_grading_options, options_from, prepare
from grader.cli.main import EXIT_OK, UsageError
from grader.safety.escape import terminal_safe
from grader.steps.results import GradeResult


def format_terminal(result: GradeResult, titles: dict[str, str]) -> str:
    """The self-check for a terminal. Every text that came from the notebook (file name, error lines,
    check messages quoting the student's values) passes ``terminal_safe`` on its own line: no escape
    sequence, and no line break that could print a fake PASS line."""
    t = terminal_safe
    lines = []
    if result.status == "error":
        return f"Could not grade {t(result.submission)}: {t(result.error)}"
    lines.append(f"{t(result.submission)}: {result.auto_points:g} / {result.auto_max:g} points from public automatic checks")
    if result.kernel_status != "ok":
        lines.append(f"  kernel: {result.kernel_status}: {t(result.kernel_message)}")
    for sid, s in result.subtasks.items():
        checks = [c for c in result.checks if c.subtask == sid and not c.hidden]
        if not checks and not s.manual_max:
            continue
        lines.append(f"\n{sid} {titles.get(sid, '')}  ({s.auto_points:g} / {sum(c.max_points for c in checks):g})")
        for c in checks:
            mark = {"passed": "PASS", "failed": "FAIL", "error": "ERR ", "timeout": "TIME", "skipped": "SKIP"}[c.status]
            msg = "" if c.message in ("", "ok") or c.status == "passed" else f": {t(c.message)}"
            lines.append(f"  {mark} {c.id}{msg}")
        if s.manual_max:
            lines.append(f"  ---- {s.manual_max:g} point(s) graded by a person")
    bad = [c for c in result.cells if c.status in ("error", "timeout")]
    if bad:
        lines.append("\nCells that failed:")
        lines += [f"  cell {c.index + 1}{f' ({c.subtask})' if c.subtask else ''}: {t(c.error)}" for c in bad]
    drift = [n.message for n in result.notes if n.kind == "drift"]
    if drift:
        lines.append("\nLibrary drift (no points deducted):")
        lines += [f"  - {t(m)}" for m in drift]
    return "\n".join(lines)


def run_check(args: argparse.Namespace) -> int:
    from grader.steps.pipeline import grade_submission, submission_id

    nb = Path(args.notebook)
    if not nb.is_file():
        raise UsageError(f"{nb}: no such file")
    rubric = prepare(args.rubric, args.kernel_env)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="grader-check-"))
    result = grade_submission(nb, out, options_from(args, public_only=True, submission_id=submission_id(nb)), rubric=rubric)  # type: ignore[arg-type]
    print(format_terminal(result.student_view(), {s.id: s.title for s in rubric.subtasks}))  # type: ignore[attr-defined]
    print(f"\nReport: {out / 'report.html'}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="self-check a notebook before uploading (public checks only)")
    p.add_argument("notebook", metavar="NOTEBOOK")
    p.add_argument("--out", default=None, metavar="DIR", help="where report.html goes (default: a temporary folder)")
    add_grading_options(p)
    p.set_defaults(handler=run_check)
