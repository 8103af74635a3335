"""Expected values, computed in the grader's process (never in the kernel), from the store and
``reference/``, on the inputs the probes received or on what the kernel exported.

Loading tokenizers and models costs seconds, so each is loaded once per grading process; the
computations per submission are small (a few rows, a tiny model's forward pass).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# --- what the store holds ----------------------------------------------------------------------------


@functools.cache
def bert_tokenizer() -> Any:
    from reference import task2

    return task2.load_tokenizer()


@functools.cache
def t5_tokenizer() -> Any:
    from reference import task3

    return task3.load_t5_tokenizer()


@functools.cache
def qa() -> tuple[Any, Any]:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    name = "mrm8488/t5-base-finetuned-squadv2"
    model = AutoModelForSeq2SeqLM.from_pretrained(name)
    model.eval()
    return AutoTokenizer.from_pretrained(name), model


def _snapshot(repo: str) -> Path:
    from grader.kernel.store import store_root

    folder = store_root() / "hf" / "hub" / f"models--{repo.replace('/', '--')}"
    rev = (folder / "refs" / "main").read_text().strip()
    return folder / "snapshots" / rev


@functools.cache
def store_config(repo: str) -> dict[str, Any]:
    return dict(json.loads((_snapshot(repo) / "config.json").read_text()))


@functools.cache
def store_embedding_rows(repo: str) -> np.ndarray:
    """Rows 1-4, first 8 columns of a stored model's input embeddings (what the probes send back)."""
    from safetensors.numpy import load_file

    weights = load_file(str(_snapshot(repo) / "model.safetensors"))
    for key in ("distilbert.embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight", "shared.weight",
                "embeddings.word_embeddings.weight", "encoder.embed_tokens.weight"):
        if key in weights:
            return np.asarray(weights[key], dtype=np.float32)[1:5, :8]
    raise KeyError(f"no input embeddings in {repo}")


@functools.cache
def swag_validation_labels() -> tuple[int, ...]:
    from .inputs import _swag

    return tuple(int(x) for x in _swag()["validation"]["label"])


# --- Task 2 ------------------------------------------------------------------------------------------


