"""``grader manual export|import``: the TA sheet for the items a person scores."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from grader.cli.main import EXIT_OK, EXIT_USAGE, UsageError
from grader.course.gradebook import Gradebook, find_gradebook
from grader.course.manual import export_sheet, import_sheet, refresh_outputs
from grader.safety.escape import terminal_safe

DESCRIPTION = """\
Manual items (answers a person scores) go out as a sheet and come back with points and comments.
The sheet has one row per submission and manual item: submission, name, item, subtask, max_points,
points, comment, prompt, the student's answer and the reference answer. CSV or YAML, chosen by the
file's extension.
"""

IMPORT_EPILOG = """\
Rows with empty points and comment are skipped (not scored yet). A bad row (unknown submission or
item, points not a number, negative or above the maximum) is rejected with a message naming it;
every good row is imported anyway. The gradebook, each changed result.json and report, grades.csv
and index.html are updated.

exit codes: 0 every row imported or blank; 2 at least one row was rejected (the good rows are imported).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("manual", help="export / import the TA sheet of manual items", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="manual_command", metavar="ACTION", required=True)

    ex = sub.add_parser("export", help="write the sheet (CSV or YAML)", description=DESCRIPTION,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("--out", type=Path, required=True, metavar="FILE", help="sheet to write: .csv, .yaml or .yml")
    ex.add_argument("--gradebook", type=Path, metavar="FILE",
                    help="gradebook file or a batch's output folder (default: ./gradebook.sqlite)")
    ex.add_argument("--open-only", action="store_true", help="only the items nobody has scored yet")
    ex.set_defaults(handler=run_export)

    im = sub.add_parser("import", help="read a filled-in sheet into the gradebook", description=DESCRIPTION,
                        epilog=IMPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    im.add_argument("sheet", type=Path, metavar="FILE", help="the filled-in sheet (.csv, .yaml or .yml)")
    im.add_argument("--gradebook", type=Path, metavar="FILE",
                    help="gradebook file or a batch's output folder (default: ./gradebook.sqlite)")
    im.set_defaults(handler=run_import)


def _gradebook(args: argparse.Namespace) -> Path:
    try:
        return find_gradebook(args.gradebook)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc


def run_export(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() not in (".csv", ".yaml", ".yml"):
        raise UsageError(f"{args.out}: the sheet must end in .csv, .yaml or .yml")
    with Gradebook(_gradebook(args)) as gb:
        n = export_sheet(gb, args.out, open_only=args.open_only)
    print(f"wrote {n} row(s) to {args.out}")
    return EXIT_OK


def run_import(args: argparse.Namespace) -> int:
    if not args.sheet.is_file():
        raise UsageError(f"{args.sheet}: no such file")
    with Gradebook(_gradebook(args)) as gb:
        try:
            report = import_sheet(gb, args.sheet)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UsageError(str(exc)) from exc
        for message in report.rejected:  # rows quote the sheet's cells: no escape sequences
            print(f"rejected: {terminal_safe(message)}", file=sys.stderr)
        warnings = refresh_outputs(gb, report.submissions)
        for w in warnings:
            print(f"warning: {terminal_safe(w)}", file=sys.stderr)
    print(f"imported {len(report.imported)} score(s) for {len(report.submissions)} submission(s); "
          f"{len(report.rejected)} row(s) rejected; {report.blank} blank row(s) skipped")
    return EXIT_USAGE if report.rejected else EXIT_OK
