"""Probes for Assignment 3, executed (as source) inside the student's kernel after the notebook.

Each probe calls what the student defined on inputs the grader supplied and returns plain data.
No verdicts here: every comparison happens in ``checks.py``, in the grader's process.
``CELL_SUBTASKS`` (IPython execution count -> subtask) is injected by the grader before this runs.
"""

import contextlib
import io
import os
import sys

CELL_SUBTASKS = globals().get("CELL_SUBTASKS", {})  # set by the grader before this source runs


_LOADED = {}


def _get(ns, name):
    if name not in ns:
        raise NameError(f"name '{name}' is not defined")
    return ns[name]


def _created(kind, subtask, predicate=None, ns=None, guess=None):
    """Objects of ``kind`` ('args' / 'trainer') created by a cell of ``subtask``, oldest first.

    Inside the grader's kernel, ``grader.kernel_compat`` recorded every TrainingArguments and
    Trainer with the cell that made it (a notebook rebinds `training_args` and `trainer` from task to
    task). Elsewhere (a student's own kernel running ``selfcheck``), the live objects in ``ns`` are
    the candidates, narrowed by ``predicate`` and ``guess`` (used only there)."""
    compat = sys.modules.get("grader.kernel_compat")
    records = list(getattr(compat, "CREATED", []))
    if records and CELL_SUBTASKS:
        return [obj for k, count, obj in records
                if k == kind and CELL_SUBTASKS.get(count) == subtask and (predicate is None or predicate(obj))]
    from transformers import Trainer, TrainingArguments

    base = TrainingArguments if kind == "args" else Trainer
    return [v for v in (ns or {}).values() if isinstance(v, base) and (predicate is None or predicate(v)) and (guess is None or guess(v))]


def _is_custom(args):
    return "custom" in os.path.basename(os.path.normpath(str(getattr(args, "output_dir", ""))))


def _args_facts(args):
    fields = [
        "output_dir", "eval_strategy", "evaluation_strategy", "eval_steps", "save_strategy", "save_steps",
        "save_total_limit", "seed", "per_device_train_batch_size", "per_device_eval_batch_size", "max_steps",
        "num_train_epochs", "learning_rate", "weight_decay", "remove_unused_columns", "load_best_model_at_end",
        "metric_for_best_model", "gradient_accumulation_steps", "run_name", "logging_dir", "predict_with_generate",
    ]
    out = {"__class__": type(args).__name__}
    for f in fields:
        if hasattr(args, f):
            v = getattr(args, f)
            out[f] = getattr(v, "value", v) if not isinstance(v, (int, float, str, bool, type(None))) else v
    return out


def _reference_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained("distilbert-base-uncased")


def _t5_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained("t5-small")


# --- 2.1 ------------------------------------------------------------------------------------------


def explain_example(ns, inputs):
    fn = _get(ns, "explain_example")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ret = fn(dict(inputs["example"]))
    return {"stdout": buf.getvalue()[:20000], "returned": repr(ret)[:20000] if ret is not None else None}


def tokenizer(ns, inputs):
    tok = _get(ns, "tokenizer")
    enc = tok(inputs["first"], inputs["second"])
    return {
        "class": type(tok).__name__,
        "is_fast": bool(getattr(tok, "is_fast", False)),
        "name_or_path": str(getattr(tok, "name_or_path", "")),
        "vocab_size": len(tok),
        "input_ids": list(enc["input_ids"]),
    }


def ending_names(ns, inputs):
    return list(_get(ns, "ending_names"))


def _preprocess(ns, examples):
    fn = _get(ns, "preprocess_function")
    out = fn({k: list(v) for k, v in examples.items()})
    return {k: [[list(x) for x in group] for group in out[k]] for k in ("input_ids", "attention_mask") if k in out}


def preprocess_public(ns, inputs):
    return _preprocess(ns, inputs["examples"])


def preprocess_hidden(ns, inputs):
    return _preprocess(ns, inputs["examples"])


def _collate(ns, features):
    cls = _get(ns, "MultipleChoiceDataCollator")
    batch = cls(_reference_tokenizer())([dict(f) for f in features])
    return {k: batch[k] for k in batch.keys()}


