"""The API rubric packs write checks against, and the runner that turns them into results.

A check is a function registered under its rubric id. It runs in the grader's process (never in
the student's kernel), reads probe results through the context, compares them with the reference
and returns a ``Verdict``: the fraction of the check's points earned and a message for the student.

- A probe that failed or is missing raises ``Missing`` inside ``ctx.value(...)``: the check scores
  zero with a message naming what was missing. Never full marks.
- Any other exception raised by a check is the grader's fault: status ``error``, zero points,
  "the grader could not run this check" for the student, the traceback for the instructor.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from grader.pack.rubric import CheckSpec
from grader.steps.probe import ProbeCall, ProbeOutcome
from grader.steps.results import CheckResult, CheckStatus


@dataclass(frozen=True)
class Verdict:
    fraction: float
    message: str = ""

    @staticmethod
    def of(parts: list[tuple[bool, str]], ok_message: str = "") -> Verdict:
        """Equal partial credit per part; the message lists what failed."""
        if not parts:
            return Verdict(0.0, "nothing to check")
        failed = [msg for ok, msg in parts if not ok]
        frac = (len(parts) - len(failed)) / len(parts)
        return Verdict(frac, "; ".join(failed) if failed else ok_message)


class Missing(Exception):
    """A probe result the check needs is absent: the check scores zero (status failed)."""


CheckFn = Callable[["CheckContext"], Verdict]


def check(check_id: str) -> Callable[[CheckFn], CheckFn]:
    """Mark a function of a pack's ``checks.py`` as the check with this rubric id."""

    def deco(fn: CheckFn) -> CheckFn:
        fn.check_id = check_id  # type: ignore[attr-defined]
        return fn

    return deco


def collect(module: Any) -> dict[str, CheckFn]:
    """The checks a pack's module defines, by id."""
    found: dict[str, CheckFn] = {}
    for obj in vars(module).values():
        cid = getattr(obj, "check_id", None)
        if callable(obj) and isinstance(cid, str):
            found[cid] = obj
    return found


@dataclass
class CheckContext:
    """What a check reads. Probe results and inputs are per subtask (the probes of a subtask run at
    its end); ``value(name)`` looks in the check's own subtask first, then in the probes that ran
    after the last cell (``""``).

    ``source``: the notebook's code cells per subtask, as run (for checks about how something is
    written, with ``ast``). ``saved``: what the notebook left at the paths the rubric names, read
    after its kernel stopped (``grader.steps.artifacts.SavedModel``)."""

    probes: Any  # Mapping[str, ProbeOutcome], or one ProbeOutcome (taken as "")
    reference: Any  # whatever the pack's reference builder returned (computed outside the kernel)
    inputs: Mapping[str, Any]
    subtask: str = ""
    source: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    saved: Mapping[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.probes, ProbeOutcome):
            self.probes = {"": self.probes}

    def for_subtask(self, subtask: str) -> CheckContext:
        return replace(self, subtask=subtask)

    def call(self, name: str) -> ProbeCall:
        for key in (self.subtask, ""):
            outcome = self.probes.get(key)
            if outcome is not None and name in outcome.calls:
                return outcome.get(name)
        outcome = self.probes.get(self.subtask) or self.probes.get("")
        return outcome.get(name) if outcome is not None else ProbeCall(name, ok=False, error="the probes did not run")

    def value(self, name: str) -> Any:
        call = self.call(name)
        if not call.ok:
            raise Missing(_describe_missing(name, call.error))
        return call.value

    def input(self, name: str) -> Any:
        """The input the probe ``name`` of this check's subtask received."""
        for key in (self.subtask, ""):
            got = self.inputs.get(key, {})
            if isinstance(got, Mapping) and name in got:
                return got[name]
        raise KeyError(name)

    def code(self, subtask: str | None = None) -> tuple[str, ...]:
        return tuple(self.source.get(subtask if subtask is not None else self.subtask, ()))


def _describe_missing(name: str, error: str) -> str:
    error = error.strip()
    if error.startswith("NameError"):
        return f"{error.split(':', 1)[-1].strip()} (is it defined, and did its cell run?)"
    return f"{name}: {error}" if error else f"{name}: no result"


def run_check(spec: CheckSpec, fn: CheckFn | None, ctx: CheckContext) -> CheckResult:
    """Turn one check into a result; this is the check-level error boundary."""
    if fn is None:
        return CheckResult(spec.id, spec.subtask, "error", 0.0, spec.points, spec.hidden,
                           "the grader could not run this check", f"no check function registered for '{spec.id}'")
    try:
        verdict = fn(ctx.for_subtask(spec.subtask))
    except Missing as exc:
        return CheckResult(spec.id, spec.subtask, "failed", 0.0, spec.points, spec.hidden, str(exc))
    except Exception as exc:  # noqa: BLE001 - the grader's own failure, reported as such
        return CheckResult(spec.id, spec.subtask, "error", 0.0, spec.points, spec.hidden,
                           "the grader could not run this check", "".join(traceback.format_exception(exc))[-4000:])
    if not isinstance(verdict, Verdict) or not isinstance(verdict.fraction, (int, float)) or not np.isfinite(verdict.fraction):
        return CheckResult(spec.id, spec.subtask, "error", 0.0, spec.points, spec.hidden,
                           "the grader could not run this check", f"check returned {verdict!r}, expected a Verdict")
    frac = float(min(1.0, max(0.0, verdict.fraction)))
    points = round(spec.points * frac, 4)
    status: CheckStatus = "passed" if frac >= 1.0 else "failed"
    return CheckResult(spec.id, spec.subtask, status, points, spec.points, spec.hidden, verdict.message or ("ok" if status == "passed" else ""))


# --- comparison helpers (outside the kernel; plain numpy) -----------------------------------------


def fmt_shape(shape: tuple[int, ...] | None) -> str:
    return "no array" if shape is None else "[" + ", ".join(str(s) for s in shape) + "]"


def close(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    try:
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return False
    return x.shape == y.shape and bool(np.allclose(x, y, rtol=rtol, atol=atol))
