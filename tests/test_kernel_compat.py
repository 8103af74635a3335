"""Course-era code runs under transformers 5 / datasets 5, and each translation is noted.

Runs in a subprocess: the shims install an import hook, which must see the first import of the
libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SCRIPT = r'''
import json, os
import grader.kernel_compat as gk
gk.install()
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
    from grader.store import store_env

    env = {**store_env(built_store), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("JSON", 1)[1])
    assert out["eval_strategy"] == "steps" and out["use_cpu"] is True and out["batch"] == 4
    assert out["adamw"] is True
    assert out["padded"] == 16  # pad_to_max_length=True honoured (5.x alone silently ignores it)
    assert {"datasets.load_metric", "TrainingArguments(evaluation_strategy=)", "TrainingArguments(no_cuda=)",
            "transformers.AdamW", "tokenizer.batch_encode_plus", "batch_encode_plus(pad_to_max_length=)"} <= set(out["drift"])
    assert out["created"] == ["args", "args"]