def collator_public(ns, inputs):
    return _collate(ns, inputs["features"])


def collator_hidden(ns, inputs):
    return _collate(ns, inputs["features"])


# --- 2.2 ------------------------------------------------------------------------------------------


def model_hf(ns, inputs):
    m = _get(ns, "model_hf")
    cfg = getattr(m, "config", None)
    return {
        "class": type(m).__name__,
        "model_type": getattr(cfg, "model_type", None),
        "name_or_path": str(getattr(cfg, "_name_or_path", getattr(m, "name_or_path", ""))),
        "dim": getattr(cfg, "dim", None),
    }


def training_args(ns, inputs):
    from transformers import Seq2SeqTrainingArguments

    made = _created("args", "2.2", lambda a: not isinstance(a, Seq2SeqTrainingArguments), ns, guess=lambda a: not _is_custom(a))
    if not made:
        raise NameError("name 'training_args' is not defined (no TrainingArguments was created in subtask 2.2)")
    return _args_facts(made[-1])


def compute_metrics_public(ns, inputs):
    import numpy as np

    fn = _get(ns, "compute_metrics")
    return fn((np.array(inputs["predictions"]), np.array(inputs["labels"])))


def compute_metrics_hidden(ns, inputs):
    import numpy as np
    from transformers import EvalPrediction

    fn = _get(ns, "compute_metrics")
    return fn(EvalPrediction(predictions=np.array(inputs["predictions"], dtype=np.float32), label_ids=np.array(inputs["labels"])))


def _trainer_facts(trainer, ns, model_name):
    facts = {"class": type(trainer).__name__}
    facts["model_is_student_model"] = model_name in ns and trainer.model is ns[model_name]
    facts["model_class"] = type(trainer.model).__name__
    facts["args_output_dir"] = str(getattr(trainer.args, "output_dir", ""))
    for split in ("train_dataset", "eval_dataset"):
        ds = getattr(trainer, split, None)
        facts[split] = None if ds is None else {"rows": len(ds), "columns": list(getattr(ds, "column_names", []) or [])}
    facts["collator_class"] = type(trainer.data_collator).__name__
    cm = getattr(trainer, "compute_metrics", None)
    facts["compute_metrics"] = getattr(cm, "__name__", None) if cm is not None else None
    facts["has_tokenizer"] = getattr(trainer, "processing_class", None) is not None
    facts["global_step"] = int(getattr(trainer.state, "global_step", 0))
    return facts


def trainer_hf(ns, inputs):
    made = _created("trainer", "2.2", None, ns, guess=lambda t: not _is_custom(t.args) and "ForMultipleChoice" in type(t.model).__name__)
    if not made:
        raise NameError("name 'trainer' is not defined (no Trainer was created in subtask 2.2)")
    return _trainer_facts(made[-1], ns, "model_hf")


def _saved(directory):
    import json

    if not os.path.isdir(directory):
        return {"exists": False, "files": []}
    files = sorted(os.listdir(directory))
    config = {}
    if "config.json" in files:
        with open(os.path.join(directory, "config.json"), encoding="utf-8") as fh:
            config = json.load(fh)
    return {"exists": True, "files": files, "model_type": config.get("model_type"), "architectures": config.get("architectures")}


def saved_hf(ns, inputs):
    return _saved(os.path.join("distilbert-base-uncased-swag", "final_model"))


# --- 2.3 ------------------------------------------------------------------------------------------


def _head_tree(model):
    import torch.nn as nn

    tree = {}
    for name, mod in model.named_modules():
        if not name or name.startswith("distilbert"):
            continue
        entry = {"class": type(mod).__name__}
        if isinstance(mod, nn.Linear):
            entry["in"], entry["out"] = mod.in_features, mod.out_features
        if isinstance(mod, nn.Dropout):
            entry["p"] = float(mod.p)
        tree[name] = entry
    params = {n: list(p.shape) for n, p in model.named_parameters() if not n.startswith("distilbert.")}
    return {"modules": tree, "params": params, "has_distilbert": hasattr(model, "distilbert")}


