"""``grader export``: grades back to Moodle (grading worksheet, feedback-files zip) and grades.csv."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from grader.cli.main import EXIT_OK, UsageError
from grader.course.gradebook import Entry, Gradebook, find_gradebook, subtask_order
from grader.course.moodle import (
    FeedbackEntry,
    WorksheetGrade,
    feedback_html,
    fill_worksheet,
    read_worksheet,
    write_feedback_zip,
    write_worksheet,
)
from grader.safety.escape import terminal_safe
from grader.steps.score import manual_scored

DESCRIPTION = """\
Hand the grades back.

--moodle-worksheet reads the grading worksheet downloaded from Moodle ("Download grading
worksheet") and writes it to --out with Grade and Feedback comments filled in for every participant
the gradebook has a result for (matched by participant id, or by a team member's full name written
in a group notebook). Every other cell is left as it was; rows without a result are listed. Upload
the file with "Upload grading worksheet".

--feedback-zip writes a zip for "Upload multiple feedback files in a zip": one folder per participant,
named as in Moodle's download, holding that participant's report.html.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("export", help="fill Moodle's grading worksheet, build the feedback zip, write grades.csv",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--moodle-worksheet", type=Path, metavar="WORKSHEET.csv", help="the worksheet downloaded from Moodle")
    p.add_argument("--out", type=Path, metavar="FILE", help="where to write the filled-in worksheet")
    p.add_argument("--feedback-zip", type=Path, metavar="FILE", help="write the feedback-files zip here")
    p.add_argument("--grades", type=Path, metavar="FILE", help="write grades.csv here")
    p.add_argument("--gradebook", type=Path, metavar="FILE",
                   help="gradebook file or a batch's output folder (default: ./gradebook.sqlite)")
    p.set_defaults(handler=run)


def feedback_lines(e: Entry) -> list[str]:
    r = e.result
    if r.status == "error":
        return [f"Your submission could not be graded automatically: {r.error}", "Please contact the teaching team."]
    manual_max = r.manual_max
    lines = [f"Total: {_num(e.total)} / {_num(r.auto_max + manual_max)} points "
             f"(automatic {_num(r.auto_points)} / {_num(r.auto_max)}, manual {_num(manual_scored(r))} / {_num(manual_max)})."]
    for key in subtask_order(set(r.subtasks)):
        s = r.subtasks[key]
        lines.append(f"{key}: {_num(s.auto_points + manual_scored(r, key))} / {_num(s.auto_max + s.manual_max)}")
    for m in r.manual:
        if m.comment:
            lines.append(f"{m.id}: {m.comment}")
    lines.append("The attached report.html has the details of every check.")
    return lines


def run(args: argparse.Namespace) -> int:
    if not (args.moodle_worksheet or args.feedback_zip or args.grades):
        raise UsageError("nothing to export: give --moodle-worksheet WORKSHEET.csv --out FILE, --feedback-zip FILE or --grades FILE")
    if args.moodle_worksheet and not args.out:
        raise UsageError("--moodle-worksheet needs --out FILE (the filled-in copy)")
    if args.out and not args.moodle_worksheet:
        raise UsageError("--out is the filled-in worksheet: give --moodle-worksheet WORKSHEET.csv too")
    try:
        path = find_gradebook(args.gradebook)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    with Gradebook(path) as gb:
        entries = gb.entries()
    if args.grades:
        from grader.course.outputs import write_grades_csv

        write_grades_csv(entries, args.grades)
        print(f"wrote {args.grades}")
    if args.moodle_worksheet:
        export_worksheet(entries, args.moodle_worksheet, args.out)
    if args.feedback_zip:
        export_feedback_zip(entries, args.feedback_zip)
    return EXIT_OK


def export_worksheet(entries: list[Entry], worksheet: Path, out: Path) -> None:
    try:
        ws = read_worksheet(worksheet)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{worksheet}: {exc}") from exc
    # A submission that could not be graded gets no grade: a person decides (it is listed below).
    ungraded = [e for e in entries if e.result.status == "error"]
    grades = {
        e.submission.participant_id or e.submission.id: WorksheetGrade(e.total, feedback_html(feedback_lines(e)), e.result.team)
        for e in entries
        if e.result.status != "error"
    }
    try:
        report = fill_worksheet(ws, grades)
    except ValueError as exc:
        raise UsageError(f"{worksheet}: {exc}") from exc
    write_worksheet(ws, out)
    open_manual = [e.submission.id for e in entries if any(m.points is None for m in e.result.manual)]
    print(f"wrote {out}: {len(report.matched)} participant(s) graded"
          + (f", {len(report.matched_by_team)} of them through a team member's name" if report.matched_by_team else ""))
    for wid, sid in report.matched_by_team:
        print(terminal_safe(f"  matched by team name: worksheet participant {wid} -> submission {sid}"))
    if report.unmatched_rows:
        print(f"worksheet rows without a result ({len(report.unmatched_rows)}), left as they were:")
        for row in report.unmatched_rows:
            print(f"  {terminal_safe(row)}")
    if ungraded:
        print(f"not graded automatically, their rows left as they were ({len(ungraded)}):")
        for e in ungraded:  # names and errors are the students' text
            print(terminal_safe(f"  {e.submission.participant_id or e.submission.id} ({e.submission.display_name}): {e.result.error}"))
    if report.unmatched_grades:
        print(terminal_safe(f"results without a worksheet row ({len(report.unmatched_grades)}): {', '.join(report.unmatched_grades)}"))
    if report.over_maximum:
        print(terminal_safe(f"warning: grade above the worksheet's Maximum Grade for: {', '.join(report.over_maximum)}"), file=sys.stderr)
    if open_manual:
        print(f"warning: {len(open_manual)} submission(s) have manual items not scored yet (counted as 0): "
              f"{', '.join(open_manual[:10])}{' ...' if len(open_manual) > 10 else ''}", file=sys.stderr)


def export_feedback_zip(entries: list[Entry], out: Path) -> None:
    zip_entries = []
    skipped = []
    for e in entries:
        report = e.run.result_path.parent / "report.html"
        if not e.submission.folder_name:
            skipped.append(f"{e.submission.id} (not from Moodle: no participant folder)")
        elif not report.is_file():
            skipped.append(f"{e.submission.id} (no report.html)")
        else:
            zip_entries.append(FeedbackEntry(e.submission.folder_name, (("report.html", report),)))
    n = write_feedback_zip(zip_entries, out)
    print(f"wrote {out}: {n} feedback file(s) for {len(zip_entries)} participant(s)")
    for s in skipped:
        print(f"  not in the zip: {terminal_safe(s)}")


def _num(value: float) -> str:
    return f"{round(value, 2):g}"
