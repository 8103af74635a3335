"""The course's outputs from the gradebook: result.json and reports brought up to date after manual
scores or a re-score, ``grades.csv`` and the summary table. Nothing here runs a notebook.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.course.gradebook import Entry, Gradebook, subtask_order
from grader.course.progress import fmt_points, status_word
from grader.safety.escape import csv_row, terminal_safe
from grader.steps.results import GradeResult, write_result, write_text_atomic
from grader.steps.score import manual_scored

if TYPE_CHECKING:
    from grader.course.batch import BatchSummary


@functools.lru_cache(maxsize=4)
def _rubric_for(assignment: str) -> Any:
    from grader.pack.rubric import load_rubric

    return load_rubric(assignment or None)


def rerender_reports(result: GradeResult, folder: Path) -> str | None:
    """Render report.html/report.md again for a changed result; ``None`` if done, else why not.

    Only where the pipeline rendered reports before (a submission without a notebook has none).
    """
    if not (folder / "report.html").exists():
        return "no report.html to update"
    try:
        from grader.reports.render import render_reports

        rubric = _rubric_for(result.assignment)
        render_reports(result, folder, rubric)
    except Exception as exc:  # the result.json is right; say why the report is not
        return f"{type(exc).__name__}: {exc}"
    return None


def rewrite_outputs(gradebook: Gradebook, submission_ids: Sequence[str]) -> list[str]:
    """Bring result.json and the reports of these submissions up to date with the gradebook (after
    manual scores or a re-score). Returns warnings: a report that could not be re-rendered is said."""
    warnings: list[str] = []
    wanted = set(submission_ids)
    for e in gradebook.entries():
        if e.submission.id in wanted:
            folder = e.run.result_path.parent
            write_result(folder, e.result)
            problem = rerender_reports(e.result, folder)
            if problem:
                warnings.append(f"{e.submission.id}: result.json updated, reports not: {problem}")
    return warnings


GRADES_FIXED = ("id", "name")

GRADES_TOTALS = ("auto_points", "manual_points", "total")


def grades_rows(entries: Sequence[Entry]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of grades.csv: id, name, one column per subtask, auto, manual, total.

    A subtask's cell is its automatic points plus the manual points given so far (an item nobody
    scored yet counts zero; the overview says how many are open); a submission that could not be
    graded has empty subtask cells and zero totals.
    """
    subtasks = subtask_order({s for e in entries for s in e.result.subtasks})
    header = [*GRADES_FIXED, *subtasks, *GRADES_TOTALS]
    rows = []
    for e in sorted(entries, key=lambda e: e.submission.id):
        r = e.result
        cells = [e.submission.id, e.submission.display_name]
        for s in subtasks:
            score = r.subtasks.get(s)
            cells.append("" if score is None else fmt_points(score.auto_points + manual_scored(r, s)))
        cells += [fmt_points(r.auto_points), fmt_points(manual_scored(r)), fmt_points(e.total)]
        rows.append(cells)
    return header, rows


def write_grades_csv(entries: Sequence[Entry], path: Path) -> None:
    header, rows = grades_rows(entries)
    buf = io.StringIO()
    # CRLF, as RFC 4180 and spreadsheets write it: csv quotes a cell holding a line terminator's
    # characters only, and a name with a lone CR must not split a row
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(csv_row(header))
    writer.writerows(csv_row(row) for row in rows)  # a name like "=HYPERLINK(...)" stays text
    write_text_atomic(path, buf.getvalue())


def summary_table(summary: BatchSummary, entries: Sequence[Entry]) -> str:
    """The final table: problems first (errors, then kernel trouble), then by id."""
    by_id = {e.submission.id: e for e in entries}
    rows: list[tuple[int, str, list[str]]] = []
    for o in summary.outcomes:
        e = by_id.get(o.submission.id)
        r = e.result if e else o.result
        word = status_word(r) + (" (unchanged)" if o.skipped else "")
        rank = 0 if r.status == "error" else 1 if r.kernel_status != "ok" else 2
        total = e.total if e else r.auto_points
        rows.append(
            (
                rank,
                o.submission.id,
                [
                    terminal_safe(o.submission.id),
                    terminal_safe(e.submission.display_name if e else o.submission.name, limit=28),
                    word,
                    fmt_points(r.auto_points),
                    fmt_points(manual_scored(r)),
                    fmt_points(total),
                    f"{o.seconds:.1f}",
                ],
            )
        )
    rows.sort(key=lambda t: (t[0], t[1]))
    header = ["id", "name", "status", "auto", "manual", "total", "seconds"]
    table = [header] + [r for _, _, r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 3 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        for row in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
