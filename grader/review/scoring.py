"""A TA's edits from the page -> the gradebook, then every output that shows them.

The same rows and rules as the CSV/YAML sheet (``grader.course.manual``): points parsed by
``parse_points`` (a decimal comma is fine), checked by ``points_problem``, stored with
``Gradebook.set_manual``, and the outputs rewritten by ``refresh_outputs`` (result.json, reports,
grades.csv, the overview; the Moodle exports read the gradebook when they run). The one addition is
the version the page showed: an edit made on an older version is refused and answered with the
value that stands, so two TAs never overwrite each other unseen.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from grader.course.gradebook import Gradebook, ManualScore, StaleEdit
from grader.course.manual import parse_points, points_problem, refresh_outputs

SaveStatus = Literal["saved", "unchanged", "stale", "invalid"]

# One writer at a time in this process: the gradebook's transaction already makes each save
# atomic, this keeps the rewritten outputs (grades.csv, index.html) in the order of the saves.
_WRITE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Edit:
    submission: str
    item: str
    points: str | float | None  # as typed; parsed here
    comment: str
    version: int  # the cell's version the page showed


@dataclass(frozen=True)
class Saved:
    """What the page shows after an edit: the cell as it now stands, and why."""

    submission: str
    item: str
    status: SaveStatus
    points: float | None = None
    comment: str = ""
    version: int = 0
    source: str = ""
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"submission": self.submission, "item": self.item, "status": self.status, "points": self.points,
                "comment": self.comment, "version": self.version, "source": self.source, "message": self.message}


def save_edits(gradebook: Gradebook, edits: Sequence[Edit], *, source: str = "review",
               out_dir: Path | None = None, refresh: bool = True) -> tuple[list[Saved], list[str]]:
    """Store each edit on its own (one refused edit does not stop the others); then bring the
    outputs of the changed submissions up to date (``refresh=False``: the caller does, as the app's
    ``OutputRefresher``). Returns one ``Saved`` per edit and warnings."""
    with _WRITE_LOCK:
        results = [_save_one(gradebook, e, source) for e in edits]
        changed = sorted({r.submission for r in results if r.status == "saved"})
        warnings = refresh_outputs(gradebook, changed, out_dir) if changed and refresh else []
    return results, warnings


def _save_one(gradebook: Gradebook, edit: Edit, source: str) -> Saved:
    def invalid(message: str) -> Saved:
        return Saved(edit.submission, edit.item, "invalid", message=message)

    latest = gradebook.latest_run(edit.submission)
    rec = gradebook.submission(edit.submission)
    if latest is None or rec is None:
        return invalid(f"unknown submission {edit.submission!r}")
    item = next((m for m in latest[1].manual if m.id == edit.item), None)
    if item is None:
        return invalid(f"submission {edit.submission} has no manual item {edit.item!r}")
    try:
        points = parse_points(edit.points)
    except ValueError as exc:
        return invalid(f"points {exc}")
    problem = points_problem(points, item.max_points)
    if problem:
        return invalid(problem)
    comment = edit.comment.strip()
    current = gradebook.manual_scores(edit.submission).get(edit.item, ManualScore(None))
    if current.points == points and current.comment == comment:
        # Nothing to write (also when the page was stale: the other TA chose the same).
        return _as_saved(edit, current, "unchanged")
    try:
        version = gradebook.set_manual(
            edit.submission, edit.item,
            ManualScore(points=points, comment=comment, max_points=item.max_points, content_hash=rec.content_hash),
            source=source, expected_version=edit.version,
        )
    except StaleEdit as stale:
        return _as_saved(edit, stale.current, "stale", f"not saved: {who_wrote(stale.current.source)} changed this meanwhile")
    return Saved(edit.submission, edit.item, "saved", points, comment, version, source)


def review_source(ta: str) -> str:
    """The gradebook's ``source`` for an edit from the page, naming the TA when they gave a name."""
    name = " ".join(ta.split())[:40]
    return f"review: {name}" if name else "review"


def who_wrote(source: str) -> str:
    """A gradebook ``source`` in words, for the message a refused edit gets."""
    if source.startswith("review: "):
        return source.removeprefix("review: ")
    if source == "review":
        return "another TA"
    return f"an import of {source}" if source else "someone else"


def _as_saved(edit: Edit, cell: ManualScore, status: SaveStatus, message: str = "") -> Saved:
    return Saved(edit.submission, edit.item, status, cell.points, cell.comment, cell.version, cell.source, message)
