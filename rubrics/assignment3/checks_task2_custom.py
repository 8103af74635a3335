"""Checks of Task 2.3 (the custom classification head, its forward pass, loss and training)
and 2.4 (loading both models back and predicting with them)."""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grader.steps import source as src
from grader.steps.checks import CheckContext, Missing, Verdict, check, fmt_shape

from . import refs
from .checks_common import (  # noqa: F401
    BATCH_FIELDS,
    DISTILBERT,
    TRAINING_SPEC,
    _args_from_source,
    _arr,
    _compare_args,
    _error,
)
from .checks_task2_data import _saved
from .inputs import DROPOUTS

# --- 2.3 -------------------------------------------------------------------------------------------


def _linears(tree: Mapping[str, Any]) -> list[tuple[int, int, bool]]:
    """The head's linear layers as (out, in, bias), read from the parameters the probe exported as
    tensors (``<module>.weight`` of shape [out, in], ``<module>.bias``), never from the kernel's own
    description of its modules: that is a claim, the tensors are what the grader reads itself."""
    weights = tree.get("weights")
    if not isinstance(weights, Mapping):
        raise Missing("the custom head's parameters could not be read")
    found = []
    for name, value in weights.items():
        shape = np.shape(value)
        if str(name).endswith(".weight") and len(shape) == 2:
            bias = np.shape(weights.get(str(name)[: -len("weight")] + "bias", ()))
            found.append((int(shape[0]), int(shape[1]), bias == (shape[0],)))
    return found