def preprocess(examples: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    from reference import task2

    out = task2.preprocess_function({k: list(v) for k, v in examples.items()}, bert_tokenizer())
    return {k: out[k] for k in ("input_ids", "attention_mask")}


def bert_ids(first: str, second: str) -> list[int]:
    return list(bert_tokenizer()(first, second)["input_ids"])


def mc_collate(features: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    from reference import task2

    batch = task2.MultipleChoiceDataCollator(bert_tokenizer())(copy.deepcopy(list(features)))
    return {k: v.numpy() for k, v in batch.items()}


def accuracy(logits: Any, labels: Any) -> float:
    return float((np.argmax(np.asarray(logits), axis=1) == np.asarray(labels)).mean())


HEAD = (("dense", 1.0), ("dense2", 0.25), ("classifier", None))  # (name, out = in * factor; None: 1)


def head_weights(weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The head's Linear layers in the student's exported state dict, by the template's names or,
    for other names, by their shapes (d x d, d/4 x d, 1 x d/4); None when they are not there."""
    if all(f"{n}.weight" in weights for n, _ in HEAD):
        return {k: np.asarray(weights[k]) for k in weights if k.split(".")[0] in ("dense", "dense2", "classifier")}
    own = {k: np.asarray(v) for k, v in weights.items() if not k.startswith("distilbert.")}
    mats = {k: v for k, v in own.items() if v.ndim == 2}
    dims = {v.shape[1] for v in mats.values() if v.shape[0] == v.shape[1]}
    if len(dims) != 1:
        return None
    d = dims.pop()
    found: dict[str, np.ndarray] = {}
    for name, factor in HEAD:
        rows = 1 if factor is None else int(d * factor)
        cols = d if name != "classifier" else d // 4
        key = next((k for k, v in mats.items() if v.shape == (rows, cols)), None)
        if key is None:
            return None
        found[f"{name}.weight"] = mats[key]
        bias = own.get(key[: -len("weight")] + "bias")
        if bias is not None:
            found[f"{name}.bias"] = bias
    return found


def custom_forward(weights: Mapping[str, np.ndarray], feature_config: Mapping[str, Any], input_ids: Any,
                   attention_mask: Any, dropout: float | None = None, seed: int | None = None) -> dict[str, np.ndarray]:
    """The reference head on the student's own weights: [CLS] -> dense -> tanh -> dropout -> dense2
    -> dropout -> classifier, logits regrouped per example. ``dropout``/``seed``: the head in
    training mode (the feature model in eval mode), with the same random draws as the kernel made.
    Returns the logits and the intermediate values."""
    import torch
    import torch.nn.functional as F
    from transformers import DistilBertConfig, DistilBertModel

    keep = {k: v for k, v in dict(feature_config).items() if not k.startswith("_") and k not in ("architectures",)}
    config = DistilBertConfig(**keep)
    feature = DistilBertModel(config)
    state = {k[len("distilbert."):]: torch.tensor(np.asarray(v)) for k, v in weights.items() if k.startswith("distilbert.")}
    missing, _unexpected = feature.load_state_dict(state, strict=False)
    if [m for m in missing if "position_ids" not in m]:
        raise ValueError(f"the exported feature model lacks {missing[:3]}")
    feature.eval()
    head = head_weights(weights)
    if head is None:
        raise ValueError("the head's layers are not in the exported weights")
    ids = torch.tensor(np.asarray(input_ids))
    mask = torch.tensor(np.asarray(attention_mask))
    shape = ids.shape
    flat_ids = ids.view(-1, shape[-1])
    flat_mask = mask.view(-1, shape[-1])

    def linear(x: Any, name: str) -> Any:
        w = torch.tensor(head[f"{name}.weight"]).float()
        b = head.get(f"{name}.bias")
        return F.linear(x, w, None if b is None else torch.tensor(b).float())

    with torch.no_grad():
        cls = feature(input_ids=flat_ids, attention_mask=flat_mask).last_hidden_state[:, 0]
        if seed is not None:
            torch.manual_seed(int(seed))
        h1 = torch.tanh(linear(cls, "dense"))
        d1 = F.dropout(h1, p=dropout, training=True) if dropout is not None else h1
        h2 = linear(d1, "dense2")
        d2 = F.dropout(h2, p=dropout, training=True) if dropout is not None else h2
        logits = linear(d2, "classifier")
    groups = shape[1] if len(shape) == 3 else shape[0]
    return {"cls": cls.numpy(), "dense2_in": d1.numpy(), "classifier_in": d2.numpy(),
            "logits": logits.view(-1, groups).numpy()}


def _padded(rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(x) for r in rows for x in r["input_ids"])
    ids = np.zeros((len(rows), 4, width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        for j, (x, m) in enumerate(zip(r["input_ids"], r["attention_mask"], strict=False)):
            ids[i, j, : len(x)] = x
            mask[i, j, : len(m)] = m
    return ids, mask


def hf_predictions(weights: Mapping[str, np.ndarray], config: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """A Hugging Face multiple-choice model rebuilt here from its exported config and weights, run
    on the rows: what the notebook's model_hf predicts, computed outside its kernel."""
    import torch
    from transformers import AutoConfig, AutoModelForMultipleChoice

    cfg = dict(config)
    model_type = str(cfg.pop("model_type", ""))
    keep = {k: v for k, v in cfg.items() if not k.startswith("_") and k not in ("architectures", "transformers_version", "torch_dtype", "dtype")}
    model = AutoModelForMultipleChoice.from_config(AutoConfig.for_model(model_type, **keep))
    state = {k: torch.tensor(np.asarray(v)) for k, v in weights.items()}
    missing, _ = model.load_state_dict(state, strict=False)
    if [m for m in missing if "position_ids" not in m]:
        raise ValueError(f"the exported weights do not fit a {model_type} multiple-choice model ({missing[:2]})")
    model.eval()
    preds: list[int] = []
    with torch.no_grad():
        for start in range(0, len(rows), 32):
            ids, mask = _padded(rows[start:start + 32])
            preds += model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits.argmax(-1).tolist()
    return preds


def custom_predictions(weights: Mapping[str, np.ndarray], feature_config: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[int]:
    preds: list[int] = []
    for start in range(0, len(rows), 32):
        ids, mask = _padded(rows[start:start + 32])
        preds += np.asarray(custom_forward(weights, feature_config, ids, mask)["logits"]).argmax(-1).tolist()
    return preds


def cross_entropy(logits: Any, labels: Any) -> float:
    import torch
    import torch.nn.functional as F

    return float(F.cross_entropy(torch.tensor(np.asarray(logits, dtype=np.float32)), torch.tensor(np.asarray(labels)).view(-1)))


# --- Task 3 ------------------------------------------------------------------------------------------


def t5_ids(texts: Sequence[str]) -> list[list[int]]:
    tok = t5_tokenizer()
    return [list(tok(t)["input_ids"]) for t in texts]


def t5_features(source: str, target: str) -> dict[str, list[int]]:
    """Input and target texts tokenized as the assignment specifies: 512 and 16 tokens, padded."""
    tok = t5_tokenizer()
    enc = tok(source, max_length=512, padding="max_length", truncation=True)
    dec = tok(target, max_length=16, padding="max_length", truncation=True)
    return {"input_ids": list(enc["input_ids"]), "attention_mask": list(enc["attention_mask"]),
            "target_ids": list(dec["input_ids"]), "target_attention_mask": list(dec["attention_mask"])}


def t5_decode(ids: Sequence[int]) -> str:
    return str(t5_tokenizer().decode([int(i) for i in ids], skip_special_tokens=True))


def t5_text(ids: Sequence[int]) -> str:
    """The text of encoder ids without padding (special tokens kept, as the model saw them)."""
    return str(t5_tokenizer().decode([int(i) for i in ids if int(i) != 0], skip_special_tokens=False))


SAMPLING = ("do_sample", "temperature", "top_k", "top_p", "typical_p")


def regenerate(call: Mapping[str, Any]) -> list[int] | None:
    """Run ``generate`` again, here, on what the student's ``get_answer`` gave the model; None when
    it cannot be repeated exactly (sampling, or inputs not recorded)."""
    import torch

    if call.get("input_ids") is None or any(call.get("kwargs", {}).get(k) for k in ("do_sample",)):
        return None
    _tok, model = qa()
    kwargs = {k: v for k, v in dict(call.get("kwargs", {})).items() if k not in SAMPLING and k not in ("input_ids", "attention_mask")}
    ids = torch.tensor(call["input_ids"])
    mask = torch.tensor(call["attention_mask"]) if call.get("attention_mask") is not None else None
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
    return [int(x) for x in getattr(out, "sequences", out)[0].tolist()]
