"""Version switches between the transformers releases the reference must run on (4.4x and 5.x).

The assignment was written for transformers 4.36; the grading machines run 5.x and the GPU machine
another 5.x. Every place where the two disagree is handled here and nowhere else, so that the task
modules read like the notebook (see docs/DESIGN.md and /work/shared/FIELD-NOTES.md for the table).
"""

from __future__ import annotations

import dataclasses
import inspect
import platform
from typing import Any

# Renamed in transformers 4.41 (``eval_strategy`` added) and the old name removed in 4.51.
_STRATEGY_NAMES = ("eval_strategy", "evaluation_strategy")


def _field_names(cls: type) -> set[str]:
    if dataclasses.is_dataclass(cls):
        return {f.name for f in dataclasses.fields(cls)}
    return set(inspect.signature(cls.__init__).parameters)  # type: ignore[misc]  # a class, not an instance


def training_args_kwargs(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Adapt ``TrainingArguments`` keyword arguments to the installed ``cls``.

    ``eval_strategy``/``evaluation_strategy`` become whichever name ``cls`` accepts; ``logging_dir``
    (removed in 5.x, where the logging directory is the reporter's business) is dropped where
    unknown. Any other unknown name is left in so that ``cls`` raises its own ``TypeError``.
    """
    names = _field_names(cls)
    out = dict(kwargs)
    for given in _STRATEGY_NAMES:
        if given in out and given not in names:
            other = next(n for n in _STRATEGY_NAMES if n != given)
            out[other] = out.pop(given)
    if "logging_dir" in out and "logging_dir" not in names:
        out.pop("logging_dir")
    if "use_cpu" in out and "use_cpu" not in names:  # before 4.34 it was ``no_cuda``
        out["no_cuda"] = out.pop("use_cpu")
    return out


def make_args(cls: type, **kwargs: Any) -> Any:
    """``cls(**kwargs)`` for a ``TrainingArguments`` class of any supported release."""
    return cls(**training_args_kwargs(cls, kwargs))


def eval_strategy_of(args: Any) -> str:
    """The evaluation strategy of a ``TrainingArguments`` object as a plain string."""
    for name in _STRATEGY_NAMES:
        value = getattr(args, name, None)
        if value is not None:
            return str(getattr(value, "value", value))
    return ""


def trainer_kwargs(trainer_cls: type, tokenizer: Any) -> dict[str, Any]:
    """The keyword that hands the tokenizer to a ``Trainer``: ``processing_class`` (4.46+, required
    in 5.x) or ``tokenizer`` (older releases)."""
    if tokenizer is None:
        return {}
    params = inspect.signature(trainer_cls.__init__).parameters  # type: ignore[misc]  # a class, not an instance
    if "processing_class" in params:
        return {"processing_class": tokenizer}
    return {"tokenizer": tokenizer}


def mixed_precision(model_family: str = "") -> dict[str, bool]:
    """``bf16`` where the GPU supports it, else ``fp16``; ``{}`` without CUDA.

    T5 is known to overflow in fp16 (NaN losses), so for ``model_family="t5"`` a GPU without bf16
    trains in fp32.
    """
    import torch

    if not torch.cuda.is_available():
        return {}
    if torch.cuda.is_bf16_supported():
        return {"bf16": True}
    if model_family == "t5":
        return {}
    return {"fp16": True}


def library_versions() -> dict[str, str]:
    """Versions of everything that changes the reference's numbers."""
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "datasets", "evaluate", "accelerate", "tokenizers",
                 "sentencepiece", "numpy"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = ""
    return versions


def device_info() -> dict[str, Any]:
    """What the run computed on (for the artifact)."""
    import torch

    info: dict[str, Any] = {
        "cuda": torch.cuda.is_available(),
        "cpu_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            name=props.name,
            total_memory_gib=round(props.total_memory / 2**30, 1),
            capability=f"{props.major}.{props.minor}",
            bf16=torch.cuda.is_bf16_supported(),
            cuda_version=torch.version.cuda,
        )
    return info