def _head_verdict(tree: Any, dim: int, what: str) -> Verdict:
    if not isinstance(tree, Mapping):
        raise Missing(f"CustomMultipleChoice could not be built with {what}")
    if _error(tree):
        raise Missing(f"CustomMultipleChoice could not be built with {what}: {_error(tree)}")
    have = _linears(tree)
    want = [(dim, dim, True), (dim // 4, dim, True), (1, dim // 4, True)]
    parts = [((o, i, b) in have, f"no linear layer {o}x{i}{' with bias' if b else ''}") for o, i, b in want]
    return Verdict.of(parts, f"{dim}x{dim}, {dim // 4}x{dim}, 1x{dim // 4}, with biases")


@check("2.3.head_shapes")
def head_shapes(ctx: CheckContext) -> Verdict:
    return _head_verdict(ctx.value("custom_head").get("real"), 768, f"{DISTILBERT}'s size (dim 768)")


@check("2.3.init_config")
def init_config(ctx: CheckContext) -> Verdict:
    v = _head_verdict(ctx.value("custom_head").get("small"), 64, "a config of dim 64")
    if v.fraction < 1:
        return Verdict(
            0.0, "with a config of dim 64 the head keeps other sizes: read the hidden size from the config"
        )
    return Verdict(1.0, "the head follows the config's hidden size")


def _forward(ctx: CheckContext) -> dict[str, Any]:
    got = ctx.value("custom_forward")
    if not isinstance(got.get("weights"), dict):
        raise Missing("the custom model's weights could not be read")
    return got


def _ref_forward(
    ctx: CheckContext, got: Mapping[str, Any], flat: bool = False, dropout: float | None = None
) -> dict[str, np.ndarray]:
    inp = ctx.input("custom_forward")
    feature = got.get("feature_config") or refs.store_config(DISTILBERT)
    source = inp["flat"] if flat else inp
    seed = int(inp["seed"]) + 1 if dropout is not None else None
    return refs.custom_forward(
        got["weights"], feature, source["input_ids"], source["attention_mask"], dropout=dropout, seed=seed
    )


def _close(a: Any, b: Any, tol: float = 1e-4) -> bool:
    x, y = _arr(a), _arr(b)
    return (
        x is not None
        and y is not None
        and x.shape == y.shape
        and bool(np.allclose(x.astype(float), y.astype(float), rtol=tol, atol=tol))
    )


@check("2.3.reshape_inputs")
def reshape_inputs(ctx: CheckContext) -> Verdict:
    got = _forward(ctx)
    err = _error(got.get("eval"))
    if err:
        return Verdict(
            0.0,
            f"forward fails on [batch, 4, length] inputs ({err[:160]}): flatten input_ids and attention_mask to [batch*4, length]",
        )
    return Verdict(1.0, "forward takes [batch, 4, length] inputs")


def _dropout_field(ctx: CheckContext, got: Mapping[str, Any]) -> tuple[str | None, str]:
    """Which dropout of the config the head uses, told by its outputs in training mode."""
    train = got.get("train")
    if not isinstance(train, dict) or "logits" not in train:
        return None, "the head could not run in training mode"
    feature = got.get("feature_config") or {}
    candidates = dict(DROPOUTS)
    for key in DROPOUTS:  # a pretrained feature model keeps its own config: its values count too
        if isinstance(feature.get(key), (int, float)) and feature[key] not in candidates.values():
            candidates[f"{key} (of the feature model)"] = float(feature[key])
    for field, p in candidates.items():
        try:
            if _close(train["logits"], _ref_forward(ctx, got, dropout=float(p))["logits"]):
                return field, ""
        except ValueError:
            break
    return (
        None,
        "in training mode the head's outputs match no dropout of the config (after tanh and after dense2)",
    )


@check("2.3.cls_head")
def cls_head(ctx: CheckContext) -> Verdict:
    got = _forward(ctx)
    flat = bool(_error(got.get("eval")))
    if flat and _error(got.get("flat")):
        raise Missing(f"the custom model's forward fails: {_error(got.get('eval'))}")
    try:
        ref = _ref_forward(ctx, got, flat=flat)
    except ValueError as exc:
        return Verdict(0.0, f"the head cannot be checked: {exc}")
    hooks = got.get("hooks", {})
    seen = hooks.get("dense2", {}).get("in")
    run = got.get("flat") if flat else got.get("eval")
    logits = run.get("logits") if isinstance(run, dict) else None
    path_ok = (
        _close(seen, ref["dense2_in"])
        if seen is not None
        else _close(np.asarray(logits).reshape(-1), ref["logits"].reshape(-1))
    )
    parts = [
        (path_ok, "the [CLS] embedding does not go through a size-keeping linear layer and tanh as specified")
    ]
    note = ""
    if flat:
        note = "checked on pre-flattened inputs, since forward fails on [batch, 4, length]"
        parts.append((False, "dropout not checked: forward fails on [batch, 4, length] inputs"))
    else:
        field, why = _dropout_field(ctx, got)
        parts.append((field is not None, why))
        if field and field != "dropout":
            note = f"the head's dropout is the config's {field} (accepted; the assignment means `dropout`)"
    frac = (0.75 if parts[0][0] else 0.0) + (0.25 if parts[1][0] else 0.0)
    msg = "; ".join(m for ok, m in parts if not ok and m)
    return Verdict(frac, "; ".join(x for x in (msg, note) if x) or "[CLS], linear, tanh, dropout")


@check("2.3.classifier")
def classifier(ctx: CheckContext) -> Verdict:
    got = _forward(ctx)
    ev = got.get("eval")
    if not isinstance(ev, dict) or _error(ev):
        return Verdict(0.0, "forward fails on [batch, 4, length] inputs, so no [batch, 4] logits")
    ref = _ref_forward(ctx, got)
    g = _arr(ev.get("logits"))
    parts = [
        (
            g is not None and g.shape == ref["logits"].shape,
            f"logits have shape {fmt_shape(None if g is None else g.shape)}, expected {fmt_shape(ref['logits'].shape)} [batch, choices]",
        ),
        (
            _close(g, ref["logits"]),
            "the logits differ from dense2 -> dropout -> classifier on the student's own weights",
        ),
    ]
    return Verdict.of(parts, "dense2, classifier, logits [batch, 4]")


@check("2.3.loss")
def loss(ctx: CheckContext) -> Verdict:
    got = _forward(ctx)
    ev = got.get("eval")
    if not isinstance(ev, dict) or _error(ev):
        return Verdict(0.0, "forward fails on [batch, 4, length] inputs, so no loss")
    g = ev.get("loss")
    if g is None:
        return Verdict(0.0, "forward returns no loss when labels are given")
    want = refs.cross_entropy(ev["logits"], ctx.input("custom_forward")["labels"])
    ok = abs(float(g) - want) < 1e-4 * max(1.0, abs(want))
    return Verdict(
        1.0 if ok else 0.0,
        "cross-entropy over the choices"
        if ok
        else f"the loss is {float(g):.4f}, cross-entropy over the choices gives {want:.4f}",
    )


@check("2.3.model_config")
def model_config(ctx: CheckContext) -> Verdict:
    got = ctx.value("model_custom")
    cfg = got.get("config") or {}
    want = refs.store_config(DISTILBERT)
    keys = ("model_type", "dim", "n_layers", "n_heads", "hidden_dim", "vocab_size")
    same = all(cfg.get(k) == want.get(k) for k in keys)
    parts = [
        (
            bool(got.get("is_custom_class")),
            f"model_custom is a {got.get('class')}, not a CustomMultipleChoice",
        ),
        (same, f"model_custom's config is not {DISTILBERT}'s"),
    ]
    return Verdict.of(parts, f"CustomMultipleChoice on {DISTILBERT}'s config")


def _set_in_source(cells: Sequence[str], field: str) -> bool:
    """Is ``field`` set in these cells: a keyword argument, or an attribute assignment?"""
    trees = src.parse_cells(cells)
    for node in src.walk(trees):
        if isinstance(node, ast.Call) and src.keyword(node, field) is not None:
            return True
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Attribute) and t.attr == field for t in targets):
                return True
    return False