def custom_head_real(ns, inputs):
    import torch
    from transformers import DistilBertConfig

    cls = _get(ns, "CustomMultipleChoice")
    try:  # shapes only: build on the meta device, no memory or init time for 66M parameters
        with torch.device("meta"):
            model = cls(DistilBertConfig())
    except Exception:
        model = cls(DistilBertConfig())
    return _head_tree(model)


def custom_head_dropout(ns, inputs):
    from transformers import AutoConfig

    cls = _get(ns, "CustomMultipleChoice")
    cfg = AutoConfig.from_pretrained("distilbert-base-uncased", dropout=inputs["dropout"], dim=inputs["dim"], hidden_dim=2 * inputs["dim"])
    return _head_tree(cls(cfg))


def custom_forward(ns, inputs):
    import torch
    from transformers import AutoConfig, DistilBertModel

    cls = _get(ns, "CustomMultipleChoice")
    cfg = AutoConfig.from_pretrained("distilbert-base-uncased")
    model = cls(cfg)
    base = DistilBertModel.from_pretrained("distilbert-base-uncased")
    missing = model.distilbert.load_state_dict(base.state_dict(), strict=False) if hasattr(model, "distilbert") else None
    gen = torch.Generator().manual_seed(int(inputs["seed"]))
    copied = []
    for name, shape in inputs["head_shapes"]:
        w = torch.randn(*shape, generator=gen) * 0.5
        target = dict(model.named_parameters()).get(name)
        if target is not None and list(target.shape) == list(shape):
            with torch.no_grad():
                target.copy_(w)
            copied.append(name)
    model.eval()
    seen = {}
    if hasattr(model, "dense2"):
        model.dense2.register_forward_pre_hook(lambda m, args: seen.__setitem__("dense2_in", args[0].detach().clone()))
    ids = torch.tensor(inputs["input_ids"])
    mask = torch.tensor(inputs["attention_mask"])
    labels = torch.tensor(inputs["labels"])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
    logits = out["logits"] if isinstance(out, dict) or hasattr(out, "keys") else out[1]
    loss = out["loss"] if isinstance(out, dict) or hasattr(out, "keys") else out[0]
    d2 = seen.get("dense2_in")
    return {
        "logits": logits,
        "loss": None if loss is None else float(loss),
        "copied": copied,
        "encoder_loaded": missing is not None,
        "dense2_in_absmax": None if d2 is None else float(d2.abs().max()),
    }


def custom_args(ns, inputs):
    from transformers import Seq2SeqTrainingArguments

    made = _created("args", "2.3", lambda a: not isinstance(a, Seq2SeqTrainingArguments), ns, guess=_is_custom)
    if not made:
        raise NameError("no TrainingArguments was created in subtask 2.3")
    return _args_facts(made[-1])


def trainer_custom(ns, inputs):
    made = _created("trainer", "2.3", None, ns, guess=lambda t: _is_custom(t.args))
    if not made:
        raise NameError("no Trainer was created in subtask 2.3")
    return _trainer_facts(made[-1], ns, "model_custom")


def saved_custom(ns, inputs):
    return _saved(os.path.join("custom_model", "final_model"))


# --- 2.4 ------------------------------------------------------------------------------------------


def _accuracy_value(v):
    if isinstance(v, dict) or hasattr(v, "keys"):
        v = v.get("accuracy", None)
    return None if v is None else float(v)


def _rerun_with_reference_collator(ns, inputs):
    """Run the student's Subtask 2.4 cells again in a copy of their namespace, with the reference
    MultipleChoiceDataCollator: their evaluation loop is graded even when their collator is broken."""
    cells = inputs.get("rerun_cells") or []
    if not cells:
        return None
    ns2 = dict(ns)
    exec(compile(inputs["reference_collator"], "<reference-collator>", "exec"), ns2)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        for src in cells:
            code = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
            try:
                exec(compile(code, "<rerun>", "exec"), ns2)
            except Exception:
                pass
    return ns2


