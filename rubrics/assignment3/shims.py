"""Shims for Assignment 3's notebooks, installed in the kernel before the first cell
(``kernel: {shims: [shims.py]}`` in rubric.yaml; ``grader.kernel.runtime`` applies ``PATCHES`` when
each library module is first imported).

The notebooks were written on Colab in December 2023 (transformers 4.35, datasets 2.16, torch 2.1, a
T4 GPU, the Hub online). A student must not lose points to the grading machine, so:

- **Library drift**, for a kernel environment newer than the course's (``--kernel-env current``):
  removed APIs are mapped onto their successors (``load_metric``, ``evaluation_strategy=``,
  ``Trainer(tokenizer=)``, ``Seq2SeqTrainer(tokenizer=)``, ``pad_to_max_length=``, ``AdamW``,
  ``pipeline("text2text-generation")``, custom models written for 4.35, a column outside
  ``set_format``); each shim checks the library first and does nothing where the API still exists.
- **The machine** (every environment): no GPU (``.cuda()``, ``.to("cuda")``, ``fp16``, float16
  weights run on the CPU in float32), no Hub (``push_to_hub``, logins), a model the offline store
  lacks named with the command that adds it, and ``torch.load`` of whole pickled models as torch 2.1 did.
- **The training cap**: every ``Trainer`` stops after ``GRADER_MAX_TRAIN_STEPS`` steps on small
  batches; the student's own ``TrainingArguments`` stay as written for the probes.

Every shim records a note (``runtime.note``); "env:" notes go to the report's Colab group, the
others under library drift. Runs in the untrusted kernel; standard library only at import time, and
libraries under private names (notebooks rebind ``datasets`` to a DatasetDict).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import grader.kernel.runtime as runtime

note = runtime.note

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


def _max_steps() -> int:
    try:
        return max(1, int(os.environ.get("GRADER_MAX_TRAIN_STEPS", "2")))
    except ValueError:
        return 2


# --- transformers ------------------------------------------------------------------------------


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
        asked = {k: kwargs[k] for k in ("push_to_hub", "fp16", "bf16") if kwargs.get(k)}
        if asked.get("push_to_hub"):
            kwargs["push_to_hub"] = False
            note("env:push_to_hub", "`push_to_hub=True`: the grading machine has no Hub access; nothing was uploaded (no points depend on it).")
        for flag in ("fp16", "bf16"):
            if asked.get(flag) and not _cuda():
                kwargs[flag] = False
                note(f"env:{flag}", f"`{flag}=True` needs a GPU; the grading machine has none, so training ran on the CPU in float32.")
        original(self, *args, **kwargs)
        if asked:  # what the student wrote, for the probes (the object itself keeps the safe values)
            with contextlib.suppress(Exception):
                object.__setattr__(self, "_grader_asked", asked)
        runtime.record("args", self)

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


@functools.cache
def _raises_without_eval_set() -> bool:
    """Whether this transformers' Trainer refuses an eval strategy without an eval set when built
    (5.x does; 4.35 only failed once it evaluated, which a capped run never reaches)."""
    import inspect

    try:
        from transformers import trainer as _trainer

        return "didn't pass an `eval_dataset`" in inspect.getsource(_trainer)
    except Exception:
        return False


def _pass_tokenizer_on(owner: str, kwargs: dict[str, Any], accepted: Any) -> None:
    """``tokenizer=`` (removed from the Trainers in transformers 5) handed on as ``processing_class=``."""
    if "tokenizer" in kwargs and "tokenizer" not in accepted and "processing_class" in accepted:
        kwargs.setdefault("processing_class", kwargs.pop("tokenizer"))
        note(f"{owner}(tokenizer=)", f"`{owner}(tokenizer=)` is `{owner}(processing_class=)` in transformers 5; the grader passed it on.")


def _patch_seq2seq_trainer(cls: Any) -> None:
    """``Seq2SeqTrainer`` has its own ``__init__`` (which then runs the patched ``Trainer.__init__``):
    only its ``tokenizer=`` needs mapping."""
    if cls.__dict__.get("_grader_patched", False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        import inspect

        accepted = inspect.signature(original).parameters
        _pass_tokenizer_on("Seq2SeqTrainer", kwargs, accepted)
        original(self, *args, **kwargs)

    cls.__init__ = __init__
    cls._grader_patched = True


def _patch_trainer_class(cls: Any) -> None:
    if cls.__dict__.get("_grader_patched", False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        import inspect

        accepted = inspect.signature(original).parameters
        _pass_tokenizer_on("Trainer", kwargs, accepted)
        targs = kwargs.get("args", args[1] if len(args) > 1 else None)
        restore = None
        if kwargs.get("eval_dataset") is None and targs is not None and str(getattr(getattr(targs, "eval_strategy", None), "value", getattr(targs, "eval_strategy", ""))) not in ("no", "None", ""):
            if "eval_dataset" in accepted and _raises_without_eval_set():
                restore = targs.eval_strategy
                object.__setattr__(targs, "eval_strategy", "no")
                note("Trainer(eval_strategy without eval_dataset)", "transformers 5 refuses an evaluation strategy without an `eval_dataset` when the Trainer is built; 4.35 (the course's) did not. The grader built it as 4.35 did.")
        try:
            original(self, *args, **kwargs)
        finally:
            if restore is not None:
                object.__setattr__(targs, "eval_strategy", restore)
        runtime.record("trainer", self)
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
        runtime.record("train", self)
        try:
            return original_train(self, *args, **kwargs)
        finally:
            # a full run leaves checkpoints in output_dir; the capped one saves none, and a notebook
            # that then saves into that folder must not fail for it
            with contextlib.suppress(Exception):
                os.makedirs(str(targs.output_dir), exist_ok=True)
            for k, v in saved.items():
                try:
                    setattr(targs, k, v)
                except Exception:
                    pass

    cls.train = train
    _no_push(cls)
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
    _no_push(cls)
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


def _patch_dataset_columns(module: Any) -> None:
    """datasets 2.x returned a column left out of ``set_format(columns=...)`` unformatted; 4+
    returns a lazy ``Column`` that raises ``KeyError`` when read. A notebook of the course reads
    ``encoded_squad["train"]["input_text"][i]``."""
    cls = getattr(module, "Column", None)
    if cls is None or cls.__dict__.get("_grader_patched", False):
        return
    original = cls.__getitem__

    @functools.wraps(original)
    def __getitem__(self: Any, key: Any) -> Any:
        try:
            return original(self, key)
        except KeyError:
            source = getattr(self, "source", None)
            fmt = getattr(source, "format", None) or {}
            if source is None or not fmt.get("columns") or self.column_name in fmt["columns"] or not hasattr(source, "with_format"):
                raise
            note("Dataset[column] outside set_format", "datasets 4+ no longer reads a column left out of `set_format(columns=...)`; datasets 2.x (the course's) returned it unformatted, and so did the grader.")
            return source.with_format(None)[self.column_name][key]

    cls.__getitem__ = __getitem__
    cls._grader_patched = True


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


# --- the grading machine: no GPU, no Hub ---------------------------------------------------------
# Notebooks were written on Colab with a T4 and the Hub online. Here there is neither, and a student
# must not lose points for it: CUDA requests run on the CPU (in float32), Hub uploads and logins do
# nothing, and each is named in the report ("env:" notes).


def _cuda() -> bool:
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_available())
    except Exception:
        return False


def _is_cuda(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower().startswith("cuda")
    if isinstance(value, int) and not isinstance(value, bool):
        return value >= 0  # device=0 in pipeline() and friends
    return getattr(value, "type", None) == "cuda"


def _cpu_device_args(args: tuple[Any, ...], kwargs: dict[str, Any], api: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    changed = False
    new_args = []
    for a in args:
        if not isinstance(a, int) and _is_cuda(a):
            a, changed = "cpu", True
        new_args.append(a)
    if "device" in kwargs and not isinstance(kwargs["device"], int) and _is_cuda(kwargs["device"]):
        kwargs["device"], changed = "cpu", True
    if changed:
        note("env:cuda", f"`{api}` asked for CUDA; the grading machine has no GPU, so it ran on the CPU (no points depend on the device).")
    return tuple(new_args), kwargs


def _patch_cuda(torch: Any) -> None:
    """``.cuda()`` and ``.to("cuda")`` run on the CPU when there is no GPU. (Factory functions such
    as ``torch.zeros(..., device="cuda")`` are left alone: transformers 5 swaps them itself while it
    builds a model, and a wrapper around them breaks its buffers.)"""
    if _cuda() or getattr(torch, "_grader_cpu", False):
        return
    torch._grader_cpu = True

    def cuda_noop(self: Any, *args: Any, **kwargs: Any) -> Any:
        note("env:cuda", "`.cuda()` was called; the grading machine has no GPU, so it ran on the CPU (no points depend on the device).")
        return self

    torch.Tensor.cuda = cuda_noop
    torch.nn.Module.cuda = cuda_noop
    for owner in (torch.Tensor, torch.nn.Module):
        original_to = owner.to

        def to(self: Any, *args: Any, _original: Any = original_to, **kwargs: Any) -> Any:
            args, kwargs = _cpu_device_args(args, kwargs, ".to(...)")
            return _original(self, *args, **kwargs)

        owner.to = to


def _patch_torch_load(torch: Any) -> None:
    """torch 2.6 made ``torch.load`` refuse whole pickled models by default; Colab's torch (2.1)
    loaded them, and a notebook that saved ``torch.save(model, path)`` loads it back that way."""
    original = torch.load
    if getattr(original, "_grader_patched", False):
        return

    @functools.wraps(original)
    def load(*args: Any, **kwargs: Any) -> Any:
        if "weights_only" not in kwargs:
            try:
                return original(*args, **kwargs)
            except Exception as exc:
                if "weights_only" not in str(exc) and "Weights only" not in str(exc):
                    raise
                kwargs["weights_only"] = False
                note("torch.load(weights_only)", "torch 2.6 changed `torch.load` to refuse whole pickled objects by default; the course's torch loaded them, so the grader did (inside the sandbox).")
        return original(*args, **kwargs)

    load._grader_patched = True  # type: ignore[attr-defined]
    torch.load = load


def _patch_modeling_utils(module: Any) -> None:
    """``from_pretrained(torch_dtype=torch.float16)`` without a GPU, push_to_hub of models, and two
    transformers-5 changes that break custom models written for 4.35."""
    cls = module.PreTrainedModel
    if cls.__dict__.get("_grader_patched", False):
        return
    original = cls.from_pretrained.__func__

    def from_pretrained(klass: Any, *args: Any, **kwargs: Any) -> Any:
        import torch

        for key in ("torch_dtype", "dtype"):
            if kwargs.get(key) in (torch.float16, torch.bfloat16, "float16", "bfloat16") and not _cuda():
                kwargs[key] = torch.float32
                note("env:float16", "`from_pretrained(torch_dtype=torch.float16)`: half precision needs a GPU; the grading machine ran the model on the CPU in float32.")
        if "device_map" in kwargs and _is_cuda(kwargs["device_map"]) and not _cuda():
            kwargs["device_map"] = None
            note("env:cuda", "`from_pretrained(device_map='cuda')`: the grading machine has no GPU, so the model was loaded on the CPU.")
        try:
            return original(klass, *args, **kwargs)
        except RuntimeError as exc:
            # transformers 5 builds a model inside a meta-device context and refuses a nested
            # from_pretrained (a custom model whose __init__ loads its feature model); 4.35 built
            # the model on the CPU and loaded the weights into it, which is done here instead
            if "meta device" not in str(exc) or getattr(klass, "__module__", "").startswith("transformers"):
                raise
            note("from_pretrained(meta device)", "transformers 5 refuses `from_pretrained` inside another model's construction (a meta-device context); 4.35 (the course's) allowed it, so the grader built the model and loaded its weights as 4.35 did.")
            return _load_as_435(klass, *args, **kwargs)

    cls.from_pretrained = classmethod(functools.wraps(original)(from_pretrained))

    def _load_as_435(klass: Any, path: Any, *args: Any, config: Any = None, **kwargs: Any) -> Any:
        import torch

        folder = str(path)
        if config is None:
            config = klass.config_class.from_pretrained(folder)
        if not getattr(config, "_name_or_path", ""):
            config._name_or_path = folder  # 4.35 set it: a custom __init__ may load from it
        model = klass(config)
        weights = os.path.join(folder, "model.safetensors")
        if os.path.isfile(weights):
            from safetensors.torch import load_file

            state = load_file(weights)
        else:
            state = torch.load(os.path.join(folder, "pytorch_model.bin"), map_location="cpu", weights_only=False)
        model.load_state_dict(state, strict=False)
        model.eval()
        return model

    class _LazyTiedKeys:
        """transformers 5 fills ``all_tied_weights_keys`` in ``post_init()``, which custom models
        written for 4.35 may never call; computed on first use instead (a non-data descriptor: the
        value ``post_init`` sets wins)."""

        def __get__(self, obj: Any, owner: Any = None) -> Any:
            if obj is None:
                return self
            try:
                value = obj.get_expanded_tied_weights_keys(all_submodels=False)
            except Exception:
                value = {}
            obj.__dict__["all_tied_weights_keys"] = value
            note("PreTrainedModel.post_init", "the custom model never calls `self.post_init()`, which transformers 5 needs (4.35 did not); the grader filled in what it sets.")
            return value

    if "all_tied_weights_keys" not in cls.__dict__ and hasattr(cls, "get_expanded_tied_weights_keys"):
        cls.all_tied_weights_keys = _LazyTiedKeys()
    _no_push(cls)
    cls._grader_patched = True


def _no_push(cls: Any) -> None:
    if not hasattr(cls, "push_to_hub") or cls.__dict__.get("_grader_no_push", False):
        return

    def push_to_hub(self: Any, *args: Any, **kwargs: Any) -> Any:
        note("env:push_to_hub", "`push_to_hub()`: the grading machine has no Hub access; nothing was uploaded (no points depend on it).")
        return None

    cls.push_to_hub = push_to_hub
    cls._grader_no_push = True


def _patch_hub(module: Any) -> None:
    """``notebook_login()`` / ``login()`` do nothing offline, with a note."""
    def login(*args: Any, **kwargs: Any) -> None:
        note("env:login", "`notebook_login()`/`login()`: the grading machine has no Hub access and needs no token; skipped.")

    for name in ("notebook_login", "login", "interpreter_login"):
        if hasattr(module, name):
            setattr(module, name, login)


def _patch_hub_download(module: Any) -> None:
    """A model id the offline store lacks: say which one, which ones the store has, and how an
    instructor adds it, instead of a message about a missing internet connection."""
    original = getattr(module, "hf_hub_download", None)
    if original is None or getattr(original, "_grader_patched", False):
        return

    @functools.wraps(original)
    def hf_hub_download(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except Exception as exc:
            repo = kwargs.get("repo_id", args[0] if args else None)
            known = [x for x in os.environ.get("GRADER_STORE_MODELS", "").split(",") if x]
            if isinstance(repo, str) and repo.strip() and known and repo not in known and not os.path.isdir(repo) and not repo.startswith(("/", ".")):
                raise OSError(_missing_model_message(repo, known)) from exc
            raise

    hf_hub_download._grader_patched = True  # type: ignore[attr-defined]
    module.hf_hub_download = hf_hub_download


def _missing_model_message(repo: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(repo, known, n=1, cutoff=0.6)
    asks = f" The assignment asks for '{close[0]}'." if close else ""
    note(f"env:missing-model:{repo}", f"'{repo}' is neither a folder here nor a model in the grader's offline store (it has: {', '.join(known)}).")
    return (f"'{repo}' is neither a folder in the notebook's working directory nor a model in the grading machine's "
            f"offline store (it has: {', '.join(known)}).{asks} An instructor adds a model with: grader store fetch {repo}")


def _patch_pipelines(module: Any) -> None:
    """``pipeline("text2text-generation")`` was removed in transformers 5: a stand-in that runs the
    model's ``generate`` as 4.35's pipeline did; ``device="cuda"`` runs on the CPU."""
    original = module.pipeline
    if getattr(original, "_grader_patched", False):
        return

    @functools.wraps(original)
    def pipeline(task: Any = None, *args: Any, **kwargs: Any) -> Any:
        if "device" in kwargs and _is_cuda(kwargs["device"]) and not _cuda():
            kwargs["device"] = -1 if isinstance(kwargs["device"], int) else "cpu"
            note("env:cuda", "`pipeline(device=...)` asked for a GPU; the grading machine has none, so it ran on the CPU.")
        try:
            return original(task, *args, **kwargs)
        except KeyError as exc:
            if task != "text2text-generation" or "removed" not in str(exc):
                raise
        note("pipeline(text2text-generation)", "`pipeline(\"text2text-generation\")` was removed in transformers 5; the grader ran the model's `generate` as 4.35's pipeline did.")
        return _Text2Text(kwargs.get("model", args[0] if args else None), kwargs.get("tokenizer"))

    pipeline._grader_patched = True  # type: ignore[attr-defined]
    module.pipeline = pipeline


class _Text2Text:
    """What ``pipeline("text2text-generation")`` did in 4.35: tokenize, ``generate``, decode."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.model = AutoModelForSeq2SeqLM.from_pretrained(model) if isinstance(model, str) else model
        name = model if isinstance(model, str) else getattr(getattr(model, "config", None), "_name_or_path", None)
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or name) if not hasattr(tokenizer, "decode") else tokenizer

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        out = []
        for text in texts:
            enc = self.tokenizer(text, return_tensors="pt", truncation=True)
            ids = self.model.generate(**enc, **{k: v for k, v in kwargs.items() if k not in ("return_text", "clean_up_tokenization_spaces")})
            out.append({"generated_text": self.tokenizer.decode(ids[0], skip_special_tokens=True)})
        return out[0] if isinstance(inputs, str) else out


