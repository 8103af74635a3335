"""The offline store: built from nothing, deterministic, and read by the libraries' own loading code.

Anything that imports transformers, datasets or evaluate runs in a subprocess under ``store_env``:
those libraries read their settings once, at import.
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

from grader.kernel.store import (
    MANIFEST,
    Entry,
    FileRecord,
    Manifest,
    StoreMissing,
    check_store,
    file_records,
    prepare_scratch,
    store_env,
    write_manifest,
)
from reference.store import REQUIRED_IDS
from reference.store.data import SQUAD_TRAIN_HEAD, SWAG_TRAIN_HEAD

REPO = Path(__file__).resolve().parent.parent
QA_EXAMPLES = [
    (
        "Who is supporting Sarah?",
        "Sarah has joined NLP for transformers class and is working on her research project with the support of Harry.",
    ),
    (
        "What is better for machine learning projects?",
        "TPUs are more power efficient in comparison to GPUs making them a better choice for machine learning projects.",
    ),
]


def _run(args: list[str], env: dict[str, str] | None = None, cwd: Path = REPO, timeout: int = 300) -> Any:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**base, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- building ------------------------------------------------------------------------------------


def test_build_from_nothing_is_complete_and_deterministic(tmp_path_factory: pytest.TempPathFactory) -> None:
    manifests = []
    for name in ("first", "second"):
        root = tmp_path_factory.mktemp(name) / "store"
        proc = _run(["-m", "grader", "store", "build", "--store", str(root)], timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
        manifest = check_store(root, REQUIRED_IDS, verify=True)
        assert {e.id for e in manifest.entries} == set(REQUIRED_IDS)
        assert all(e.source == "tiny" and e.files for e in manifest.entries)
        leftovers = [p.name for p in root.parent.iterdir() if p.name != "store"]
        assert leftovers == [], "the build left its temp folders behind"
        manifests.append(manifest)
    first, second = ({f.path: f.sha256 for e in m.entries for f in e.files} for m in manifests)
    weights = [p for p in first if p.endswith(".safetensors")]
    assert len(weights) == 5  # distilbert-base-uncased, bert-base-uncased, t5-small, t5-base, the QA T5
    assert {p: first[p] for p in weights} == {p: second.get(p) for p in weights}
    assert first == second  # data, tokenizers and configs too


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("env", ["course", "current"])
def test_reading_a_fresh_store_writes_nothing_into_it(env: str, tmp_path: Path) -> None:
    """In the sandbox the store is read-only: a library that writes into it on load (datasets 2.16
    creates ``modules/datasets_modules/__init__.py``) fails there as "Couldn't reach the Hub". So a
    store straight from the builder is read once in each environment and must come out unchanged."""
    from grader.kernel.envs import interpreter, is_built
    from grader.kernel.store import prepare_scratch, store_env
    from grader.pack.rubric import load_rubric

    spec = load_rubric("assignment3").kernel.env(env)
    if not is_built(spec):
        pytest.skip(f"kernel environment {env} is not built (grader env build)")
    root = tmp_path / "store"
    proc = _run(["-m", "grader", "store", "build", "--store", str(root)], timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    before = _tree(root)
    environ = {**os.environ, **store_env(root, prepare_scratch(root, tmp_path / "scratch"))}
    done = subprocess.run([str(interpreter(spec)), "-c", READ_EVERYTHING], env=environ, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _tree(root) - before == set()


READ_EVERYTHING = """
import datasets, transformers
from transformers import AutoModelForMultipleChoice, AutoModelForSeq2SeqLM, AutoTokenizer, T5Tokenizer
assert len(datasets.load_dataset("swag", "regular")["train"]) > 2
squad = datasets.load_dataset("squad")
assert squad["train"][0]["answers"]["text"] == ["Saint Bernadette Soubirous"]
for name in ("t5-small", "mrm8488/t5-base-finetuned-squadv2"):
    fast, slow = AutoTokenizer.from_pretrained(name), T5Tokenizer.from_pretrained(name)
    assert fast("question: Who? context: Harry.").input_ids == slow("question: Who? context: Harry.").input_ids
