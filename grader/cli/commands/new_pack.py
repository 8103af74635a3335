"""``grader new-pack NAME --from SOLUTION.ipynb [--out DIR]``: scaffold a rubric pack.

The files come from ``grader.pack.scaffold``; this command reads the solution, refuses to write over an
existing pack, writes the files and loads the result as the grader will (``grader.pack.validate``),
so a scaffold that would not load is caught here, not at the first submission.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from grader.cli.main import EXIT_OK, HarnessError, UsageError

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def register(sub: Any) -> None:
    p = sub.add_parser("new-pack", help="scaffold a rubric pack from a solution notebook's marked cells",
                       description="Write rubric.yaml (one check per marked cell), probes.py and checks.py stubs "
                                   "and conventions.py. A cell is marked by a first-line tag '# [subtask]', the cell tag "
                                   "'grade:subtask', or nbgrader's grade_id. Every stub check fails with 'not written "
                                   "yet' until it is written (docs/PACKS.md).")
    p.add_argument("name", metavar="NAME", help="the assignment's name (letters, digits, '_' and '-')")
    p.add_argument("--from", dest="solution", required=True, metavar="SOLUTION.ipynb", help="the solution notebook")
    p.add_argument("--out", default=None, metavar="DIR", help="where the pack goes (default: rubrics/NAME)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import nbformat

    from grader.pack.rubric import RUBRICS_DIR, RubricError, load_rubric
    from grader.pack.scaffold import scaffold

    if not NAME.match(args.name):
        raise UsageError(f"'{args.name}' is not a usable pack name: letters, digits, '_' and '-', starting with a letter")
    solution = Path(args.solution)
    if not solution.is_file():
        raise UsageError(f"{solution}: no such file")
    out = Path(args.out) if args.out else RUBRICS_DIR / args.name
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not empty: a pack is never written over (choose --out)")
    try:
        nb = nbformat.read(solution, as_version=4)
    except Exception as exc:  # nbformat raises many types on a bad file
        raise UsageError(f"{solution}: not a readable notebook ({type(exc).__name__}: {exc})") from exc
    try:
        made = scaffold(nb, args.name, solution=solution.name)
    except ValueError as exc:
        raise UsageError(f"{solution}: {exc}") from exc
    out.mkdir(parents=True, exist_ok=True)
    for file, text in made.files.items():
        (out / file).write_text(text, encoding="utf-8")
    try:
        load_rubric(out)
    except RubricError as exc:
        raise HarnessError(f"the scaffolded pack in {out} does not load: {exc}", hint="this is a bug in grader new-pack") from exc
    points = sum(c.points for c in made.checks)
    print(f"wrote {out}/ ({', '.join(made.files)}): {len(made.subtasks)} subtask(s), {len(made.checks)} check(s), {points:g} point(s)")
    for c in made.checks:
        print(f"  {c.id:<32} {c.points:g} pt  cell {c.cell + 1}  probe {c.probe}")
    print("Every check fails with 'not written yet' until written: see docs/PACKS.md. Try it with\n"
          f"  grader grade {solution} --rubric {out} --out /tmp/{args.name}-solution")
    return EXIT_OK
