"""Suggested points: what the TA already gave to answers like this one, or what the rubric pack
suggests from facts it checked in the answer.

A suggestion is only ever shown beside the points field (the TA presses ``s`` to copy it in, then
saves); nothing here writes a score. It never comes from the embedding model alone: in this order,
the points most given within the group, the rubric pack's suggestion (``ManualItem.suggested``),
or the points of the nearest answer already scored when it is close enough to say the same thing.
An empty or template answer suggests zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grader.review.clustering import Group
from grader.review.data import Answer

NEAR = 0.85  # cosine similarity above which a scored answer is a precedent for another


@dataclass(frozen=True)
class Suggestion:
    points: float
    reason: str


def for_group(group: Group, answers: Sequence[Answer], vectors: np.ndarray) -> Suggestion | None:
    if group.no_answer:
        return Suggestion(0.0, "no answer written")
    given = [p for i in group.members if (p := answers[i].points) is not None]
    if given:
        points, count = _most_given(given)
        return Suggestion(points, f"given to {count} of {len(group.members)} in this group")
    from_pack = [p for i in group.members if (p := answers[i].suggested) is not None]
    if from_pack:
        points, count = _most_given(from_pack)
        return Suggestion(points, f"the grader's suggestion for {count} of {len(group.members)} in this group")
    best = max((_nearest_scored(i, answers, vectors) for i in group.members), key=lambda t: t[1], default=(None, 0.0))
    return _precedent(best, answers)


def for_answer(index: int, answers: Sequence[Answer], vectors: np.ndarray | None) -> Suggestion | None:
    """For an answer nobody scored yet; ``None`` once it is scored or when nothing is close
    (``vectors`` None: answers not embedded, no precedent looked for)."""
    a = answers[index]
    if a.points is not None:
        return None
    if a.no_answer:
        return Suggestion(0.0, "no answer written")
    if a.suggested is not None:
        return Suggestion(a.suggested, f"the grader: {a.suggestion}" if a.suggestion else "the grader's suggestion")
    return None if vectors is None else _precedent(_nearest_scored(index, answers, vectors), answers)


def _most_given(points: Sequence[float]) -> tuple[float, int]:
    counts = Counter(points)
    top = max(counts.values())
    return min(p for p, c in counts.items() if c == top), top  # a tie goes to the lower points


def _nearest_scored(index: int, answers: Sequence[Answer], vectors: np.ndarray) -> tuple[int | None, float]:
    scored = [j for j, a in enumerate(answers) if j != index and a.points is not None and not a.no_answer]
    if not scored or answers[index].no_answer:
        return None, 0.0
    sims = vectors[scored] @ vectors[index]
    k = int(np.argmax(sims))
    return scored[k], float(sims[k])


def _precedent(best: tuple[int | None, float], answers: Sequence[Answer]) -> Suggestion | None:
    j, sim = best
    if j is None or sim < NEAR:
        return None
    a = answers[j]
    points = a.points if a.points is not None else 0.0
    return Suggestion(points, f"like {a.name}'s answer (similarity {sim:.2f}), scored {points:g}")
