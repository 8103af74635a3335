"""Manual items: the TA's sheet out of the gradebook and back in.

The sheet has one row per submission and manual item, with the student's answer and the reference
answer beside the points and comment cells, as CSV (opens in any spreadsheet) or YAML (reads well
for long answers). Importing checks every row on its own: a bad row (unknown submission or item,
points that are not a number, negative or above the item's maximum) is rejected with a message
naming the row, and every good row is stored. Then each changed submission's ``result.json`` and
reports, ``grades.csv`` and the overview are brought up to date.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grader.course.gradebook import Entry, Gradebook, ManualScore
from grader.safety.escape import csv_cell, csv_uncell
from grader.steps.results import write_text_atomic

COLUMNS = ("submission", "name", "item", "subtask", "max_points", "points", "comment", "prompt", "answer", "reference", "hints")


@dataclass
class ImportReport:
    imported: list[tuple[str, str]] = field(default_factory=list)  # (submission, item)
    rejected: list[str] = field(default_factory=list)  # one message per bad row, naming it
    blank: int = 0  # rows with neither points nor comment: not scored yet, nothing to do

    @property
    def submissions(self) -> list[str]:
        return sorted({s for s, _ in self.imported})


def sheet_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise ValueError(f"{path}: the sheet must end in .csv, .yaml or .yml")


# --- export ----------------------------------------------------------------------------------------


def sheet_rows(entries: Sequence[Entry], *, open_only: bool = False) -> list[dict[str, str]]:
    rows = []
    for e in sorted(entries, key=lambda e: e.submission.id):
        for m in e.result.manual:
            if open_only and m.points is not None:
                continue
            rows.append({
                "submission": e.submission.id,
                "name": e.submission.display_name,
                "item": m.id,
                "subtask": m.subtask,
                "max_points": _num(m.max_points),
                "points": "" if m.points is None else _num(m.points),
                "comment": m.comment,
                "prompt": m.prompt,
                "answer": m.answer,
                "reference": m.reference,
                "hints": "\n".join(m.hints),
            })
    return rows


def export_sheet(gradebook: Gradebook, out: Path, *, open_only: bool = False) -> int:
    """Write the TA sheet; returns the number of rows."""
    rows = sheet_rows(gradebook.entries(), open_only=open_only)
    if sheet_format(out) == "csv":
        buf = io.StringIO()
        # CRLF: csv quotes a cell holding a line terminator's characters only; a lone CR must not split a row
        writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\r\n")
        writer.writeheader()
        # answers, names and comments are students' and TAs' text: no cell runs as a formula
        writer.writerows({k: csv_cell(v) for k, v in r.items()} for r in rows)
        # A BOM so that spreadsheet programs read the accents right.
        write_text_atomic(out, "\ufeff" + buf.getvalue())
    else:
        header = "# Fill in `points` (and `comment`) and import with: grader manual import FILE\n"
        typed = [{**r, "max_points": _number(r["max_points"]), "points": _number(r["points"])} for r in rows]
        write_text_atomic(out, header + yaml.dump(typed, Dumper=_BlockDumper, allow_unicode=True, sort_keys=False, width=100))
    return len(rows)


def _number(text: str) -> float | int | None:
    if not text:
        return None
    value = float(text)
    return int(value) if value.is_integer() else value


class _BlockDumper(yaml.SafeDumper):
    """Multi-line answers as ``|`` blocks, readable in a text editor."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_BlockDumper.add_representer(str, _str_presenter)


# --- import ----------------------------------------------------------------------------------------