# --- import hook --------------------------------------------------------------------------------

def _patch_torch(module: Any) -> None:
    threads = os.environ.get("GRADER_TORCH_THREADS")
    if threads and threads.isdigit():
        module.set_num_threads(int(threads))
    module.manual_seed(0)
    _patch_cuda(module)
    _patch_torch_load(module)


PATCHES: dict[str, Callable[[Any], None]] = {
    "torch": _patch_torch,
    "transformers": _patch_transformers_top,
    "transformers.training_args": lambda m: _patch_training_args_class(m.TrainingArguments),
    "transformers.training_args_seq2seq": lambda m: _patch_training_args_class(m.Seq2SeqTrainingArguments),
    "transformers.trainer": lambda m: _patch_trainer_class(m.Trainer),
    "transformers.trainer_seq2seq": lambda m: _patch_seq2seq_trainer(m.Seq2SeqTrainer),
    "transformers.modeling_utils": _patch_modeling_utils,
    "transformers.utils.hub": _patch_hub_download,
    "transformers.pipelines": _patch_pipelines,
    "huggingface_hub": _patch_hub,
    "transformers.tokenization_utils_base": lambda m: _patch_tokenizer_base(m.PreTrainedTokenizerBase),
    "datasets": _patch_datasets,
    "datasets.arrow_dataset": _patch_dataset_columns,
}
