"""How Assignment 3's notebooks are laid out (the course's template): which cell belongs to which
subtask, where the written answers and the peer-feedback blocks are, and the team's names.

- "## **Task 2: ...**" and "### Subtask 1: ..." headings: a cell belongs to subtask "2.1" until the
  next heading;
- a markdown cell "**Answer**" labels itself or, when it holds nothing else, the next cell; the
  template's "Enter your answer here" is no answer;
- "Comments 2.1" ... "Comments begin" ... "Comments end": a peer's cross-feedback block; the
  template's "cross-feedback comment section" is no comment;
- "**Team:** Ada Lovelace, Alan Turing" (and the variants ``grader.steps.team`` reads).
"""

from __future__ import annotations

import re

from nbformat import NotebookNode

from grader.steps.notebook import Outline, Section
from grader.steps.team import team_from_text

TEMPLATE_ANSWER = "Enter your answer here"

_TASK = re.compile(r"^\s*#{1,6}\s.*?\bTask\s*(\d+)", re.IGNORECASE)
_SUBTASK = re.compile(r"^\s*#{1,6}\s.*?\bSubtask\s*(\d+)", re.IGNORECASE)
_COMMENTS = re.compile(r"Comments\\?\s*(\d+)\.(\d+)")
_ANSWER = re.compile(r"^\s*\**\s*Answer\s*:?\s*\**\s*:?", re.IGNORECASE)
_TEMPLATE_COMMENT = "cross-feedback comment section"


def outline(nb: NotebookNode) -> Outline:
    """Attribute every cell to its task/subtask from the markdown headings, and collect the
    written answers, the peer-feedback comment blocks and the team's names."""
    task: str | None = None
    subtask: str | None = None
    sections: list[Section] = []
    answers: dict[str, list[str]] = {}
    comments: dict[str, str] = {}
    in_comment: str | None = None
    comment_text: list[str] = []
    in_answer = False
    team: list[str] = []
    for cell in nb.cells:
        src = cell.source
        if cell.cell_type == "markdown":
            for line in src.splitlines():
                if m := _TASK.match(line):
                    task, subtask = m.group(1), None
                    in_answer = False
                elif (m := _SUBTASK.match(line)) and task is not None:
                    subtask = f"{task}.{m.group(1)}"
                    in_answer = False
            if m := _COMMENTS.search(src):
                in_comment = f"{m.group(1)}.{m.group(2)}"
                comment_text = []
                in_answer = False
            if in_comment is not None:
                if "Comments begin" in src or "Comments\\ begin" in src:
                    comment_text = []
                body = _strip_comment_markup(src)
                if body:
                    comment_text.append(body)
                if "Comments end" in src or "Comments\\ end" in src:
                    text = "\n".join(comment_text).strip()
                    if text and text != _TEMPLATE_COMMENT:
                        comments[in_comment] = text
                    in_comment = None
            elif subtask is not None and (_ANSWER.match(src) or in_answer):
                # "**Answer**" labels the cell itself or, when it holds nothing else, the next cell
                labelled = bool(_ANSWER.match(src))
                body = (_ANSWER.sub("", src, count=1) if labelled else src).strip().strip("`").strip()
                in_answer = labelled and not body
                if body and body != TEMPLATE_ANSWER:
                    answers.setdefault(subtask, []).append(body)
            if not team:
                team = list(team_from_text(src))
        elif cell.cell_type == "code":
            in_answer = False
        sections.append(Section(task, subtask))
    return Outline(
        sections=tuple(sections),
        answers={k: tuple(v) for k, v in answers.items()},
        comments=comments,
        team=tuple(team),
    )


def _strip_comment_markup(src: str) -> str:
    keep = []
    for line in src.splitlines():
        s = line.strip()
        if not s or s.startswith("```") or "color{red}" in s or s.startswith("####"):
            continue
        keep.append(line)
    return "\n".join(keep).strip()
