"""Read what probes and notebooks left on disk: tensors in safetensors files, saved models.

Probes ship large tensors (a model's weights, so that the grader can recompute its outputs
outside the kernel) as ``{"__tensors__": "<file>.safetensors"}`` in their result, with the file in
the probe's artifact folder. Notebooks save models in folders the rubric names. Both were written by
the student's kernel, so both are read like any untrusted input: regular files only, bounded in
size, parsed by formats that cannot run code (JSON, safetensors; never pickle).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.safety.untrusted import Refused, read_bytes

MAX_TENSOR_FILE = 64 * 2**20
MAX_CONFIG_FILE = 1 * 2**20
MAX_LISTED = 200


def load_tensors(path: Path, max_bytes: int = MAX_TENSOR_FILE) -> dict[str, np.ndarray]:
    """A safetensors file as numpy arrays; ``Refused`` for anything else."""
    from safetensors.numpy import load

    raw = read_bytes(path, max_bytes=max_bytes)
    try:
        return dict(load(raw))
    except Exception as exc:  # noqa: BLE001 - any parse failure of an untrusted file is a refusal
        raise Refused(f"{path.name} is not a readable safetensors file ({type(exc).__name__})") from exc


def resolve_tensors(value: Any, folder: Path | None) -> Any:
    """Replace every ``{"__tensors__": name}`` in a decoded probe value by the arrays it names.

    A name that escapes ``folder``, a missing or unreadable file raises ``Refused``."""
    if isinstance(value, list):
        return [resolve_tensors(v, folder) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve_tensors(v, folder) for v in value)
    if not isinstance(value, dict):
        return value
    if set(value) == {"__tensors__"}:
        name = value["__tensors__"]
        if folder is None or not isinstance(name, str) or "/" in name or name.startswith(".") or not name.endswith(".safetensors"):
            raise Refused("a tensor file reference is not valid")
        return load_tensors(folder / name)
    return {k: resolve_tensors(v, folder) for k, v in value.items()}


@dataclass(frozen=True)
class SavedModel:
    """What a notebook left at one path the rubric names, read after its kernel stopped."""

    path: str
    kind: str  # "missing" | "file" | "folder" | "other"
    files: tuple[tuple[str, int], ...] = ()  # (name, size) of a folder's regular files
    size: int = 0  # a single file's size
    config: dict[str, Any] = field(default_factory=dict)  # config.json, when readable
    weight_keys: tuple[str, ...] = ()  # tensor names in the folder's safetensors files
    weight_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def exists(self) -> bool:
        return self.kind in ("file", "folder")

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self.files)


def read_saved(workdir: Path, relative: str) -> SavedModel:
    """Describe ``workdir/relative`` without following links out of ``workdir`` or running code."""
    base = workdir.resolve()
    target = (base / relative)
    try:
        real = target.resolve()
    except (OSError, RuntimeError):
        return SavedModel(relative, "other", problems=("the path could not be resolved",))
    if base not in real.parents and real != base:
        return SavedModel(relative, "other", problems=("the path leads out of the working folder",))
    if target.is_symlink():
        return SavedModel(relative, "other", problems=("the path is a symbolic link",))
    if not target.exists():
        return SavedModel(relative, "missing")
    if target.is_file():
        return SavedModel(relative, "file", size=target.stat().st_size)
    if not target.is_dir():
        return SavedModel(relative, "other")
    files: list[tuple[str, int]] = []
    for entry in sorted(os.scandir(target), key=lambda e: e.name)[:MAX_LISTED]:
        if entry.is_file(follow_symlinks=False):
            files.append((entry.name, entry.stat(follow_symlinks=False).st_size))
    problems: list[str] = []
    config: dict[str, Any] = {}
    if any(n == "config.json" for n, _ in files):
        try:
            data = json.loads(read_bytes(target / "config.json", max_bytes=MAX_CONFIG_FILE).decode("utf-8"))
            config = data if isinstance(data, dict) else {}
        except (Refused, OSError, ValueError) as exc:
            problems.append(f"config.json is unreadable ({str(exc)[:120]})")
    keys: list[str] = []
    shapes: dict[str, tuple[int, ...]] = {}
    for name, _size in files:
        if name.endswith(".safetensors"):
            try:
                header = _safetensors_header(target / name)
            except (Refused, OSError, ValueError) as exc:
                problems.append(f"{name} is unreadable ({str(exc)[:120]})")
                continue
            for k, v in header.items():
                if k != "__metadata__" and isinstance(v, dict):
                    keys.append(k)
                    shapes[k] = tuple(int(x) for x in v.get("shape", ()))
    return SavedModel(relative, "folder", files=tuple(files), config=config, weight_keys=tuple(sorted(keys)),
                      weight_shapes=shapes, problems=tuple(problems))


def _safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (names, dtypes, shapes), without reading the weights."""
    with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise Refused("too short for a safetensors file")
        n = int.from_bytes(head, "little")
        if n > MAX_CONFIG_FILE:
            raise Refused("its header is too large")
        data = json.loads(fh.read(n).decode("utf-8"))
    if not isinstance(data, dict):
        raise Refused("its header is not an object")
    return data


def read_all_saved(workdir: Path, paths: Iterable[str]) -> dict[str, SavedModel]:
    return {p: read_saved(workdir, p) for p in paths}
