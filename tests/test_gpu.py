"""The reference at course settings on a GPU (skipped without CUDA): a short run at the real batch
sizes with mixed precision, writing the artifacts the course profile promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.gpu
def test_course_profile_runs_a_few_steps_on_the_gpu(tmp_path: Path, built_store: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reference", "run", "--task", "all", "--profile", "course", "--max-steps", "4", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    arts = sorted((tmp_path / "course").glob("task*.json"))
    assert [a.name for a in arts] == ["task1.json", "task2.json", "task3.json"]
    task2 = json.loads((tmp_path / "course" / "task2.json").read_text())
    assert task2["schema_version"] == 1 and task2["status"] == "ok"
