"""Course-era compatibility and the training cap, installed inside the student's kernel.

The assignment was written for transformers 4.36 and datasets 2.x. Current releases removed
APIs that every submission uses (`from datasets import load_metric`, `evaluation_strategy=`,
`Trainer(tokenizer=)`, `batch_encode_plus(pad_to_max_length=True)` ...). A student must not lose
points for library drift, so this module maps each removed API onto its successor when the module
that owns it is imported, and records a note per API so the report can say what was translated.

It also caps training: every `Trainer` gets a callback that stops after ``GRADER_MAX_TRAIN_STEPS``
optimizer steps, while the student's own `TrainingArguments` stay untouched for inspection.

This file runs in the untrusted kernel: it only makes code run and records notes. Nothing here
decides a score. It imports only the standard library at install time, and imports libraries
under private names: notebooks rebind `datasets` to a DatasetDict.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any

DRIFT: dict[str, str] = {}  # api -> note (first use only), read by the probe
# Objects whose later rebinding would hide them from the probes (a notebook reuses the names
# `training_args` and `trainer` across tasks): (kind, IPython execution_count, object).
CREATED: list[tuple[str, int | None, Any]] = []
_PATCHED: set[str] = set()

# TrainingArguments fields of 4.36 that 5.x renamed: old -> new.
RENAMED_ARGS = {
    "evaluation_strategy": "eval_strategy",
    "no_cuda": "use_cpu",
    "per_gpu_train_batch_size": "per_device_train_batch_size",
    "per_gpu_eval_batch_size": "per_device_eval_batch_size",
    "push_to_hub_token": "hub_token",
    "push_to_hub_model_id": "hub_model_id",
    "include_inputs_for_metrics": "include_for_metrics",
}
# TrainingArguments fields of 4.36 that 5.x removed without a successor (they change no result here).
REMOVED_ARGS = frozenset(
    {
        "overwrite_output_dir", "logging_dir", "fp16_backend", "fp16_opt_level", "half_precision_backend",
        "tpu_num_cores", "tpu_metrics_debug", "use_ipex", "use_mps_device", "use_legacy_prediction_loop",
        "jit_mode_eval", "torchdynamo", "ray_scope", "mp_parameters", "past_index", "save_safetensors",
        "split_batches", "dispatch_batches", "fsdp_min_num_params", "fsdp_transformer_layer_cls_to_wrap",
        "include_tokens_per_second", "push_to_hub_organization", "adafactor", "group_by_length",
    }
)


def note(api: str, message: str) -> None:
    DRIFT.setdefault(api, message)


def _max_steps() -> int:
    try:
        return max(1, int(os.environ.get("GRADER_MAX_TRAIN_STEPS", "2")))
    except ValueError:
        return 2


# --- transformers ------------------------------------------------------------------------------


def _execution_count() -> int | None:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        return int(shell.execution_count) if shell is not None else None
    except Exception:
        return None


def _patch_training_args_class(cls: Any) -> None:
    if cls.__dict__.get("_grader_patched", False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        import inspect

        accepted = inspect.signature(original).parameters
        for old, new in RENAMED_ARGS.items():
            if old in kwargs and old not in accepted and new in accepted:
                value = kwargs.pop(old)
                if new == "include_for_metrics":
                    value = ["inputs"] if value else []
                kwargs.setdefault(new, value)
                note(f"TrainingArguments({old}=)", f"`{old}=` was renamed `{new}=` in transformers; the grader passed it on as `{new}=`.")
        if "warmup_ratio" in kwargs and "warmup_ratio" not in accepted:
            ratio = kwargs.pop("warmup_ratio")
            if ratio and "warmup_steps" in accepted:
                kwargs.setdefault("warmup_steps", float(ratio))
            note("TrainingArguments(warmup_ratio=)", "`warmup_ratio=` was folded into `warmup_steps=` in transformers 5; the grader passed it on.")
        for old in sorted(REMOVED_ARGS & kwargs.keys()):
            if old not in accepted:
                kwargs.pop(old)
                note(f"TrainingArguments({old}=)", f"`{old}=` no longer exists in transformers 5; the grader ignored it.")
        original(self, *args, **kwargs)
        CREATED.append(("args", _execution_count(), self))

    cls.__init__ = __init__
    cls._grader_patched = True


def _make_step_cap() -> Any:
    from transformers import TrainerCallback

    cap = _max_steps()

    class GraderStepCap(TrainerCallback):
        """Stops training after a few optimizer steps; the arguments stay as the student wrote them."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if state.global_step >= cap:
                control.should_training_stop = True
                control.should_save = False
                control.should_evaluate = False
            return control

    return GraderStepCap()


