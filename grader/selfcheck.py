"""``from grader import selfcheck; selfcheck("2.1")`` inside a running notebook.

Runs one subtask's *public* checks on the live objects of the student's own kernel, without
re-executing anything, and shows the outcome inline. Hidden checks are neither run nor named.
This runs in the student's own process on their own machine: it is a help, not a grade (grading
runs the notebook afresh in a sandbox and compares outside the kernel).
"""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.kernel.probe_runtime import save_tensors, to_data
from grader.steps.compare import compare
from grader.steps.probe import ProbeCall, ProbeOutcome, from_data
from grader.steps.results import CheckResult


@dataclass(frozen=True)
class SelfCheck:
    subtask: str | None
    results: tuple[CheckResult, ...]

    @property
    def points(self) -> float:
        return round(sum(r.points for r in self.results), 4)

    @property
    def max_points(self) -> float:
        return round(sum(r.max_points for r in self.results), 4)

    def summary(self) -> str:
        head = f"Self-check {self.subtask or 'all subtasks'}: {self.points:g} / {self.max_points:g} points from public checks"
        lines = [head]
        for r in self.results:
            mark = "PASS" if r.status == "passed" else ("ERR " if r.status == "error" else "FAIL")
            msg = "" if r.status == "passed" else f": {r.message}"
            lines.append(f"  {mark} {r.id}{msg}")
        lines.append("  (hidden checks run when the notebook is graded)")
        return "\n".join(lines)

    __repr__ = summary

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td style='color:{'#1a7f37' if r.status == 'passed' else '#cf222e'}'>{html.escape(r.status)}</td>"
            f"<td><code>{html.escape(r.id)}</code></td><td>{html.escape('' if r.status == 'passed' else r.message)}</td>"
            f"<td>{r.points:g} / {r.max_points:g}</td></tr>"
            for r in self.results
        )
        return (f"<p><b>Self-check {html.escape(self.subtask or 'all subtasks')}</b>: {self.points:g} / {self.max_points:g} "
                f"points from public checks</p><table>{rows}</table><p><i>Hidden checks run when the notebook is graded.</i></p>")


def _user_namespace() -> dict[str, Any]:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            ns: dict[str, Any] = shell.user_ns
            return ns
    except ImportError:
        pass
    return vars(sys.modules["__main__"])


def _history() -> tuple[str, ...]:
    """The code cells this kernel ran (IPython's ``In``): the source for checks that read how
    something is written. Without the notebook's headings they stand for every subtask."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return tuple(str(x) for x in shell.user_ns.get("In", []) if x)
    except ImportError:
        pass
    return ()


def _pack_for(subtask: str | None) -> str | None:
    """The pack a student means when they name no rubric: ``$GRADER_RUBRIC``, the only pack
    installed, or the only installed pack that has ``subtask`` (None: let ``load_rubric`` explain)."""
    import os

    from grader.pack.rubric import ENV_VAR, RubricError, installed_packs, load_rubric

    if os.environ.get(ENV_VAR) or subtask is None:
        return None
    having = []
    for name in installed_packs():
        try:
            if subtask in load_rubric(name).subtask_ids:
                having.append(name)
        except RubricError:
            continue
    return having[0] if len(having) == 1 else None


def selfcheck(subtask: str | None = None, rubric: str | Path | None = None, namespace: dict[str, Any] | None = None) -> SelfCheck:
    """Run the public checks of ``subtask`` (or all) on the objects defined in this kernel."""
    import secrets

    from grader.pack.rubric import load_rubric
    from grader.steps.artifacts import read_all_saved

    rb = load_rubric(rubric if rubric is not None else _pack_for(subtask))
    if subtask is not None and subtask not in rb.subtask_ids:
        raise ValueError(f"unknown subtask {subtask!r}; known: {', '.join(rb.subtask_ids)}")
    ns = namespace if namespace is not None else _user_namespace()
    plan = {s: names for s, names in rb.probe_plan(public_only=True).items() if subtask is None or s == subtask}
    history = _history()
    source = {s: history for s in rb.subtask_ids}
    pack = rb.checks_module
    inputs = pack.make_inputs(rb, plan, secrets.randbelow(2**31), source=source)
    outcomes: dict[str, ProbeOutcome] = {}
    for sub, names in plan.items():
        probes: dict[str, Any] = {"__name__": "__grader_selfcheck_probes__", "CELL_SUBTASKS": {},
                                  "SAVE_TENSORS": lambda name, tensors: save_tensors(None, name, tensors)}
        exec(compile(rb.probe_source(sub), str(rb.folder / "probes.py"), "exec"), probes)
        calls: dict[str, ProbeCall] = {}
        for name in names:
            try:
                value = probes[name](ns, inputs.get(sub, {}).get(name, {}))
                calls[name] = ProbeCall(name, ok=True, value=_keep_arrays(value))
            except Exception as exc:  # noqa: BLE001 - the student's code may raise anything
                calls[name] = ProbeCall(name, ok=False, error=f"{type(exc).__name__}: {exc}")
        outcomes[sub] = ProbeOutcome(calls)
    results = tuple(r for r in compare(rb, outcomes, inputs, source, read_all_saved(Path.cwd(), rb.saved_files), public_only=True)
                    if subtask is None or r.subtask == subtask)
    # returned, not displayed: as a cell's last expression Jupyter shows it (HTML), once
    return SelfCheck(subtask, tuple(r for r in results if not r.hidden))


def _keep_arrays(value: Any) -> Any:
    """What the grader would read back (``from_data(to_data(...))``), but with tensors shipped as
    arrays (``SAVE_TENSORS`` here returns them as numpy arrays, in the same process)."""
    import numpy as np

    if isinstance(value, dict):
        if value and all(isinstance(v, np.ndarray) for v in value.values()):
            return dict(value)
        return {k: _keep_arrays(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_keep_arrays(v) for v in value)
    return from_data(to_data(value))
