"""Probe: build the code sent into the kernel after the notebook, and read back what it wrote.

The probe cell carries the runner (``kernel_probe.py``) and the rubric's probe functions as source,
the inputs chosen by the grader, and a fresh random token. Its result file is named after the
token and must carry it: output printed by the student's code can neither reach nor forge it.
Everything read back is *data*; a missing or malformed result means "no result", which scores zero.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader import kernel_probe

RUNNER_SOURCE = Path(kernel_probe.__file__).read_text(encoding="utf-8")


@dataclass(frozen=True)
class ProbeRequest:
    probes_source: str  # defines PROBES = {name: fn(ns, inputs) -> data}
    names: tuple[str, ...]
    inputs: dict[str, Any] = field(default_factory=dict)
    timeout: float = 300.0


@dataclass(frozen=True)
class ProbeCall:
    """One probe's outcome as read back: ``value`` (decoded) or ``error``."""

    name: str
    ok: bool
    value: Any = None
    error: str = ""
    traceback: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class ProbeOutcome:
    calls: dict[str, ProbeCall]
    error: str = ""  # why there are no results at all (kernel dead, no file, bad token ...)

    def get(self, name: str) -> ProbeCall:
        return self.calls.get(name) or ProbeCall(name, ok=False, error=self.error or "the probe produced no result")


def build_cell(request: ProbeRequest, out_path: Path, token: str, cell_subtasks: dict[int, str] | None = None) -> str:
    """The source of the cell that runs the probes in the kernel's user namespace.

    ``cell_subtasks`` maps IPython execution counts to subtasks, so probes can tell which cell
    created an object (the notebook reuses names such as ``trainer`` across tasks)."""
    return (
        "def __grader_probe_run(__user_ns):\n"
        "    import json as _json\n"
        "    _runner = {'__name__': '__grader_runner__'}\n"
        f"    exec(compile({RUNNER_SOURCE!r}, '<grader-probe-runner>', 'exec'), _runner)\n"
        "    _probes = {'__name__': '__grader_probes__'}\n"
        f"    _probes['CELL_SUBTASKS'] = {dict(cell_subtasks or {})!r}\n"
        f"    exec(compile({request.probes_source!r}, '<grader-probes>', 'exec'), _probes)\n"
        f"    _runner['run_probes'](__user_ns, _probes['PROBES'], {list(request.names)!r}, _json.loads({json.dumps(request.inputs)!r}), {str(out_path)!r}, {token!r})\n"
        "__grader_probe_run(globals())\n"
        "del __grader_probe_run\n"
    )


def new_token() -> str:
    return secrets.token_hex(16)


def read_results(path: Path, token: str, names: tuple[str, ...]) -> ProbeOutcome:
    """Parse the probe file; anything unexpected becomes 'no result'."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError:
        return ProbeOutcome({}, error="the probes produced no result (the kernel did not reach them or died)")
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError:
        return ProbeOutcome({}, error="the probe result was malformed")
    if not isinstance(payload, dict) or payload.get("token") != token or not isinstance(payload.get("results"), dict):
        return ProbeOutcome({}, error="the probe result was not the grader's (token mismatch)")
    calls: dict[str, ProbeCall] = {}
    for name in names:
        entry = payload["results"].get(name)
        if not isinstance(entry, dict):
            calls[name] = ProbeCall(name, ok=False, error="no result")
            continue
        seconds = float(entry.get("seconds", 0.0)) if isinstance(entry.get("seconds"), (int, float)) else 0.0
        if "error" in entry:
            calls[name] = ProbeCall(name, ok=False, error=str(entry["error"])[:2000], traceback=str(entry.get("traceback", ""))[:4000], seconds=seconds)
        elif "value" in entry:
            try:
                calls[name] = ProbeCall(name, ok=True, value=from_data(entry["value"]), seconds=seconds)
            except (TypeError, ValueError, KeyError) as exc:
                calls[name] = ProbeCall(name, ok=False, error=f"malformed probe value: {exc}")
        else:
            calls[name] = ProbeCall(name, ok=False, error="no result")
    return ProbeOutcome(calls)


class Repr(str):
    """A value the kernel could only describe (its ``repr``), with its type name."""

    type_name: str = ""


def from_data(value: Any) -> Any:
    """Inverse of ``kernel_probe.to_data``: arrays become numpy arrays, sequences lists."""
    if isinstance(value, list):
        return [from_data(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        shape = tuple(int(s) for s in value["shape"])
        if value["__array__"] is None:
            return np.zeros(shape, dtype=np.float32) * np.nan
        dtype = str(value["dtype"])
        np_dtype = {"bfloat16": "float32", "float16": "float16"}.get(dtype, dtype)
        try:
            arr = np.asarray(value["__array__"], dtype=np_dtype)
        except TypeError:
            arr = np.asarray(value["__array__"])
        if arr.shape != shape:
            raise ValueError(f"array of shape {arr.shape} declared as {shape}")
        return arr
    if "__dict__" in value:
        return {k: from_data(v) for k, v in value["__dict__"].items()}
    if "__seq__" in value:
        seq = [from_data(v) for v in value["__seq__"]]
        return tuple(seq) if value.get("__type__") == "tuple" else seq
    if "__float__" in value:
        return float(value["__float__"])
    if "__repr__" in value:
        r = Repr(value["__repr__"])
        r.type_name = str(value.get("__type__", ""))
        return r
    return {k: from_data(v) for k, v in value.items()}
