"""How the anchor notebooks are laid out: each graded cell starts with a tag, ``# [train] ...``.

A tagged cell and the cells after it, up to the next tag, belong to the tag's subtask: its probes
run after the last of them, and ``ctx.code("train")`` is their source.
"""

from __future__ import annotations

from nbformat import NotebookNode

from grader.pack.marks import outline_by_marks
from grader.steps.notebook import Outline


def outline(nb: NotebookNode) -> Outline:
    return outline_by_marks(nb)
