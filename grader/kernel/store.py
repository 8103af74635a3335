"""The offline store: a Hugging Face cache that the libraries read by themselves, found through one setting.

A store is a folder (``GRADER_STORE``, default ``<repo>/.store``) holding ``hf/``, used as ``HF_HOME``
with the libraries in offline mode, and ``manifest.json``, written last by the builder. The libraries
resolve hub ids with their own code and nothing is patched, so the same environment variables serve
the grader's process and the Jupyter kernels that run student notebooks:

- transformers / huggingface_hub: ``hf/hub/models--<org>--<name>/snapshots/<rev>/`` plus ``refs/main``,
  read by ``from_pretrained("<hub id>")`` when ``HF_HUB_OFFLINE=1``;
- datasets: ``hf/datasets/<name>/<config>/<version>/<hash>/`` (Arrow files and ``dataset_info.json``):
  offline, ``load_dataset("<name>")`` falls back to this cache through its packaged ``cache`` module;
- evaluate: ``hf/modules/evaluate_modules/metrics/evaluate-metric--<name>/<hash>/<name>.py``: offline,
  ``evaluate.load("<name>")`` falls back to this cached module.

The manifest lists every entry (kind, id, source, files with sizes and hashes), so that a store a
build left half-done, or one missing what an assignment needs, is reported with the command that
fixes it instead of surfacing later as an obscure error inside a student's kernel.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
BUILD_COMMAND = "grader store build"
ENV_VAR = "GRADER_STORE"
DEFAULT_STORE = Path(__file__).resolve().parents[2] / ".store"

# Datasets smaller than this are loaded into memory: ``.map()`` then never writes cache files next to
# the store's Arrow files (which may be read-only, and are shared between kernels).
IN_MEMORY_MAX_BYTES = 512 * 1024 * 1024

Kind = Literal["model", "dataset", "metric"]
Source = Literal["tiny", "real"]


class StoreMissing(Exception):
    """The store is absent, half-built, or lacks what is required. The message says how to build it."""

    def __init__(
        self,
        root: Path,
        reason: str,
        missing_ids: Sequence[str] = (),
        missing_files: Sequence[str] = (),
    ) -> None:
        self.root = root
        self.reason = reason
        self.missing_ids = list(missing_ids)
        self.missing_files = list(missing_files)
        super().__init__(self._message())

    def _message(self) -> str:
        lines = [f"offline store at {self.root}: {self.reason}"]
        if self.missing_ids:
            lines.append("missing: " + ", ".join(self.missing_ids))
        if self.missing_files:
            shown = self.missing_files[:5]
            more = len(self.missing_files) - len(shown)
            lines.append(
                "missing or changed files: " + ", ".join(shown) + (f" (and {more} more)" if more else "")
            )
        lines.append(f"build it with: {build_command(self.root)}")
        return "\n".join(lines)


class StoreActivationError(RuntimeError):
    """A Hugging Face library was imported before ``activate`` and already holds other settings."""


@dataclass(frozen=True)
class FileRecord:
    path: str  # relative to the store root, with forward slashes
    size: int
    sha256: str


@dataclass(frozen=True)
class Entry:
    kind: Kind
    id: str
    source: Source
    files: tuple[FileRecord, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    entries: tuple[Entry, ...]
    builder: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)

    def entry(self, entry_id: str) -> Entry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def to_json(self) -> str:
        data = asdict(self)
        data["versions"] = dict(sorted(self.versions.items()))
        return json.dumps(data, indent=2) + "\n"


# --- where the store is, and the environment that reads it -----------------------------------------


def store_root() -> Path:
    """``$GRADER_STORE`` if set, else ``<repo>/.store``."""
    value = os.environ.get(ENV_VAR)
    return Path(value).expanduser().resolve() if value else DEFAULT_STORE


def build_command(root: Path) -> str:
    root = Path(root)
    return BUILD_COMMAND if root.resolve() == store_root() else f"{BUILD_COMMAND} --store {root}"


def store_env(root: Path, scratch: Path | None = None, offline: bool = True) -> dict[str, str]:
    """Environment variables under which transformers, datasets and evaluate read ``root`` offline.

    Every cache location is set explicitly (not only ``HF_HOME``) so that variables already in the
    caller's environment (``HF_HUB_CACHE``, ``HF_DATASETS_CACHE``, ...) cannot point elsewhere.
    ``scratch``, if given, receives what the libraries write at run time (datasets' lock files,
    evaluate's metric caches, downloads), so that the store itself may be mounted read-only: call
    ``prepare_scratch(root, scratch)`` first, which links the store's data sets into it. Without
    ``scratch`` those writes go into the store. ``offline=False`` is for filling the store from the
    hub (``grader store fetch``).
    """
    hf = Path(root).resolve() / "hf"
    writable = Path(scratch).resolve() if scratch is not None else hf
    flag = "1" if offline else "0"
    return {
        "HF_HOME": str(hf),
        "HF_HUB_CACHE": str(hf / "hub"),
        "HUGGINGFACE_HUB_CACHE": str(hf / "hub"),
        "HF_DATASETS_CACHE": str((writable if scratch is not None else hf) / "datasets"),
        "HF_MODULES_CACHE": str(hf / "modules"),
        "HF_EVALUATE_CACHE": str(writable / "evaluate"),
        "HF_METRICS_CACHE": str(writable / "metrics"),
        "HF_ASSETS_CACHE": str(writable / "assets"),
        "HF_XET_CACHE": str(writable / "xet"),
        "HF_HUB_OFFLINE": flag,
        "HF_DATASETS_OFFLINE": flag,
        "TRANSFORMERS_OFFLINE": flag,
        "HF_EVALUATE_OFFLINE": flag,
        "HF_DATASETS_IN_MEMORY_MAX_SIZE": str(IN_MEMORY_MAX_BYTES),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_SYMLINKS_WARNING": "1",
        "DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def prepare_scratch(root: Path, scratch: Path) -> Path:
    """Make ``scratch`` a writable datasets cache whose data sets are links into the store.

    datasets takes a lock file in ``HF_DATASETS_CACHE`` itself on every ``load_dataset`` (filelock has
    no read-only fallback), and finds cached data sets only under that same folder. So the folder
    must be writable while the Arrow files stay in the (possibly read-only, shared) store: each entry
    of ``<root>/hf/datasets`` is linked from ``<scratch>/datasets``. Returns ``scratch``.
    """
    source = Path(root).resolve() / "hf" / "datasets"
    target = Path(scratch).resolve() / "datasets"
    target.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        for item in sorted(source.iterdir()):
            link = target / item.name
            if item.is_dir() and not item.name.startswith(".") and not link.exists():
                link.symlink_to(item, target_is_directory=True)
    return Path(scratch).resolve()


def _imported_settings() -> dict[str, tuple[str, str]]:
    """Settings that already-imported libraries froze at import time: name -> (what it holds, env key)."""
    found: dict[str, tuple[str, str]] = {}
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:
        found["huggingface_hub HF_HUB_CACHE"] = (str(Path(hub.HF_HUB_CACHE).resolve()), "HF_HUB_CACHE")
        found["huggingface_hub HF_HUB_OFFLINE"] = ("1" if hub.HF_HUB_OFFLINE else "0", "HF_HUB_OFFLINE")
    ds = sys.modules.get("datasets.config")
    if ds is not None:
        found["datasets HF_DATASETS_CACHE"] = (str(Path(ds.HF_DATASETS_CACHE).resolve()), "HF_DATASETS_CACHE")
        found["datasets HF_HUB_OFFLINE"] = ("1" if ds.HF_HUB_OFFLINE else "0", "HF_DATASETS_OFFLINE")
    ev = sys.modules.get("evaluate.config")
    if ev is not None:
        found["evaluate HF_MODULES_CACHE"] = (str(Path(ev.HF_MODULES_CACHE).resolve()), "HF_MODULES_CACHE")
        found["evaluate HF_EVALUATE_OFFLINE"] = (
            "1" if ev.HF_EVALUATE_OFFLINE else "0",
            "HF_EVALUATE_OFFLINE",
        )
    return found


def activate(root: Path | None = None, scratch: Path | None = None, offline: bool = True) -> Path:
    """Point this process at the store: set ``store_env(root)`` in ``os.environ``; returns the root.

    Call it before importing huggingface_hub, transformers, datasets or evaluate: they read these
    variables once, at import. If one of them was imported earlier with other settings, this raises
    ``StoreActivationError`` rather than let the process read (or download into) another cache.
    """
    root = Path(root).resolve() if root is not None else store_root()
    env = store_env(root, scratch, offline)
    conflicts = [
        f"{name} is {held!r}, the store needs {env[key]!r}"
        for name, (held, key) in _imported_settings().items()
        if held != env[key]
    ]
    if conflicts:
        raise StoreActivationError(
            "Hugging Face libraries were imported before grader.kernel.store.activate(): "
            + "; ".join(conflicts)
            + ". Call activate() first, or set these variables before starting Python."
        )
    if scratch is not None:
        prepare_scratch(root, scratch)
    os.environ.update(env)
    return root


# --- manifest -------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_records(root: Path, paths: Iterable[Path]) -> tuple[FileRecord, ...]:
    """Records for ``paths`` (files, or folders walked recursively), sorted, relative to ``root``."""
    root = Path(root).resolve()
    files: set[Path] = set()
    for p in paths:
        p = Path(p).resolve()
        if p.is_dir():
            files.update(x for x in p.rglob("*") if x.is_file())
        else:
            files.add(p)
    return tuple(
        FileRecord(path=f.relative_to(root).as_posix(), size=f.stat().st_size, sha256=sha256_file(f))
        for f in sorted(files)
    )


def write_manifest(root: Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` atomically. Builders call this last: its presence means "complete"."""
    path = Path(root) / MANIFEST
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_text(manifest.to_json(), encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def read_manifest(root: Path) -> Manifest:
    """Parse ``manifest.json``; raises ``StoreMissing`` if it is absent, unreadable or of another schema."""
    root = Path(root)
    path = root / MANIFEST
    if not root.is_dir():
        raise StoreMissing(root, "no store here (the folder does not exist)")
    if not path.is_file():
        raise StoreMissing(
            root, f"{MANIFEST} is missing: the store was never built, or a build was interrupted"
        )
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema_version") != SCHEMA_VERSION:
            raise StoreMissing(
                root,
                f"{MANIFEST} has schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}",
            )
        entries = tuple(
            Entry(
                kind=e["kind"],
                id=e["id"],
                source=e["source"],
                files=tuple(FileRecord(**f) for f in e.get("files", ())),
            )
            for e in data["entries"]
        )
        return Manifest(
            schema_version=SCHEMA_VERSION,
            entries=entries,
            builder=data.get("builder", ""),
            versions=data.get("versions", {}),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreMissing(root, f"{MANIFEST} is unreadable ({type(exc).__name__}: {exc})") from None


def check_store(
    root: Path | None = None, required: Sequence[str] | None = None, verify: bool = False
) -> Manifest:
    """Raise ``StoreMissing`` unless the store is complete and holds every id in ``required``.

    Files are checked for presence and size; ``verify=True`` also compares their sha256 (slower).
    Returns the manifest.
    """
    root = Path(root) if root is not None else store_root()
    manifest = read_manifest(root)
    missing_ids = [i for i in (required or ()) if manifest.entry(i) is None]
    if missing_ids:
        raise StoreMissing(root, "the store lacks entries this assignment needs", missing_ids=missing_ids)
    wanted = [manifest.entry(i) for i in required] if required else list(manifest.entries)
    missing_files: list[str] = []
    for entry in wanted:
        assert entry is not None
        for rec in entry.files:
            path = root / rec.path
            if (
                not path.is_file()
                or path.stat().st_size != rec.size
                or (verify and sha256_file(path) != rec.sha256)
            ):
                missing_files.append(f"{entry.id}: {rec.path}")
    if missing_files:
        raise StoreMissing(
            root, "files listed in the manifest are missing or changed", missing_files=missing_files
        )
    return manifest
