"""Assignment 3's shims (``rubrics/assignment3/shims.py``), loaded by the pack's real kernel
preamble (``Rubric.kernel_preamble``, ``grader.kernel.runtime``): course-era code runs under
transformers 5 / datasets 5, the machine has no GPU and no Hub, and each translation is noted.

Runs in a subprocess: the shims install an import hook, which must see the first import of the
libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _preamble() -> str:
    from grader.pack.rubric import load_rubric

    return load_rubric("assignment3").kernel_preamble

SCRIPT = r'''
import json, os
import grader.kernel.runtime as gk
from datasets import load_dataset, load_metric          # removed in datasets 3
from transformers import TrainingArguments, Seq2SeqTrainingArguments, AdamW, AutoTokenizer
import torch
out = {}
a = TrainingArguments("o", evaluation_strategy="steps", eval_steps=300, overwrite_output_dir=True, logging_dir="l")
out["eval_strategy"] = str(a.eval_strategy.value)
s = Seq2SeqTrainingArguments("t5", no_cuda=True, per_gpu_train_batch_size=4)
out["use_cpu"] = s.use_cpu
out["batch"] = s.per_device_train_batch_size
out["adamw"] = isinstance(AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3, correct_bias=False), torch.optim.AdamW)
tok = AutoTokenizer.from_pretrained("t5-small")
enc = tok.batch_encode_plus(["question: a context: b"], pad_to_max_length=True, max_length=16)
out["padded"] = len(enc["input_ids"][0])
out["drift"] = sorted(gk.DRIFT)
out["created"] = [k for k, _, _ in gk.CREATED]
print("JSON" + json.dumps(out))
'''


def test_course_era_api_runs_and_is_noted(built_store: Path) -> None:
    from grader.kernel.store import store_env

    env = {**store_env(built_store), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", _preamble() + SCRIPT], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("JSON", 1)[1])
    assert out["eval_strategy"] == "steps" and out["use_cpu"] is True and out["batch"] == 4
    assert out["adamw"] is True
    assert out["padded"] == 16  # pad_to_max_length=True honoured (5.x alone silently ignores it)
    assert {"datasets.load_metric", "TrainingArguments(evaluation_strategy=)", "TrainingArguments(no_cuda=)",
            "transformers.AdamW", "tokenizer.batch_encode_plus", "batch_encode_plus(pad_to_max_length=)"} <= set(out["drift"])
    assert out["created"] == ["args", "args"]


MACHINE = r'''
import json, os
import grader.kernel.runtime as gk
import torch
from transformers import AutoModel, AutoModelForMultipleChoice, TrainingArguments
out = {}
t = torch.ones(2).cuda()
m = AutoModelForMultipleChoice.from_pretrained("distilbert-base-uncased", torch_dtype=torch.float16).to("cuda")
out["device"] = [str(t.device), str(next(m.parameters()).device)]
out["dtype"] = str(next(m.parameters()).dtype)
a = TrainingArguments("o", fp16=True, push_to_hub=True, report_to="none")
out["args"] = [a.fp16, a.push_to_hub, a._grader_asked]
try:
    AutoModel.from_pretrained("bert-large-cased")
except OSError as exc:
    out["missing"] = str(exc)
out["notes"] = sorted(k for k in gk.DRIFT if k.startswith("env:"))
print("JSON" + json.dumps(out))
'''


def _run_in(python: str, script: str, built_store: Path) -> dict[str, object]:
    from grader.kernel.store import store_env

    env = {**store_env(built_store), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
           "GRADER_STORE_MODELS": "distilbert-base-uncased,bert-base-uncased,t5-small"}
    proc = subprocess.run([python, "-c", _preamble() + script], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.split("JSON", 1)[1]))


def _pythons() -> list[str]:
    from grader.kernel.envs import interpreter, is_built
    from grader.pack.rubric import load_rubric

    return [str(interpreter(e)) for e in load_rubric("assignment3").kernel.envs if is_built(e)]


def test_the_grading_machine_has_no_gpu_and_no_hub_and_says_so(built_store: Path) -> None:
    """Colab habits (CUDA, float16, fp16, push_to_hub) run on the CPU in float32 without the Hub, in
    every kernel environment; a model the store lacks is named with the command that adds it."""
    for python in _pythons():
        out = _run_in(python, MACHINE, built_store)
        assert out["device"] == ["cpu", "cpu"] and out["dtype"] == "torch.float32", (python, out)
        assert out["args"][:2] == [False, False] and out["args"][2] == {"push_to_hub": True, "fp16": True}, (python, out)
        assert "bert-large-cased" in str(out["missing"]) and "grader store fetch bert-large-cased" in str(out["missing"]), (python, out)
        assert "the assignment asks for 'bert-base-uncased'" in str(out["missing"]).lower(), (python, out)
        assert {"env:cuda", "env:float16", "env:fp16", "env:push_to_hub"} <= set(out["notes"]), (python, out)