@check("2.3.dirs")
def dirs(ctx: CheckContext) -> Verdict:
    code = ctx.code()
    got = _args_from_source(ctx.value("custom_args"), ctx.code("2.2") + code)
    # the three must be changed (set in 2.3), not left to defaults derived from output_dir
    parts = [
        (
            Path(str(got.get("output_dir", ""))).name == "custom_model",
            f"output_dir is {got.get('output_dir')!r}",
        ),
        (
            "custom_model" in str(got.get("logging_dir") or "") and _set_in_source(code, "logging_dir"),
            f"logging_dir is not set to custom_model ({got.get('logging_dir')!r})",
        ),
        (
            "custom_model" in str(got.get("run_name") or "") and _set_in_source(code, "run_name"),
            f"run_name is not set to custom_model ({got.get('run_name')!r})",
        ),
    ]
    ok = all(p for p, _ in parts)
    return Verdict(
        1.0 if ok else 0.0,
        "output dir, logging dir and run name: custom_model"
        if ok
        else "; ".join(m for p, m in parts if not p) + " (all three should be custom_model)",
    )


@check("2.3.training")
def training(ctx: CheckContext) -> Verdict:
    args = _args_from_source(ctx.value("custom_args"), ctx.code("2.2") + ctx.code())
    runs = ctx.value("custom_trainer")
    trained = [
        t
        for t in runs.get("trained", [])
        if t.get("model_is_student_model") or t.get("model_class") == "CustomMultipleChoice"
    ]
    spec = {k: v for k, v in TRAINING_SPEC.items() if k != "output_dir"}
    wrong, _notes = _compare_args(
        args,
        spec,
        batch_comment=any(src.commented_lines(ctx.code("2.2") + ctx.code(), f) for f in BATCH_FIELDS),
    )
    parts = [
        (bool(trained), "the custom model is never trained in 2.3 (trainer.train() runs another model)"),
        (not wrong, "the training parameters differ from 2.2's: " + "; ".join(wrong)),
    ]
    ok = all(p for p, _ in parts)
    return Verdict(
        1.0 if ok else 0.0,
        "the custom model trained with 2.2's parameters" if ok else "; ".join(m for p, m in parts if not p),
    )


@check("2.3.saved")
def saved_custom(ctx: CheckContext) -> Verdict:
    return _saved(ctx, "custom_model/final_model", head_key="dense2")


# --- 2.4 -------------------------------------------------------------------------------------------


@check("2.4.loaded")
def loaded(ctx: CheckContext) -> Verdict:
    got = ctx.value("evaluation")
    hf = got.get("model_hf") or {}
    custom = got.get("model_custom") or {}
    end_of_23 = ctx.for_subtask("2.3").call("model_custom")  # the custom model as 2.3 left it
    fp_23 = end_of_23.value.get("fingerprint") if end_of_23.ok else None
    same = fp_23 is not None and _same_fingerprint(custom.get("fingerprint"), fp_23)
    parts = [
        (
            str(hf.get("class", "")).endswith("ForMultipleChoice")
            and "final_model" in str(hf.get("name_or_path", "")),
            f"model_hf is not loaded from distilbert-base-uncased-swag/final_model ({hf.get('class')} from '{hf.get('name_or_path')}')",
        ),
        (
            bool(custom.get("is_custom_class")) and same,
            f"model_custom is not the CustomMultipleChoice saved in 2.3 ({custom.get('class')})",
        ),
    ]
    return Verdict.of(parts, "both models loaded from disk")


