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

from grader.kernel import probe_runtime as kernel_probe
from grader.safety.untrusted import ElementBudget, Refused, decode_array, parse_json, read_bytes

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
    late: bool = False  # run after the notebook's last cell: the object did not exist at its subtask's end


@dataclass(frozen=True)
class ProbeOutcome:
    calls: dict[str, ProbeCall]
    error: str = ""  # why there are no results at all (kernel dead, no file, bad token ...)

    def get(self, name: str) -> ProbeCall:
        return self.calls.get(name) or ProbeCall(name, ok=False, error=self.error or "the probe produced no result")


def build_cell(request: ProbeRequest, out_path: Path, token: str, cell_subtasks: dict[int, str] | None = None,
               artifact_dir: Path | None = None) -> str:
    """The source of the cell that runs the probes in the kernel's user namespace.

    ``cell_subtasks`` maps IPython execution counts to subtasks, so probes can tell which cell
    created an object (the notebook reuses names such as ``trainer`` across tasks).
    ``artifact_dir`` is where probes may write tensors (``SAVE_TENSORS``), read back by
    ``grader.steps.artifacts``."""
    artifacts = None if artifact_dir is None else str(artifact_dir)
    return (
        "def __grader_probe_run(__user_ns):\n"
        "    import json as _json\n"
        "    _runner = {'__name__': '__grader_runner__'}\n"
        f"    exec(compile({RUNNER_SOURCE!r}, '<grader-probe-runner>', 'exec'), _runner)\n"
        "    _probes = {'__name__': '__grader_probes__'}\n"
        f"    _probes['CELL_SUBTASKS'] = {dict(cell_subtasks or {})!r}\n"
        f"    _probes['SAVE_TENSORS'] = lambda name, tensors: _runner['save_tensors']({artifacts!r}, name, tensors)\n"
        f"    exec(compile({request.probes_source!r}, '<grader-probes>', 'exec'), _probes)\n"
        f"    _runner['run_probes'](__user_ns, _probes.get('PROBES') or {{_n: _f for _n, _f in _probes.items() if callable(_f) and not _n.startswith('_') and getattr(_f, '__module__', None) == '__grader_probes__'}}, {list(request.names)!r}, _json.loads({json.dumps(request.inputs)!r}), {str(out_path)!r}, {token!r})\n"
        "__grader_probe_run(globals())\n"
        "del __grader_probe_run\n"
    )


def new_token() -> str:
    return secrets.token_hex(16)


def read_results(path: Path, token: str, names: tuple[str, ...], *, max_bytes: int = 32 * 2**20,
                 max_depth: int = 100, timeout: float = 10.0) -> ProbeOutcome:
    """Parse the probe file; anything unexpected becomes 'no result', named, and never raises.

    The file was written by the student's kernel, which may have swapped it for a FIFO, a symlink,
    600 MiB of padding or JSON nested 100,000 deep (``grader.safety.untrusted`` refuses each before
    reading or parsing it). The defaults are far above what the probes write (a few MiB, nesting
    below 40: ``kernel_probe.to_data`` stops at depth 12)."""
    try:
        raw = read_bytes(path, max_bytes=max_bytes, timeout=timeout)
    except Refused as exc:
        return ProbeOutcome({}, error=f"the probe result was refused: {exc}")
    except OSError:
        return ProbeOutcome({}, error="the probes produced no result (the kernel did not reach them or died)")
    try:
        payload = parse_json(raw.decode("utf-8"), max_depth=max_depth, what="the probe result")
    except Refused as exc:
        return ProbeOutcome({}, error=str(exc))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ProbeOutcome({}, error="the probe result was malformed")
    if not isinstance(payload, dict) or payload.get("token") != token or not isinstance(payload.get("results"), dict):
        return ProbeOutcome({}, error="the probe result was not the grader's (token mismatch)")
    calls: dict[str, ProbeCall] = {}
    budget = ElementBudget()
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
                calls[name] = ProbeCall(name, ok=True, value=from_data(entry["value"], budget), seconds=seconds)
            except (TypeError, ValueError, KeyError, OverflowError) as exc:
                calls[name] = ProbeCall(name, ok=False, error=f"malformed probe value: {str(exc)[:300]}")
            except RecursionError:
                calls[name] = ProbeCall(name, ok=False, error="malformed probe value: nested too deeply")
            except MemoryError:
                calls[name] = ProbeCall(name, ok=False, error="malformed probe value: too large")
        else:
            calls[name] = ProbeCall(name, ok=False, error="no result")
    return ProbeOutcome(calls)


class Repr(str):
    """A value the kernel could only describe (its ``repr``), with its type name."""

    type_name: str = ""


def from_data(value: Any, budget: ElementBudget | None = None) -> Any:
    """Inverse of ``kernel_probe.to_data``: arrays become numpy arrays, sequences lists.

    Arrays are checked (shape, dtype, element count, leaf types) before numpy allocates anything,
    by ``grader.safety.untrusted.decode_array``; ``budget`` (an ``ElementBudget``) bounds the elements
    of all arrays of one payload together. Bad input raises ``ValueError`` (``Refused``)."""
    if isinstance(value, list):
        return [from_data(v, budget) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return decode_array(value, budget)
    if "__dict__" in value:
        inner = value["__dict__"]
        if not isinstance(inner, dict):
            raise ValueError("a mapping's __dict__ is not an object")
        return {k: from_data(v, budget) for k, v in inner.items()}
    if "__seq__" in value:
        items = value["__seq__"]
        if not isinstance(items, list):
            raise ValueError("a sequence's __seq__ is not a list")
        seq = [from_data(v, budget) for v in items]
        return tuple(seq) if value.get("__type__") == "tuple" else seq
    if "__float__" in value:
        return float(value["__float__"])
    if "__repr__" in value:
        r = Repr(value["__repr__"])
        r.type_name = str(value.get("__type__", ""))
        return r
    return {k: from_data(v, budget) for k, v in value.items()}
