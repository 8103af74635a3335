"""Google Colab, emulated: what notebooks written on Colab expect of their machine.

- ``site/``: put on the kernel's ``sys.path``; ``google.colab`` (``drive.mount``, ``files.download``,
  ``files.upload``, ``output``, ``userdata``) importable and doing nothing, each call named.
- ``bin/``: put first on the kernel's ``PATH``; ``nvidia-smi`` that says there is no GPU.
- ``normalize``: ``/content/...`` paths are the notebook's working folder, ``drive/MyDrive`` exists
  there, and shell lines that would reach the network (``pip``, ``wget``, ``curl``, ``git``) are
  skipped, while harmless ones (``ls``, ``cp``, ``mv``, ``zip``, ``unzip``, ``mkdir``) run in the sandbox.

Every emulated habit becomes a note in the report's Colab group; none costs a point.
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
SITE = HERE / "site"
BIN = HERE / "bin"
DRIVE = ("drive", "MyDrive")


def prepare_workdir(workdir: Path) -> None:
    """What a Colab runtime has in ``/content`` before the first cell: a (here empty) Drive mount point."""
    (workdir.joinpath(*DRIVE)).mkdir(parents=True, exist_ok=True)


def kernel_env(env: dict[str, str]) -> dict[str, str]:
    """The kernel's environment with the Colab stand-ins first on the import and command paths."""
    out = dict(env)
    out["PYTHONPATH"] = str(SITE) + (":" + out["PYTHONPATH"] if out.get("PYTHONPATH") else "")
    out["PATH"] = str(BIN) + ":" + (out.get("PATH") or os.environ.get("PATH") or "/usr/bin:/bin")
    out["COLAB_EMULATED"] = "1"
    return out