def evaluation(ns, inputs):
    import torch

    out = {"acc_hf": _accuracy_value(ns.get("acc_hf")), "acc_custom": _accuracy_value(ns.get("acc_custom")), "rerun": False}
    if out["acc_hf"] is None and out["acc_custom"] is None:
        ns2 = _rerun_with_reference_collator(ns, inputs)
        if ns2 is None or (ns2.get("acc_hf") is None and ns2.get("acc_custom") is None):
            raise NameError("name 'acc_hf' is not defined")
        ns = ns2
        out = {"acc_hf": _accuracy_value(ns.get("acc_hf")), "acc_custom": _accuracy_value(ns.get("acc_custom")), "rerun": True}
    tok = _reference_tokenizer()
    enc = ns.get("encoded_datasets")
    rows = None
    try:
        val = enc["validation"]
        rows = [{"input_ids": val[i]["input_ids"], "attention_mask": val[i]["attention_mask"], "label": val[i]["label"]} for i in range(len(val))]
        out["data"] = "student"
    except Exception:
        rows = inputs["features"]
        out["data"] = "reference"
    labels = [int(r["label"]) for r in rows]
    out["labels"] = labels
    for name in ("model_hf", "model_custom"):
        model = ns.get(name)
        if model is None:
            continue
        model.eval()
        device = next(model.parameters()).device
        preds = []
        with torch.no_grad():
            for start in range(0, len(rows), 32):
                chunk = rows[start:start + 32]
                flat = [{"input_ids": list(ids), "attention_mask": list(m)} for r in chunk for ids, m in zip(r["input_ids"], r["attention_mask"], strict=False)]
                batch = tok.pad(flat, return_tensors="pt")
                n = len(chunk)
                ids = batch["input_ids"].view(n, 4, -1).to(device)
                mask = batch["attention_mask"].view(n, 4, -1).to(device)
                res = model(input_ids=ids, attention_mask=mask)
                logits = res["logits"] if hasattr(res, "keys") else res[0]
                preds += logits.argmax(-1).tolist()
        out[f"{name}_preds"] = preds
        out[f"{name}_name_or_path"] = str(getattr(getattr(model, "config", None), "_name_or_path", ""))
        out[f"{name}_class"] = type(model).__name__
    return out


# --- 3.1 ------------------------------------------------------------------------------------------


def _add_eos(ns, example):
    fn = _get(ns, "add_eos_to_examples")
    try:
        out = fn(dict(example))
    except TypeError:
        out = fn(dict(example), ns.get("t5_tokenizer"))  # the tokenizer-taking variant some students write
    return {"input_text": out.get("input_text"), "target_text": out.get("target_text")}


def add_eos_public(ns, inputs):
    return [_add_eos(ns, ex) for ex in inputs["examples"]]


def add_eos_hidden(ns, inputs):
    return [_add_eos(ns, ex) for ex in inputs["examples"]]


def _convert(ns, batch):
    fn = _get(ns, "convert_to_features")
    try:
        out = fn({k: list(v) for k, v in batch.items()})
        ids = out["input_ids"]
        if len(ids) != len(batch["input_text"]) or not hasattr(ids[0], "__len__"):
            raise TypeError("not batched")
        rows = [{k: list(out[k][i]) for k in out.keys() if k in ("input_ids", "attention_mask", "target_ids", "target_attention_mask")} for i in range(len(ids))]
        mode = "batched"
    except Exception:
        rows = []
        for i in range(len(batch["input_text"])):
            one = fn({k: v[i] for k, v in batch.items()})
            rows.append({k: [int(x) for x in list(one[k])] for k in one.keys() if k in ("input_ids", "attention_mask", "target_ids", "target_attention_mask")})
        mode = "single"
    return {"mode": mode, "rows": rows}


def convert_public(ns, inputs):
    return _convert(ns, inputs["batch"])


def convert_hidden(ns, inputs):
    return _convert(ns, inputs["batch"])


def torch_format(ns, inputs):
    ds = _get(ns, "encoded_squad")["train"]
    fmt = getattr(ds, "format", {}) or {}
    row = ds[0]
    return {
        "type": fmt.get("type"),
        "columns": list(fmt.get("columns") or []),
        "input_ids_type": type(row.get("input_ids")).__name__,
        "input_ids_shape": list(getattr(row.get("input_ids"), "shape", [])),
        "target_ids_shape": list(getattr(row.get("target_ids"), "shape", [])),
    }


