"""Compare: probe results -> check results and manual items, in the grader's process (trusted).

The one place where a pack's checks run, for a graded notebook (``grader.steps.pipeline``) and for a
student's own kernel (``grader.selfcheck``) alike: the same context, the same error boundary
(``grader.steps.checks.run_check``), the same notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from grader.pack.rubric import CheckSpec, ManualSpec, Rubric
from grader.steps import checks as checks_api
from grader.steps.probe import ProbeOutcome
from grader.steps.results import CheckResult, ManualItem

LATE = "checked after the notebook's last cell: at the end of its subtask the object did not exist yet"


def compare(rubric: Rubric, probes: Mapping[str, ProbeOutcome], inputs: Mapping[str, Any],
            source: Mapping[str, tuple[str, ...]], saved: Mapping[str, Any], public_only: bool = False) -> tuple[CheckResult, ...]:
    """Every check of ``rubric`` (public ones only for a self-check) on these probe results."""
    pack = rubric.checks_module
    ctx = checks_api.CheckContext(probes=dict(probes), reference=pack.reference(rubric, inputs), inputs=inputs,
                                  source=source, saved=saved)
    functions = checks_api.collect(pack)
    specs = [c for c in rubric.checks if not (public_only and c.hidden)]
    return tuple(_late(checks_api.run_check(spec, functions.get(spec.id), ctx), spec, probes) for spec in specs)


def _late(result: CheckResult, spec: CheckSpec, probes: Mapping[str, ProbeOutcome]) -> CheckResult:
    outcome = probes.get(spec.subtask)
    if outcome is None or not any(n in outcome.calls and outcome.calls[n].late for n in spec.probes):
        return result
    return replace(result, message=f"{result.message}; {LATE}" if result.message else LATE)


def manual_items(rubric: Rubric, answers: Mapping[str, Sequence[str]]) -> tuple[ManualItem, ...]:
    """The items a person scores, each with the student's answer (the numbered part it scores),
    the reference answer, the facts the pack can check and, for ``suggest: true``, suggested points."""
    pack = rubric.checks_module
    return tuple(_manual_item(pack, spec, answers) for spec in rubric.manual)


def _manual_item(pack: Any, spec: ManualSpec, answers: Mapping[str, Sequence[str]]) -> ManualItem:
    from grader.steps.answers import split_parts

    cells = tuple(answers.get(spec.answer_from or spec.subtask, ()))
    text = "\n\n".join(cells)
    if spec.part:
        # the part this item scores: the numbered part of the answer, else the answer cell of that
        # number when there is one per part, else the whole answer
        nth = int(spec.part) if spec.part.isdigit() else 0
        text = split_parts(text).get(spec.part) or (cells[nth - 1] if 1 < len(cells) and 0 < nth <= len(cells) else text)
    hints = tuple(pack.manual_hints(spec.id, text)) if hasattr(pack, "manual_hints") else ()
    reference = pack.reference_answer(spec.reference) if hasattr(pack, "reference_answer") and spec.reference else ""
    suggested: float | None = None
    why = ""
    if spec.suggest and hasattr(pack, "suggest"):
        found = pack.suggest(spec.id, text)
        if found is not None:  # a fraction of the item's points, and why; a TA confirms it
            suggested, why = round(spec.points * max(0.0, min(1.0, float(found[0]))), 4), str(found[1])
    return ManualItem(id=spec.id, subtask=spec.subtask, max_points=spec.points, prompt=spec.prompt, answer=text,
                      hints=hints, reference=reference, suggested=suggested, suggestion=why)
