"""Score: check results and manual items -> points per subtask and in total, by the rubric.

All the grader's arithmetic on points is here: the first score of a run (``score``), a TA's points
on manual items (``apply_manual``), and new maxima from a changed rubric (``rescore_result``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from grader.pack.rubric import Rubric
from grader.steps.results import CheckResult, GradeResult, ManualItem, SubtaskScore


@dataclass(frozen=True)
class Score:
    subtasks: dict[str, SubtaskScore]
    auto_points: float
    auto_max: float
    manual_max: float
    manual_points: float | None  # None until every manual item has been scored by a person


def score(rubric: Rubric, checks: Iterable[CheckResult], manual: Iterable[ManualItem], public_only: bool = False) -> Score:
    """Sum points per subtask. Max points come from the rubric, never from the results, so a
    check that did not report still counts in the maximum (and scores zero). ``public_only`` (a
    self-check) leaves hidden checks out of the maximum, as they were neither run nor named."""
    by_id = {c.id: c for c in checks}
    items = {m.id: m for m in manual}
    subtasks: dict[str, SubtaskScore] = {}
    for s in rubric.subtasks:
        specs = [c for c in rubric.checks if c.subtask == s.id and not (public_only and c.hidden)]
        auto_points = sum(min(by_id[c.id].points, c.points) for c in specs if c.id in by_id)
        mspecs = [m for m in rubric.manual if m.subtask == s.id]
        given = [(items[m.id].points, m.points) for m in mspecs if m.id in items]
        complete = bool(mspecs) and len(given) == len(mspecs) and all(p is not None for p, _ in given)
        manual_points = float(sum(min(p or 0.0, cap) for p, cap in given)) if complete else None
        subtasks[s.id] = SubtaskScore(
            auto_points=round(auto_points, 4),
            auto_max=round(sum(c.points for c in specs), 4),
            manual_max=round(sum(m.points for m in mspecs), 4),
            manual_points=manual_points,
        )
    auto = round(sum(s.auto_points for s in subtasks.values()), 4)
    manual_vals = [s.manual_points for s in subtasks.values() if s.manual_max > 0]
    manual_total = round(sum(v for v in manual_vals if v is not None), 4) if manual_vals and all(v is not None for v in manual_vals) else None
    return Score(
        subtasks=subtasks,
        auto_points=auto,
        auto_max=round(sum(s.auto_max for s in subtasks.values()), 4),
        manual_max=round(sum(s.manual_max for s in subtasks.values()), 4),
        manual_points=manual_total,
    )


def rescore_result(result: GradeResult, points: Mapping[str, float], manual_max: Mapping[str, float] | None = None) -> GradeResult:
    """Scale each check's points to its new maximum and redo the sums; nothing is executed.

    A check keeps the fraction of its maximum it earned (partial credit survives); a check that did
    not pass with an old maximum of zero earns nothing. ``manual_max`` ({item id: max points})
    changes the maxima of manual items.
    """
    checks: list[CheckResult] = []
    for ch in result.checks:
        new_max = points.get(ch.id, ch.max_points)
        if ch.status != "passed":
            earned = ch.points / ch.max_points * new_max if ch.max_points > 0 and ch.status == "failed" else 0.0
        else:
            earned = ch.points / ch.max_points * new_max if ch.max_points > 0 else new_max
        checks.append(replace(ch, points=round(min(earned, new_max), 4), max_points=new_max))
    manual_max = manual_max or {}
    items = tuple(replace(m, max_points=manual_max.get(m.id, m.max_points)) for m in result.manual)
    subtasks = dict(result.subtasks)
    for sub in {c.subtask for c in checks} | {m.subtask for m in items}:
        mine = [c for c in checks if c.subtask == sub]
        base = subtasks.get(sub, SubtaskScore())
        if mine:
            base = replace(base, auto_points=round(sum(c.points for c in mine), 4), auto_max=round(sum(c.max_points for c in mine), 4))
        mitems = [m for m in items if m.subtask == sub]
        if mitems:
            base = replace(base, manual_max=round(sum(m.max_points for m in mitems), 4))
        subtasks[sub] = base
    return replace(
        result,
        checks=tuple(checks),
        manual=items,
        subtasks=subtasks,
        auto_points=round(sum(s.auto_points for s in subtasks.values()), 4),
        auto_max=round(sum(s.auto_max for s in subtasks.values()), 4),
        manual_max=round(sum(s.manual_max for s in subtasks.values()), 4),
    )

def apply_manual(result: GradeResult, scores: Mapping[str, Any]) -> GradeResult:
    """``result`` with the TA's points and comments on its manual items, and the sums redone.

    Same rule as ``grader.steps.score``: a subtask's (and the result's) ``manual_points`` stay ``None``
    until every manual item in it is scored, so "not finished" and "scored zero" differ in every
    report. ``manual_scored`` gives what is scored so far.
    """
    if not result.manual:
        return result
    items = tuple(
        replace(m, points=None if scores[m.id].points is None else min(scores[m.id].points or 0.0, m.max_points), comment=scores[m.id].comment)
        if m.id in scores else m
        for m in result.manual
    )
    subtasks = dict(result.subtasks)
    for sub in {m.subtask for m in items}:
        mine = [m for m in items if m.subtask == sub]
        base = subtasks.get(sub, SubtaskScore(manual_max=sum(m.max_points for m in mine)))
        subtasks[sub] = replace(base, manual_points=_complete_sum(mine))
    return replace(result, manual=items, subtasks=subtasks, manual_points=_complete_sum(items))

def _complete_sum(items: Sequence[ManualItem]) -> float | None:
    if not items or any(m.points is None for m in items):
        return None
    return round(sum(m.points or 0.0 for m in items), 4)

def manual_scored(result: GradeResult, subtask: str | None = None) -> float:
    """Manual points given so far (in one subtask, or in all), unscored items counting zero."""
    return round(sum(m.points for m in result.manual if m.points is not None and (subtask is None or m.subtask == subtask)), 4)