def _t2t(ns, features):
    import torch

    cls = _get(ns, "T2TDataCollator")
    feats = [{k: (torch.tensor(v) if isinstance(v, list) else v) for k, v in f.items()} for f in features]
    try:
        collator = cls(_t5_tokenizer())
    except TypeError:
        collator = cls()
    batch = collator(feats)
    return {k: batch[k] for k in batch.keys()}


def t2t_public(ns, inputs):
    return _t2t(ns, inputs["features"])


def t2t_hidden(ns, inputs):
    return _t2t(ns, inputs["features"])


# --- 3.2 ------------------------------------------------------------------------------------------


def t5_model(ns, inputs):
    m = _get(ns, "t5")
    return {"class": type(m).__name__, "name_or_path": str(getattr(getattr(m, "config", None), "_name_or_path", ""))}


def seq2seq_args(ns, inputs):
    from transformers import Seq2SeqTrainingArguments

    made = _created("args", "3.2", None, ns, guess=lambda a: isinstance(a, Seq2SeqTrainingArguments) or "t5" in str(getattr(a, "output_dir", "")))
    if not made:
        raise NameError("name 'training_args' is not defined (no Seq2SeqTrainingArguments was created in subtask 3.2)")
    return _args_facts(made[-1])


def seq2seq_trainer(ns, inputs):
    made = _created("trainer", "3.2", None, ns, guess=lambda t: "T5" in type(t.model).__name__)
    if not made:
        raise NameError("name 'trainer' is not defined (no Seq2SeqTrainer was created in subtask 3.2)")
    return _trainer_facts(made[-1], ns, "t5")


# --- 3.3 ------------------------------------------------------------------------------------------


def qa_model(ns, inputs):
    out = {}
    for name in ("t5_model", "t5_tokenizer"):
        obj = ns.get(name)
        cfg = getattr(obj, "config", None)
        out[name] = None if obj is None else str(getattr(cfg, "_name_or_path", "") or getattr(obj, "name_or_path", ""))
        out[f"{name}_class"] = None if obj is None else type(obj).__name__
    return out


def _answers(ns, examples):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    fn = _get(ns, "get_answer")
    if "qa" not in _LOADED:  # one load for the public and the hidden examples
        _LOADED["qa"] = (AutoTokenizer.from_pretrained("mrm8488/t5-base-finetuned-squadv2"),
                         AutoModelForSeq2SeqLM.from_pretrained("mrm8488/t5-base-finetuned-squadv2"))
    tok, model = _LOADED["qa"]
    for hook in list(model.get_encoder()._forward_pre_hooks):
        model.get_encoder()._forward_pre_hooks.pop(hook)
    model.eval()
    seen = []
    calls = []
    model.get_encoder().register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs.get("input_ids") if kwargs.get("input_ids") is not None else (args[0] if args else None)), with_kwargs=True)
    model.__dict__.pop("generate", None)  # the class's generate, not a wrapper left by an earlier call
    original_generate = model.generate

    def generate(*args, **kwargs):
        result = original_generate(*args, **kwargs)
        ids = getattr(result, "sequences", result)
        simple = {k: v for k, v in kwargs.items() if isinstance(v, (int, float, str, bool, type(None)))}
        calls.append({"kwargs": simple, "output_ids": ids[0].tolist()})
        return result

    model.generate = generate
    out = []
    for ex in examples:
        seen.clear()
        calls.clear()
        ans = fn(tok, model, ex["question"], ex["context"])
        ids = seen[0][0].tolist() if seen and seen[0] is not None else None
        out.append({
            "answer": ans if isinstance(ans, str) else repr(ans),
            "type": type(ans).__name__,
            "encoder_input_ids": ids,
            "generate": calls[0] if calls else None,
        })
    return out


def get_answer_public(ns, inputs):
    return _answers(ns, inputs["examples"])


def get_answer_hidden(ns, inputs):
    return _answers(ns, inputs["examples"])


PROBES = {name: fn for name, fn in dict(globals()).items() if callable(fn) and not name.startswith("_") and fn.__module__ == __name__}
