"""Build the offline store for Assignment 3 (tiny stand-ins), or fetch the real files (needs internet).

``build`` makes everything from nothing, in seconds, on a CPU: synthetic SWAG and SQuAD, the real BERT
uncased vocabulary with a tiny DistilBERT, a trained SentencePiece with tiny T5s, a briefly fine-tuned
QA T5, and the accuracy metric. Same bytes every build: one seed, single-threaded training.

It writes into a sibling temp folder and renames it into place, with ``manifest.json`` last, so an
interrupted build never leaves a store that looks complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

from grader.kernel.store import (
    SCHEMA_VERSION,
    Entry,
    Manifest,
    StoreMissing,
    check_store,
    file_records,
    write_manifest,
)

from . import data, layout, models, tokenizer_files

# The builder and the layout version of what it writes: a store written by another layout is rebuilt
# (layout 2: list features in the datasets-2.x spelling, no T5 tokenizer.json, bert-base-uncased).
BUILDER = "reference.store:build@3"

DISTILBERT = "distilbert-base-uncased"
BERT = "bert-base-uncased"
T5_SMALL = "t5-small"
T5_BASE = "t5-base"
T5_QA = "mrm8488/t5-base-finetuned-squadv2"
SWAG = "swag"
SQUAD = "squad"
ACCURACY = "accuracy"

MODEL_IDS = (DISTILBERT, BERT, T5_SMALL, T5_BASE, T5_QA)
DATASET_CONFIGS = {SWAG: "regular", SQUAD: "plain_text"}
METRIC_IDS = (ACCURACY,)
REQUIRED_IDS: tuple[str, ...] = (*MODEL_IDS, *DATASET_CONFIGS, *METRIC_IDS)

SWAG_DESCRIPTION = "Synthetic stand-in for SWAG (regular): same columns and features, generated text."
SQUAD_DESCRIPTION = "Synthetic stand-in for SQuAD (plain_text): same columns and features, generated text."


def swag_features() -> Any:
    import datasets

    names = ["video-id", "fold-ind", "startphrase", "sent1", "sent2", "gold-source"]
    feats: dict[str, Any] = {n: datasets.Value("string") for n in names}
    feats.update({f"ending{i}": datasets.Value("string") for i in range(4)})
    feats["label"] = datasets.ClassLabel(names=["0", "1", "2", "3"])
    return datasets.Features(feats)


def squad_features() -> Any:
    import datasets

    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "title": datasets.Value("string"),
            "context": datasets.Value("string"),
            "question": datasets.Value("string"),
            "answers": {
                "text": datasets.List(datasets.Value("string")),
                "answer_start": datasets.List(datasets.Value("int32")),
            },
        }
    )


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in (
        "torch",
        "transformers",
        "tokenizers",
        "datasets",
        "evaluate",
        "sentencepiece",
        "huggingface_hub",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _tokenizer_corpus(generated: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    for split in generated["squad"].values():
        for r in split:
            texts += [f"question: {r['question']} context: {r['context']}", *r["answers"]["text"], r["title"]]
    for split in generated["swag"].values():
        for r in split:
            texts += [r["startphrase"], *(r[f"ending{i}"] for i in range(4))]
    return texts + generated["extra"]


def _build_into(stage: Path) -> tuple[Manifest, dict[str, Any]]:
    from transformers import T5Tokenizer

    hf = stage / "hf"
    generated = data.generate()
    entries: list[Entry] = []

    def add(kind: Any, entry_id: str, folder: Path) -> None:
        entries.append(Entry(kind=kind, id=entry_id, source="tiny", files=file_records(stage, [folder])))

    features = {SWAG: swag_features(), SQUAD: squad_features()}
    descriptions = {SWAG: SWAG_DESCRIPTION, SQUAD: SQUAD_DESCRIPTION}
    for name, config_name in DATASET_CONFIGS.items():
        folder = layout.write_dataset_cache(
            hf, name, config_name, generated[name], features[name], description=descriptions[name]
        )
        add("dataset", name, folder)

    with tempfile.TemporaryDirectory(dir=stage) as tmp:
        staged = Path(tmp, DISTILBERT)
        staged.mkdir()
        tokenizer_files.write_bert_uncased(staged)
        models.write_distilbert(staged)
        add("model", DISTILBERT, layout.publish_snapshot(hf, DISTILBERT, staged))
        staged = Path(tmp, BERT)
        staged.mkdir()
        tokenizer_files.write_bert_uncased(staged)
        models.write_bert(staged)
        add("model", BERT, layout.publish_snapshot(hf, BERT, staged))

        spiece = tokenizer_files.train_sentencepiece(_tokenizer_corpus(generated))
        t5_dirs = {repo: Path(tmp, repo.replace("/", "--")) for repo in (T5_SMALL, T5_BASE, T5_QA)}
        vocab_size = 0
        for folder in t5_dirs.values():
            folder.mkdir()
            vocab_size = tokenizer_files.write_t5(folder, spiece)
        models.write_t5(t5_dirs[T5_SMALL], models.new_t5("small", vocab_size))
        models.write_t5(t5_dirs[T5_BASE], models.new_t5("base", vocab_size))
        # The QA model starts from the same (seeded) t5-base weights, as the real one was fine-tuned from t5-base.
        qa = models.new_t5("base", vocab_size)
        tok = T5Tokenizer.from_pretrained(str(t5_dirs[T5_QA]))
        losses = models.finetune_qa(qa, tok, generated[SQUAD]["train"])
        models.write_t5(t5_dirs[T5_QA], qa)
        for repo, folder in t5_dirs.items():
            add("model", repo, layout.publish_snapshot(hf, repo, folder))

    source = resources.files(__package__).joinpath("accuracy_metric.py").read_bytes()
    add("metric", ACCURACY, layout.write_evaluate_module(hf, ACCURACY, source))

    manifest = Manifest(
        schema_version=SCHEMA_VERSION, entries=tuple(entries), builder=BUILDER, versions=_library_versions()
    )
    return manifest, {"qa_finetune_loss": [round(losses[0], 4), round(losses[-1], 4)]}


def build(root: Path, force: bool = False) -> dict[str, Any]:
    """Build the store into ``root``; a complete store is kept unless ``force``. Returns a summary."""
    root = Path(root).resolve()
    if not force:
        try:
            manifest = check_store(root, REQUIRED_IDS)
            if manifest.builder == BUILDER:
                return {"root": str(root), "built": False, "entries": [e.id for e in manifest.entries]}
        except StoreMissing:
            pass
    started = time.monotonic()
    root.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
    try:
        manifest, extra = _build_into(stage)
        write_manifest(stage, manifest)
        os.chmod(stage, 0o755)
        old = None
        if root.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
            os.replace(root, old / root.name)
        os.replace(stage, root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    size = sum(f.size for e in manifest.entries for f in e.files)
    return {
        "root": str(root),
        "built": True,
        "seconds": round(time.monotonic() - started, 1),
        "bytes": size,
        "entries": [e.id for e in manifest.entries],
        **extra,
    }
