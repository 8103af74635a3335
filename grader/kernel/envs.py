"""Kernel environments: the Python (and libraries) a student's notebook runs in.

A course runs on a fixed set of library versions (Assignment 3: Colab in December 2023, with
transformers 4.35). Grading on current releases makes notebooks fail for reasons that are not the
student's (removed APIs, changed defaults), so a rubric pack declares the environments its
notebooks may run in, and ``grader env build`` makes each one a virtual environment used only by
kernels. The grader's own process always stays on current libraries.

An environment with no packages is the grader's own interpreter (``current``: today's libraries,
with whatever shims the pack declares, ``grader.kernel.runtime``). Any other is a venv under
``$GRADER_ENVS`` (default ``<repo>/.kenv``), named by a digest of what it holds, so a changed
package list is a new folder and two packs that declare the same set share one. torch is pinned to
the grader's own build, installed first: an unpinned torch can pull a multi-GB CUDA wheel.

A venv is complete when its marker file exists (written last), so an interrupted build is redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ENV_VAR = "GRADER_ENVS"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / ".kenv"
MARKER = "grader-env.json"
# What every kernel needs beside the course's own packages.
KERNEL_PACKAGES = ("ipykernel",)


class EnvMissing(Exception):
    """A declared kernel environment has not been built here; the message says how to build it."""


@dataclass(frozen=True)
class EnvSpec:
    name: str
    title: str = ""
    packages: tuple[str, ...] = ()  # empty: the grader's own interpreter

    @property
    def is_grader_env(self) -> bool:
        return not self.packages


def env_root() -> Path:
    value = os.environ.get(ENV_VAR)
    return Path(value).expanduser().resolve() if value else DEFAULT_ROOT


def torch_pin() -> str:
    """``torch==<the grader's torch version>``, without a local tag (``2.13.0+cpu`` -> ``2.13.0``)."""
    try:
        return f"torch=={version('torch').split('+')[0]}"
    except PackageNotFoundError:
        return "torch"


def digest(spec: EnvSpec) -> str:
    text = json.dumps({"packages": list(spec.packages), "torch": torch_pin(), "python": sys.version_info[:2]})
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def env_dir(spec: EnvSpec) -> Path:
    return env_root() / f"{spec.name}-{digest(spec)}"


def is_built(spec: EnvSpec) -> bool:
    return spec.is_grader_env or (env_dir(spec) / MARKER).is_file()


def interpreter(spec: EnvSpec) -> Path:
    """The Python a kernel of ``spec`` runs; raises ``EnvMissing`` when it has not been built."""
    if spec.is_grader_env:
        return Path(sys.executable)
    folder = env_dir(spec)
    if not (folder / MARKER).is_file():
        raise EnvMissing(
            f"kernel environment '{spec.name}' ({spec.title or ', '.join(spec.packages)}) is not built "
            f"at {folder}; build it with: grader env build --env {spec.name}"
        )
    return folder / "bin" / "python"


def prefix(spec: EnvSpec) -> Path:
    """The folder a sandboxed kernel must be able to read for this environment."""
    return Path(sys.prefix).resolve() if spec.is_grader_env else env_dir(spec).resolve()


def build(spec: EnvSpec, log: Callable[[str], None] = print, force: bool = False) -> tuple[Path, bool]:
    """Build the venv of ``spec`` (idempotent); returns ``(folder, built_now)``."""
    if spec.is_grader_env:
        return Path(sys.prefix), False
    folder = env_dir(spec)
    if (folder / MARKER).is_file() and not force:
        return folder, False
    if folder.exists():
        shutil.rmtree(folder)  # half-built (no marker) or forced
    folder.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    _run([base, "-m", "venv", str(folder)], log)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    index = os.environ.get("TORCH_INDEX")
    _run([*pip, torch_pin(), *(["--index-url", index] if index else [])], log)
    _run([*pip, *spec.packages, *KERNEL_PACKAGES], log)
    versions = _versions(folder)
    (folder / MARKER).write_text(json.dumps({"name": spec.name, "title": spec.title, "packages": list(spec.packages),
                                             "torch": torch_pin(), "versions": versions}, indent=2) + "\n")
    return folder, True


def installed_versions(spec: EnvSpec) -> dict[str, str]:
    """What the environment's marker recorded (empty for the grader's own)."""
    if spec.is_grader_env:
        return {}
    try:
        data = json.loads((env_dir(spec) / MARKER).read_text())
        return {str(k): str(v) for k, v in data.get("versions", {}).items()}
    except (OSError, ValueError):
        return {}


def _versions(folder: Path) -> dict[str, str]:
    code = ("import json, importlib.metadata as m\n"
            "out = {}\n"
            "for n in ('torch','transformers','datasets','evaluate','accelerate','tokenizers','numpy','huggingface_hub'):\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))\n")
    done = subprocess.run([str(folder / "bin" / "python"), "-c", code], capture_output=True, text=True, check=False)
    try:
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {}


def _run(argv: list[str], log: Callable[[str], None]) -> None:
    log("$ " + " ".join(argv))
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed (exit {done.returncode}):\n" + "\n".join(tail))
