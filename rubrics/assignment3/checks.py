"""Trusted checks for Assignment 3, run in the grader's process.

Expected values come from the reference implementation (``reference/``), computed here, outside the
student's kernel, on the same inputs the probes received: for most probes the *same probe function*
is applied to a namespace of reference objects, so student and reference go through identical code.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import string
import sys
from pathlib import Path
from typing import Any

import numpy as np

from grader.checks import CheckContext, Missing, Verdict, check, close, fmt_shape
from grader.kernel_probe import to_data
from grader.probe import from_data

HERE = Path(__file__).resolve().parent
TOY_TEXT = ("This is the first sentence!", "And this is the second one.")
SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>", "<extra_id_")


def _probes_module() -> Any:
    name = "grader_rubric_assignment3_probes"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "probes.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --- inputs ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _data(seed: int) -> dict[str, Any]:
    from reference import task2, task3

    swag = task2.load_datasets()
    squad = task3.load_squad()
    rng = np.random.default_rng(seed)
    val = swag["validation"]
    hidden_rows = sorted(int(i) for i in rng.choice(len(val), size=min(5, len(val)), replace=False))
    sq_val = squad["validation"]
    lengths = [len(r["context"]) for r in sq_val]
    longest = int(np.argmax(lengths))
    sq_rows = sorted({*(int(i) for i in rng.choice(len(sq_val), size=min(3, len(sq_val)), replace=False)), longest})
    return {
        "swag_train0": dict(swag["train"][0]),
        "swag_train2": swag["train"][:2],
        "swag_hidden": val[hidden_rows],
        "swag_val_all": val[:],
        "squad_train2": [dict(squad["train"][i]) for i in range(2)],
        "squad_hidden": [dict(sq_val[i]) for i in sq_rows],
    }


@functools.lru_cache(maxsize=4)
def _tokenizers() -> tuple[Any, Any]:
    from reference import task2, task3

    return task2.load_tokenizer(), task3.load_t5_tokenizer()


def _mc_features(examples: dict[str, list[Any]]) -> list[dict[str, Any]]:
    from reference import task2

    tok, _ = _tokenizers()
    enc = task2.preprocess_function(examples, tok)
    return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "label": int(examples["label"][i])} for i in range(len(examples["label"]))]


def _t5_batch(examples: list[dict[str, Any]]) -> dict[str, list[Any]]:
    from reference import task3

    rows = [task3.add_eos_to_examples(dict(ex)) for ex in examples]
    return {k: [r[k] for r in rows] for k in rows[0]}


def _t5_features(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from reference import task3

    _, t5 = _tokenizers()
    batch = _t5_batch(examples)
    enc = task3.convert_to_features(batch, t5)
    return [{"input_text": batch["input_text"][i], "target_text": batch["target_text"][i], **{k: enc[k][i] for k in enc}} for i in range(len(examples))]


def _cache_key(seed: int) -> str:
    """Inputs and reference values depend on these files and the store's content, nothing else."""
    import hashlib

    from grader.store import store_root

    h = hashlib.sha256(str(seed).encode())
    repo = HERE.parent.parent
    for path in (HERE / "checks.py", HERE / "probes.py", repo / "reference" / "task2.py", repo / "reference" / "task3.py", store_root() / "manifest.json"):
        h.update(path.read_bytes() if path.is_file() else b"-")
    return h.hexdigest()[:20]


def _cached(kind: str, seed: int, compute: Any) -> dict[str, Any]:
    """A JSON file cache under build/cache (outside any kernel's reach): computing the inputs and the
    reference values loads models and data sets, seconds that every grading process would repeat."""
    import json
    import os

    path = HERE.parent.parent / "build" / "cache" / f"assignment3-{kind}-{_cache_key(seed)}.json"
    try:
        return from_data(json.loads(path.read_text(encoding="utf-8")))  # type: ignore[no-any-return]
    except (OSError, ValueError):
        pass
    value = from_data(to_data(compute()))  # the same shape whether computed now or read back
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(to_data(value)), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only checkout still grades, only slower
    return value  # type: ignore[no-any-return]


