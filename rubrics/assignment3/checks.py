"""Trusted checks for Assignment 3, run in the grader's process, one per item of the official
point distribution (``rubric.yaml``).

Every verdict rests on something the kernel could not fake more cheaply than by solving the task:
outputs on inputs it first saw at probe time (``inputs.py``), compared with values computed here
(``refs.py``); a model's outputs recomputed here from its exported weights; accuracies recomputed
here from exported predictions and the store's labels; files read here after the kernel stopped;
and, for items about how code is written, the notebook's source read with ``ast``
(``grader.source``). A check accepts what the official rubric accepts (any dropout field of the
feature model's config, targets equal by token ids, a float32 accuracy, a pretrained or random
feature model, rows of shape [1, 512] that the student's own collator handles) and says what it did.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grader import source as src
from grader.checks import CheckContext, Missing, Verdict, check, fmt_shape

from . import refs
from .inputs import DROPOUTS, TOY_LABELS, TOY_PREDICTIONS, make_inputs  # noqa: F401 - the pack's entry points

HERE = Path(__file__).resolve().parent
DISTILBERT = "distilbert-base-uncased"
QA_MODEL = "mrm8488/t5-base-finetuned-squadv2"
SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>", "<extra_id_")

TRAINING_SPEC: dict[str, Any] = {
    "output_dir": "distilbert-base-uncased-swag", "eval_strategy": "steps", "eval_steps": 300, "save_steps": 600,
    "save_total_limit": 2, "seed": 77, "per_device_train_batch_size": 48, "per_device_eval_batch_size": 48,
    "max_steps": 1800, "learning_rate": 5e-5, "weight_decay": 0.01, "remove_unused_columns": True,
    "load_best_model_at_end": True,
}
SEQ2SEQ_SPEC: dict[str, Any] = {
    "output_dir": "t5-squad", "learning_rate": 1e-4, "weight_decay": 0.01, "seed": 77, "max_steps": 200,
    "save_steps": 100, "per_device_train_batch_size": 32, "gradient_accumulation_steps": 4, "remove_unused_columns": False,
}
# "if you are running out of memory, feel free to change this setting but indicate it as a comment"
BATCH_FIELDS = ("per_device_train_batch_size", "per_device_eval_batch_size")


def reference(rubric: Any, inputs: Any) -> Any:
    """Expected values are computed by the checks themselves from ``refs`` (on what they need)."""
    return refs


# --- helpers ---------------------------------------------------------------------------------------


def _norm_ws(text: Any) -> str:
    return re.sub(r"\s+", " ", str(text or "")).strip()


def squad_normalize(text: str) -> str:
    """SQuAD's answer normalization: lower case, no punctuation, no articles, single spaces."""
    text = (text or "").lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _arr(value: Any) -> np.ndarray | None:
    try:
        a = np.asarray(value)
    except (TypeError, ValueError):
        return None
    return a if a.dtype != object else None


def _squeeze_rows(a: np.ndarray, dims: int) -> np.ndarray:
    """[B, 1, L] -> [B, L]: a student's [1, 512] rows, stacked."""
    while a.ndim > dims and 1 in a.shape[1:]:
        a = np.squeeze(a, axis=next(i for i in range(1, a.ndim) if a.shape[i] == 1))
    return a