def _same_fingerprint(a: Any, b: Any) -> bool:
    if not isinstance(a, dict) or not isinstance(b, dict) or set(a) != set(b) or not a:
        return False
    return all(
        np.allclose(
            np.asarray(a[k][:2], dtype=float), np.asarray(b[k][:2], dtype=float), rtol=1e-4, atol=1e-5
        )
        for k in a
    )


@check("2.4.device_no_grad")
def device_no_grad(ctx: CheckContext) -> Verdict:
    trees = src.parse_cells(ctx.code())
    loops = src.loops_over(trees, "eval_dataloader")
    if not loops:
        return Verdict(0.0, "no evaluation loop over eval_dataloader found in the source")
    moved = any(
        src.call_name(n) in ("to", "cuda")
        for loop in loops
        for n in ast.walk(loop)
        if isinstance(n, ast.Call)
    )
    no_grad = any(src.with_calls(loop, "no_grad") for loop in loops) or any(
        src.with_calls(t, "no_grad") for t in trees
    )
    parts = [
        (moved, "the batches are not moved to the device (.to(device)) in the loop"),
        (no_grad, "no `with torch.no_grad():` around the models' forward passes"),
    ]
    return Verdict.of(parts, "batches on the device, torch.no_grad()")


@check("2.4.predictions")
def predictions(ctx: CheckContext) -> Verdict:
    got = ctx.value("evaluation")
    labels = np.asarray(got.get("labels", []))
    store = refs.swag_validation_labels()
    trusted = len(labels) == len(store) and list(labels) == list(store)
    parts: list[tuple[bool, str]] = []
    notes: list[str] = []
    for name, acc_name in (("model_hf", "acc_hf"), ("model_custom", "acc_custom")):
        model = got.get(name) or {}
        reported = got.get(acc_name)
        if reported is None:
            parts.append((False, f"{acc_name} is not computed"))
            continue
        try:
            preds = _recompute(name, model, got.get("rows", []))
        except (ValueError, KeyError, RuntimeError) as exc:
            parts.append(
                (False, f"{name}'s predictions could not be recomputed from its weights ({str(exc)[:100]})")
            )
            continue
        if preds is None:  # a model too large to ship: the kernel's own predictions, said so
            preds = model.get("preds")
            notes.append(f"{name}'s predictions are the notebook's own (too large to recompute here)")
        if preds is None or len(preds) != len(labels):
            parts.append((False, f"{name} gives no predictions on the validation rows"))
            continue
        truth = float((np.asarray(preds) == labels).mean())
        parts.append(
            (
                abs(float(reported) - truth) < 1e-6,
                f"{acc_name} is {float(reported):.4f}, but {name} scores {truth:.4f} on the validation split",
            )
        )
    verdict = Verdict.of(parts, "both accuracies match the models' predictions")
    if notes:
        verdict = Verdict(verdict.fraction, "; ".join(x for x in (verdict.message, *notes) if x))
    if got.get("rerun"):
        note = "your evaluation loop was run again with a working data collator, since yours (2.1) broke it: not charged twice"
        verdict = Verdict(verdict.fraction, f"{verdict.message}; {note}" if verdict.fraction < 1 else note)
    if not trusted and verdict.fraction > 0:
        return Verdict(
            verdict.fraction,
            (verdict.message + "; " if verdict.fraction < 1 else "")
            + "the validation rows' labels are not the data set's: checked on the notebook's own rows",
        )
    return verdict


def _recompute(name: str, model: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[int] | None:
    """The model's predictions on the notebook's validation rows, computed here from the weights it
    exported; None when it exported none (too large)."""
    weights = model.get("weights")
    if not isinstance(weights, dict) or not rows:
        return None
    if name == "model_custom":
        return refs.custom_predictions(
            weights, model.get("feature_config") or refs.store_config(DISTILBERT), rows
        )
    return refs.hf_predictions(weights, model.get("config") or {}, rows)


@check("2.4.metric_api")
def metric_api(ctx: CheckContext) -> Verdict:
    trees = src.parse_cells(ctx.code())
    got = ctx.value("evaluation")
    parts = [
        (bool(src.calls(trees, "add_batch")), "the metrics' add_batch is not used"),
        (
            bool(src.calls(trees, "compute")) and got.get("acc_hf") is not None,
            "the metrics' compute() does not give acc_hf and acc_custom",
        ),
    ]
    return Verdict.of(parts, "add_batch and compute")
