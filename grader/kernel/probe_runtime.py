"""The probe runner, sent into the student's kernel after the notebook ran.

It is executed (as source) in a fresh namespace inside the kernel, together with the rubric's
probe functions. Each probe calls objects the student defined on inputs the grader supplied and
returns plain data; the runner serializes everything (arrays as lists with dtype and shape) and
writes one JSON file at a path whose name and payload carry a token chosen after the notebook ran.
It decides nothing: verdicts are made in the grader's process.

Standard library only at import time, because this file is also imported by the grader to encode
and decode values.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from typing import Any

MAX_LIST = 200_000  # elements of one array we ship back


def to_data(value: Any, depth: int = 0) -> Any:
    """Turn tensors, arrays, numpy scalars, mappings and sequences into JSON-able data."""
    if depth > 12:
        return {"__repr__": "<nested too deeply>"}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    mod = type(value).__module__
    if mod.startswith("torch") and hasattr(value, "detach") and hasattr(value, "shape"):
        t = value.detach().cpu()
        return _array(t.tolist() if t.numel() <= MAX_LIST else None, str(t.dtype).replace("torch.", ""), list(t.shape))
    if mod.startswith("numpy"):
        if hasattr(value, "shape") and hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0:
            return _array(value.tolist() if value.size <= MAX_LIST else None, str(value.dtype), list(value.shape))
        if hasattr(value, "item"):
            return to_data(value.item(), depth + 1)
    if isinstance(value, dict) or hasattr(value, "keys") and hasattr(value, "__getitem__"):
        try:
            return {"__dict__": {str(k): to_data(value[k], depth + 1) for k in list(value.keys())[:1000]}, "__type__": type(value).__name__}
        except Exception:
            pass
    if isinstance(value, (list, tuple)):
        return {"__seq__": [to_data(v, depth + 1) for v in list(value)[:MAX_LIST]], "__type__": type(value).__name__, "__len__": len(value)}
    return {"__repr__": repr(value)[:2000], "__type__": f"{mod}.{type(value).__qualname__}"}


def _array(values: Any, dtype: str, shape: list[int]) -> dict[str, Any]:
    return {"__array__": values, "dtype": dtype, "shape": shape}


def save_tensors(artifact_dir: str | None, name: str, tensors: dict[str, Any]) -> Any:
    """Ship tensors (model weights) as a safetensors file in ``artifact_dir``; returns the reference
    the grader resolves (``{"__tensors__": file}``). Without an artifact folder (a student's own
    ``selfcheck``, in-process) the arrays are returned as they are.

    safetensors, never pickle: the grader parses the file with a format that cannot run code."""
    import torch

    flat = {str(k): v.detach().to("cpu").contiguous() for k, v in tensors.items() if isinstance(v, torch.Tensor)}
    flat = {k: (v.float() if v.dtype in (torch.float16, torch.bfloat16) else v) for k, v in flat.items()}
    if artifact_dir is None:
        return {k: v.numpy() for k, v in flat.items()}
    from safetensors.torch import save_file

    os.makedirs(artifact_dir, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:60] + ".safetensors"
    save_file(flat, os.path.join(artifact_dir, safe))
    return {"__tensors__": safe}


def run_probes(ns: dict[str, Any], probes: dict[str, Any], names: list[str], inputs: dict[str, Any], out_path: str, token: str) -> None:
    """Call each named probe with the user namespace and its inputs; write all results at once."""
    results: dict[str, Any] = {}
    for name in names:
        fn = probes.get(name)
        started = time.perf_counter()
        if fn is None:
            results[name] = {"error": f"no probe named {name!r}", "seconds": 0.0}
            continue
        try:
            value = fn(ns, inputs.get(name, {}))
            results[name] = {"value": to_data(value), "seconds": round(time.perf_counter() - started, 4)}
        except BaseException as exc:  # noqa: BLE001 - the student's code may raise anything
            if isinstance(exc, KeyboardInterrupt):
                results[name] = {"error": "interrupted (time limit)", "seconds": round(time.perf_counter() - started, 4)}
                continue
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
            results[name] = {
                "error": f"{type(exc).__name__}: {exc}"[:2000],
                "traceback": "".join(tb[-6:])[-4000:],
                "seconds": round(time.perf_counter() - started, 4),
            }
    payload = {"token": token, "results": results}
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, default=lambda o: {"__repr__": repr(o)[:500]})
    os.replace(tmp, out_path)
    sys.stdout.flush()