def _accuracy_of(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("accuracy", next(iter(value.values()), None) if len(value) == 1 else None)
    try:
        return None if value is None or isinstance(value, (str, bytes)) else float(value)
    except (TypeError, ValueError):
        return None


def _tiered(wrong: list[str], ok_message: str = "") -> Verdict:
    """How the course's graders score a list of settings: all right, full points; one wrong, half;
    more, none."""
    if not wrong:
        return Verdict(1.0, ok_message)
    return Verdict(0.5 if len(wrong) == 1 else 0.0, "; ".join(wrong))


def _strategy(value: Any) -> str:
    return str(getattr(value, "value", value)).lower().replace("intervalstrategy.", "")


def _compare_args(got: Mapping[str, Any], spec: Mapping[str, Any], batch_comment: bool = False) -> tuple[list[str], list[str]]:
    """(what is wrong, notes) for TrainingArguments facts against the assignment's values."""
    wrong: list[str] = []
    notes: list[str] = []
    for key, want in spec.items():
        if key == "eval_strategy":
            val = _strategy(got.get("eval_strategy", got.get("evaluation_strategy")))
            if val != want:
                wrong.append(f"the evaluation strategy is '{val}', expected '{want}'")
            continue
        val = got.get(key)
        if key == "max_steps" and val != want:
            epochs = got.get("num_train_epochs")
            extra = f" (num_train_epochs={epochs:g} instead?)" if isinstance(epochs, (int, float)) and epochs != 3 else ""
            wrong.append(f"max_steps is {val}, expected {want}{extra}")
            continue
        if key in BATCH_FIELDS and val != want and batch_comment and isinstance(val, int):
            notes.append(f"{key}={val} instead of {want}, explained in a comment (allowed)")
            continue
        if isinstance(want, float):
            ok = isinstance(val, (int, float)) and abs(float(val) - want) <= 1e-12 + 1e-9 * abs(want)
        elif key == "output_dir":
            ok = isinstance(val, str) and Path(val).name == want
        else:
            ok = val == want
        if not ok:
            wrong.append(f"{key} is {val!r}, expected {want!r}")
    return wrong, notes


# The library's values for settings a notebook leaves out (transformers 4.35 and 5.x agree on these).
ARGS_DEFAULTS: dict[str, Any] = {
    "eval_strategy": "no", "evaluation_strategy": "no", "eval_steps": None, "save_steps": 500, "save_total_limit": None,
    "seed": 42, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 8, "max_steps": -1,
    "num_train_epochs": 3.0, "learning_rate": 5e-5, "weight_decay": 0.0, "remove_unused_columns": True,
    "load_best_model_at_end": False, "gradient_accumulation_steps": 1,
}
ARGS_CLASSES = ("TrainingArguments", "Seq2SeqTrainingArguments")


def _args_from_source(kernel: Mapping[str, Any], cells: Sequence[str]) -> dict[str, Any]:
    """The TrainingArguments a check judges: what the source sets as literals (read here), what it
    leaves out (the library's defaults), and only for settings written as expressions (a variable)
    what the kernel reports. The kernel could report anything about its own objects."""
    found, values, unknown = src.literal_settings(cells, ARGS_CLASSES)
    if not found:
        return dict(kernel)  # made elsewhere (a helper function, an earlier subtask): the kernel's word
    out = dict(kernel)
    for key in set(ARGS_DEFAULTS) | set(values) | set(unknown):
        if key in values:
            out[key] = values[key]
        elif key not in unknown and key in ARGS_DEFAULTS:
            out[key] = ARGS_DEFAULTS[key]
    if "evaluation_strategy" in values and "eval_strategy" not in values:
        out["eval_strategy"] = values["evaluation_strategy"]
    return out


def _error(entry: Any) -> str | None:
    return str(entry["error"]) if isinstance(entry, dict) and "error" in entry else None


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
        tail = text[text.rfind("truth"):] if "truth" in text else text[-max(200, len(truth_ending) + 20):]
        parts += [
            (_norm_ws(row["sent1"]).lower() in text or _norm_ws(row["startphrase"]).lower() in text,
             "the context (sent1 or startphrase) is not shown"),
            (all(_norm_ws(row[f"ending{i}"]).lower() in text for i in range(4)), "not all four endings are shown"),
            (len(set(letters)) >= 4 or all(f"ending{i}" in text for i in range(4)), "the choices are not labelled A-D"),
            (bool(re.search(rf"\b(option\s*)?{'abcd'[label]}\b", tail)) or f"ending{label}" in tail or truth_ending in tail,
             "the ground truth (the correct option) is not shown"),
        ]
    verdict = Verdict.of(parts, "shows the context, the four endings labelled A-D, and the ground truth")
    return Verdict(verdict.fraction, "; ".join(dict.fromkeys(verdict.message.split("; "))))


@check("2.1.tokenizer")
def tokenizer(ctx: CheckContext) -> Verdict:
    got = ctx.value("tokenizer")
    pairs = ctx.input("tokenizer")["pairs"]
    want = [refs.bert_ids(a, b) for a, b in pairs]
    ok = [list(map(int, g)) for g in got.get("ids", [])] == want
    return Verdict(1.0 if ok else 0.0, "" if ok else
                   f"the tokenizer ({got.get('class')} from '{got.get('name_or_path')}') gives other ids than {DISTILBERT}'s")


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
        return Verdict(0.0, f"preprocess_function(train[:2]) gives {len(ids)} {len(ids[0]) if ids else 0} {lengths}, expected 2 4 {want}")
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
    return Verdict(1.0 if ok else 0.0, "" if ok else f"a row longer than the model takes gives {longest} tokens: tokenize with truncation=True")


@check("2.1.preprocess_logic")
def preprocess_logic(ctx: CheckContext) -> Verdict:
    got, ref = _preprocess_set(ctx, "fresh")
    ids_ok = got.get("input_ids") == ref["input_ids"]
    mask_ok = got.get("attention_mask") == ref["attention_mask"]
    parts = [(ids_ok, "the token ids of other rows differ: pair each first sentence (repeated 4 times) with header + ending"),
             (mask_ok, "the attention masks of other rows differ from the tokenizer's")]
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
            parts.append((a is not None and a.shape == ref[key].shape,
                          f"{key} has shape {fmt_shape(None if a is None else a.shape)}, expected {fmt_shape(ref[key].shape)} [batch, 4, longest]"))
        lab, name = _labels(vals)
        parts.append((lab is not None and lab.shape == ref["labels"].shape,
                      f"the labels have shape {fmt_shape(None if lab is None else lab.shape)}, expected {fmt_shape(ref['labels'].shape)}"))
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
    return Verdict(0.0 if bad else 1.0, "; ".join(sorted(bad)) + " (return torch tensors)" if bad else "tensors")


@check("2.1.collator_pad")
def collator_pad(ctx: CheckContext) -> Verdict:
    trees = src.parse_cells(ctx.code())
    uses_pad = False
    for cls in src.defs(trees, "MultipleChoiceDataCollator"):
        call = src.method(cls, "__call__") if hasattr(cls, "body") else None
        if call is not None and src.calls([call], "pad"):
            uses_pad = True
    dynamic = all(_arr(g.get("values", {}).get("input_ids")) is not None
                  and _arr(g["values"]["input_ids"]).shape[-1] == ref["input_ids"].shape[-1]
                  for g, ref, _f in _collated(ctx))
    parts = [(uses_pad, "the source does not call tokenizer.pad in MultipleChoiceDataCollator.__call__"),
             (dynamic, "the batch is not padded to the longest sequence in it")]
    return Verdict.of(parts, "tokenizer.pad, padding to the longest in the batch")


@check("2.1.collator_flatten")
def collator_flatten(ctx: CheckContext) -> Verdict:
    for g, ref, _feats in _collated(ctx):
        vals = g.get("values", {})
        for key in ("input_ids", "attention_mask"):
            a = _arr(vals.get(key))
            if a is None or a.shape != ref[key].shape or not np.array_equal(a, ref[key]):
                return Verdict(0.0, f"{key} of other batches differs from flattening, padding and regrouping by 4")
        lab, _ = _labels(vals)
        if lab is None or lab.shape != ref["labels"].shape or not np.array_equal(lab, ref["labels"]):
            return Verdict(0.0, "the labels of other batches are not the examples' labels")
    return Verdict(1.0, "flattened and regrouped right")


# --- 2.2 -------------------------------------------------------------------------------------------


def _half_precision(cells: Sequence[str]) -> bool:
    for call in src.calls(src.parse_cells(cells), "from_pretrained"):
        for key in ("torch_dtype", "dtype"):
            v = src.keyword(call, key)
            if v is not None and (src.dotted(v).endswith(("float16", "bfloat16", "half"))
                                  or (isinstance(v, ast.Constant) and str(v.value) in ("float16", "bfloat16"))):
                return True
    return False


@check("2.2.model")
def model_hf(ctx: CheckContext) -> Verdict:
    got = ctx.value("model_hf")
    klass = str(got.get("class", ""))
    rows = got.get("embedding_rows")
    same_weights = rows is not None and np.allclose(np.asarray(rows, dtype=np.float32), refs.store_embedding_rows(DISTILBERT), atol=1e-3)
    half = _half_precision(ctx.code())
    parts = [
        (klass.endswith("ForMultipleChoice") and got.get("logits_shape", [None])[-1:] == [4],
         f"model_hf is a {klass}, expected a multiple-choice model (AutoModelForMultipleChoice)"),
        (got.get("model_type") == "distilbert" and same_weights and not half,
         f"model_hf is not the {DISTILBERT} checkpoint ({got.get('model_type')} from '{got.get('name_or_path')}')"
         if not (got.get("model_type") == "distilbert" and same_weights) else
         "the model was loaded in half precision (torch_dtype=float16): training it in float16 breaks it"),
    ]
    return Verdict.of(parts, f"a multiple-choice model from {DISTILBERT}")


@check("2.2.training_args")
def training_args(ctx: CheckContext) -> Verdict:
    got = _args_from_source(ctx.value("training_args"), ctx.code())
    wrong, notes = _compare_args(got, TRAINING_SPEC, batch_comment=any(src.commented_lines(ctx.code(), f) for f in BATCH_FIELDS))
    v = _tiered(wrong, "every setting as specified")
    return Verdict(v.fraction, "; ".join(x for x in (v.message, *notes) if x))


@check("2.2.toy_accuracy")
def toy_accuracy(ctx: CheckContext) -> Verdict:
    toy = ctx.value("compute_metrics").get("toy")
    acc = _accuracy_of(toy)
    case = ctx.input("compute_metrics")["toy"]
    want = refs.accuracy(case["predictions"], case["labels"])  # the toy example made fresh (inputs._toy)
    ok = isinstance(toy, dict) and acc is not None and abs(acc - want) < 1e-6  # a float32 (0.800000011920929) counts
    if ok:
        return Verdict(1.0, "the toy example's accuracy")
    shown = type(toy).__name__ if not isinstance(toy, dict) else repr(toy)[:80]
    return Verdict(0.0, f"on a toy example like the notebook's, compute_metrics returned {shown}, expected {{'accuracy': {want:g}}}")


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
            return Verdict(0.0, f"on other logits compute_metrics gives {acc}, expected {want:.4f} (argmax over the choices)")
    return Verdict(1.0 if got else 0.0, "argmax accuracy" if got else "compute_metrics gave no result on other logits")


@check("2.2.trainer")
def trainer_hf(ctx: CheckContext) -> Verdict:
    got = ctx.value("trainer_hf")
    inputs = ctx.input("trainer_hf")
    wrong = []
    if not (got.get("model_is_student_model") or str(got.get("model_class", "")).endswith("ForMultipleChoice")):
        wrong.append(f"the trainer trains a {got.get('model_class')}, not model_hf")
    for split in ("train_dataset", "eval_dataset"):
        facts = got.get(split)
        if not isinstance(facts, dict) or not facts.get("rows"):
            wrong.append(f"no {split}")
    # wiring, not behaviour: a collator or metric that is wrong lost its points in its own item
    collated = got.get("collated")
    ref = refs.mc_collate(inputs["features"])
    vals = collated if isinstance(collated, dict) else {}
    works = not _error(vals) and _arr(vals.get("input_ids")) is not None and _arr(vals["input_ids"]).shape == ref["input_ids"].shape
    if not (got.get("collator_is_student") or works):
        wrong.append(f"the trainer's data collator is {got.get('collator_class')}, not the MultipleChoiceDataCollator")
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
        return Verdict(1.0 if ok else 0.0, f"saved as one file ({saved.size} bytes) in {path}" if ok else f"{path} is an empty file")
    names = {n for n, _ in saved.files}
    weights = bool(names & {"model.safetensors", "pytorch_model.bin", "model.bin"} or any(n.endswith((".bin", ".pt", ".pth", ".safetensors")) for n in names))
    if not weights:
        return Verdict(0.0, f"{path} holds no weights file")
    if head_key and saved.weight_keys and not any(head_key in k for k in saved.weight_keys) and not any(n.endswith((".bin", ".pt", ".pth")) for n in names):
        return Verdict(0.0, f"the weights in {path} have no custom head ({head_key}): another model was saved")
    return Verdict(1.0, f"saved in {path}")


@check("2.2.saved")
def saved_hf(ctx: CheckContext) -> Verdict:
    return _saved(ctx, "distilbert-base-uncased-swag/final_model")


# --- 2.3 -------------------------------------------------------------------------------------------


def _linears(tree: Mapping[str, Any]) -> list[tuple[int, int, bool]]:
    return [(int(m["out"]), int(m["in"]), bool(m.get("bias", True))) for m in tree.get("modules", {}).values() if m.get("class") == "Linear"]


def _head_verdict(tree: Any, dim: int, what: str) -> Verdict:
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
        return Verdict(0.0, "with a config of dim 64 the head keeps other sizes: read the hidden size from the config")
    return Verdict(1.0, "the head follows the config's hidden size")


def _forward(ctx: CheckContext) -> dict[str, Any]:
    got = ctx.value("custom_forward")
    if not isinstance(got.get("weights"), dict):
        raise Missing("the custom model's weights could not be read")
    return got


def _ref_forward(ctx: CheckContext, got: Mapping[str, Any], flat: bool = False, dropout: float | None = None) -> dict[str, np.ndarray]:
    inp = ctx.input("custom_forward")
    feature = got.get("feature_config") or refs.store_config(DISTILBERT)
    source = inp["flat"] if flat else inp
    seed = int(inp["seed"]) + 1 if dropout is not None else None
    return refs.custom_forward(got["weights"], feature, source["input_ids"], source["attention_mask"], dropout=dropout, seed=seed)


def _close(a: Any, b: Any, tol: float = 1e-4) -> bool:
    x, y = _arr(a), _arr(b)
    return x is not None and y is not None and x.shape == y.shape and bool(np.allclose(x.astype(float), y.astype(float), rtol=tol, atol=tol))


@check("2.3.reshape_inputs")
def reshape_inputs(ctx: CheckContext) -> Verdict:
    got = _forward(ctx)
    err = _error(got.get("eval"))
    if err:
        return Verdict(0.0, f"forward fails on [batch, 4, length] inputs ({err[:160]}): flatten input_ids and attention_mask to [batch*4, length]")
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
    return None, "in training mode the head's outputs match no dropout of the config (after tanh and after dense2)"


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
    logits = (got.get("flat") if flat else got.get("eval")).get("logits")
    path_ok = _close(seen, ref["dense2_in"]) if seen is not None else _close(np.asarray(logits).reshape(-1), ref["logits"].reshape(-1))
    parts = [(path_ok, "the [CLS] embedding does not go through a size-keeping linear layer and tanh as specified")]
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
    if _error(ev):
        return Verdict(0.0, "forward fails on [batch, 4, length] inputs, so no [batch, 4] logits")
    ref = _ref_forward(ctx, got)
    g = _arr(ev.get("logits"))
    parts = [(g is not None and g.shape == ref["logits"].shape, f"logits have shape {fmt_shape(None if g is None else g.shape)}, expected {fmt_shape(ref['logits'].shape)} [batch, choices]"),
             (_close(g, ref["logits"]), "the logits differ from dense2 -> dropout -> classifier on the student's own weights")]
    return Verdict.of(parts, "dense2, classifier, logits [batch, 4]")


@check("2.3.loss")
def loss(ctx: CheckContext) -> Verdict:
    got = _forward(ctx)
    ev = got.get("eval")
    if _error(ev):
        return Verdict(0.0, "forward fails on [batch, 4, length] inputs, so no loss")
    g = ev.get("loss")
    if g is None:
        return Verdict(0.0, "forward returns no loss when labels are given")
    want = refs.cross_entropy(ev["logits"], ctx.input("custom_forward")["labels"])
    ok = abs(float(g) - want) < 1e-4 * max(1.0, abs(want))
    return Verdict(1.0 if ok else 0.0, "cross-entropy over the choices" if ok else f"the loss is {float(g):.4f}, cross-entropy over the choices gives {want:.4f}")


@check("2.3.model_config")
def model_config(ctx: CheckContext) -> Verdict:
    got = ctx.value("model_custom")
    cfg = got.get("config") or {}
    want = refs.store_config(DISTILBERT)
    keys = ("model_type", "dim", "n_layers", "n_heads", "hidden_dim", "vocab_size")
    same = all(cfg.get(k) == want.get(k) for k in keys)
    parts = [(bool(got.get("is_custom_class")), f"model_custom is a {got.get('class')}, not a CustomMultipleChoice"),
             (same, f"model_custom's config is not {DISTILBERT}'s")]
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
    parts = [(Path(str(got.get("output_dir", ""))).name == "custom_model", f"output_dir is {got.get('output_dir')!r}"),
             ("custom_model" in str(got.get("logging_dir") or "") and _set_in_source(code, "logging_dir"),
              f"logging_dir is not set to custom_model ({got.get('logging_dir')!r})"),
             ("custom_model" in str(got.get("run_name") or "") and _set_in_source(code, "run_name"),
              f"run_name is not set to custom_model ({got.get('run_name')!r})")]
    ok = all(p for p, _ in parts)
    return Verdict(1.0 if ok else 0.0, "output dir, logging dir and run name: custom_model" if ok else
                   "; ".join(m for p, m in parts if not p) + " (all three should be custom_model)")


@check("2.3.training")
def training(ctx: CheckContext) -> Verdict:
    args = _args_from_source(ctx.value("custom_args"), ctx.code("2.2") + ctx.code())
    runs = ctx.value("custom_trainer")
    trained = [t for t in runs.get("trained", []) if t.get("model_is_student_model") or t.get("model_class") == "CustomMultipleChoice"]
    spec = {k: v for k, v in TRAINING_SPEC.items() if k != "output_dir"}
    wrong, _notes = _compare_args(args, spec, batch_comment=any(src.commented_lines(ctx.code("2.2") + ctx.code(), f) for f in BATCH_FIELDS))
    parts = [(bool(trained), "the custom model is never trained in 2.3 (trainer.train() runs another model)"),
             (not wrong, "the training parameters differ from 2.2's: " + "; ".join(wrong))]
    ok = all(p for p, _ in parts)
    return Verdict(1.0 if ok else 0.0, "the custom model trained with 2.2's parameters" if ok else "; ".join(m for p, m in parts if not p))


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
    parts = [(str(hf.get("class", "")).endswith("ForMultipleChoice") and "final_model" in str(hf.get("name_or_path", "")),
              f"model_hf is not loaded from distilbert-base-uncased-swag/final_model ({hf.get('class')} from '{hf.get('name_or_path')}')"),
             (bool(custom.get("is_custom_class")) and same,
              f"model_custom is not the CustomMultipleChoice saved in 2.3 ({custom.get('class')})")]
    return Verdict.of(parts, "both models loaded from disk")


def _same_fingerprint(a: Any, b: Any) -> bool:
    if not isinstance(a, dict) or not isinstance(b, dict) or set(a) != set(b) or not a:
        return False
    return all(np.allclose(np.asarray(a[k][:2], dtype=float), np.asarray(b[k][:2], dtype=float), rtol=1e-4, atol=1e-5) for k in a)


@check("2.4.device_no_grad")
def device_no_grad(ctx: CheckContext) -> Verdict:
    trees = src.parse_cells(ctx.code())
    loops = src.loops_over(trees, "eval_dataloader")
    if not loops:
        return Verdict(0.0, "no evaluation loop over eval_dataloader found in the source")
    moved = any(src.call_name(n) in ("to", "cuda") for loop in loops for n in ast.walk(loop) if isinstance(n, ast.Call))
    no_grad = any(src.with_calls(loop, "no_grad") for loop in loops) or any(src.with_calls(t, "no_grad") for t in trees)
    parts = [(moved, "the batches are not moved to the device (.to(device)) in the loop"),
             (no_grad, "no `with torch.no_grad():` around the models' forward passes")]
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
            parts.append((False, f"{name}'s predictions could not be recomputed from its weights ({str(exc)[:100]})"))
            continue
        if preds is None:  # a model too large to ship: the kernel's own predictions, said so
            preds = model.get("preds")
            notes.append(f"{name}'s predictions are the notebook's own (too large to recompute here)")
        if preds is None or len(preds) != len(labels):
            parts.append((False, f"{name} gives no predictions on the validation rows"))
            continue
        truth = float((np.asarray(preds) == labels).mean())
        parts.append((abs(float(reported) - truth) < 1e-6, f"{acc_name} is {float(reported):.4f}, but {name} scores {truth:.4f} on the validation split"))
    verdict = Verdict.of(parts, "both accuracies match the models' predictions")
    if notes:
        verdict = Verdict(verdict.fraction, "; ".join(x for x in (verdict.message, *notes) if x))
    if got.get("rerun"):
        note = "your evaluation loop was run again with a working data collator, since yours (2.1) broke it: not charged twice"
        verdict = Verdict(verdict.fraction, f"{verdict.message}; {note}" if verdict.fraction < 1 else note)
    if not trusted and verdict.fraction > 0:
        return Verdict(verdict.fraction, (verdict.message + "; " if verdict.fraction < 1 else "")
                       + "the validation rows' labels are not the data set's: checked on the notebook's own rows")
    return verdict


def _recompute(name: str, model: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[int] | None:
    """The model's predictions on the notebook's validation rows, computed here from the weights it
    exported; None when it exported none (too large)."""
    weights = model.get("weights")
    if not isinstance(weights, dict) or not rows:
        return None
    if name == "model_custom":
        return refs.custom_predictions(weights, model.get("feature_config") or refs.store_config(DISTILBERT), rows)
    return refs.hf_predictions(weights, model.get("config") or {}, rows)


@check("2.4.metric_api")
def metric_api(ctx: CheckContext) -> Verdict:
    trees = src.parse_cells(ctx.code())
    got = ctx.value("evaluation")
    parts = [(bool(src.calls(trees, "add_batch")), "the metrics' add_batch is not used"),
             (bool(src.calls(trees, "compute")) and got.get("acc_hf") is not None, "the metrics' compute() does not give acc_hf and acc_custom")]
    return Verdict.of(parts, "add_batch and compute")


# --- 3.1 -------------------------------------------------------------------------------------------


@check("3.1.tokenizer")
def t5_tokenizer(ctx: CheckContext) -> Verdict:
    got = ctx.value("t5_tokenizer")
    ids_ok = [list(map(int, x)) for x in got.get("ids", [])] == refs.t5_ids(ctx.input("t5_tokenizer")["texts"])
    parts = [("T5" in str(got.get("class")) and str(got.get("name_or_path", "")).rstrip("/").endswith("t5-small"),
              f"t5_tokenizer is a {got.get('class')} from '{got.get('name_or_path')}', expected t5-small's"),
             (ids_ok and got.get("model_max_length") == 512, f"its ids or maximum length ({got.get('model_max_length')}) differ from t5-small's (512)")]
    return Verdict.of(parts, "t5-small's tokenizer, 512 tokens")


def _canon_input(text: str) -> str:
    t = _norm_ws(text)
    t = re.sub(r"question:\s*", "question: ", t)
    t = re.sub(r"\s*context:\s*", " context: ", t)
    return re.sub(r"\s*</s>$", " </s>", t)


@check("3.1.add_eos")
def add_eos(ctx: CheckContext) -> Verdict:
    got = ctx.value("add_eos")
    rows = ctx.input("add_eos")["rows"]
    parts: list[tuple[bool, str]] = []
    for g, r in zip(got, rows, strict=False):
        want_in = _canon_input(f"question: {r['question']} context: {r['context']} </s>")
        want_out = _norm_ws(f"{r['answers']['text'][0]} </s>")
        parts.append((_canon_input(g.get("input_text") or "") == want_in, f"input_text is {str(g.get('input_text'))[:70]!r}..., expected 'question: ... context: ... </s>'"))
        parts.append((_norm_ws(g.get("target_text")) == want_out, f"target_text is {str(g.get('target_text'))[:70]!r}, expected {want_out!r}"))
    verdict = Verdict.of(parts or [(False, "add_eos_to_examples gave no rows")], "prefixes and </s> as specified")
    return Verdict(verdict.fraction, "; ".join(dict.fromkeys(verdict.message.split("; "))))


def _maps_of(ctx: CheckContext, function: str) -> list[Any]:
    trees = src.parse_cells(ctx.code())
    return [c for c in src.calls(trees, "map") if any(function in src.names_in(a) for a in [*c.args, *(k.value for k in c.keywords)])]


@check("3.1.map_add_eos")
def map_add_eos(ctx: CheckContext) -> Verdict:
    maps = _maps_of(ctx, "add_eos_to_examples")
    if not maps:
        return Verdict(0.0, "add_eos_to_examples is not applied with the data set's map")
    batched = any(isinstance(v := src.keyword(c, "batched"), ast.Constant) and v.value for c in maps)
    return Verdict(0.5 if batched else 1.0, "map is given batched=True, which the assignment says not to set" if batched else "map, not batched")


def _t5_canon(ids: Sequence[int]) -> list[int]:
    """T5 ids as every tokenizer release agrees on them: "answer </s>" is [.., 1] for 4.35's slow
    tokenizer, [.., 3, 1, 1] for its fast one and [.., 1, 1] for 5.x's. Padding off, a lone "▁" (3)
    before </s> (1) dropped, repeated </s> collapsed: "Harry</s>" and "Harry </s>" are the same target."""
    out: list[int] = []
    body = list(ids)
    while body and body[-1] == 0:
        body.pop()
    for i, t in enumerate(body):
        if t == 3 and i + 1 < len(body) and body[i + 1] == 1:
            continue
        if t == 1 and out and out[-1] == 1:
            continue
        out.append(t)
    return out


@check("3.1.convert")
def convert(ctx: CheckContext) -> Verdict:
    got = ctx.value("convert")
    rows = ctx.input("convert")["rows"]
    results = got.get("rows", [])
    texts = got.get("texts", [])
    if len(results) != len(rows) or len(texts) != len(rows):
        return Verdict(0.0, f"convert_to_features gave {len(results)} rows for {len(rows)} examples")
    # convert_to_features tokenizes what add_eos_to_examples made of each row (the student's own
    # texts: a wrong format is add_eos's item, not charged twice). The texts the kernel names must
    # be made of that row: its question, context and answer.
    for t, r in zip(texts, rows, strict=True):
        have = _norm_ws(f"{t.get('input_text')} {t.get('target_text')}").lower()
        if not all(_norm_ws(x).lower() in have for x in (r["question"], r["context"], r["answers"]["text"][0])):
            return Verdict(0.0, "convert_to_features was not given the examples' own question, context and answer")
    want = [refs.t5_features(str(t.get("input_text") or ""), str(t.get("target_text") or "")) for t in texts]
    in_ok = tgt_ok = True
    nested = False
    for g, w in zip(results, want, strict=True):
        for key, flag in (("input_ids", "in"), ("target_ids", "tgt")):
            a = _arr(g.get(key))
            if a is not None and a.ndim == 2 and a.shape[0] == 1:
                nested, a = True, a[0]
            same = (a is not None and a.ndim == 1 and len(a) == len(w[key])
                    and _t5_canon(list(map(int, a))) == _t5_canon(w[key]))
            if flag == "in":
                in_ok = in_ok and same
            else:
                tgt_ok = tgt_ok and same
    trees = src.parse_cells(ctx.code())
    fns = src.defs(trees, "convert_to_features")
    uses_texts = bool(fns) and {"input_text", "target_text"} & src.subscripts(fns[-1]) == {"input_text", "target_text"}
    parts = [
        (in_ok, "the input ids differ from tokenizing input_text to 512 tokens (truncated and padded)"),
        (tgt_ok, "the target ids differ from tokenizing target_text to 16 tokens (truncated and padded)"),
        (not nested, "each row is [1, N]: return one row per example (the map was not batched but the tokenizer returned a batch)"),
        (uses_texts, "convert_to_features does not tokenize add_eos_to_examples' input_text and target_text"),
    ]
    weights = (0.375, 0.375, 0.125, 0.125)
    frac = sum(w for (ok, _), w in zip(parts, weights, strict=True) if ok)
    note = got.get("note") or ""
    msg = "; ".join(m for ok, m in parts if not ok)
    return Verdict(frac, "; ".join(x for x in (msg, note) if x) or "input and target tokenized, truncated and padded")


@check("3.1.map_convert")
def map_convert(ctx: CheckContext) -> Verdict:
    got = ctx.value("squad_data")
    cols = set(got.get("column_names", []))
    parts = [(bool(_maps_of(ctx, "convert_to_features")), "convert_to_features is not applied with the data set's map"),
             ({"input_ids", "attention_mask", "target_ids"} <= cols, f"encoded_squad lacks input_ids / attention_mask / target_ids (it has {sorted(cols)[:8]})")]
    return Verdict.of(parts, "map of convert_to_features")


@check("3.1.torch_format")
def torch_format(ctx: CheckContext) -> Verdict:
    got = ctx.value("squad_data")
    row = got.get("row", {})
    ids, tgt = row.get("input_ids", {}), row.get("target_ids", {})
    tensors = got.get("format_type") == "torch" and ids.get("type") == "Tensor" and tgt.get("type") == "Tensor"
    if not tensors:
        return Verdict(0.0, f"encoded_squad's rows are {ids.get('type')}, expected torch tensors (set_format)")
    if ids.get("shape") == [512] and tgt.get("shape") == [16]:
        return Verdict(1.0, "torch tensors, [512] and [16]")
    return Verdict(0.5, f"rows are tensors of shape {ids.get('shape')} and {tgt.get('shape')}, expected [512] and [16]")


def _t2t(ctx: CheckContext) -> dict[str, Any]:
    got = ctx.value("t2t_collator")
    if all(_error(got.get(k)) for k in ("own", "fresh")):
        raise Missing(f"T2TDataCollator failed: {_error(got.get('own'))}")
    return got


def _stacked(rows: Sequence[Mapping[str, Any]], key: str, dims: int = 2) -> np.ndarray | None:
    try:
        return _squeeze_rows(np.stack([np.asarray(r[key]) for r in rows]), dims)
    except (KeyError, ValueError, TypeError):
        return None


@check("3.1.collator_stack")
def collator_stack(ctx: CheckContext) -> Verdict:
    got = _t2t(ctx)
    parts: list[tuple[bool, str]] = []
    for key in ("own", "fresh"):
        entry = got.get(key, {})
        if _error(entry):
            parts.append((False, f"on {'your own rows' if key == 'own' else 'other rows'} the collator fails: {_error(entry)[:120]}"))
            continue
        vals = entry.get("values", {})
        ok = True
        for name in ("input_ids", "attention_mask"):
            want = _stacked(entry.get("inputs", []), name)
            have = _arr(vals.get(name))
            ok = ok and want is not None and have is not None and _squeeze_rows(have, 2).shape == want.shape and np.array_equal(_squeeze_rows(have, 2), want)
        parts.append((ok, f"input_ids / attention_mask are not the rows stacked ({'your own rows' if key == 'own' else 'other rows'})"))
    return Verdict.of(parts, "the rows stacked into [batch, 512]")


@check("3.1.collator_keys")
def collator_keys(ctx: CheckContext) -> Verdict:
    got = _t2t(ctx)
    allowed = {"input_ids", "attention_mask", "labels", "decoder_attention_mask", "decoder_input_ids"}
    for key in ("own", "fresh"):
        entry = got.get(key, {})
        if _error(entry):
            continue
        keys = set(entry.get("keys", []))
        if not {"input_ids", "attention_mask", "labels"} <= keys:
            return Verdict(0.0, f"the batch's keys are {sorted(keys)}: T5 needs input_ids, attention_mask and labels")
        if keys - allowed:
            return Verdict(0.0, f"the batch has keys T5's forward does not take: {sorted(keys - allowed)}")
        return Verdict(1.0, f"keys {sorted(keys)}")
    return Verdict(0.0, "the collator gave no batch")


@check("3.1.collator_labels")
def collator_labels(ctx: CheckContext) -> Verdict:
    got = _t2t(ctx)
    parts: list[tuple[bool, str]] = []
    for key in ("own", "fresh"):
        entry = got.get(key, {})
        if _error(entry):
            parts.append((False, f"the collator fails on {'your own rows' if key == 'own' else 'other rows'}"))
            continue
        target = _stacked(entry.get("inputs", []), "target_ids")
        lab = _arr(entry.get("values", {}).get("labels"))
        if target is None or lab is None or _squeeze_rows(lab, 2).shape != target.shape:
            parts.append((False, "labels are missing or not [batch, 16]"))
            continue
        lab = _squeeze_rows(lab, 2)
        pad = target == 0
        parts.append((bool(np.all(lab[pad] == -100)) and bool(np.array_equal(lab[~pad], target[~pad])),
                      "labels are not target_ids with -100 on the padding"))
    return Verdict.of(parts, "labels: target_ids, -100 on the padding")


# --- 3.2 -------------------------------------------------------------------------------------------


@check("3.2.model")
def t5_model(ctx: CheckContext) -> Verdict:
    got = ctx.value("t5_model")
    want = refs.store_config("t5-small")
    cfg = got.get("config", {})
    same = all(cfg.get(k) == want.get(k) for k in ("d_model", "num_layers", "num_heads", "vocab_size", "d_ff"))
    parts = [(got.get("class") == "T5ForConditionalGeneration", f"t5 is a {got.get('class')}, expected T5ForConditionalGeneration"),
             (same and str(got.get("name_or_path", "")).rstrip("/").endswith("t5-small"), f"t5 is not t5-small (loaded from '{got.get('name_or_path')}')")]
    return Verdict.of(parts, "T5ForConditionalGeneration from t5-small")


@check("3.2.training_args")
def seq2seq_args(ctx: CheckContext) -> Verdict:
    got = _args_from_source(ctx.value("seq2seq_args"), ctx.code())
    wrong, _ = _compare_args(got, SEQ2SEQ_SPEC)
    if got.get("__class__") != "Seq2SeqTrainingArguments":
        wrong.append(f"the arguments are a {got.get('__class__')}, expected Seq2SeqTrainingArguments")
    # "all training parameters: 1": the course's graders gave this item whole or not at all
    return Verdict(0.0 if wrong else 1.0, "; ".join(wrong) or "every setting as specified")


@check("3.2.trainer")
def seq2seq_trainer(ctx: CheckContext) -> Verdict:
    got = ctx.value("seq2seq_trainer")
    wrong = []
    if "Seq2SeqTrainer" not in got.get("mro", [got.get("class")]):
        wrong.append(f"the trainer is a {got.get('class')}, expected Seq2SeqTrainer")
    if not (got.get("model_is_student_model") or got.get("model_class") == "T5ForConditionalGeneration"):
        wrong.append(f"the trainer trains a {got.get('model_class')}, not t5")
    if got.get("collator_class") != "T2TDataCollator":
        wrong.append(f"the data collator is {got.get('collator_class')}, expected T2TDataCollator")
    if not (got.get("train_dataset") or {}).get("rows"):
        wrong.append("no train_dataset")
    return _tiered(wrong, "Seq2SeqTrainer with t5, the data and T2TDataCollator")


# --- 3.3 -------------------------------------------------------------------------------------------


@check("3.3.model")
def qa_model(ctx: CheckContext) -> Verdict:
    got = ctx.value("qa_model")
    rows = got.get("embedding_rows")
    weights = rows is not None and np.allclose(np.asarray(rows, dtype=np.float32), refs.store_embedding_rows(QA_MODEL), atol=1e-5)
    parts = [(got.get("t5_model") == QA_MODEL and weights, f"t5_model is not {QA_MODEL} (loaded from '{got.get('t5_model')}')"),
             (got.get("t5_tokenizer") == QA_MODEL, f"t5_tokenizer was loaded from '{got.get('t5_tokenizer')}', expected '{QA_MODEL}'")]
    return Verdict.of(parts, f"{QA_MODEL}'s model and tokenizer")


def _answers(ctx: CheckContext) -> list[tuple[dict[str, Any], dict[str, str]]]:
    got = ctx.value("get_answer")
    examples = ctx.input("get_answer")["examples"]
    if not isinstance(got, list) or len(got) != len(examples):
        raise Missing("get_answer gave no answers")
    return list(zip(got, examples, strict=True))


@check("3.3.input")
def qa_input(ctx: CheckContext) -> Verdict:
    parts = []
    for g, ex in _answers(ctx):
        text = _norm_ws(refs.t5_text(g.get("encoder_input_ids") or [])).lower()
        q, c = _norm_ws(ex["question"]).lower(), _norm_ws(ex["context"]).lower()
        ok = q in text and c[:120] in text and -1 < text.find("question") < text.find(q) and "context" in text
        parts.append((ok, f"the model's input should be 'question: {ex['question'][:30]}... context: ...'; it was {text[:80]!r}"))
    v = Verdict.of(parts, "'question: ... context: ...'")
    return Verdict(v.fraction, "; ".join(list(dict.fromkeys(v.message.split("; ")))[:2]))


def _same_generation(a: list[int], b: list[int]) -> bool:
    """Greedy generations agree, allowing for a different default length limit (20 tokens in 4.35,
    21 in 5.x): one is the other cut short, and the shorter one never reached </s>."""
    if a == b:
        return True
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return long_[: len(short)] == short and 1 not in short[1:]


@check("3.3.generate")
def qa_generate(ctx: CheckContext) -> Verdict:
    parts = []
    for g, _ex in _answers(ctx):
        call = g.get("generate")
        if not call:
            parts.append((False, "get_answer does not call model.generate"))
            continue
        again = refs.regenerate(call)
        parts.append((again is None or _same_generation(again, [int(x) for x in call.get("output_ids", [])]),
                      "what model.generate returned could not be reproduced from its inputs"))
    return Verdict.of(parts, "model.generate")


@check("3.3.decode")
def qa_decode(ctx: CheckContext) -> Verdict:
    parts = []
    for g, _ex in _answers(ctx):
        call = g.get("generate") or {}
        answer = str(g.get("answer", ""))
        decoded = _norm_ws(refs.t5_decode(call.get("output_ids", []))) if call else None
        plain = g.get("type") == "str" and not any(t in answer for t in SPECIAL_TOKENS)
        same = decoded is not None and squad_normalize(_norm_ws(answer)) == squad_normalize(decoded)
        parts.append((plain and same, f"get_answer returned {answer[:60]!r}; the generated text without special tokens is {decoded!r} (decode with skip_special_tokens=True)"))
    v = Verdict.of(parts, "the generated text, without special tokens")
    return Verdict(v.fraction, "; ".join(list(dict.fromkeys(v.message.split("; ")))[:2]))


# --- manual items ----------------------------------------------------------------------------------


def _mentions(text: str, pattern: str) -> bool:
    return bool(re.search(pattern, text.lower()))


def manual_hints(item_id: str, text: str) -> list[str]:
    """Facts a TA can rely on, checked automatically in the student's written answer."""
    low = text.lower()
    if not text.strip():
        return ["no answer written"]
    hints: list[str] = []
    if item_id == "2.2.ids":
        hints.append(("mentions" if _mentions(low, r"\b101\b") else "does not mention") + " [CLS] id 101")
        hints.append(("mentions" if _mentions(low, r"\b103\b") else "does not mention") + " [MASK] id 103")
    if item_id == "2.2.dropout":
        hints.append(("mentions" if _mentions(low, r"(?<![\d.])0?\.1\b") else "does not mention") + " attention dropout 0.1")
    if item_id == "2.1.fields":
        for f in ("sent1", "sent2", "ending", "label"):
            hints.append(("explains" if f in low else "does not name") + f" `{f}`")
    if item_id.startswith("1.4"):
        hints.append(("mentions" if any(x in low for x in ("l^2", "l²", "n^2", "l^{2}")) else "does not mention") + " quadratic cost in l")
    return hints


def suggest(item_id: str, text: str) -> tuple[float, str] | None:
    """Points the grader suggests for a confirm item (a TA confirms or changes them)."""
    low = text.lower()
    if not low.strip() or "enter your answer here" in low:
        return 0.0, "no answer written"
    if item_id == "2.2.ids":
        ok = _mentions(low, r"\b101\b") and _mentions(low, r"\b103\b")
        return (1.0, "names [CLS] 101 and [MASK] 103") if ok else (0.0, "does not name [CLS] 101 and [MASK] 103")
    if item_id == "2.2.dropout":
        ok = _mentions(low, r"(?<![\d.])0?\.1\b")
        return (1.0, "names the attention dropout 0.1") if ok else (0.0, "does not name the attention dropout 0.1")
    if item_id == "2.1.fields":
        named = [f for f in ("sent1", "sent2", "ending", "label") if re.search(rf"{f}\w*`?\s*:?\s*\w+", low)]
        ok = len(named) == 4
        return (1.0, "explains sent1, sent2, the endings and label") if ok else (0.0, f"explains only {', '.join(named) or 'none'} of sent1, sent2, ending0-3, label")
    return None


def reference_answer(name: str) -> str:
    return _answers_text().get(name, "")


def _answers_text() -> dict[str, str]:
    from reference import t5_paper, task1, task2

    out = {
        "2.1.fields": "\n".join(f"- `{k}`: {v}" for k, v in task2.FIELD_MEANINGS.items()),
        "2.2.questions": "[CLS] has id 101 and [MASK] id 103 (vocab.txt); the attention dropout is 0.1 (config.json: attention_dropout).",
        "3.4": t5_paper.reference_text(),
    }
    for sub in ("1.1", "1.2", "1.3", "1.4"):
        out[sub] = "\n\n".join(f"**{a.id}** {a.answer}\n\nKey points: " + "; ".join(a.key_points) for a in task1.ANSWERS if a.subtask == sub)
    return out