def make_inputs(rubric: Any, names: tuple[str, ...], cells: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The inputs each probe receives; hidden ones are drawn with the rubric's hidden seed.

    ``cells`` (the notebook's code by subtask) lets the evaluation probe re-run the student's own
    Subtask 2.4 loop with the reference collator when theirs broke it: a 2.1 bug is not charged twice."""
    inputs = dict(_all_inputs(int(rubric.hidden_seed)))
    inputs["evaluation"] = {**inputs["evaluation"], "rerun_cells": list((cells or {}).get("2.4", []))}
    return inputs


@functools.lru_cache(maxsize=4)
def _all_inputs(seed: int) -> dict[str, Any]:
    return _cached("inputs", seed, lambda: _compute_inputs(seed))


def _compute_inputs(seed: int) -> dict[str, Any]:
    import inspect

    from reference import task2, task3

    d = _data(seed)
    rng = np.random.default_rng(seed + 1)
    tiny_dim = _tiny_dim()
    head_shapes = [("dense.weight", [tiny_dim, tiny_dim]), ("dense.bias", [tiny_dim]),
                   ("dense2.weight", [tiny_dim // 4, tiny_dim]), ("dense2.bias", [tiny_dim // 4]),
                   ("classifier.weight", [1, tiny_dim // 4]), ("classifier.bias", [1])]
    public_feats = _mc_features(d["swag_train2"])
    batch = task2.MultipleChoiceDataCollator(_tokenizers()[0])([dict(f) for f in public_feats])
    qa_hidden = [{"question": ex["question"], "context": ex["context"]} for ex in d["squad_hidden"][:2]]
    return {
        "explain_example": {"example": d["swag_train0"]},
        "tokenizer": {"first": TOY_TEXT[0], "second": TOY_TEXT[1]},
        "ending_names": {},
        "preprocess_public": {"examples": d["swag_train2"]},
        "preprocess_hidden": {"examples": d["swag_hidden"]},
        "collator_public": {"features": public_feats},
        "collator_hidden": {"features": _mc_features(d["swag_hidden"])[:3]},
        "model_hf": {}, "training_args": {}, "trainer_hf": {}, "saved_hf": {},
        "compute_metrics_public": {"predictions": task2.TOY_PREDICTIONS, "labels": task2.TOY_LABELS},
        "compute_metrics_hidden": {"predictions": rng.normal(size=(16, 4)).round(4).tolist(), "labels": rng.integers(0, 4, 16).tolist()},
        "custom_head_real": {},
        "custom_head_dropout": {"dropout": 0.37, "dim": 64},
        "custom_forward": {"seed": seed, "head_shapes": head_shapes, "input_ids": batch["input_ids"].tolist(),
                           "attention_mask": batch["attention_mask"].tolist(), "labels": batch["labels"].tolist()},
        "custom_args": {}, "trainer_custom": {}, "saved_custom": {},
        "evaluation": {"features": _mc_features(d["swag_val_all"]),
                       "reference_collator": task2.NOTEBOOK_IMPORTS["MultipleChoiceDataCollator"] + "\n\n" + inspect.getsource(task2.MultipleChoiceDataCollator)},
        "add_eos_public": {"examples": d["squad_train2"][:1]},
        "add_eos_hidden": {"examples": d["squad_hidden"]},
        "convert_public": {"batch": _t5_batch(d["squad_train2"])},
        "convert_hidden": {"batch": _t5_batch(d["squad_hidden"])},
        "torch_format": {},
        "t2t_public": {"features": _t5_features(d["squad_train2"])},
        "t2t_hidden": {"features": _t5_features(d["squad_hidden"])},
        "t5_model": {}, "seq2seq_args": {}, "seq2seq_trainer": {}, "qa_model": {},
        "get_answer_public": {"examples": [{"question": e["question"], "context": e["context"]} for e in task3.QA_EXAMPLES]},
        "get_answer_hidden": {"examples": qa_hidden},
    }


def _tiny_dim() -> int:
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained("distilbert-base-uncased").dim)


# --- reference values ------------------------------------------------------------------------------

REFERENCE_PROBES = (
    "explain_example", "tokenizer", "ending_names", "preprocess_public", "preprocess_hidden", "collator_public",
    "collator_hidden", "compute_metrics_public", "compute_metrics_hidden", "custom_head_real", "custom_head_dropout",
    "custom_forward", "add_eos_public", "add_eos_hidden", "convert_public", "convert_hidden", "t2t_public",
    "t2t_hidden", "get_answer_public", "get_answer_hidden",
)


def reference(rubric: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    return _reference(int(rubric.hidden_seed))


@functools.lru_cache(maxsize=4)
def _reference(seed: int) -> dict[str, Any]:
    return _cached("reference", seed, lambda: _compute_reference(seed))


def _compute_reference(seed: int) -> dict[str, Any]:
    """Run the same probe functions on a namespace of reference objects, in this process."""
    from reference import task2, task3

    tok, t5 = _tokenizers()
    ns = {
        "explain_example": task2.explain_example,
        "tokenizer": tok,
        "ending_names": task2.ENDING_NAMES,
        "preprocess_function": lambda ex: task2.preprocess_function(ex, tok),
        "MultipleChoiceDataCollator": task2.MultipleChoiceDataCollator,
        "compute_metrics": task2.compute_metrics,
        "CustomMultipleChoice": task2.CustomMultipleChoice,
        "add_eos_to_examples": task3.add_eos_to_examples,
        "convert_to_features": lambda b: task3.convert_to_features(b, t5),
        "T2TDataCollator": task3.T2TDataCollator,
        "get_answer": task3.get_answer,
    }
    probes = _probes_module()
    inputs = _all_inputs(seed)
    out: dict[str, Any] = {}
    for name in REFERENCE_PROBES:
        out[name] = from_data(to_data(getattr(probes, name)(ns, inputs[name])))
    out["training_spec"] = dict(task2.TRAINING_SPEC)
    out["seq2seq_spec"] = dict(task3.SEQ2SEQ_SPEC)
    out["tiny_dim"] = _tiny_dim()
    return out


# --- helpers ---------------------------------------------------------------------------------------


def _norm_ws(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def squad_normalize(text: str) -> str:
    """SQuAD's answer normalization: lower case, no punctuation, no articles, single spaces."""
    text = (text or "").lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _arr(batch: Any, key: str) -> np.ndarray | None:
    if not isinstance(batch, dict) or key not in batch:
        return None
    try:
        return np.asarray(batch[key])
    except (TypeError, ValueError):
        return None


def _accuracy(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("accuracy", next(iter(value.values()), None) if len(value) == 1 else None)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# --- 2.1 -------------------------------------------------------------------------------------------


@check("2.1.explain_example")
def explain_example(ctx: CheckContext) -> Verdict:
    got = ctx.value("explain_example")
    ex = ctx.inputs["explain_example"]["example"]
    text = (got.get("stdout") or "") + "\n" + (got.get("returned") or "")
    low = _norm_ws(text).lower()
    letters = "ABCD"
    truth = f"{letters[ex['label']]}"
    parts = [
        (_norm_ws(ex["sent1"]).lower() in low, "the context (sent1) is not shown"),
        (all(_norm_ws(ex[f"ending{i}"]).lower() in low for i in range(4)), "not all four endings are shown"),
        (bool(re.search(r"ground\s*truth", low)), "no 'Ground truth' line"),
        (bool(re.search(rf"ground\s*truth\W*(?:option\W*)?{truth.lower()}\b", low)) or _norm_ws(ex[f"ending{ex['label']}"]).lower() in low.split("ground truth")[-1],
         f"the ground truth should be option {truth}"),
    ]
    return Verdict.of(parts, "shows the context, the four options and the ground truth")


@check("2.1.tokenizer")
def tokenizer(ctx: CheckContext) -> Verdict:
    got, ref = ctx.value("tokenizer"), ctx.reference["tokenizer"]
    parts = [
        (bool(got.get("is_fast")), f"the tokenizer is {got.get('class')}, not a fast tokenizer"),
        ("distilbert-base-uncased" in str(got.get("name_or_path")), f"the tokenizer was loaded from '{got.get('name_or_path')}', expected 'distilbert-base-uncased'"),
        (list(got.get("input_ids", [])) == list(ref["input_ids"]), "its ids for the example sentence pair differ from distilbert-base-uncased's"),
    ]
    return Verdict.of(parts, "fast distilbert-base-uncased tokenizer")


@check("2.1.ending_names")
def ending_names(ctx: CheckContext) -> Verdict:
    got = ctx.value("ending_names")
    ok = list(got) == list(ctx.reference["ending_names"])
    return Verdict(1.0 if ok else 0.0, "" if ok else f"ending_names is {list(got)!r}, expected {ctx.reference['ending_names']!r}")


def _compare_preprocess(got: Any, ref: Any, label: str) -> Verdict:
    if not isinstance(got, dict) or "input_ids" not in got:
        return Verdict(0.0, f"preprocess_function on {label} returned no 'input_ids'")
    g, r = got["input_ids"], ref["input_ids"]
    shape = (len(g), len(g[0]) if g and hasattr(g[0], "__len__") else None)
    want = (len(r), len(r[0]))
    if shape != want:
        return Verdict(0.0, f"on {label}: input_ids has {shape[0]} × {shape[1]} groups, expected {want[0]} × {want[1]} (one list of 4 choices per example)")
    lengths = [len(x) for x in g[0]]
    parts = [
        (lengths == [len(x) for x in r[0]], f"on {label}: the first example's choice lengths are {lengths}, expected {[len(x) for x in r[0]]}"),
        ([[list(map(int, x)) for x in grp] for grp in g] == [[list(x) for x in grp] for grp in r], f"on {label}: token ids differ from the reference (is each first sentence paired with header + ending?)"),
    ]
    return Verdict.of(parts)


@check("2.1.preprocess")
def preprocess_public(ctx: CheckContext) -> Verdict:
    return _compare_preprocess(ctx.value("preprocess_public"), ctx.reference["preprocess_public"], "train[:2]")


@check("2.1.preprocess_hidden")
def preprocess_hidden(ctx: CheckContext) -> Verdict:
    return _compare_preprocess(ctx.value("preprocess_hidden"), ctx.reference["preprocess_hidden"], "other rows")


def _compare_mc_batch(got: Any, ref: Any) -> Verdict:
    parts: list[tuple[bool, str]] = []
    for key in ("input_ids", "attention_mask"):
        g, r = _arr(got, key), _arr(ref, key)
        assert r is not None
        if g is None:
            parts.append((False, f"the batch has no '{key}'"))
            continue
        ok = g.shape == r.shape
        parts.append((ok, f"{key} has shape {fmt_shape(g.shape)}, expected {fmt_shape(r.shape)} ([batch, 4 choices, longest length in the batch])"))
        if ok:
            parts.append((bool(np.array_equal(g, r)), f"{key} values differ from the reference"))
    lab = _arr(got, "labels")
    if lab is None:
        lab = _arr(got, "label")
        if lab is not None:
            parts.append((False, "the labels are under 'label'; the model expects 'labels'"))
    r = _arr(ref, "labels")
    assert r is not None
    if lab is None:
        parts.append((False, "the batch has no 'labels'"))
    else:
        parts.append((lab.shape == r.shape, f"labels has shape {fmt_shape(lab.shape)}, expected {fmt_shape(r.shape)}"))
        parts.append((lab.shape == r.shape and np.array_equal(lab, r), "labels values differ from the examples' labels"))
    return Verdict.of(parts)


@check("2.1.collator")
def collator_public(ctx: CheckContext) -> Verdict:
    return _compare_mc_batch(ctx.value("collator_public"), ctx.reference["collator_public"])


@check("2.1.collator_hidden")
def collator_hidden(ctx: CheckContext) -> Verdict:
    return _compare_mc_batch(ctx.value("collator_hidden"), ctx.reference["collator_hidden"])


# --- 2.2 -------------------------------------------------------------------------------------------


@check("2.2.model_hf")
def model_hf(ctx: CheckContext) -> Verdict:
    got = ctx.value("model_hf")
    parts = [
        (str(got.get("class", "")).endswith("ForMultipleChoice"), f"model_hf is a {got.get('class')}, expected a multiple-choice model (AutoModelForMultipleChoice)"),
        (got.get("model_type") == "distilbert", f"model_hf is a {got.get('model_type')} model, expected distilbert"),
    ]
    return Verdict.of(parts)


def _compare_args(got: dict[str, Any], spec: dict[str, Any], skip: tuple[str, ...] = ()) -> Verdict:
    parts: list[tuple[bool, str]] = []
    for key, want in spec.items():
        if key in skip:
            continue
        if key == "eval_strategy":
            val = got.get("eval_strategy", got.get("evaluation_strategy"))
            val = str(getattr(val, "value", val)).lower().replace("intervalstrategy.", "")
            parts.append((val == str(want), f"eval_strategy is '{val}', expected '{want}'"))
            continue
        if key == "max_steps" and got.get("max_steps") != want:
            epochs = got.get("num_train_epochs")
            extra = f" (num_train_epochs={epochs:g} instead?)" if isinstance(epochs, (int, float)) and epochs == want else ""
            parts.append((False, f"max_steps is {got.get('max_steps')}, expected {want}: train for {want} steps{extra}"))
            continue
        val = got.get(key)
        if isinstance(want, float):
            ok = isinstance(val, (int, float)) and abs(float(val) - want) <= 1e-12 + 1e-9 * abs(want)
        elif key == "output_dir":
            ok = isinstance(val, str) and Path(val).name == want
        else:
            ok = val == want
        parts.append((ok, f"{key} is {val!r}, expected {want!r}"))
    return Verdict.of(parts, "every field as specified")


@check("2.2.training_args")
def training_args(ctx: CheckContext) -> Verdict:
    return _compare_args(ctx.value("training_args"), ctx.reference["training_spec"])


@check("2.2.compute_metrics")
def compute_metrics_public(ctx: CheckContext) -> Verdict:
    got = ctx.value("compute_metrics_public")
    ref = _accuracy(ctx.reference["compute_metrics_public"])
    parts = [
        (isinstance(got, dict), f"compute_metrics returned a {type(got).__name__}, expected a dict such as {{'accuracy': ...}}"),
        (_accuracy(got) is not None and ref is not None and abs(_accuracy(got) - ref) < 1e-6, f"accuracy on the toy predictions is {_accuracy(got)}, expected {ref}"),  # type: ignore[operator]
    ]
    return Verdict.of(parts)


@check("2.2.compute_metrics_hidden")
def compute_metrics_hidden(ctx: CheckContext) -> Verdict:
    got = ctx.value("compute_metrics_hidden")
    ref = _accuracy(ctx.reference["compute_metrics_hidden"])
    acc = _accuracy(got)
    ok = acc is not None and ref is not None and abs(acc - ref) < 1e-6
    return Verdict(1.0 if ok else 0.0, "" if ok else f"accuracy on other logits is {acc}, expected {ref} (argmax over the choices?)")


@check("2.2.trainer")
def trainer_hf(ctx: CheckContext) -> Verdict:
    got = ctx.value("trainer_hf")
    parts = [
        (bool(got.get("model_is_student_model")) or str(got.get("model_class", "")).endswith("ForMultipleChoice"), f"the trainer trains a {got.get('model_class')}, not model_hf"),
        (got.get("train_dataset") is not None, "no train_dataset"),
        (got.get("eval_dataset") is not None, "no eval_dataset (evaluation runs every 300 steps)"),
        (got.get("collator_class") == "MultipleChoiceDataCollator", f"the data collator is {got.get('collator_class')}, expected MultipleChoiceDataCollator"),
        (got.get("compute_metrics") is not None, "no compute_metrics"),
    ]
    return Verdict.of(parts)


@check("2.2.saved_model")
def saved_hf(ctx: CheckContext) -> Verdict:
    got = ctx.value("saved_hf")
    if not got.get("exists"):
        return Verdict(0.0, "nothing was saved in distilbert-base-uncased-swag/final_model")
    files = set(got.get("files", []))
    parts = [
        ("config.json" in files, "config.json is missing from the saved model"),
        (bool(files & {"model.safetensors", "pytorch_model.bin"}), "the saved model has no weights file"),
    ]
    return Verdict.of(parts)


# --- 2.3 -------------------------------------------------------------------------------------------


def _linear(tree: dict[str, Any], name: str) -> tuple[int, int] | None:
    m = tree.get("modules", {}).get(name)
    if not m or m.get("class") != "Linear":
        return None
    return int(m["out"]), int(m["in"])


@check("2.3.head_dims")
def head_dims(ctx: CheckContext) -> Verdict:
    got = ctx.value("custom_head_real")
    ref = ctx.reference["custom_head_real"]
    parts = []
    for name, role in (("dense", "keeps the embedding size"), ("dense2", "shrinks to a quarter"), ("classifier", "gives one score")):
        g, r = _linear(got, name), _linear(ref, name)
        parts.append((g == r, f"{name} is {'missing or not a Linear' if g is None else f'{g[0]}×{g[1]}'}, expected {r[0]}×{r[1]} (it {role}) on the real DistilBERT config"))  # type: ignore[index]
    return Verdict.of(parts, "dense 768×768, dense2 192×768, classifier 1×192")


@check("2.3.tanh")
def head_tanh(ctx: CheckContext) -> Verdict:
    tree = ctx.value("custom_head_real")
    fwd = ctx.value("custom_forward")
    has_module = any(m.get("class") == "Tanh" for m in tree.get("modules", {}).values())
    bounded = fwd.get("dense2_in_absmax") is not None and fwd["dense2_in_absmax"] <= 1.0 + 1e-6
    ok = has_module and bounded
    return Verdict(1.0 if ok else 0.0, "" if ok else "the [CLS] projection does not go through tanh before dense2")


@check("2.3.dropout")
def head_dropout(ctx: CheckContext) -> Verdict:
    got = ctx.value("custom_head_dropout")
    want = ctx.inputs["custom_head_dropout"]["dropout"]
    ps = [m.get("p") for m in got.get("modules", {}).values() if m.get("class") == "Dropout"]
    if not ps:
        return Verdict(0.0, "the head has no Dropout layer")
    ok = all(abs(p - want) < 1e-9 for p in ps)
    return Verdict(1.0 if ok else 0.0, "" if ok else f"with config.dropout={want} the head's dropout p is {ps}: use the config's dropout, not a constant")


@check("2.3.forward")
def custom_forward(ctx: CheckContext) -> Verdict:
    got, ref = ctx.value("custom_forward"), ctx.reference["custom_forward"]
    g, r = np.asarray(got.get("logits")), np.asarray(ref["logits"])
    parts = [(g.shape == r.shape, f"logits have shape {fmt_shape(g.shape)}, expected {fmt_shape(r.shape)} ([batch, choices])")]
    if g.shape == r.shape:
        parts.append((close(g, r, rtol=1e-3, atol=1e-4), "with the reference's weights copied in, the logits differ from the reference's"))
    loss = got.get("loss")
    parts.append((loss is not None and abs(float(loss) - float(ref["loss"])) < 1e-3 * max(1.0, abs(float(ref["loss"]))), f"the loss is {loss}, expected {float(ref['loss']):.4f} (cross-entropy over the choices)"))
    return Verdict.of(parts, "logits and loss equal the reference's")


@check("2.3.custom_args")
def custom_args(ctx: CheckContext) -> Verdict:
    got = ctx.value("custom_args")
    spec = dict(ctx.reference["training_spec"])
    spec["output_dir"] = "custom_model"
    v = _compare_args(got, spec)
    run_ok = got.get("run_name") == "custom_model"
    parts = [(v.fraction == 1.0, v.message), (run_ok, f"run_name is {got.get('run_name')!r}, expected 'custom_model'")]
    return Verdict(0.75 * v.fraction + 0.25 * run_ok, "; ".join(m for ok, m in parts if not ok))


@check("2.3.trainer_saved")
def trainer_custom(ctx: CheckContext) -> Verdict:
    t = ctx.value("trainer_custom")
    saved = ctx.value("saved_custom")
    parts = [
        (bool(t.get("model_is_student_model")) or t.get("model_class") == "CustomMultipleChoice", "the trainer does not train model_custom"),
        (t.get("collator_class") == "MultipleChoiceDataCollator", f"the data collator is {t.get('collator_class')}"),
        (bool(saved.get("exists")) and len(saved.get("files", [])) > 0, "nothing was saved in custom_model/final_model"),
    ]
    return Verdict.of(parts)


# --- 2.4 -------------------------------------------------------------------------------------------


@check("2.4.loaded")
def eval_loaded(ctx: CheckContext) -> Verdict:
    got = ctx.value("evaluation")
    parts = [
        (str(got.get("model_hf_class", "")).endswith("ForMultipleChoice"), "model_hf is not a multiple-choice model loaded from disk"),
        ("final_model" in str(got.get("model_hf_name_or_path", "")), f"model_hf was loaded from '{got.get('model_hf_name_or_path')}', expected distilbert-base-uncased-swag/final_model"),
        (got.get("model_custom_class") is not None, "model_custom is not defined"),
    ]
    return Verdict.of(parts)


@check("2.4.accuracy")
def eval_accuracy(ctx: CheckContext) -> Verdict:
    got = ctx.value("evaluation")
    labels = np.asarray(got.get("labels", []))
    parts = []
    if got.get("rerun"):
        parts.append((True, ""))
    for name, acc_name in (("model_hf", "acc_hf"), ("model_custom", "acc_custom")):
        preds = got.get(f"{name}_preds")
        reported = got.get(acc_name)
        if preds is None or reported is None:
            parts.append((False, f"{acc_name} is missing"))
            continue
        truth = float((np.asarray(preds) == labels).mean()) if len(labels) else float("nan")
        parts.append((abs(float(reported) - truth) < 1e-6, f"{acc_name} is {reported}, but {name} scores {truth:.4f} on the validation split"))
    verdict = Verdict.of(parts, "both accuracies match the models' predictions")
    if got.get("rerun"):
        note = "your evaluation loop was re-run with the reference data collator, since yours failed in 2.1 (not charged again here)"
        return Verdict(verdict.fraction, f"{verdict.message}; {note}" if verdict.fraction < 1 else note)
    return verdict


# --- 3.1 -------------------------------------------------------------------------------------------


def _canon_input(text: str) -> str:
    t = _norm_ws(text)
    t = re.sub(r"question:\s*", "question: ", t)
    t = re.sub(r"\s*context:\s*", " context: ", t)
    return re.sub(r"\s*</s>$", " </s>", t)


def _compare_eos(got: Any, ref: Any) -> Verdict:
    if not isinstance(got, list) or len(got) != len(ref):
        return Verdict(0.0, "add_eos_to_examples did not return one example per input")
    parts = []
    for g, r in zip(got, ref, strict=True):
        parts.append((_canon_input(g.get("input_text") or "") == _canon_input(r["input_text"]), f"input_text is {str(g.get('input_text'))[:80]!r}…, expected 'question: … context: … </s>'"))
        parts.append((_norm_ws(g.get("target_text") or "") == _norm_ws(r["target_text"]), f"target_text is {g.get('target_text')!r}, expected {r['target_text']!r}"))
    return Verdict.of(parts)


@check("3.1.add_eos")
def add_eos_public(ctx: CheckContext) -> Verdict:
    return _compare_eos(ctx.value("add_eos_public"), ctx.reference["add_eos_public"])


@check("3.1.add_eos_hidden")
def add_eos_hidden(ctx: CheckContext) -> Verdict:
    return _compare_eos(ctx.value("add_eos_hidden"), ctx.reference["add_eos_hidden"])


def _compare_convert(got: Any, ref: Any) -> Verdict:
    rows, want = got.get("rows", []), ref["rows"]
    if len(rows) != len(want):
        return Verdict(0.0, f"convert_to_features gave {len(rows)} rows for {len(want)} examples")
    parts: list[tuple[bool, str]] = []
    for key, length in (("input_ids", 512), ("attention_mask", 512), ("target_ids", 16)):
        lens = sorted({len(r.get(key, [])) for r in rows})
        parts.append((lens == [length], f"{key} lengths are {lens}, expected all {length} (pad and truncate)"))
    ids_ok = all([list(map(int, r.get("input_ids", []))) == list(w["input_ids"]) and list(map(int, r.get("target_ids", []))) == list(w["target_ids"]) for r, w in zip(rows, want, strict=True)])
    parts.append((ids_ok, "token ids differ from tokenizing input_text / target_text"))
    return Verdict.of(parts)


@check("3.1.convert_to_features")
def convert_public(ctx: CheckContext) -> Verdict:
    return _compare_convert(ctx.value("convert_public"), ctx.reference["convert_public"])


@check("3.1.convert_hidden")
def convert_hidden(ctx: CheckContext) -> Verdict:
    return _compare_convert(ctx.value("convert_hidden"), ctx.reference["convert_hidden"])


@check("3.1.torch_format")
def torch_format(ctx: CheckContext) -> Verdict:
    got = ctx.value("torch_format")
    parts = [
        (got.get("type") == "torch" and got.get("input_ids_type") == "Tensor", f"encoded_squad rows are {got.get('input_ids_type')}, expected torch tensors (set_format)"),
        (got.get("input_ids_shape") == [512] and got.get("target_ids_shape") == [16], f"row shapes are input_ids {got.get('input_ids_shape')}, target_ids {got.get('target_ids_shape')}, expected [512] and [16]"),
    ]
    return Verdict.of(parts)


def _compare_t2t(got: Any, ref: Any, features: list[dict[str, Any]]) -> Verdict:
    parts: list[tuple[bool, str]] = []
    for key in ("input_ids", "attention_mask", "labels"):
        g, r = _arr(got, key), _arr(ref, key)
        assert r is not None
        if g is None:
            parts.append((False, f"the batch has no '{key}'"))
            continue
        parts.append((g.shape == r.shape, f"{key} has shape {fmt_shape(g.shape)}, expected {fmt_shape(r.shape)}"))
    lab = _arr(got, "labels")
    if lab is not None and lab.shape == _arr(ref, "labels").shape:  # type: ignore[union-attr]
        target = np.asarray([f["target_ids"] for f in features])
        pad = target == 0
        parts.append((bool(np.all(lab[pad] == -100)), "label padding is not -100 (the loss would count pad tokens)"))
        parts.append((bool(np.array_equal(lab[~pad], target[~pad])), "labels differ from target_ids outside the padding"))
    extra = set(got) - {"input_ids", "attention_mask", "labels", "decoder_attention_mask"} if isinstance(got, dict) else set()
    parts.append((not extra, f"the batch has keys T5's forward does not take: {sorted(extra)}"))
    return Verdict.of(parts)


@check("3.1.collator")
def t2t_public(ctx: CheckContext) -> Verdict:
    return _compare_t2t(ctx.value("t2t_public"), ctx.reference["t2t_public"], ctx.inputs["t2t_public"]["features"])


@check("3.1.collator_hidden")
def t2t_hidden(ctx: CheckContext) -> Verdict:
    return _compare_t2t(ctx.value("t2t_hidden"), ctx.reference["t2t_hidden"], ctx.inputs["t2t_hidden"]["features"])


# --- 3.2 -------------------------------------------------------------------------------------------


@check("3.2.model")
def t5_model(ctx: CheckContext) -> Verdict:
    got = ctx.value("t5_model")
    parts = [
        (got.get("class") == "T5ForConditionalGeneration", f"t5 is a {got.get('class')}, expected T5ForConditionalGeneration"),
        (got.get("name_or_path") == "t5-small", f"t5 was loaded from '{got.get('name_or_path')}', expected 't5-small'"),
    ]
    return Verdict.of(parts)


@check("3.2.training_args")
def seq2seq_args(ctx: CheckContext) -> Verdict:
    got = ctx.value("seq2seq_args")
    v = _compare_args(got, ctx.reference["seq2seq_spec"])
    if got.get("__class__") != "Seq2SeqTrainingArguments":
        return Verdict(v.fraction * 0.5, f"training_args is a {got.get('__class__')}, expected Seq2SeqTrainingArguments; " + v.message)
    return v


@check("3.2.trainer")
def seq2seq_trainer(ctx: CheckContext) -> Verdict:
    got = ctx.value("seq2seq_trainer")
    parts = [
        (got.get("class") == "Seq2SeqTrainer", f"the trainer is a {got.get('class')}, expected Seq2SeqTrainer"),
        (bool(got.get("model_is_student_model")) or got.get("model_class") == "T5ForConditionalGeneration", f"the trainer trains a {got.get('model_class')}, not t5"),
        (got.get("collator_class") == "T2TDataCollator", f"the data collator is {got.get('collator_class')}, expected T2TDataCollator"),
        (got.get("train_dataset") is not None, "no train_dataset"),
    ]
    return Verdict.of(parts)


# --- 3.3 -------------------------------------------------------------------------------------------


@check("3.3.qa_model")
def qa_model(ctx: CheckContext) -> Verdict:
    got = ctx.value("qa_model")
    want = "mrm8488/t5-base-finetuned-squadv2"
    parts = [
        (got.get("t5_model") == want, f"t5_model was loaded from '{got.get('t5_model')}', expected '{want}'"),
        (got.get("t5_tokenizer") == want, f"t5_tokenizer was loaded from '{got.get('t5_tokenizer')}', expected '{want}'"),
    ]
    return Verdict.of(parts)


@functools.lru_cache(maxsize=1)
def _spiece() -> Any:
    """The store's T5 sentencepiece model, read directly: decoding a few ids must not cost the
    grader a transformers import."""
    import sentencepiece as spm

    from grader.store import store_root

    found = sorted((store_root() / "hf" / "hub").glob("models--mrm8488--t5-base-finetuned-squadv2/snapshots/*/spiece.model"))
    if not found:
        raise FileNotFoundError("spiece.model of mrm8488/t5-base-finetuned-squadv2 is not in the store")
    return spm.SentencePieceProcessor(model_file=str(found[0]))


def t5_decode(ids: list[int]) -> str:
    """``T5Tokenizer.decode(ids, skip_special_tokens=True)``: pad, eos, unk and the extra ids dropped."""
    sp = _spiece()
    return str(sp.decode([int(i) for i in ids if 2 < int(i) < sp.get_piece_size()]))


def _compare_answers(got: Any, ref: Any, examples: list[dict[str, str]]) -> Verdict:
    """get_answer must feed the model 'question: … context: …', generate, and return the generated
    ids decoded as plain text. With the course's real model that is "Harry" / "TPUs"; with any
    model it is what ``generate`` returned, decoded: so the check holds for every generation setting
    a student may choose, and the reference's own answer is only quoted for comparison."""
    if not isinstance(got, list) or len(got) != len(ref):
        raise Missing("get_answer gave no answers")
    parts: list[tuple[bool, str]] = []
    for g, r, ex in zip(got, ref, examples, strict=True):
        gen = g.get("generate")
        if not gen:
            parts.append((False, "get_answer did not call model.generate"))
            continue
        text = _norm_ws(t5_decode(g.get("encoder_input_ids") or [])).lower()
        q, c = _norm_ws(ex["question"]).lower(), _norm_ws(ex["context"]).lower()
        fmt_ok = q in text and c[:200] in text and text.find("question") < text.find(q) and "context" in text
        parts.append((fmt_ok, f"the model's input should be 'question: {ex['question'][:40]}… context: …'; it was {text[:90]!r}…"))
        decoded = _norm_ws(t5_decode(gen["output_ids"]))
        ans = _norm_ws(str(g.get("answer", "")))
        parts.append((squad_normalize(ans) == squad_normalize(decoded), f"get_answer returned {ans!r}, but the model generated {decoded!r} (decode the generated ids, skipping special tokens); the reference answers {r['answer']!r}"))
    return Verdict.of(parts, "answers are the model's decoded generation")


@check("3.3.get_answer")
def get_answer_public(ctx: CheckContext) -> Verdict:
    return _compare_answers(ctx.value("get_answer_public"), ctx.reference["get_answer_public"], ctx.inputs["get_answer_public"]["examples"])


@check("3.3.get_answer_hidden")
def get_answer_hidden(ctx: CheckContext) -> Verdict:
    return _compare_answers(ctx.value("get_answer_hidden"), ctx.reference["get_answer_hidden"], ctx.inputs["get_answer_hidden"]["examples"])


@check("3.3.plain_text")
def plain_text(ctx: CheckContext) -> Verdict:
    got = ctx.value("get_answer_public")
    bad = [g.get("answer") for g in got if g.get("type") != "str" or any(t in str(g.get("answer", "")) for t in SPECIAL_TOKENS)]
    return Verdict(0.0 if bad else 1.0, f"answers must be plain text without special tokens; got {bad!r}" if bad else "plain text")


# --- manual items ----------------------------------------------------------------------------------


def manual_hints(item_id: str, text: str) -> list[str]:
    """Facts a TA can rely on, checked automatically in the student's written answer."""
    low = text.lower()
    hints: list[str] = []
    if not text.strip():
        return ["no answer written"]
    if item_id == "2.2.questions":
        hints.append(("mentions" if re.search(r"\b101\b", low) else "does not mention") + " [CLS] id 101")
        hints.append(("mentions" if re.search(r"\b103\b", low) else "does not mention") + " [MASK] id 103")
        hints.append(("mentions" if re.search(r"\b0?\.1\b", low) else "does not mention") + " attention dropout 0.1")
    if item_id == "2.1.fields":
        for f in ("sent1", "sent2", "ending", "label"):
            hints.append(("explains" if f in low else "does not name") + f" `{f}`")
    if item_id == "1.4":
        hints.append(("mentions" if ("l^2" in low or "l²" in low or "n^2" in low) else "does not mention") + " quadratic cost in l")
    return hints


def reference_answer(name: str) -> str:
    return str(_cached("answers", 0, _compute_answers).get(name, ""))


def _compute_answers() -> dict[str, str]:
    from reference import t5_paper, task1, task2

    out = {
        "2.1.fields": "\n".join(f"- `{k}`: {v}" for k, v in task2.FIELD_MEANINGS.items()),
        "2.2.questions": "[CLS] has id 101 and [MASK] id 103 (vocab.txt); the attention dropout is 0.1 (config.json: attention_dropout).",
        "3.4": t5_paper.reference_text(),
    }
    for sub in ("1.1", "1.2", "1.3", "1.4"):
        out[sub] = "\n\n".join(f"**{a.id}** {a.answer}\n\nKey points: " + "; ".join(a.key_points) for a in task1.ANSWERS if a.subtask == sub)
    return out
