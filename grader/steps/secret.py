"""This installation's grading secret: mixed into the seed of every submission's probe inputs.

It never reaches a kernel (the project folder is hidden from the sandbox) and never a report, so
inputs cannot be predicted from the rubric pack or from another installation's runs. Set
``GRADER_SECRET`` to share one secret between machines grading the same course (a Dask cluster);
otherwise a random one is made once, in ``build/grader-secret``.
"""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path

ENV_VAR = "GRADER_SECRET"
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "build" / "grader-secret"


@functools.cache
def grader_secret() -> str:
    value = os.environ.get(ENV_VAR)
    if value:
        return value
    try:
        return DEFAULT_FILE.read_text(encoding="utf-8").strip()
    except OSError:
        pass
    token = secrets.token_hex(32)
    try:
        DEFAULT_FILE.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(DEFAULT_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
    except FileExistsError:  # another worker made it first
        return DEFAULT_FILE.read_text(encoding="utf-8").strip()
    except OSError:
        pass  # a read-only checkout: this process's own secret
    return token