assert AutoTokenizer.from_pretrained("distilbert-base-uncased")("Hello world").input_ids == [101, 7592, 2088, 102]
AutoModelForMultipleChoice.from_pretrained("distilbert-base-uncased")
AutoModelForMultipleChoice.from_pretrained("bert-base-uncased")
AutoModelForSeq2SeqLM.from_pretrained("mrm8488/t5-base-finetuned-squadv2")
print("read everything with transformers", transformers.__version__, "datasets", datasets.__version__)
"""


@pytest.mark.parametrize("env", ["course", "current"])
def test_every_kernel_environment_reads_the_store(env: str, built_store: Path, tmp_path: Path) -> None:
    """The store's files are written in forms every declared environment reads: transformers 4.35 and
    tokenizers 0.15 cannot read a T5 tokenizer.json written today, datasets 2.16 cannot read list
    features spelt the 4.x way."""
    from grader.kernel.envs import interpreter, is_built
    from grader.kernel.store import prepare_scratch, store_env
    from grader.pack.rubric import load_rubric

    spec = load_rubric("assignment3").kernel.env(env)
    if not is_built(spec):
        pytest.skip(f"kernel environment {env} is not built (grader env build)")
    environ = {**os.environ, **store_env(built_store, prepare_scratch(built_store, tmp_path / "scratch"))}
    done = subprocess.run([str(interpreter(spec)), "-c", READ_EVERYTHING], env=environ, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "read everything" in done.stdout


def test_the_layout_is_the_one_every_environment_reads(built_store: Path) -> None:
    hub = built_store / "hf" / "hub"
    assert not list(hub.glob("models--t5-small/snapshots/*/tokenizer.json"))
    assert not list(hub.glob("models--mrm8488--t5-base-finetuned-squadv2/snapshots/*/tokenizer.json"))
    info = next((built_store / "hf" / "datasets" / "squad").rglob("dataset_info.json")).read_text()
    assert '"_type": "Sequence"' in info and '"_type": "List"' not in info


def test_model_files_are_readable_by_other_users(built_store: Path) -> None:
    for f in built_store.rglob("*"):
        if f.is_file() and f.name != MANIFEST and ".lock" not in f.name:
            assert f.stat().st_mode & 0o044 == 0o044, f"{f} is not world-readable"


# --- completeness checks -------------------------------------------------------------------------


def _fake_store(root: Path, ids: list[str]) -> Path:
    (root / "hf").mkdir(parents=True)
    entries = []
    for i in ids:
        f = root / "hf" / f"{i}.bin"
        f.write_bytes(i.encode())
        entries.append(Entry(kind="model", id=i, source="tiny", files=file_records(root, [f])))
    write_manifest(root, Manifest(schema_version=1, entries=tuple(entries)))
    return root


def test_absent_store_names_path_and_build_command(tmp_path: Path) -> None:
    with pytest.raises(StoreMissing) as info:
        check_store(tmp_path / "nowhere", ["swag"])
    assert str(tmp_path / "nowhere") in str(info.value)
    assert "grader store build" in str(info.value)


def test_half_built_store_without_manifest_is_missing(tmp_path: Path) -> None:
    root = _fake_store(tmp_path / "s", ["a"])
    (root / MANIFEST).unlink()
    with pytest.raises(StoreMissing, match="manifest.json is missing") as info:
        check_store(root)
    assert "grader store build" in str(info.value)


def test_missing_id_is_named(tmp_path: Path) -> None:
    root = _fake_store(tmp_path / "s", ["t5-small"])
    check_store(root, ["t5-small"])
    with pytest.raises(StoreMissing) as info:
        check_store(root, ["t5-small", "mrm8488/t5-base-finetuned-squadv2"])
    assert info.value.missing_ids == ["mrm8488/t5-base-finetuned-squadv2"]
    assert "mrm8488/t5-base-finetuned-squadv2" in str(info.value)
    assert f"grader store build --store {root}" in str(info.value)


def test_missing_or_changed_file_is_named(tmp_path: Path) -> None:
    root = _fake_store(tmp_path / "s", ["a", "b"])
    (root / "hf" / "a.bin").unlink()
    (root / "hf" / "b.bin").write_bytes(b"X")  # same size, other content
    with pytest.raises(StoreMissing) as info:
        check_store(root)
    assert info.value.missing_files == ["a: hf/a.bin"]
    with pytest.raises(StoreMissing) as info:
        check_store(root, ["b"], verify=True)
    assert info.value.missing_files == ["b: hf/b.bin"]


def test_manifest_of_another_schema_is_rejected(tmp_path: Path) -> None:
    root = _fake_store(tmp_path / "s", ["a"])
    data = json.loads((root / MANIFEST).read_text())
    data["schema_version"] = 99
    (root / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(StoreMissing, match="schema_version 99"):
        check_store(root)


def test_manifest_round_trips(tmp_path: Path) -> None:
    root = _fake_store(tmp_path / "s", ["a"])
    manifest = check_store(root, ["a"])
    assert manifest.entries[0].files == (
        FileRecord(path="hf/a.bin", size=1, sha256=manifest.entries[0].files[0].sha256),
    )


def test_cli_check_reports_missing_store(tmp_path: Path) -> None:
    proc = _run(["-m", "grader", "store", "check", "--store", str(tmp_path / "none")])
    assert proc.returncode == 1
    assert "grader store build" in proc.stderr and str(tmp_path / "none") in proc.stderr


def test_cli_fetch_fails_clearly_without_network(tmp_path: Path) -> None:
    proc = _run(
        ["-m", "grader", "store", "fetch", "--store", str(tmp_path / "real")],
        env={"HF_HUB_ETAG_TIMEOUT": "3", "HF_HUB_DOWNLOAD_TIMEOUT": "3"},
        timeout=120,
    )
    if proc.returncode == 0:  # pragma: no cover - only with internet access
        pytest.skip("this machine reaches the Hugging Face hub")
    assert proc.returncode == 1
    assert "cannot reach the Hugging Face hub" in proc.stderr
    assert not (tmp_path / "real" / MANIFEST).exists()


# --- activation ----------------------------------------------------------------------------------


def test_activate_before_import_sets_offline_cache(tmp_path: Path) -> None:
    code = f"""
        from grader.kernel.store import activate
        activate({str(tmp_path)!r})
        import huggingface_hub.constants as c, datasets.config as d
        print(c.HF_HUB_OFFLINE, c.HF_HUB_CACHE, d.HF_DATASETS_CACHE)
    """
    proc = _run(["-c", textwrap.dedent(code)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["True", str(tmp_path / "hf" / "hub"), str(tmp_path / "hf" / "datasets")]


def test_activate_after_import_with_other_settings_raises(tmp_path: Path) -> None:
    code = f"""
        from huggingface_hub import constants  # reads HF_HOME now
        from grader.kernel.store import StoreActivationError, activate
        try:
            activate({str(tmp_path)!r})
        except StoreActivationError as exc:
            print("REFUSED", exc)
    """
    proc = _run(["-c", textwrap.dedent(code)], env={"HF_HOME": str(tmp_path / "elsewhere")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("REFUSED") and "HF_HUB_CACHE" in proc.stdout


def test_store_env_reads_only_from_the_store_given_scratch(tmp_path: Path) -> None:
    env = store_env(tmp_path / "store", tmp_path / "scratch")
    assert env["HF_HOME"] == str(tmp_path / "store" / "hf")
    assert env["HF_HUB_OFFLINE"] == env["HF_DATASETS_OFFLINE"] == env["HF_EVALUATE_OFFLINE"] == "1"
    assert env["HF_DATASETS_CACHE"].startswith(str(tmp_path / "scratch"))
    assert env["HF_METRICS_CACHE"].startswith(str(tmp_path / "scratch"))
    assert store_env(tmp_path / "store")["HF_DATASETS_CACHE"] == str(tmp_path / "store" / "hf" / "datasets")


# --- what the libraries see ----------------------------------------------------------------------

PROBE = """
import json, os, warnings
warnings.filterwarnings("ignore")
from transformers import (AutoConfig, AutoModelForMultipleChoice, AutoModelForSeq2SeqLM, AutoTokenizer,
                          T5ForConditionalGeneration, T5Tokenizer)
