"""Score: check results and manual items -> points per subtask and in total, by the rubric."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from grader.results import CheckResult, ManualItem, SubtaskScore
from grader.rubric import Rubric


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
