"""The in-notebook self-check: public checks of one subtask on live objects, hidden ones never named."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from grader.pack.contract import outline_for
from grader.pack.rubric import load_rubric
from grader.steps.execute import ExecConfig, run
from grader.steps.notebook import neutralize

outline = outline_for(load_rubric("assignment3"))  # Assignment 3's notebook conventions

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run_until_2_1_then(nb_path: Path, code: str, built_store: Path, tmp_path: Path) -> str:
    from grader.kernel.store import prepare_scratch, store_env

    nb, _ = neutralize(nbformat.read(nb_path, as_version=4))
    sections = outline(nb).sections
    keep = [c for c, s in zip(nb.cells, sections, strict=True) if s.task in (None, "1") or s.subtask == "2.1" or (s.task == "2" and s.subtask is None)]
    nb.cells = [*keep, new_code_cell(code)]
    scratch = prepare_scratch(built_store, tmp_path / "scratch")
    run(nb, tmp_path / "work", ExecConfig(env=store_env(built_store, scratch), torch_threads=1))
    last = nb.cells[-1]
    return "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream") + "".join(
        f"{o.get('ename')}: {o.get('evalue')}" for o in last.outputs if o.output_type == "error")


CODE = 'from grader import selfcheck\nr = selfcheck("2.1")\nprint(r.summary())\nprint("HTML", "<table>" in r._repr_html_())'


def test_selfcheck_passes_the_solution_and_names_no_hidden_check(built_store: Path, tmp_path: Path) -> None:
    out = _run_until_2_1_then(REPO / "submissions" / "full-marks__solution.ipynb", CODE, built_store, tmp_path)
    assert "Self-check 2.1: 2.5 / 2.5 points" in out, out
    assert "PASS 2.1.collator_shapes" in out and "FAIL" not in out
    assert "hidden" not in out.replace("(hidden checks run when the notebook is graded)", "")
    assert "2.1.collator_flatten" not in out and "2.1.preprocess_logic" not in out
    assert "HTML True" in out


def test_selfcheck_names_the_broken_collator(built_store: Path, tmp_path: Path) -> None:
    out = _run_until_2_1_then(REPO / "submissions" / "loses-2.1__collator-not-unflattened.ipynb", CODE, built_store, tmp_path)
    assert "FAIL 2.1.collator_shapes: input_ids has shape [8, " in out, out  # [B*4, L], not [B, 4, L]
    assert "expected [2, 4, " in out and "PASS 2.1.preprocess_output" in out
