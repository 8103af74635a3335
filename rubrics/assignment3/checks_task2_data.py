"""Checks of Task 2.1 (SWAG preprocessing and the collator) and 2.2 (the Hugging Face model,
its training arguments, metric and Trainer)."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from grader.steps import source as src
from grader.steps.checks import CheckContext, Missing, Verdict, check, fmt_shape

from . import refs
from .checks_common import (  # noqa: F401
    BATCH_FIELDS,
    DISTILBERT,
    TRAINING_SPEC,
    _accuracy_of,
    _args_from_source,
    _arr,
    _compare_args,
    _error,
    _norm_ws,
    _shape,
    _tiered,
)

# --- 2.1 -------------------------------------------------------------------------------------------


@check("2.1.explain_example")
def explain_example(ctx: CheckContext) -> Verdict:
    got = ctx.value("explain_example")
    rows = ctx.input("explain_example")["rows"]
    parts: list[tuple[bool, str]] = []
    for g, row in zip(got, rows, strict=False):
        text = _norm_ws(f"{g.get('stdout') or ''}\n{g.get('returned') or ''}").lower()
        label = int(row["label"])
        letters = re.findall(r"(?:^|\s|\(|')([abcd])\s*[-:).]", text)
        truth_ending = _norm_ws(row[f"ending{label}"]).lower()
        tail = text[text.rfind("truth") :] if "truth" in text else text[-max(200, len(truth_ending) + 20) :]
        parts += [
            (
                _norm_ws(row["sent1"]).lower() in text or _norm_ws(row["startphrase"]).lower() in text,
                "the context (sent1 or startphrase) is not shown",
            ),
            (
                all(_norm_ws(row[f"ending{i}"]).lower() in text for i in range(4)),
                "not all four endings are shown",
            ),
            (
                len(set(letters)) >= 4 or all(f"ending{i}" in text for i in range(4)),
                "the choices are not labelled A-D",
            ),
            (
                bool(re.search(rf"\b(option\s*)?{'abcd'[label]}\b", tail))
                or f"ending{label}" in tail
                or truth_ending in tail,
                "the ground truth (the correct option) is not shown",
            ),
        ]
    verdict = Verdict.of(parts, "shows the context, the four endings labelled A-D, and the ground truth")
    return Verdict(verdict.fraction, "; ".join(dict.fromkeys(verdict.message.split("; "))))


@check("2.1.tokenizer")
def tokenizer(ctx: CheckContext) -> Verdict:
    got = ctx.value("tokenizer")
    pairs = ctx.input("tokenizer")["pairs"]
    want = [refs.bert_ids(a, b) for a, b in pairs]
    ok = [list(map(int, g)) for g in got.get("ids", [])] == want
    return Verdict(
        1.0 if ok else 0.0,
        ""
        if ok
        else f"the tokenizer ({got.get('class')} from '{got.get('name_or_path')}') gives other ids than {DISTILBERT}'s",
    )


def _preprocess_set(ctx: CheckContext, key: str) -> tuple[Any, Any]:
    got = ctx.value("preprocess").get(key)
    if got is None or _error(got):
        raise Missing(f"preprocess_function failed: {_error(got) or 'no result'}")
    return got, refs.preprocess(ctx.input("preprocess")["sets"][key])


@check("2.1.preprocess_output")
def preprocess_output(ctx: CheckContext) -> Verdict:
    got, ref = _preprocess_set(ctx, "train2")
    ids = got.get("input_ids")
    if not isinstance(ids, list) or not ids or not isinstance(ids[0], list):
        return Verdict(0.0, "preprocess_function(train[:2]) returned no input_ids grouped per example")
    lengths = [len(x) for x in ids[0]] if ids and all(isinstance(x, list) for x in ids[0]) else None
    want = [len(x) for x in ref["input_ids"][0]]
    shape_ok = len(ids) == 2 and len(ids[0]) == 4
    if not (shape_ok and lengths == want):
        return Verdict(
            0.0,
            f"preprocess_function(train[:2]) gives {len(ids)} {len(ids[0]) if ids else 0} {lengths}, expected 2 4 {want}",
        )
    # the printed lengths are public; the ids behind them are what a hard-coded output does not have
    if ids != ref["input_ids"]:
        return Verdict(0.0, "the lengths are right but the token ids of train[:2] are not the tokenizer's")
    return Verdict(1.0, "2 4 [30, 25, 30, 28]")


@check("2.1.preprocess_truncation")
def preprocess_truncation(ctx: CheckContext) -> Verdict:
    got, _ref = _preprocess_set(ctx, "long")
    try:
        longest = max(len(x) for group in got["input_ids"] for x in group)
    except (KeyError, TypeError, ValueError):
        return Verdict(0.0, "preprocess_function gave no input_ids for a long row")
    ok = longest <= 512
    return Verdict(
        1.0 if ok else 0.0,
        ""
        if ok
        else f"a row longer than the model takes gives {longest} tokens: tokenize with truncation=True",
    )


@check("2.1.preprocess_logic")
def preprocess_logic(ctx: CheckContext) -> Verdict:
    got, ref = _preprocess_set(ctx, "fresh")
    ids_ok = got.get("input_ids") == ref["input_ids"]
    mask_ok = got.get("attention_mask") == ref["attention_mask"]
    parts = [
        (
            ids_ok,
            "the token ids of other rows differ: pair each first sentence (repeated 4 times) with header + ending",
        ),
        (mask_ok, "the attention masks of other rows differ from the tokenizer's"),
    ]
    return Verdict(1.0 if ids_ok and mask_ok else 0.0, "; ".join(m for ok, m in parts if not ok))


def _collated(ctx: CheckContext) -> list[tuple[Any, dict[str, np.ndarray], list[dict[str, Any]]]]:
    got = ctx.value("mc_collator")
    batches = ctx.input("mc_collator")["batches"]
    out = []
    for g, feats in zip(got, batches, strict=False):
        if _error(g):
            raise Missing(f"MultipleChoiceDataCollator failed: {_error(g)}")
        out.append((g, refs.mc_collate(feats), feats))
    if not out:
        raise Missing("MultipleChoiceDataCollator gave no batch")
    return out


def _labels(values: Mapping[str, Any]) -> tuple[np.ndarray | None, str]:
    for key in ("labels", "label"):
        if key in values:
            return _arr(values[key]), key
    return None, ""


@check("2.1.collator_shapes")
def collator_shapes(ctx: CheckContext) -> Verdict:
    parts: list[tuple[bool, str]] = []
    for g, ref, _feats in _collated(ctx):
        vals = g.get("values", {})
        for key in ("input_ids", "attention_mask"):
            a = _arr(vals.get(key))
            parts.append(
                (
                    a is not None and a.shape == ref[key].shape,
                    f"{key} has shape {fmt_shape(None if a is None else a.shape)}, expected {fmt_shape(ref[key].shape)} [batch, 4, longest]",
                )
            )
        lab, name = _labels(vals)
        parts.append(
            (
                lab is not None and lab.shape == ref["labels"].shape,
                f"the labels have shape {fmt_shape(None if lab is None else lab.shape)}, expected {fmt_shape(ref['labels'].shape)}",
            )
        )
        if name == "label":
            parts.append((False, "the labels are under 'label'; the model takes 'labels'"))
    return Verdict.of(parts, "[B, 4, L] inputs and masks, [B] labels")


@check("2.1.collator_tensors")
def collator_tensors(ctx: CheckContext) -> Verdict:
    bad = set()
    for g, _ref, _feats in _collated(ctx):
        types = g.get("types", {})
        for key in ("input_ids", "attention_mask", "labels"):
            if types.get(key) != "Tensor":
                bad.add(f"{key} is {types.get(key, 'missing')}")
    return Verdict(
        0.0 if bad else 1.0, "; ".join(sorted(bad)) + " (return torch tensors)" if bad else "tensors"
    )


@check("2.1.collator_pad")
def collator_pad(ctx: CheckContext) -> Verdict:
    trees = src.parse_cells(ctx.code())
    uses_pad = False
    for cls in src.defs(trees, "MultipleChoiceDataCollator"):
        call = src.method(cls, "__call__") if isinstance(cls, ast.ClassDef) else None
        if call is not None and src.calls([call], "pad"):
            uses_pad = True
    dynamic = all(
        (shape := _shape(g.get("values", {}).get("input_ids"))) is not None
        and shape[-1:] == ref["input_ids"].shape[-1:]
        for g, ref, _f in _collated(ctx)
    )
    parts = [
        (uses_pad, "the source does not call tokenizer.pad in MultipleChoiceDataCollator.__call__"),
        (dynamic, "the batch is not padded to the longest sequence in it"),
    ]
    return Verdict.of(parts, "tokenizer.pad, padding to the longest in the batch")


@check("2.1.collator_flatten")
def collator_flatten(ctx: CheckContext) -> Verdict:
    for g, ref, _feats in _collated(ctx):
        vals = g.get("values", {})
        for key in ("input_ids", "attention_mask"):
            a = _arr(vals.get(key))
            if a is None or a.shape != ref[key].shape or not np.array_equal(a, ref[key]):
                return Verdict(
                    0.0, f"{key} of other batches differs from flattening, padding and regrouping by 4"
                )
        lab, _ = _labels(vals)
        if lab is None or lab.shape != ref["labels"].shape or not np.array_equal(lab, ref["labels"]):
            return Verdict(0.0, "the labels of other batches are not the examples' labels")
    return Verdict(1.0, "flattened and regrouped right")


# --- 2.2 -------------------------------------------------------------------------------------------


def _half_precision(cells: Sequence[str]) -> bool:
    for call in src.calls(src.parse_cells(cells), "from_pretrained"):
        for key in ("torch_dtype", "dtype"):
            v = src.keyword(call, key)
            if v is not None and (
                src.dotted(v).endswith(("float16", "bfloat16", "half"))
                or (isinstance(v, ast.Constant) and str(v.value) in ("float16", "bfloat16"))
            ):
                return True
    return False


@check("2.2.model")
def model_hf(ctx: CheckContext) -> Verdict:
    got = ctx.value("model_hf")
    klass = str(got.get("class", ""))
    rows = got.get("embedding_rows")
    same_weights = rows is not None and np.allclose(
        np.asarray(rows, dtype=np.float32), refs.store_embedding_rows(DISTILBERT), atol=1e-3
    )
    half = _half_precision(ctx.code())
    parts = [
        (
            klass.endswith("ForMultipleChoice") and got.get("logits_shape", [None])[-1:] == [4],
            f"model_hf is a {klass}, expected a multiple-choice model (AutoModelForMultipleChoice)",
        ),
        (
            got.get("model_type") == "distilbert" and same_weights and not half,
            f"model_hf is not the {DISTILBERT} checkpoint ({got.get('model_type')} from '{got.get('name_or_path')}')"
            if not (got.get("model_type") == "distilbert" and same_weights)
            else "the model was loaded in half precision (torch_dtype=float16): training it in float16 breaks it",
        ),
    ]
    return Verdict.of(parts, f"a multiple-choice model from {DISTILBERT}")


@check("2.2.training_args")
def training_args(ctx: CheckContext) -> Verdict:
    got = _args_from_source(ctx.value("training_args"), ctx.code())
    wrong, notes = _compare_args(
        got, TRAINING_SPEC, batch_comment=any(src.commented_lines(ctx.code(), f) for f in BATCH_FIELDS)
    )
    v = _tiered(wrong, "every setting as specified")
    return Verdict(v.fraction, "; ".join(x for x in (v.message, *notes) if x))


@check("2.2.toy_accuracy")
def toy_accuracy(ctx: CheckContext) -> Verdict:
    toy = ctx.value("compute_metrics").get("toy")
    acc = _accuracy_of(toy)
    case = ctx.input("compute_metrics")["toy"]
    want = refs.accuracy(case["predictions"], case["labels"])  # the toy example made fresh (inputs._toy)
    ok = (
        isinstance(toy, dict) and acc is not None and abs(acc - want) < 1e-6
    )  # a float32 (0.800000011920929) counts
    if ok:
        return Verdict(1.0, "the toy example's accuracy")
    shown = type(toy).__name__ if not isinstance(toy, dict) else repr(toy)[:80]
    return Verdict(
        0.0,
        f"on a toy example like the notebook's, compute_metrics returned {shown}, expected {{'accuracy': {want:g}}}",
    )


@check("2.2.metric_logic")
def metric_logic(ctx: CheckContext) -> Verdict:
    got = ctx.value("compute_metrics").get("fresh", [])
    cases = ctx.input("compute_metrics")["fresh"]
    for g, case in zip(got, cases, strict=False):
        if _error(g):
            return Verdict(0.0, f"compute_metrics failed on an EvalPrediction: {_error(g)}")
        acc = _accuracy_of(g.get("value"))
        want = refs.accuracy(case["predictions"], case["labels"])
        if acc is None or abs(acc - want) > 1e-6:
            return Verdict(
                0.0,
                f"on other logits compute_metrics gives {acc}, expected {want:.4f} (argmax over the choices)",
            )
    return Verdict(
        1.0 if got else 0.0, "argmax accuracy" if got else "compute_metrics gave no result on other logits"
    )


@check("2.2.trainer")
def trainer_hf(ctx: CheckContext) -> Verdict:
    got = ctx.value("trainer_hf")
    inputs = ctx.input("trainer_hf")
    wrong = []
    if not (
        got.get("model_is_student_model") or str(got.get("model_class", "")).endswith("ForMultipleChoice")
    ):
        wrong.append(f"the trainer trains a {got.get('model_class')}, not model_hf")
    for split in ("train_dataset", "eval_dataset"):
        facts = got.get(split)
        if not isinstance(facts, dict) or not facts.get("rows"):
            wrong.append(f"no {split}")
    # wiring, not behaviour: a collator or metric that is wrong lost its points in its own item
    collated = got.get("collated")
    ref = refs.mc_collate(inputs["features"])
    vals = collated if isinstance(collated, dict) else {}
    works = not _error(vals) and _shape(vals.get("input_ids")) == ref["input_ids"].shape
    if not (got.get("collator_is_student") or works):
        wrong.append(
            f"the trainer's data collator is {got.get('collator_class')}, not the MultipleChoiceDataCollator"
        )
    acc = _accuracy_of(got.get("metric"))
    right = acc is not None and abs(acc - refs.accuracy(inputs["logits"], inputs["labels"])) <= 1e-6
    if not (got.get("compute_metrics_is_student") or right):
        wrong.append("the trainer is given no compute_metrics")
    return _tiered(wrong, "model, both data sets, the collator and compute_metrics")


def _saved(ctx: CheckContext, path: str, head_key: str | None = None) -> Verdict:
    saved = ctx.saved.get(path)
    if saved is None or not saved.exists:
        return Verdict(0.0, f"nothing was saved in {path}")
    if saved.kind == "file":
        ok = saved.size > 1024
        return Verdict(
            1.0 if ok else 0.0,
            f"saved as one file ({saved.size} bytes) in {path}" if ok else f"{path} is an empty file",
        )
    names = {n for n, _ in saved.files}
    weights = bool(
        names & {"model.safetensors", "pytorch_model.bin", "model.bin"}
        or any(n.endswith((".bin", ".pt", ".pth", ".safetensors")) for n in names)
    )
    if not weights:
        return Verdict(0.0, f"{path} holds no weights file")
    if (
        head_key
        and saved.weight_keys
        and not any(head_key in k for k in saved.weight_keys)
        and not any(n.endswith((".bin", ".pt", ".pth")) for n in names)
    ):
        return Verdict(
            0.0, f"the weights in {path} have no custom head ({head_key}): another model was saved"
        )
    return Verdict(1.0, f"saved in {path}")


@check("2.2.saved")
def saved_hf(ctx: CheckContext) -> Verdict:
    return _saved(ctx, "distilbert-base-uncased-swag/final_model")
