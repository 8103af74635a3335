"""What the checks of Assignment 3 share: the official training settings, array helpers, and
the reading of ``TrainingArguments`` from a notebook's source."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grader.steps import source as src
from grader.steps.checks import Verdict
from reference.specs import SEQ2SEQ_SPEC, TRAINING_SPEC  # noqa: F401 - the checks' official values

from . import refs

HERE = Path(__file__).resolve().parent
DISTILBERT = "distilbert-base-uncased"
QA_MODEL = "mrm8488/t5-base-finetuned-squadv2"
SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>", "<extra_id_")

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


def _shape(value: Any) -> tuple[int, ...] | None:
    """The shape of ``value`` as an array, or None when it is none."""
    a = _arr(value)
    return None if a is None else tuple(a.shape)


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


def _compare_args(
    got: Mapping[str, Any], spec: Mapping[str, Any], batch_comment: bool = False
) -> tuple[list[str], list[str]]:
    """(what is wrong, notes) for TrainingArguments facts against the assignment's values."""
    wrong: list[str] = []
    notes: list[str] = []
    for key, want in spec.items():
        if key == "eval_strategy":
            strategy = _strategy(got.get("eval_strategy", got.get("evaluation_strategy")))
            if strategy != want:
                wrong.append(f"the evaluation strategy is '{strategy}', expected '{want}'")
            continue
        val = got.get(key)
        if key == "max_steps" and val != want:
            epochs = got.get("num_train_epochs")
            extra = (
                f" (num_train_epochs={epochs:g} instead?)"
                if isinstance(epochs, (int, float)) and epochs != 3
                else ""
            )
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
    "eval_strategy": "no",
    "evaluation_strategy": "no",
    "eval_steps": None,
    "save_steps": 500,
    "save_total_limit": None,
    "seed": 42,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 8,
    "max_steps": -1,
    "num_train_epochs": 3.0,
    "learning_rate": 5e-5,
    "weight_decay": 0.0,
    "remove_unused_columns": True,
    "load_best_model_at_end": False,
    "gradient_accumulation_steps": 1,
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
