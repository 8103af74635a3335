"""The reference implementation against the assignment's own expectations.

Task 1 runs in this process (numpy only). Everything that imports transformers or datasets runs in
one subprocess started with the offline store's environment: those libraries read their settings at
import time, and importing them here would fix the settings for every later test in the session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reference import task1

REPO = Path(__file__).resolve().parents[1]


# --- Task 1 ------------------------------------------------------------------------------------------


def test_task1_covers_every_written_question() -> None:
    ids = [a.id for a in task1.ANSWERS]
    assert ids == ["1.1.1", "1.1.2", "1.1.3", "1.2.1", "1.2.2", "1.3.1", "1.3.2", "1.4.1", "1.4.2", "1.4.3"]
    assert len(set(ids)) == len(ids)
    for a in task1.ANSWERS:
        assert a.id.startswith(a.subtask + ".")
        assert a.question and a.answer and a.key_points
    assert task1.answer("1.2.1").answer.count("b_j b_j^T") >= 1
    with pytest.raises(KeyError):
        task1.answer("9.9.9")
    json.dumps(task1.answers_as_json())  # serialisable for the artifact


def test_task1_demos_confirm_the_answers() -> None:
    demos = task1.run_demos()
    checks = task1.check_demos(demos)
    assert all(checks.values()), [name for name, ok in checks.items() if not ok]
    assert demos["1.1.3"]["copy_error"] < 1e-3
    assert demos["1.2.2"]["average_error"] < 1e-6
    assert demos["1.2.1"]["projection_error"] < 1e-10
    var = demos["1.3.2"]
    assert var["variance_perturbed"] > 100 * var["variance_baseline"]
    assert var["var_a_b_perturbed"] == pytest.approx(0.25, abs=0.05)  # o flips between v_b and v_c
    assert demos["1.4.3"]["seconds_per_score_convention"] == 100.0
    assert demos["1.4.3"]["seconds_with_d"]["512"] == 51_200.0


def test_runner_task1_writes_a_versioned_artifact(tmp_path: Path) -> None:
    from reference import run

    assert run.main(["run", "--task", "1", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "tiny" / "task1.json").read_text())
    assert data["schema_version"] == run.SCHEMA_VERSION
    assert data["status"] == "ok" and data["task"] == "1" and data["profile"] == "tiny"
    assert {a["id"] for a in data["answers"]} >= {"1.1.1", "1.4.3"}
    assert not list((tmp_path / "tiny").glob("*.tmp"))


def test_course_profile_refuses_without_cuda(tmp_path: Path) -> None:
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                           capture_output=True, text=True, check=True)
    if probe.stdout.strip() == "True":
        pytest.skip("a CUDA device is present")
    proc = subprocess.run(
        [sys.executable, "-m", "reference", "run", "--task", "2", "--profile", "course", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert proc.returncode == 2
    assert "CUDA" in proc.stderr and "Traceback" not in proc.stderr


# --- Tasks 2 and 3 on the offline store ------------------------------------------------------------

PROBE = textwrap.dedent(
    r'''
    import contextlib, inspect, io, json
    import torch
    from datasets import DatasetDict
    from transformers import DistilBertConfig
    from reference import task2, task3

    out = {}
    tok = task2.load_tokenizer()
    out["vocab_size"] = len(tok)
    ds = task2.load_datasets()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        task2.explain_example(ds["train"][0])
    out["explain"] = buf.getvalue()
    out["train_0"] = {k: ds["train"][0][k] for k in ("sent1", "sent2", "ending0", "ending3", "label")}
    f = task2.preprocess_function(ds["train"][:2], tok)
    out["lengths"] = [len(f["input_ids"]), len(f["input_ids"][0]), [len(x) for x in f["input_ids"][0]]]
    small = DatasetDict(train=ds["train"].select(range(4)))
    enc = task2.encode_datasets(small, tok)
    accepted = ["input_ids", "attention_mask", "label"]
    feats = [{k: v for k, v in enc["train"][i].items() if k in accepted} for i in range(2)]
    full = [dict(enc["train"][i]) for i in range(2)]  # all columns: the collator filters them
    collate = task2.MultipleChoiceDataCollator(tok)
    batch = collate(feats)
    again = collate(full)
    out["collator_shapes"] = {k: list(v.shape) for k, v in batch.items()}
    out["collator_dtypes"] = {k: str(v.dtype) for k, v in batch.items()}
    out["collator_same_twice"] = all(torch.equal(batch[k], again[k]) for k in batch)
    out["labels"] = batch["labels"].tolist()
    out["expected_labels"] = [int(x["label"]) for x in feats]
    unpadded = [ids for x in feats for ids in x["input_ids"]]
    out["max_unpadded"] = max(len(x) for x in unpadded)
    ok = True
    for i in range(2):
        for c in range(4):
            ids = feats[i]["input_ids"][c]
            row = batch["input_ids"][i][c].tolist()
            mask = batch["attention_mask"][i][c].tolist()
            ok &= row[: len(ids)] == list(ids) and all(t == tok.pad_token_id for t in row[len(ids):])
            ok &= mask == [1] * len(ids) + [0] * (len(row) - len(ids))
    out["ids_match_unpadded"] = bool(ok)
    out["toy_metrics"] = task2.compute_metrics((task2.TOY_PREDICTIONS, task2.TOY_LABELS))
    import numpy as np
    out["toy_metrics_np"] = task2.compute_metrics((np.array(task2.TOY_PREDICTIONS), np.array(task2.TOY_LABELS)))

    config = DistilBertConfig()
    model = task2.CustomMultipleChoice(config)
    out["head"] = {n: list(p.shape) for n, p in model.named_parameters() if not n.startswith("distilbert.")}
    out["dropout_p"] = model.dropout.p
    out["activation"] = type(model.activation).__name__
    torch.manual_seed(0)
    ids = torch.randint(1000, 2000, (2, 4, 7))
    res = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([1, 3]))
    out["custom_logits"] = list(res["logits"].shape)
    out["custom_loss_dim"] = res["loss"].dim()
    out["custom_no_labels_loss"] = model(input_ids=ids, attention_mask=torch.ones_like(ids))["loss"]

    # the definitions are pasteable: their source runs with only the template's imports
    ns = {}
    for name in ("MultipleChoiceDataCollator", "compute_metrics", "CustomMultipleChoice", "preprocess_function"):
        exec(task2.NOTEBOOK_IMPORTS[name] + "\n" + inspect.getsource(getattr(task2, name)), ns)
    pasted = ns["MultipleChoiceDataCollator"](tok)(feats)
    out["pasted_collator_equal"] = all(torch.equal(pasted[k], batch[k]) for k in batch)
    out["pasted_metrics"] = ns["compute_metrics"]((task2.TOY_PREDICTIONS, task2.TOY_LABELS))
    out["pasted_custom_logits"] = list(ns["CustomMultipleChoice"](config)(ids, torch.ones_like(ids))["logits"].shape)

    t5tok = task3.load_t5_tokenizer()
    squad = task3.load_squad()
    sq = DatasetDict(train=squad["train"].select(range(3)))
    enc5 = task3.encode_squad(sq, t5tok)
    row = enc5["train"][0]
    out["t5_input_shape"] = list(row["input_ids"].shape)
    out["t5_target_shape"] = list(row["target_ids"].shape)
    out["t5_columns"] = sorted(row)
    ex = task3.add_eos_to_examples(dict(squad["train"][0]))
    out["input_text"] = ex["input_text"]
    out["target_text"] = ex["target_text"]
    out["squad_0"] = {k: squad["train"][0][k] for k in ("question", "context")}
    out["answer_0"] = squad["train"][0]["answers"]["text"][0]
    b5 = task3.T2TDataCollator(t5tok)([enc5["train"][i] for i in range(2)])
    out["t5_batch"] = {k: list(v.shape) for k, v in b5.items()}
    out["minus_100_at_padding"] = bool(torch.equal(b5["labels"] == -100, b5["decoder_attention_mask"] == 0))
    tgt = torch.stack([enc5["train"][i]["target_ids"] for i in range(2)])
    keep = b5["labels"] != -100
    out["labels_keep_targets"] = bool(torch.equal(b5["labels"][keep], tgt[keep]))
    out["has_padding"] = bool((b5["labels"] == -100).any())
    out["no_tokenizer_collator"] = list(task3.T2TDataCollator()([enc5["train"][0]])["labels"].shape)

    qa_tok, qa_model = task3.load_qa_model()
    out["answers"] = [task3.get_answer(qa_tok, qa_model, e["question"], e["context"]) for e in task3.QA_EXAMPLES]
    print("PROBE-JSON " + json.dumps(out))
    '''
)


def _store_root(request: pytest.FixtureRequest) -> Path:
    try:
        built = request.getfixturevalue("built_store")
    except pytest.FixtureLookupError:
        built = None
    if built is not None:
        return Path(built)
    root = Path(os.environ.get("GRADER_STORE") or REPO / ".store")
    if not (root / "manifest.json").is_file():
        pytest.skip(f"offline store not built at {root} (run `python -m grader store build`)")
    return root


@pytest.fixture(scope="module")
def probe(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from grader.kernel import store
    root = _store_root(request)
    scratch = tmp_path_factory.mktemp("hf-scratch")
    if hasattr(store, "prepare_scratch"):
        store.prepare_scratch(root, scratch)
    env = {**os.environ, **store.store_env(root, scratch), "OMP_NUM_THREADS": "2", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=300)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("PROBE-JSON ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    return json.loads(lines[-1][len("PROBE-JSON "):])


def test_explain_example_shows_context_choices_and_truth(probe: dict[str, Any]) -> None:
    text, row = probe["explain"], probe["train_0"]
    assert text.startswith("Context: ") and row["sent1"] in text
    for letter in "ABCD":
        assert f"\n{letter}- " in text
    assert row["ending0"] in text and row["ending3"] in text
    assert text.rstrip().endswith("Ground truth: option " + "ABCD"[row["label"]])


def test_preprocess_lengths_match_the_assignment(probe: dict[str, Any]) -> None:
    assert probe["vocab_size"] == 30522
    assert probe["lengths"] == [2, 4, [30, 25, 30, 28]]


def test_multiple_choice_collator(probe: dict[str, Any]) -> None:
    shapes = probe["collator_shapes"]
    length = probe["max_unpadded"]
    assert shapes["input_ids"] == [2, 4, length]  # padded to the batch's longest choice
    assert shapes["attention_mask"] == [2, 4, length]
    assert shapes["labels"] == [2]
    assert probe["collator_dtypes"]["labels"] == "torch.int64"
    assert probe["labels"] == probe["expected_labels"]
    assert probe["ids_match_unpadded"]
    assert probe["collator_same_twice"]  # filtering extra columns, and no mutation of its input


def test_compute_metrics_on_the_toy_predictions(probe: dict[str, Any]) -> None:
    assert probe["toy_metrics"] == {"accuracy": pytest.approx(0.8)}
    assert probe["toy_metrics_np"] == {"accuracy": pytest.approx(0.8)}


def test_custom_head_on_the_real_distilbert_config(probe: dict[str, Any]) -> None:
    assert probe["head"] == {
        "dense.weight": [768, 768], "dense.bias": [768],
        "dense2.weight": [192, 768], "dense2.bias": [192],
        "classifier.weight": [1, 192], "classifier.bias": [1],
    }
    assert probe["dropout_p"] == 0.1 and probe["activation"] == "Tanh"
    assert probe["custom_logits"] == [2, 4]
    assert probe["custom_loss_dim"] == 0
    assert probe["custom_no_labels_loss"] is None


def test_notebook_definitions_are_pasteable(probe: dict[str, Any]) -> None:
    assert probe["pasted_collator_equal"]
    assert probe["pasted_metrics"] == {"accuracy": pytest.approx(0.8)}
    assert probe["pasted_custom_logits"] == [2, 4]


def test_t5_features_and_texts(probe: dict[str, Any]) -> None:
    q, c = probe["squad_0"]["question"], probe["squad_0"]["context"]
    assert probe["input_text"] == f"question: {q} context: {c} </s>"
    assert probe["target_text"] == f"{probe['answer_0']} </s>"
    assert probe["t5_input_shape"] == [512]
    assert probe["t5_target_shape"] == [16]
    assert probe["t5_columns"] == ["attention_mask", "input_ids", "target_attention_mask", "target_ids"]


def test_t2t_collator_masks_exactly_the_label_padding(probe: dict[str, Any]) -> None:
    assert probe["t5_batch"] == {
        "input_ids": [2, 512], "attention_mask": [2, 512], "labels": [2, 16], "decoder_attention_mask": [2, 16],
    }
    assert probe["has_padding"]
    assert probe["minus_100_at_padding"]
    assert probe["labels_keep_targets"]
    assert probe["no_tokenizer_collator"] == [1, 16]


def test_get_answer_returns_plain_text(probe: dict[str, Any]) -> None:
    for answer in probe["answers"]:
        assert isinstance(answer, str) and answer == answer.strip()
        for special in ("<pad>", "</s>", "<extra_id"):
            assert special not in answer
