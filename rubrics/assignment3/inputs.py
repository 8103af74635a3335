"""The inputs each probe receives: drawn afresh for every submission (``seed``), never answers.

What goes into the kernel is raw (rows of the store's SWAG and SQuAD, as the student's own
``load_dataset`` returns them), synthetic (random token ids and logits), or a pointer to the
student's own data ("your validation rows", "rows 0 and 1 of your encoded_squad"). No row here has
been processed by reference code, and nothing here is an expected value: knowing these inputs
answers no check. The expected values are computed outside the kernel, in ``refs.py``.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from grader.steps import source as src

TOY_PREDICTIONS = [
    [0.9, 0.2, 0, 0], [0.2, 0.2, 0.9, 0.1], [0.2, 0.9, 0, 0], [0.2, 0.1, 0.8, 0], [0.9, 0.1, 0.8, 0],
    [0.2, 1, 0.4, 0], [0.2, 1, 0.4, 0.9], [1, 0.1, 0.4, 0.3], [0.1, 0.1, 0.9, 0.3], [0.1, 0.1, 0.2, 1],
]
TOY_LABELS = [0, 3, 1, 2, 0, 1, 3, 0, 2, 3]
# The custom head's dropout is tested with a config whose dropout fields all differ: the one the
# head uses is then known from its outputs.
DROPOUTS = {"dropout": 0.37, "seq_classif_dropout": 0.29, "attention_dropout": 0.13, "qa_dropout": 0.11}
HEAD_CONFIGS = {
    "real": {"dim": 768, "hidden_dim": 3072, "n_layers": 1, "n_heads": 12},  # distilbert-base-uncased's size
    "small": {"dim": 64, "hidden_dim": 128, "n_layers": 1, "n_heads": 2},  # another: read from the config?
}
QA_EXAMPLES = (
    {"question": "Who is supporting Sarah?",
     "context": "Sarah has joined NLP for transformers class and is working on her research project with the support of Harry."},
    {"question": "What is better for machine learning projects?",
     "context": "TPUs are more power efficient in comparison to GPUs making them a better choice for machine learning projects."},
)
BERT_CLS, BERT_SEP = 101, 102


@functools.cache
def _swag() -> Any:
    from reference import task2

    return task2.load_datasets()


@functools.cache
def _squad() -> Any:
    from reference import task3

    return task3.load_squad()


def _columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    return {k: [r[k] for r in rows] for k in rows[0]}


def _pick(rng: np.random.Generator, n: int, k: int, avoid: Sequence[int] = ()) -> list[int]:
    pool = [i for i in range(n) if i not in set(avoid)]
    return sorted(int(i) for i in rng.choice(pool, size=min(k, len(pool)), replace=False))


def _mc_features(rng: np.random.Generator, examples: int) -> list[dict[str, Any]]:
    """Random multiple-choice features as ``encoded_datasets`` rows look: 4 id lists of different
    lengths per example ([CLS] ... [SEP] ... [SEP]), masks of ones, a label."""
    out = []
    for _ in range(examples):
        ids, masks = [], []
        for _choice in range(4):
            n = int(rng.integers(4, 24))
            body = rng.integers(1000, 30000, size=n).tolist()
            cut = int(rng.integers(1, n))
            seq = [BERT_CLS, *body[:cut], BERT_SEP, *body[cut:], BERT_SEP]
            ids.append(seq)
            masks.append([1] * len(seq))
        out.append({"input_ids": ids, "attention_mask": masks, "label": int(rng.integers(0, 4))})
    return out


def _toy(rng: np.random.Generator) -> dict[str, list[Any]]:
    """The assignment's toy example made fresh: rows shuffled, each scaled by a positive factor and
    shifted (no argmax changes), and a few labels moved so that the accuracy is not the printed 0.8.
    The printed matrix and its 0.8 are public: a hard-coded 0.8 must not pass, a computed one does."""
    order = rng.permutation(len(TOY_LABELS))
    preds = np.asarray(TOY_PREDICTIONS, dtype=np.float64)[order]
    preds = preds * rng.uniform(0.5, 3.0, size=(len(order), 1)) + rng.uniform(-2.0, 2.0, size=(len(order), 1))
    labels = np.asarray(TOY_LABELS)[order].copy()
    right = np.flatnonzero(np.argmax(preds, axis=1) == labels)
    for i in rng.choice(right, size=int(rng.integers(1, 4)), replace=False):  # 0.7, 0.6 or 0.5
        labels[i] = (labels[i] + int(rng.integers(1, 4))) % 4
    return {"predictions": preds.round(6).tolist(), "labels": labels.tolist()}


def _long_row(rng: np.random.Generator, rows: Any) -> dict[str, list[Any]]:
    """A SWAG row whose first sentence is far longer than the model takes (512 tokens)."""
    i = int(rng.integers(0, len(rows)))
    row = dict(rows[i])
    filler = " ".join(str(rows[int(j)]["sent1"]) for j in rng.integers(0, len(rows), size=80))
    row["sent1"] = filler
    return _columns([row])


# The long row of 3.1's convert probe: always well over 512 T5 tokens (truncation is what it tests),
# and always far under the 20,000 characters the probe sends back of a text (probes._text), so
# that the check sees the whole row. Twelve random contexts, as before, went past 20,000
# characters for some secrets, and a right convert_to_features then lost its point.
LONG_CONTEXT_CHARS = (5000, 8000)


def _long_context(rng: np.random.Generator, rows: Any) -> str:
    low, high = LONG_CONTEXT_CHARS
    parts: list[str] = []
    for j in rng.permutation(len(rows)):
        parts.append(str(rows[int(j)]["context"]))
        if len(" ".join(parts)) >= low:
            break
    text = " ".join(parts)
    return text if len(text) <= high else text[:high].rsplit(" ", 1)[0]


def _batched_map(cells: Sequence[str], function: str) -> bool:
    """Did the notebook map ``function`` with ``batched=True``? (Its own pipeline decides how the
    function is called here.)"""
    trees = src.parse_cells(cells)
    for call in src.calls(trees, "map"):
        if any(function in src.names_in(a) for a in call.args):
            flag = src.keyword(call, "batched")
            return isinstance(flag, ast.Constant) and bool(flag.value)
    return False


def make_inputs(rubric: Any, plan: Mapping[str, Sequence[str]], seed: int,
                source: Mapping[str, Sequence[str]] | None = None) -> dict[str, dict[str, Any]]:
    """Inputs by subtask and probe, for the probes in ``plan``."""
    rng = np.random.default_rng(seed)
    swag = _swag()
    squad = _squad()
    val = swag["validation"]
    source = source or {}
    out: dict[str, dict[str, Any]] = {}
    wanted = {name for names in plan.values() for name in names}

    def put(subtask: str, name: str, value: Any) -> None:
        if name in wanted:
            out.setdefault(subtask, {})[name] = value

    # 2.1
    put("2.1", "explain_example", {"rows": [dict(val[i]) for i in _pick(rng, len(val), 2)]})
    a, b = _pick(rng, len(val), 2)
    put("2.1", "tokenizer", {"pairs": [[val[a]["sent1"], f"{val[b]['sent2']} {val[b]['ending1']}"],
                                       [val[b]["startphrase"], val[a]["ending3"]]]})
    put("2.1", "preprocess", {"sets": {
        "train2": _columns([swag["train"][0], swag["train"][1]]),
        "fresh": _columns([val[i] for i in _pick(rng, len(val), 3)]),
        "long": _long_row(rng, val),
    }})
    put("2.1", "mc_collator", {"batches": [_mc_features(rng, 2), _mc_features(rng, 3)]})
    # 2.2
    probe_ids = np.zeros((2, 4, 12), dtype=np.int64)
    probe_ids[:, :, 0] = BERT_CLS
    probe_ids[:, :, 1:11] = rng.integers(1000, 30000, size=(2, 4, 10))
    probe_ids[:, :, 11] = BERT_SEP
    put("2.2", "model_hf", {"input_ids": probe_ids.tolist(), "attention_mask": np.ones_like(probe_ids).tolist()})
    put("2.2", "training_args", {})
    fresh_logits = [{"predictions": rng.normal(size=(16, 4)).round(4).tolist(), "labels": rng.integers(0, 4, 16).tolist()}
                    for _ in range(2)]
    put("2.2", "compute_metrics", {"toy": _toy(rng), "fresh": fresh_logits})
    put("2.2", "trainer_hf", {"features": _mc_features(rng, 2), "logits": rng.normal(size=(12, 4)).round(4).tolist(),
                              "labels": rng.integers(0, 4, 12).tolist()})
    # 2.3
    put("2.3", "custom_head", {"configs": HEAD_CONFIGS})
    ids = np.zeros((2, 4, 12), dtype=np.int64)
    mask = np.ones_like(ids)
    ids[:, :, 0] = BERT_CLS
    ids[:, :, 1:] = rng.integers(1000, 30000, size=(2, 4, 11))
    for i in range(2):
        for j in range(4):
            cut = int(rng.integers(6, 13))
            ids[i, j, cut - 1] = BERT_SEP
            ids[i, j, cut:] = 0
            mask[i, j, cut:] = 0
    flat = ids.reshape(8, 12)[:, :8].copy()  # [B*4, L] with L = B*4: a forward that never flattens still runs
    flat[:, 7] = BERT_SEP
    put("2.3", "custom_forward", {"seed": int(rng.integers(1, 2**31 - 1)), "config": DROPOUTS,
                                  "input_ids": ids.tolist(), "attention_mask": mask.tolist(),
                                  "labels": rng.integers(0, 4, 2).tolist(),
                                  "flat": {"input_ids": flat.tolist(), "attention_mask": np.ones_like(flat).tolist(),
                                           "labels": [int(rng.integers(0, 8))]}})
    for name in ("model_custom", "custom_args", "custom_trainer"):
        put("2.3", name, {})
    # 2.4
    fallback = []
    for f in _mc_features(rng, 8):
        fallback.append({"input_ids": f["input_ids"], "attention_mask": f["attention_mask"], "label": f["label"]})
    put("2.4", "evaluation", {"limit": 2000, "fallback_rows": fallback, "rerun_cells": list(source.get("2.4", ()))})
    # 3.1
    sq_train, sq_val = squad["train"], squad["validation"]
    texts = [f"question: {sq_val[i]['question']} context: {sq_val[i]['context']}" for i in _pick(rng, len(sq_val), 2)]
    put("3.1", "t5_tokenizer", {"texts": texts})
    single = [i for i in range(2, len(sq_train)) if len(sq_train[i]["answers"]["text"]) == 1]
    add_rows = [dict(sq_train[single[int(k)]]) for k in rng.choice(len(single), size=2, replace=False)]
    put("3.1", "add_eos", {"rows": add_rows})
    conv_rows = [dict(sq_train[single[int(k)]]) for k in rng.choice(len(single), size=2, replace=False)]
    long_row = dict(conv_rows[0])
    long_row["context"] = _long_context(rng, sq_train)
    conv_rows.append(long_row)  # longer than 512 tokens: truncation
    put("3.1", "convert", {"rows": conv_rows, "batched": _batched_map(source.get("3.1", ()), "convert_to_features")})
    put("3.1", "squad_data", {})
    reference_rows = []
    for _ in range(2):
        n_in, n_out = int(rng.integers(20, 400)), int(rng.integers(2, 12))
        reference_rows.append({
            "input_ids": [*rng.integers(3, 1000, size=n_in - 1).tolist(), 1] + [0] * (512 - n_in),
            "attention_mask": [1] * n_in + [0] * (512 - n_in),
            "target_ids": [*rng.integers(3, 1000, size=n_out - 1).tolist(), 1] + [0] * (16 - n_out),
            "target_attention_mask": [1] * n_out + [0] * (16 - n_out),
        })
    put("3.1", "t2t_collator", {"rows": [0, 1], "seed": int(rng.integers(1, 2**31 - 1)), "fallback_rows": reference_rows})
    # 3.2
    for name in ("t5_model", "seq2seq_args", "seq2seq_trainer"):
        put("3.2", name, {})
    # 3.3
    put("3.3", "qa_model", {})
    fresh_qa = [{"question": sq_val[i]["question"], "context": sq_val[i]["context"]} for i in _pick(rng, len(sq_val), 2)]
    put("3.3", "get_answer", {"examples": [*QA_EXAMPLES, *fresh_qa]})
    return out
