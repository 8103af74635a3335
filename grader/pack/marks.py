"""Marks: which cells of a notebook hold the graded answers, and for which subtask.

Three ways of marking a cell are understood, in this order:

- a first-line comment tag, ``# [train] Part 1: ...`` (``[subtask]``, then a title): it survives
  every editor and every export, and students see what is graded;
- a cell tag ``grade:<subtask>`` (Jupyter's own cell tags);
- nbgrader's ``metadata.nbgrader.grade_id`` on a solution or graded cell, with its ``points``.

``grader new-pack`` scaffolds a pack from the marks of a solution notebook, and a pack's
``conventions.py`` may attribute a submission's cells by them (``outline_by_marks``). Submissions
are read by ``grader.steps.notebook.load_notebook``, which keeps cell tags but not nbgrader's metadata:
comment tags and cell tags are what a pack can rely on when grading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from nbformat import NotebookNode

from grader.steps.notebook import Outline, Section

COMMENT_TAG = re.compile(r"^#\s*\[([A-Za-z0-9][A-Za-z0-9_.-]*)\]\s*:?\s*(.*)$")
CELL_TAG_PREFIX = "grade:"
SUBTASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

MarkKind = Literal["comment", "tag", "nbgrader"]


@dataclass(frozen=True)
class Mark:
    """A marked code cell: the subtask it answers, a title (the rest of the tag line, or empty) and
    the points the notebook gives it (nbgrader's metadata only; ``None`` otherwise)."""

    index: int
    subtask: str
    title: str
    kind: MarkKind
    points: float | None = None


def mark_of(cell: Any, index: int) -> Mark | None:
    """The mark of one code cell, or ``None``."""
    if cell.get("cell_type") != "code":
        return None
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else str(source)
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    if m := COMMENT_TAG.match(first):
        return Mark(index, m.group(1), m.group(2).strip(), "comment")
    metadata = cell.get("metadata") or {}
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    for tag in tags if isinstance(tags, list) else ():
        if isinstance(tag, str) and tag.startswith(CELL_TAG_PREFIX) and SUBTASK_ID.match(tag[len(CELL_TAG_PREFIX):]):
            return Mark(index, tag[len(CELL_TAG_PREFIX):], "", "tag")
    nbg = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    if isinstance(nbg, dict) and (nbg.get("solution") or nbg.get("grade")) and isinstance(nbg.get("grade_id"), str):
        grade_id = re.sub(r"[^A-Za-z0-9_.-]", "_", nbg["grade_id"]).strip("_.-") or f"cell{index}"
        points = nbg.get("points")
        return Mark(index, grade_id, "", "nbgrader", float(points) if isinstance(points, int | float) and nbg.get("grade") else None)
    return None


def find_marks(nb: NotebookNode) -> tuple[Mark, ...]:
    return tuple(m for i, cell in enumerate(nb.cells) if (m := mark_of(cell, i)) is not None)


def outline_by_marks(nb: NotebookNode) -> Outline:
    """Every cell from a marked cell up to the next one belongs to the mark's subtask (a student's
    helper cell after their answer counts with it; its probes run after the last of those cells);
    cells before the first mark belong to none. Written answers are not collected."""
    sections: list[Section] = []
    current: str | None = None
    for i, cell in enumerate(nb.cells):
        mark = mark_of(cell, i)
        if mark is not None:
            current = mark.subtask
        sections.append(Section(None, current))
    return Outline(sections=tuple(sections))
