"""Write files where the libraries' own offline lookups find them (see ``grader/kernel/store.py``).

Each function mirrors what a real online load leaves behind, so a tiny store and a fetched real one
have the same shape: a hub snapshot plus ``refs/main``; a datasets cache folder with Arrow stream
files and ``dataset_info.json``; an evaluate dynamic module. Revisions and hashes are derived from the
content, so the same content always lands at the same path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DATASET_VERSION = "0.0.0"


def _content_sha1(folder: Path) -> str:
    digest = hashlib.sha1()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()


def _readable(path: Path) -> None:
    """Files 0644, folders 0755: kernels may run as another user than the builder."""
    for p in [path, *path.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)


def repo_folder(hf_home: Path, repo_id: str, repo_type: str = "model") -> Path:
    return hf_home / "hub" / f"{repo_type}s--{repo_id.replace('/', '--')}"


def publish_snapshot(hf_home: Path, repo_id: str, staged: Path, repo_type: str = "model") -> Path:
    """Move the files in ``staged`` into ``hub/<repo>/snapshots/<rev>/`` and point ``refs/main`` at it.

    Plain files rather than blob symlinks: huggingface_hub reads either, and plain files survive
    copying the store to another machine.
    """
    revision = _content_sha1(staged)
    repo = repo_folder(hf_home, repo_id, repo_type)
    snapshot = repo / "snapshots" / revision
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    if snapshot.exists():
        shutil.rmtree(snapshot)
    shutil.move(str(staged), str(snapshot))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    _readable(repo)
    # transformers 4.x reads the hub cache's version and, when it is missing, warns into the
    # notebook's output that the cache is outdated and tries to write it (a read-only store)
    (hf_home / "hub" / "version.txt").write_text("1")
    return repo


def write_dataset_cache(
    hf_home: Path,
    name: str,
    config_name: str,
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    features: Any,
    description: str = "",
) -> Path:
    """Write ``datasets/<name>/<config>/0.0.0/<hash>/``: ``<name>-<split>.arrow`` and ``dataset_info.json``.

    This is the folder a real ``load_dataset(name, config)`` prepares; offline, ``load_dataset`` finds
    it through ``CachedDatasetModuleFactory`` and the packaged ``cache`` builder.
    """
    import datasets
    from datasets.arrow_writer import ArrowWriter

    staged = hf_home / "datasets" / f".{name}-{config_name}.tmp"
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    split_dict = datasets.SplitDict(dataset_name=name)
    total = 0
    for split, rows in splits.items():
        path = staged / f"{name}-{split}.arrow"
        with ArrowWriter(features=features, path=str(path)) as writer:
            for row in rows:
                writer.write(dict(row))
            n_rows, n_bytes = writer.finalize()
        split_dict.add(
            datasets.SplitInfo(name=split, num_bytes=n_bytes, num_examples=n_rows, dataset_name=name)
        )
        total += n_bytes
    info = datasets.DatasetInfo(
        description=description,
        features=features,
        builder_name="parquet",
        dataset_name=name,
        config_name=config_name,
        version=DATASET_VERSION,
        splits=split_dict,
        download_size=total,
        dataset_size=total,
        size_in_bytes=2 * total,
    )
    info.write_to_directory(str(staged))
    legacy_features(staged)
    folder = hf_home / "datasets" / name / config_name / DATASET_VERSION / _content_sha1(staged)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists():
        shutil.rmtree(folder)
    shutil.move(str(staged), str(folder))
    _readable(hf_home / "datasets" / name)
    # datasets 2.x creates ``<HF_MODULES_CACHE>/datasets_modules/__init__.py`` on every load_dataset
    # when it is missing; in the sandbox the store is read-only, and the failed write surfaces as
    # "Couldn't reach the Hugging Face Hub for dataset ...". Written here, loading writes nothing.
    modules = hf_home / "modules"
    (modules / "datasets_modules").mkdir(parents=True, exist_ok=True)
    for init in (modules / "__init__.py", modules / "datasets_modules" / "__init__.py"):
        init.touch()
    _readable(modules)
    return hf_home / "datasets" / name


def _legacy(obj: Any) -> Any:
    """Features JSON in the spelling every declared kernel environment reads: datasets 4+ writes a
    list feature as ``{"_type": "List"}``, which datasets 2.x (the course's Colab) rejects ("must be
    called with a dataclass type or instance"), while datasets 4+ still reads the 2.x spelling
    ``{"_type": "Sequence"}``."""
    if isinstance(obj, dict):
        out = {k: _legacy(v) for k, v in obj.items()}
        if out.get("_type") == "List":
            out = {"feature": out.get("feature"), "_type": "Sequence"}
        return out
    if isinstance(obj, list):
        return [_legacy(v) for v in obj]
    return obj


def legacy_features(folder: Path) -> None:
    """Rewrite ``dataset_info.json`` and the Arrow files' schema metadata of a datasets cache folder
    with the 2.x spelling of list features (see ``_legacy``); the table data is unchanged."""
    import pyarrow as pa

    info_path = folder / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["features"] = _legacy(info.get("features"))
    info_path.write_text(json.dumps(info, sort_keys=False), encoding="utf-8")
    for arrow in sorted(folder.glob("*.arrow")):
        data = arrow.read_bytes()  # read whole: the file is rewritten in place below
        table = pa.ipc.open_stream(pa.BufferReader(data)).read_all()
        meta = dict(table.schema.metadata or {})
        if b"huggingface" in meta:
            hf = json.loads(meta[b"huggingface"])
            if isinstance(hf.get("info"), dict):
                hf["info"]["features"] = _legacy(hf["info"].get("features"))
            meta[b"huggingface"] = json.dumps(hf).encode()
        table = table.replace_schema_metadata(meta)
        with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)


def write_evaluate_module(hf_home: Path, name: str, source: bytes, module_type: str = "metric") -> Path:
    """Install a metric script as evaluate's cache of ``evaluate-<type>/<name>`` from the hub would.

    Layout (evaluate 0.4): ``modules/evaluate_modules/<type>s/evaluate-<type>--<name>/<sha256>/<name>.py``
    with ``__init__.py`` files, which ``CachedEvaluationModuleFactory`` imports when offline. The
    ``__init__.py`` files evaluate would otherwise create at load time are written here, so loading
    never needs to write into the store.
    """
    modules = hf_home / "modules"
    dynamic = modules / "evaluate_modules"
    folder = dynamic / f"{module_type}s" / f"evaluate-{module_type}--{name}"
    subdir = folder / hashlib.sha256(source).hexdigest()
    subdir.mkdir(parents=True, exist_ok=True)
    for init in (
        modules / "__init__.py",
        dynamic / "__init__.py",
        folder / "__init__.py",
        subdir / "__init__.py",
    ):
        init.touch()
    script = subdir / f"{name}.py"
    script.write_bytes(source)
    meta = {
        "original file path": f"evaluate-{module_type}/{name}/{name}.py",
        "local file path": script.relative_to(modules).as_posix(),  # relative: same bytes wherever built
    }
    (subdir / f"{name}.json").write_text(json.dumps(meta))
    _readable(modules)
    return folder
