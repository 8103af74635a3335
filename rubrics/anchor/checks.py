"""Trusted checks for the anchor workload, run in the grader's process.

Each verdict rests on something the kernel could not fake more cheaply than by solving the part:
``compute_metrics`` and ``collate`` are called on batches drawn for this submission
(``inputs.py``) and compared with values computed here (``refs.py``); the model's logits on fresh
input_ids are recomputed here from the weights it shipped, with the specified architecture. What
only the notebook knows (the losses it recorded) is read as a claim and held to the assignment's
letter: 20 finite values, the last one kept as ``final_loss``.

Probe values come from the untrusted kernel: a value of the wrong shape or type is a failed check
(``Missing`` or a message), never an exception here, which would be reported as the grader's fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from grader.steps.checks import CheckContext, Missing, Verdict, check, fmt_shape

from . import refs
from .inputs import make_inputs  # noqa: F401 - the pack's entry point
from .refs import reference  # noqa: F401 - the pack's entry point

STEPS = 20


def _number(value: Any) -> float | None:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return float(arr) if arr.shape == () else None


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Missing(f"{what}: the probe returned {type(value).__name__}, not its record")
    return value


# --- train ---------------------------------------------------------------------------------------


@check("train.losses")
def losses(ctx: CheckContext) -> Verdict:
    got = _mapping(ctx.value("losses"), "losses")
    raw = got.get("losses")
    if not isinstance(raw, list | tuple | np.ndarray):
        raise Missing(f"losses: the probe returned {type(raw).__name__}, not a list of losses")
    values = [_number(v) for v in raw]
    final = _number(got.get("final_loss"))
    wrong = []
    if len(values) != STEPS:
        wrong.append(f"losses holds {len(values)} values, expected {STEPS} (one per step)")
    bad = next((i for i, v in enumerate(values) if v is None or not math.isfinite(v)), None)
    if bad is not None:
        wrong.append(f"losses[{bad}] is {values[bad]}: the training diverged")
    last = values[-1] if values else None
    if final is None:
        wrong.append("final_loss is not a number")
    elif last is not None and math.isfinite(last) and not math.isclose(final, last, rel_tol=1e-6, abs_tol=1e-9):
        wrong.append(f"final_loss is {final}, expected the last loss ({last})")
    return Verdict(0.0 if wrong else 1.0, "; ".join(wrong) or f"{STEPS} finite losses, {values[0]:.4f} -> {values[-1]:.4f}")


def _weights_problem(weights: Any) -> str:
    if not isinstance(weights, Mapping) or not all(isinstance(v, np.ndarray) for v in weights.values()):
        return "its weights could not be read"
    spec = ", ".join(f"{k}={v}" for k, v in refs.MODEL_CONFIG.items())
    for name, shape in refs.weight_shapes().items():
        if name not in weights:
            return f"it has no weight {name}: it is not a {refs.MODEL_CLASS}({spec})"
        if tuple(weights[name].shape) != shape:
            return f"{name} is {fmt_shape(tuple(weights[name].shape))}, expected {fmt_shape(shape)} ({spec})"
    broken = [name for name in refs.weight_shapes() if not np.isfinite(weights[name]).all()]
    if broken:
        return f"its weights are not finite ({broken[0]}{' and more' if len(broken) > 1 else ''}): the training diverged"
    return ""


@check("train.model")
def model(ctx: CheckContext) -> Verdict:
    got = _mapping(ctx.value("model"), "model")
    cls = str(got.get("class", ""))
    if cls.rsplit(".", 1)[-1] != refs.MODEL_CLASS:
        return Verdict(0.0, f"model is a {cls or 'missing object'}, expected a {refs.MODEL_CLASS}")
    problem = _weights_problem(got.get("weights"))
    if problem:
        return Verdict(0.0, f"model: {problem}")
    input_ids = ctx.input("model")["input_ids"]
    expected = refs.model_logits(got["weights"], input_ids)
    try:
        logits = np.asarray(got.get("logits"), dtype=float)
    except (TypeError, ValueError):
        return Verdict(0.0, "model: its logits could not be read")
    if logits.shape != expected.shape:
        return Verdict(0.0, f"model: logits {fmt_shape(logits.shape)} on input_ids {fmt_shape(np.shape(input_ids))}, expected {fmt_shape(expected.shape)}")
    if not np.allclose(logits, expected, rtol=1e-4, atol=1e-5):
        return Verdict(0.0, f"model: its outputs on other input_ids are not those of a {refs.MODEL_CLASS} with the specified sizes "
                            f"and its own weights (n_heads={refs.MODEL_CONFIG['n_heads']}?)")
    return Verdict(1.0, f"a trained {refs.MODEL_CLASS} of the specified sizes")


# --- metrics -------------------------------------------------------------------------------------


@check("metrics.accuracy")
def metrics_accuracy(ctx: CheckContext) -> Verdict:
    got = ctx.value("compute_metrics")
    cases = ctx.input("compute_metrics")["cases"]
    expected = ctx.reference.accuracies
    if not isinstance(got, list) or len(got) != len(expected):
        raise Missing("compute_metrics: the probe returned no result per batch")
    for case, result, want in zip(cases, got, expected, strict=True):
        n = len(case["labels"])
        if not isinstance(result, Mapping):
            return Verdict(0.0, f"compute_metrics returned a {type(result).__name__}, expected a dict {{'accuracy': ...}}")
        if list(result) != ["accuracy"]:
            return Verdict(0.0, f"compute_metrics returned the keys {sorted(map(str, result))}, expected exactly ['accuracy']")
        value = _number(result["accuracy"])
        if value is None or not math.isclose(value, want, abs_tol=1e-6):
            return Verdict(0.0, f"accuracy {value} on {n} examples with {fmt_shape((n, 4))} logits, expected {want:.4f} "
                                "(the argmax over the choices)")
    return Verdict(1.0, f"accuracy right on {len(expected)} batches of other logits")


# --- collate -------------------------------------------------------------------------------------


def _collated(ctx: CheckContext, probe: str) -> tuple[Mapping[str, Any], np.ndarray | None]:
    got = _mapping(ctx.value(probe), "collate")
    value = got.get("value")
    return got, value if isinstance(value, np.ndarray) else None


@check("collate.shape")
def collate_shape(ctx: CheckContext) -> Verdict:
    got, value = _collated(ctx, "collate")
    want = ctx.reference.collated["collate"]
    wrong = []
    if not str(got.get("type", "")).startswith("torch.") or got.get("dtype") != "torch.int64":
        wrong.append(f"collate returned a {got.get('type')} of dtype {got.get('dtype') or 'none'}, expected a LongTensor (torch.int64)")
    shape = None if value is None else tuple(value.shape)
    if shape != want.shape:
        wrong.append(f"collate returned shape {fmt_shape(shape)} for {want.shape[0]} examples of 4 choices, expected "
                     f"{fmt_shape(want.shape)} ([B, 4, L])")
    return Verdict(0.0 if wrong else 1.0, "; ".join(wrong))


@check("collate.padding")
def collate_padding(ctx: CheckContext) -> Verdict:
    _, value = _collated(ctx, "collate_with_pad_id")
    want = ctx.reference.collated["collate_with_pad_id"]
    pad_id = ctx.input("collate_with_pad_id")["pad_id"]
    if value is None or value.shape != want.shape:
        return Verdict(0.0, f"collate(features, pad_id={pad_id}) returned shape {fmt_shape(None if value is None else value.shape)}, "
                            f"expected {fmt_shape(want.shape)}")
    if not np.array_equal(value, want):
        return Verdict(0.0, f"collate(features, pad_id={pad_id}) does not hold each sequence from the left, right-padded with pad_id")
    return Verdict(1.0)
