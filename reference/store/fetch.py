"""Fill the store with the real models, data sets and metric, for an instructor with internet access.

Everything is downloaded by the libraries' own functions into the same cache layout the tiny store
uses (``snapshot_download``, ``load_dataset``, ``evaluate.load``), so the grader and the kernels read
either store the same way. The caller must have activated the store *online*
(``grader.kernel.store.activate(root, offline=False)``) before this module's imports of the libraries run.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from grader.kernel.store import SCHEMA_VERSION, Entry, Manifest, file_records, write_manifest

from .build import DATASET_CONFIGS, METRIC_IDS, MODEL_IDS, _library_versions

FETCHER = "reference.store:fetch"
# Enough to load with PyTorch; skips TF/Flax/ONNX/Rust weights (gigabytes nobody here reads).
MODEL_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors"]


class FetchError(RuntimeError):
    """The hub cannot be reached (or refused a download); the message says what to do instead."""


def _require_hub() -> None:
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        raise FetchError(
            "HF_HUB_OFFLINE is set in this process: fetching needs the Hugging Face hub. "
            "Unset HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, or use `grader store build` for the offline tiny store."
        )
    try:
        HfApi().model_info(MODEL_IDS[0], timeout=15)
    except Exception as exc:  # any failure here means: no usable hub, say so plainly
        raise FetchError(
            f"cannot reach the Hugging Face hub at {constants.ENDPOINT} ({type(exc).__name__}: {exc}). "
            "`grader store fetch` needs internet access; `grader store build` builds the tiny offline store."
        ) from None


def fetch(root: Path, force: bool = False, ids: tuple[str, ...] = ()) -> dict[str, Any]:
    """Download the real entries into ``root`` (which must be the activated store). Writes the manifest last.

    ``ids``: more models to add to an existing store (a model a notebook asks for that the store
    lacks), keeping what is there."""
    root = Path(root).resolve()
    _require_hub()
    if ids:
        return _add_models(root, ids)
    if (root / "hf").exists():
        if not force:
            raise FetchError(f"{root} already holds a store; pass force to replace it with the real files")
        shutil.rmtree(root / "hf")
    (root / "manifest.json").unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)

    import datasets
    import evaluate
    from huggingface_hub import HfApi, snapshot_download

    hf = root / "hf"
    entries: list[Entry] = []
    api = HfApi()
    for repo in MODEL_IDS:
        files = api.list_repo_files(repo)
        patterns = list(MODEL_PATTERNS)
        if not any(f.endswith(".safetensors") for f in files):
            patterns.append("pytorch_model.bin")
        snapshot_download(repo, allow_patterns=patterns)
        folder = hf / "hub" / f"models--{repo.replace('/', '--')}"
        entries.append(Entry(kind="model", id=repo, source="real", files=file_records(root, [folder])))
    for name, config_name in DATASET_CONFIGS.items():
        datasets.load_dataset(name, config_name)
        entries.append(
            Entry(kind="dataset", id=name, source="real", files=file_records(root, [hf / "datasets" / name]))
        )
    for name in METRIC_IDS:
        evaluate.load(name)
        folder = hf / "modules" / "evaluate_modules" / "metrics" / f"evaluate-metric--{name}"
        entries.append(Entry(kind="metric", id=name, source="real", files=file_records(root, [folder])))
    manifest = Manifest(
        schema_version=SCHEMA_VERSION, entries=tuple(entries), builder=FETCHER, versions=_library_versions()
    )
    write_manifest(root, manifest)
    return {"root": str(root), "fetched": True, "entries": [e.id for e in entries]}


def _add_models(root: Path, ids: tuple[str, ...]) -> dict[str, Any]:
    from huggingface_hub import snapshot_download

    from grader.kernel.store import read_manifest

    manifest = read_manifest(root)
    entries = [e for e in manifest.entries if e.id not in ids]
    for repo in ids:
        snapshot_download(repo, allow_patterns=[*MODEL_PATTERNS, "pytorch_model.bin"])
        folder = root / "hf" / "hub" / f"models--{repo.replace('/', '--')}"
        entries.append(Entry(kind="model", id=repo, source="real", files=file_records(root, [folder])))
    write_manifest(root, Manifest(schema_version=SCHEMA_VERSION, entries=tuple(entries), builder=manifest.builder,
                                  versions=dict(manifest.versions)))
    return {"root": str(root), "fetched": True, "added": list(ids)}
