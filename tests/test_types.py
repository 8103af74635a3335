"""The code is type-checked: the grader, the rubric packs and the reference (mypy, as configured in
pyproject.toml). A pack's checks read untrusted probe values; mypy finds the paths where a missing
value would raise (a check that raises is the grader's error, never the student's points)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_mypy_passes_on_grader_rubrics_and_reference() -> None:
    pytest.importorskip("mypy")
    done = subprocess.run([sys.executable, "-m", "mypy", "grader", "rubrics", "reference"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