from datasets import load_dataset
import evaluate

out = {}
tok = AutoTokenizer.from_pretrained("distilbert-base-uncased")
cfg = AutoConfig.from_pretrained("distilbert-base-uncased")
AutoModelForMultipleChoice.from_pretrained("distilbert-base-uncased")
out["bert"] = dict(fast=tok.is_fast, n=len(tok), cls=tok.cls_token_id, mask=tok.mask_token_id,
                   max_len=tok.model_max_length, dropout=cfg.dropout, attention_dropout=cfg.attention_dropout,
                   seq_classif_dropout=cfg.seq_classif_dropout, architectures=cfg.architectures)

swag = load_dataset("swag", "regular")
endings = [f"ending{i}" for i in range(4)]
def preprocess_function(examples):
    first = [[c] * 4 for c in examples["sent1"]]
    second = [[f"{h} {examples[e][i]}" for e in endings] for i, h in enumerate(examples["sent2"])]
    enc = tok(sum(first, []), sum(second, []), truncation=True)
    return {k: [v[i:i + 4] for i in range(0, len(v), 4)] for k, v in enc.items()}
f = preprocess_function(swag["train"][:2])
out["swag"] = dict(
    splits={k: len(v) for k, v in swag.items()}, columns=swag["train"].column_names,
    features={k: str(v) for k, v in swag["train"].features.items()},
    head=[swag["train"][0], swag["train"][1]], test_labels=sorted(set(swag["test"]["label"])),
    shape=[len(f["input_ids"]), len(f["input_ids"][0]), [len(x) for x in f["input_ids"][0]]],
    first_ids=f["input_ids"][0][0][:5],
    map_cache_files=swag.map(preprocess_function, batched=True)["train"].cache_files,
)