def read_sheet(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(row label, row) pairs; the label names the row the way the TA sees it."""
    if sheet_format(path) == "csv":
        text = path.read_text(encoding="utf-8-sig")
        first = text.split("\n", 1)[0]
        delimiter = max((",", ";", "\t"), key=first.count)
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        missing = {"submission", "item", "points"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: the sheet has no column(s) {', '.join(sorted(missing))}")
        # line_num counts physical lines; a cell with line breaks spans several, so use the record's
        # starting line: what a spreadsheet shows as the row number.
        rows = []
        start = reader.line_num + 1
        for row in reader:
            rows.append((f"row {start}", {k: csv_uncell(v) if isinstance(v, str) else v for k, v in row.items()}))
            start = reader.line_num + 1
        return rows
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise ValueError(f"{path}: the YAML sheet must be a list of entries")
    return [(f"entry {i}", row if isinstance(row, dict) else {"_bad": row}) for i, row in enumerate(doc, 1)]


def parse_points(value: Any) -> float | None:
    """``None`` for an empty cell; raises ValueError for anything that is not a finite number."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")  # a decimal comma from a German spreadsheet
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{str(value)!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def points_problem(points: float | None, maximum: float) -> str | None:
    """Why ``points`` cannot be stored for an item worth ``maximum``; ``None`` when they can.
    One rule for every way points come in (the sheet, the review page)."""
    if points is not None and points < 0:
        return f"points {_num(points)} are negative"
    if points is not None and points > maximum + 1e-9:
        return f"points {_num(points)} are above the maximum {_num(maximum)}"
    return None


def import_sheet(gradebook: Gradebook, path: Path, *, source: str = "") -> ImportReport:
    report = ImportReport()
    entries = {e.submission.id: e for e in gradebook.entries()}
    seen: dict[tuple[str, str], str] = {}
    for label, row in read_sheet(path):
        where = _describe(label, row)
        if "_bad" in row:
            report.rejected.append(f"{where}: not a mapping of column: value")
            continue
        sid = str(row.get("submission") or "").strip()
        item = str(row.get("item") or "").strip()
        entry = entries.get(sid)
        if entry is None:
            report.rejected.append(f"{where}: unknown submission {sid!r}")
            continue
        items = {m.id: m for m in entry.result.manual}
        if item not in items:
            known = ", ".join(items) or "none"
            report.rejected.append(f"{where}: unknown manual item {item!r} (this submission has: {known})")
            continue
        try:
            points = parse_points(row.get("points"))
        except ValueError as exc:
            report.rejected.append(f"{where}: points {exc}")
            continue
        comment = str(row.get("comment") or "").strip()
        maximum = items[item].max_points
        problem = points_problem(points, maximum)
        if problem:
            report.rejected.append(f"{where}: {problem}")
            continue
        if (sid, item) in seen:
            report.rejected.append(f"{where}: the same submission and item as {seen[(sid, item)]}; only the first is used")
            continue
        seen[(sid, item)] = label
        if points is None and not comment:
            report.blank += 1
            continue
        current = items[item]
        if current.points == points and current.comment == comment:
            continue  # unchanged: no new log entry, no re-render
        gradebook.set_manual(
            sid, item, ManualScore(points=points, comment=comment, max_points=maximum, content_hash=entry.submission.content_hash),
            source=source or str(path),
        )
        report.imported.append((sid, item))
    return report


def _describe(label: str, row: Mapping[str, Any]) -> str:
    sid = str(row.get("submission") or "").strip()
    item = str(row.get("item") or "").strip()
    return f"{label} (submission {sid or '?'}, item {item or '?'})"


# --- bringing the outputs up to date ---------------------------------------------------------------


def refresh_outputs(gradebook: Gradebook, submission_ids: Sequence[str], out_dir: Path | None = None) -> list[str]:
    """Rewrite the changed submissions' result.json and reports, then grades.csv and index.html
    (in ``out_dir``, by default the batch's output folder the gradebook names).

    Returns warnings (a report that could not be re-rendered is said, not hidden).
    """
    from grader.course.outputs import rewrite_outputs, write_grades_csv
    from grader.reports.overview import write_overview

    warnings = rewrite_outputs(gradebook, submission_ids)
    out_dir = out_dir or (Path(meta) if (meta := gradebook.get_meta("out_dir")) else None)
    if out_dir:
        write_grades_csv(gradebook.entries(), out_dir / "grades.csv")
        write_overview(gradebook, out_dir)
    return warnings


def _num(value: float) -> str:
    return f"{round(value, 2):g}"
