"""The reference side, computed in the grader's process on the same inputs the kernel got.

``reference`` is what the pipeline calls once per submission; ``model_logits`` is called by the
``train.model`` check with the weights the kernel shipped: the student's model and the specified
architecture then run on the same weights and the same fresh input_ids.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# Part 1 of the assignment: DistilBertConfig(vocab_size=1000, dim=32, n_layers=2, n_heads=2, hidden_dim=64)
MODEL_CONFIG: dict[str, Any] = {"vocab_size": 1000, "dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}
MODEL_CLASS = "DistilBertForMultipleChoice"


@dataclass(frozen=True)
class Expected:
    accuracies: tuple[float, ...]  # per batch of compute_metrics
    collated: Mapping[str, np.ndarray]  # per collate probe: the right-padded [B, 4, L] batch


def reference(rubric: Any, inputs: Mapping[str, Mapping[str, Any]]) -> Expected:
    merged: dict[str, Any] = {name: value for per_subtask in inputs.values() for name, value in per_subtask.items()}
    cases = merged.get("compute_metrics", {}).get("cases", [])
    return Expected(
        accuracies=tuple(accuracy(c["logits"], c["labels"]) for c in cases),
        collated={name: collate(merged[name]["features"], merged[name]["pad_id"] or 0)
                  for name in ("collate", "collate_with_pad_id") if name in merged},
    )


def accuracy(logits: Any, labels: Any) -> float:
    return float((np.argmax(np.asarray(logits, dtype=np.float32), axis=-1) == np.asarray(labels)).mean())


def collate(features: list[list[list[int]]], pad_id: int) -> np.ndarray:
    longest = max(len(seq) for example in features for seq in example)
    out = np.full((len(features), len(features[0]), longest), pad_id, dtype=np.int64)
    for i, example in enumerate(features):
        for j, seq in enumerate(example):
            out[i, j, : len(seq)] = seq
    return out


@functools.cache
def _model() -> Any:
    import torch
    from transformers import DistilBertConfig, DistilBertForMultipleChoice

    torch.manual_seed(0)
    return DistilBertForMultipleChoice(DistilBertConfig(**MODEL_CONFIG)).eval()


def weight_shapes() -> dict[str, tuple[int, ...]]:
    """The specified model's parameters and their shapes (the sizes of Part 1)."""
    return {name: tuple(p.shape) for name, p in _model().named_parameters()}


def model_logits(weights: Mapping[str, np.ndarray], input_ids: Any) -> np.ndarray:
    """The specified model's logits on ``input_ids``, with ``weights`` (which must fit it)."""
    import torch

    model = _model()
    state = {name: torch.from_numpy(np.array(weights[name], dtype=np.float32)) for name in weight_shapes()}
    model.load_state_dict(state, strict=False)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(input_ids, dtype=torch.long)).logits
    return np.asarray(logits.numpy(), dtype=np.float64)