squad = load_dataset("squad")
rows = list(squad["train"]) + list(squad["validation"])
t5 = T5Tokenizer.from_pretrained("t5-small", max_len=512)
lengths = [len(t5(f"question: {r['question']} context: {r['context']}").input_ids) for r in squad["train"]]
out["squad"] = dict(
    splits={k: len(v) for k, v in squad.items()}, columns=squad["train"].column_names, head=squad["train"][0],
    features=str(squad["train"].features["answers"]),
    bad_offsets=sum(r["context"][s:s + len(t)] != t for r in rows
                    for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"])),
    over_512=sum(n > 512 for n in lengths), n=len(lengths),
)

small = T5ForConditionalGeneration.from_pretrained("t5-small")
base = AutoModelForSeq2SeqLM.from_pretrained("t5-base")
out["t5"] = dict(n=len(t5), pad=t5.pad_token_id, eos=t5.eos_token_id, unk=t5.unk_token_id,
                 extra=sum(t.startswith("<extra_id_") for t in t5.get_vocab()),
                 extra0=t5.convert_tokens_to_ids("<extra_id_0>"),
                 start=small.config.decoder_start_token_id, vocab=small.config.vocab_size,
                 small_d=small.config.d_model, base_d=base.config.d_model)

qt = AutoTokenizer.from_pretrained("mrm8488/t5-base-finetuned-squadv2")
qm = AutoModelForSeq2SeqLM.from_pretrained("mrm8488/t5-base-finetuned-squadv2")
answers = []
for question, context in QA_EXAMPLES:
    inputs = qt(f"question: {question} context: {context}", return_tensors="pt", max_length=512, truncation=True)
    greedy = qm.generate(**inputs, max_length=32)
    course = qm.generate(**inputs, max_length=32, num_beams=1, length_penalty=1.0, no_repeat_ngram_size=2)
    again = qm.generate(**inputs, max_length=32, num_beams=1, length_penalty=1.0, no_repeat_ngram_size=2)
    answers.append(dict(greedy=greedy[0].tolist(), course=course[0].tolist(), again=again[0].tolist(),
                        text=qt.decode(course[0], skip_special_tokens=True)))
out["qa"] = answers

acc = evaluate.load("accuracy")
one = acc.compute(predictions=[0, 1, 2, 0], references=[0, 1, 1, 0])
acc.add_batch(predictions=[1, 1], references=[1, 0])
acc.add_batch(predictions=[3], references=[3])
out["accuracy"] = [one, acc.compute()]
print("PROBE-JSON " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def probe(built_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the assignment's own loading calls once, offline, from an unrelated working directory."""
    cwd = tmp_path_factory.mktemp("anywhere")
    scratch = prepare_scratch(built_store, tmp_path_factory.mktemp("scratch"))
    before = sorted(p.relative_to(built_store).as_posix() for p in built_store.rglob("*"))
    code = f"QA_EXAMPLES = {QA_EXAMPLES!r}\n" + PROBE
    proc = _run(["-c", code], env={**store_env(built_store, scratch), "OMP_NUM_THREADS": "1"}, cwd=cwd)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("PROBE-JSON ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    out: dict[str, Any] = json.loads(lines[-1][len("PROBE-JSON ") :])
    out["store_unchanged"] = before == sorted(
        p.relative_to(built_store).as_posix() for p in built_store.rglob("*")
    )
    return out


def test_distilbert_tokenizer_is_the_real_vocabulary(probe: dict[str, Any]) -> None:
    bert = probe["bert"]
    assert bert["fast"] and bert["n"] == 30522 and bert["max_len"] == 512
    assert (bert["cls"], bert["mask"]) == (101, 103)
    assert (bert["dropout"], bert["attention_dropout"], bert["seq_classif_dropout"]) == (0.1, 0.1, 0.2)
    assert bert["architectures"] == ["DistilBertForMaskedLM"]


def test_swag_matches_the_real_schema_and_head(probe: dict[str, Any]) -> None:
    swag = probe["swag"]
    assert set(swag["splits"]) == {"train", "validation", "test"}
    assert swag["columns"] == [
        "video-id", "fold-ind", "startphrase", "sent1", "sent2", "gold-source",
        "ending0", "ending1", "ending2", "ending3", "label",
    ]  # fmt: skip
    assert swag["features"]["label"] == "ClassLabel(names=['0', '1', '2', '3'])"
    assert swag["head"] == SWAG_TRAIN_HEAD
    assert swag["test_labels"] == [-1]


def test_swag_preprocessing_gives_the_assignment_shape(probe: dict[str, Any]) -> None:
    assert probe["swag"]["shape"] == [2, 4, [30, 25, 30, 28]]
    assert probe["swag"]["first_ids"] == [101, 2372, 1997, 1996, 14385]


def test_datasets_map_writes_nothing_into_the_store(probe: dict[str, Any]) -> None:
    assert probe["swag"]["map_cache_files"] == []  # loaded in memory
    assert probe["store_unchanged"]


def test_squad_matches_the_real_schema_and_head(probe: dict[str, Any]) -> None:
    squad = probe["squad"]
    assert set(squad["splits"]) == {"train", "validation"}
    assert squad["columns"] == ["id", "title", "context", "question", "answers"]
    assert squad["head"] == SQUAD_TRAIN_HEAD[0]
    assert squad["features"] == "{'text': List(Value('string')), 'answer_start': List(Value('int32'))}"
    assert squad["bad_offsets"] == 0


def test_squad_inputs_mostly_fit_t5_but_some_need_truncation(probe: dict[str, Any]) -> None:
    squad = probe["squad"]
    assert 0 < squad["over_512"] < squad["n"] * 0.1


def test_t5_tokenizer_has_t5_layout(probe: dict[str, Any]) -> None:
    t5 = probe["t5"]
    assert (t5["pad"], t5["eos"], t5["unk"]) == (0, 1, 2)
    assert t5["extra"] == 100 and t5["extra0"] == t5["n"] - 1
    assert t5["start"] == 0 and t5["vocab"] == t5["n"]
    assert t5["base_d"] > t5["small_d"]


def test_qa_model_answers_short_and_deterministically(probe: dict[str, Any]) -> None:
    for answer in probe["qa"]:
        assert answer["course"] == answer["again"]
        for ids in (answer["greedy"], answer["course"]):
            # decoder start, a few pieces, then EOS well before max_length=32
            assert ids[0] == 0 and ids[-1] == 1 and len(ids) < 24, ids
        assert answer["text"].strip()


def test_accuracy_metric_loads_offline_from_any_directory(probe: dict[str, Any]) -> None:
    assert probe["accuracy"] == [{"accuracy": 0.75}, {"accuracy": 2 / 3}]
