"""`pip install .` carries what grading needs: the rubric packs, the Colab stand-ins, the templates,
and an installed grader finds its packs without the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    work = tmp_path_factory.mktemp("build")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(REPO)], capture_output=True, text=True, cwd=work, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return target


def test_the_packs_and_the_platform_files_are_installed(installed: Path) -> None:
    for rel in ("rubrics/assignment3/rubric.yaml", "rubrics/assignment3/probes.py", "rubrics/assignment3/conventions.py",
                "rubrics/anchor/rubric.yaml", "grader/kernel/platforms/colab/site/google/colab/drive.py",
                "grader/kernel/platforms/colab/bin/nvidia-smi", "grader/reports/templates/report.html.j2", "grader/review/static/review.js"):
        assert (installed / rel).is_file(), rel


def test_an_installed_grader_loads_its_packs(installed: Path, tmp_path: Path) -> None:
    code = ("from grader.pack.rubric import load_rubric, installed_packs, RUBRICS_DIR\n"
            "r = load_rubric('assignment3')\n"
            "print(sorted(installed_packs()), RUBRICS_DIR, len(r.checks), r.checks_module.__name__)\n")
    env = {**os.environ, "PYTHONPATH": str(installed)}
    env.pop("GRADER_RUBRIC", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "['anchor', 'assignment3']" in done.stdout and str(installed) in done.stdout, done.stdout