def _patch_trainer_class(cls: Any) -> None:
    if cls.__dict__.get("_grader_patched", False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        import inspect

        accepted = inspect.signature(original).parameters
        if "tokenizer" in kwargs and "tokenizer" not in accepted and "processing_class" in accepted:
            kwargs.setdefault("processing_class", kwargs.pop("tokenizer"))
            note("Trainer(tokenizer=)", "`Trainer(tokenizer=)` is `Trainer(processing_class=)` in transformers 5; the grader passed it on.")
        original(self, *args, **kwargs)
        CREATED.append(("trainer", _execution_count(), self))
        try:
            self.add_callback(_make_step_cap())
            # progress bars are noise in a graded run, and transformers' notebook bar crashes when
            # training stops after a couple of steps (1 / average_time_per_item with None)
            from transformers.trainer_callback import ProgressCallback
            from transformers.utils.notebook import NotebookProgressCallback

            self.remove_callback(NotebookProgressCallback)
            self.remove_callback(ProgressCallback)
        except Exception:  # a broken Trainer subclass: let the student's own code fail as it would
            pass

    cls.__init__ = __init__

    original_train = cls.train

    @functools.wraps(original_train)
    def train(self: Any, *args: Any, **kwargs: Any) -> Any:
        """Train on small batches while grading; the arguments are restored afterwards, so what the
        student wrote is what the probes read."""
        targs = self.args
        saved = {k: getattr(targs, k) for k in ("per_device_train_batch_size", "gradient_accumulation_steps") if hasattr(targs, k)}
        try:
            cap = _max_batch()
            if "per_device_train_batch_size" in saved and isinstance(saved["per_device_train_batch_size"], int):
                targs.per_device_train_batch_size = max(1, min(saved["per_device_train_batch_size"], cap))
            if "gradient_accumulation_steps" in saved:
                targs.gradient_accumulation_steps = 1
        except Exception:
            pass
        try:
            return original_train(self, *args, **kwargs)
        finally:
            for k, v in saved.items():
                try:
                    setattr(targs, k, v)
                except Exception:
                    pass

    cls.train = train
    cls._grader_patched = True


def _max_batch() -> int:
    try:
        return max(1, int(os.environ.get("GRADER_MAX_TRAIN_BATCH", "4")))
    except ValueError:
        return 4


def _pad_kwargs(kwargs: dict[str, Any], api: str) -> dict[str, Any]:
    if "pad_to_max_length" in kwargs:
        flag = kwargs.pop("pad_to_max_length")
        if flag and "padding" not in kwargs:
            kwargs["padding"] = "max_length"
        note(f"{api}(pad_to_max_length=)", "`pad_to_max_length=True` is `padding=\"max_length\"` in transformers 5 (which silently ignores the old flag); the grader translated it.")
    return kwargs


def _patch_tokenizer_base(cls: Any) -> None:
    if cls.__dict__.get("_grader_patched", False):
        return
    original_call = cls.__call__

    @functools.wraps(original_call)
    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        return original_call(self, *args, **_pad_kwargs(kwargs, "tokenizer"))

    cls.__call__ = __call__

    if not hasattr(cls, "batch_encode_plus"):

        def batch_encode_plus(self: Any, batch_text_or_text_pairs: Any, *args: Any, **kwargs: Any) -> Any:
            note("tokenizer.batch_encode_plus", "`batch_encode_plus` was removed in transformers 5; the grader called the tokenizer instead.")
            if batch_text_or_text_pairs and isinstance(batch_text_or_text_pairs[0], (tuple, list)):
                first = [p[0] for p in batch_text_or_text_pairs]
                second = [p[1] for p in batch_text_or_text_pairs]
                return self(first, second, *args, **_pad_kwargs(kwargs, "batch_encode_plus"))
            return self(list(batch_text_or_text_pairs), *args, **_pad_kwargs(kwargs, "batch_encode_plus"))

        cls.batch_encode_plus = batch_encode_plus

    if not hasattr(cls, "encode_plus"):

        def encode_plus(self: Any, text: Any, text_pair: Any = None, *args: Any, **kwargs: Any) -> Any:
            note("tokenizer.encode_plus", "`encode_plus` was removed in transformers 5; the grader called the tokenizer instead.")
            return self(text, text_pair, *args, **_pad_kwargs(kwargs, "encode_plus"))

        cls.encode_plus = encode_plus

    original_encode = cls.encode

    @functools.wraps(original_encode)
    def encode(self: Any, *args: Any, **kwargs: Any) -> Any:
        return original_encode(self, *args, **_pad_kwargs(kwargs, "tokenizer.encode"))

    cls.encode = encode
    cls._grader_patched = True


def _patch_transformers_top(module: Any) -> None:
    import torch as _torch

    class AdamW(_torch.optim.AdamW):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("correct_bias", None)
            kwargs.pop("no_deprecation_warning", None)
            note("transformers.AdamW", "`transformers.AdamW` was removed; the grader used `torch.optim.AdamW`.")
            super().__init__(*args, **kwargs)

    try:
        module.AdamW  # noqa: B018
    except (AttributeError, ImportError):
        module.__dict__["AdamW"] = AdamW


# --- datasets --------------------------------------------------------------------------------


def _patch_datasets(module: Any) -> None:
    if "load_metric" in module.__dict__:
        return  # datasets 2.x still has it

    def load_metric(path: str, config_name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        import evaluate as _evaluate

        for legacy in ("trust_remote_code", "script_version", "keep_in_memory", "download_mode", "revision"):
            kwargs.pop(legacy, None)
        return _evaluate.load(path, config_name, *args, **kwargs)

    previous = module.__dict__.get("__getattr__")

    def __getattr__(name: str) -> Any:  # PEP 562: only called for names the module lacks
        if name == "load_metric":
            note("datasets.load_metric", "`from datasets import load_metric` fails since datasets 3; the grader provided it (it runs `evaluate.load`).")
            return load_metric
        if previous is not None:
            return previous(name)
        raise AttributeError(f"module 'datasets' has no attribute {name!r}")

    module.__getattr__ = __getattr__


# --- import hook --------------------------------------------------------------------------------

def _patch_torch(module: Any) -> None:
    threads = os.environ.get("GRADER_TORCH_THREADS")
    if threads and threads.isdigit():
        module.set_num_threads(int(threads))
    module.manual_seed(0)


PATCHES: dict[str, Callable[[Any], None]] = {
    "torch": _patch_torch,
    "transformers": _patch_transformers_top,
    "transformers.training_args": lambda m: _patch_training_args_class(m.TrainingArguments),
    "transformers.training_args_seq2seq": lambda m: _patch_training_args_class(m.Seq2SeqTrainingArguments),
    "transformers.trainer": lambda m: _patch_trainer_class(m.Trainer),
    "transformers.tokenization_utils_base": lambda m: _patch_tokenizer_base(m.PreTrainedTokenizerBase),
    "datasets": _patch_datasets,
}


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader, name: str) -> None:
        self._inner = inner
        self._name = name

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._inner.exec_module(module)
        # transformers replaces its own entry in sys.modules by a lazy module while importing
        _apply(self._name, sys.modules.get(self._name, module))


class _PatchingFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in PATCHES or fullname in _PATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, fullname)
                return spec
        return None


def _apply(name: str, module: Any) -> None:
    if name in _PATCHED:
        return
    _PATCHED.add(name)
    try:
        PATCHES[name](module)
    except Exception as exc:  # never break the student's import because a shim failed
        note(f"compat:{name}", f"the grader could not install its compatibility shim for {name}: {exc!r}")


def install() -> None:
    """Install the import hook; patch modules that are already imported."""
    if not any(isinstance(f, _PatchingFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchingFinder())
    for name in PATCHES:
        if name in sys.modules:
            _apply(name, sys.modules[name])
