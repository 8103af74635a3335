"""What the review pages show, read from the gradebook: the manual items and every answer to them.

Nothing here knows an assignment: the items are whatever manual items the graded results carry
(their order and the official rubric's bullets come from the rubric pack when it can be loaded).
Each answer carries the version of its gradebook cell, so that the page can say which version an
edit was made on (``grader.course.gradebook.StaleEdit``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from grader.course.gradebook import Entry, Gradebook, ManualScore, subtask_order

# Text the notebook template puts in an answer cell, and other ways of writing nothing.
TEMPLATE_ANSWERS = frozenset({
    "enter your answer here", "your answer here", "type your answer here", "answer here", "write your answer here",
    "todo", "tbd", "tba", "n a", "none", "no answer",
})
_NOT_WORD = re.compile(r"[\W_]+")
_ANSWER_LABEL = re.compile(r"^\s*\**\s*answer\s*\**\s*:?\s*\**", re.IGNORECASE)


def is_no_answer(text: str) -> bool:
    """True for an empty answer or the template's text ("Enter your answer here"), however it is
    dressed (bold, an "Answer:" label, punctuation, case): such answers score like no answer and
    are never grouped with real ones."""
    body = _ANSWER_LABEL.sub("", text or "", count=1)
    words = _NOT_WORD.sub(" ", body).strip().lower()
    return not words or words in TEMPLATE_ANSWERS


@dataclass(frozen=True)
class ItemInfo:
    """One manual item as the TA sees it above the answers."""

    id: str
    subtask: str
    prompt: str
    max_points: float
    reference: str = ""
    bullets: tuple[str, ...] = ()  # the official rubric's bullets (from the rubric pack)


@dataclass(frozen=True)
class Answer:
    """One student's answer to one item, with its gradebook cell as it stands."""

    submission: str
    name: str
    item: str
    text: str
    max_points: float
    points: float | None = None
    comment: str = ""
    version: int = 0  # of the gradebook cell; 0: never written
    source: str = ""  # who wrote the cell last
    hints: tuple[str, ...] = ()
    peer_comment: str = ""
    suggested: float | None = None  # points the rubric pack suggests from facts it checked in the answer
    suggestion: str = ""  # why

    @property
    def no_answer(self) -> bool:
        return is_no_answer(self.text)


@dataclass(frozen=True)
class ReviewData:
    items: tuple[ItemInfo, ...]
    answers: dict[str, tuple[Answer, ...]] = field(default_factory=dict)  # item id -> answers by submission
    students: tuple[tuple[str, str], ...] = ()  # (submission id, display name), by id
    notes: tuple[str, ...] = ()  # what the page should say (a rubric pack that could not be read)

    def item(self, item_id: str) -> ItemInfo | None:
        return next((i for i in self.items if i.id == item_id), None)

    def student_name(self, submission_id: str) -> str | None:
        return next((name for sid, name in self.students if sid == submission_id), None)

    def of_student(self, submission_id: str) -> list[tuple[ItemInfo, Answer]]:
        return [(item, a) for item in self.items for a in self.answers.get(item.id, ()) if a.submission == submission_id]


def load_review(gradebook: Gradebook) -> ReviewData:
    """Every manual item of every graded submission, with the cells' versions."""
    entries = [e for e in gradebook.entries() if e.result.manual]
    scores = {e.submission.id: gradebook.manual_scores(e.submission.id) for e in entries}
    items = _items(entries)
    answers: dict[str, list[Answer]] = {i.id: [] for i in items}
    for e in sorted(entries, key=lambda e: e.submission.id):
        for m in e.result.manual:
            cell = scores[e.submission.id].get(m.id, ManualScore(None))
            answers[m.id].append(Answer(
                submission=e.submission.id,
                name=e.submission.display_name,
                item=m.id,
                text=m.answer,
                max_points=m.max_points,
                points=m.points,
                comment=m.comment,
                version=cell.version,
                source=cell.source,
                hints=m.hints,
                peer_comment=e.result.comments.get(m.subtask, ""),
                suggested=m.suggested,
                suggestion=m.suggestion,
            ))
    students = tuple((e.submission.id, e.submission.display_name) for e in sorted(entries, key=lambda e: e.submission.id))
    notes = tuple(dict.fromkeys(p for a in {e.result.assignment for e in entries} if (p := _rubric(a)[1])))
    return ReviewData(items=items, answers={k: tuple(v) for k, v in answers.items()}, students=students, notes=notes)


def _items(entries: Sequence[Entry]) -> tuple[ItemInfo, ...]:
    """The items in the rubric's order (unknown ones after, by subtask), described by the first
    result that has them."""
    seen: dict[str, ItemInfo] = {}
    for e in entries:
        bullets = _bullets(e.result.assignment)
        for m in e.result.manual:
            if m.id not in seen:
                seen[m.id] = ItemInfo(id=m.id, subtask=m.subtask, prompt=m.prompt, max_points=m.max_points,
                                      reference=m.reference, bullets=bullets.get(m.id, ()))
    order = {item_id: i for i, item_id in enumerate(_rubric_order(entries))}
    subtasks = {s: i for i, s in enumerate(subtask_order({i.subtask for i in seen.values()}))}
    return tuple(sorted(seen.values(), key=lambda i: (order.get(i.id, len(order)), subtasks[i.subtask], i.id)))


def _rubric_order(entries: Sequence[Entry]) -> list[str]:
    assignment = next((e.result.assignment for e in entries if e.result.assignment), "")
    return list(_bullets(assignment))


def _bullets(assignment: str) -> dict[str, tuple[str, ...]]:
    return _rubric(assignment)[0]


@functools.lru_cache(maxsize=8)
def _rubric(assignment: str) -> tuple[dict[str, tuple[str, ...]], str]:
    """({manual item id: the official rubric's bullets} in the rubric's order, problem). When the
    assignment's rubric pack cannot be loaded the page shows the prompts only, and says why."""
    if not assignment:
        return {}, ""
    from grader.pack.rubric import RubricError, load_rubric

    try:
        rubric = load_rubric(assignment)
    except RubricError as exc:
        return {}, f"rubric bullets not shown: {exc}"
    return {m.id: m.bullets for m in rubric.manual}, ""
