"""``grader new-pack``: a pack scaffolded from a solution's marked cells loads, validates, and gives no
points until its checks are written (``grader.pack.marks``, ``grader.pack.scaffold``, ``grader.cli.commands.new_pack``)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.cli.main import EXIT_OK, EXIT_USAGE, main
from grader.pack.contract import open_pack
from grader.pack.marks import find_marks, outline_by_marks
from grader.pack.rubric import load_rubric
from grader.pack.scaffold import NOT_WRITTEN, plan
from grader.steps.checks import CheckContext, run_check
from grader.steps.probe import ProbeCall, ProbeOutcome

REPO = Path(__file__).resolve().parent.parent
ANCHOR = Path(os.environ.get("ANCHOR_WORKLOAD", REPO.parent / "shared" / "anchor-workload")) / "solution.ipynb"
needs_anchor = pytest.mark.skipif(not ANCHOR.is_file(), reason=f"the anchor workload is not at {ANCHOR.parent}")


def homework() -> nbformat.NotebookNode:
    """One mark of each kind, two cells for one subtask, points in a heading and in nbgrader's metadata."""
    nb = new_notebook()
    tagged = new_code_cell("w = 3\nb: int = 4\n")
    tagged.metadata["tags"] = ["grade:q2"]
    graded = new_code_cell("class Net:\n    pass\n")
    graded.metadata["nbgrader"] = {"grade_id": "q3 net", "grade": True, "solution": True, "points": 1.5}
    nb.cells = [
        new_markdown_cell("# Homework 7: lines\n\nIntro."),
        new_code_cell("import math"),
        new_markdown_cell("**Q1 (2 points).** Fit a line."),
        new_code_cell("# [q1] Fit a line\ndef fit(x, y):\n    return 0.0, 0.0\n"),
        new_code_cell("# [q1]\n%time 1\ndef _private():\n    pass\n\ndef predict(x):\n    return x\n"),
        new_code_cell("print('a student helper')"),
        new_markdown_cell("Q2: the weights."),
        tagged,
        graded,
    ]
    return nb


def test_marks_of_each_kind() -> None:
    marks = find_marks(homework())
    assert [(m.index, m.subtask, m.kind, m.points) for m in marks] == [
        (3, "q1", "comment", None), (4, "q1", "comment", None), (7, "q2", "tag", None), (8, "q3_net", "nbgrader", 1.5)]
    assert marks[0].title == "Fit a line"


def test_outline_by_marks_attributes_the_cells_after_a_mark() -> None:
    sections = [s.subtask for s in outline_by_marks(homework()).sections]
    assert sections == [None, None, None, "q1", "q1", "q1", "q1", "q2", "q3_net"]


def test_plan_one_check_per_marked_cell() -> None:
    title, subtasks, checks = plan(homework(), "hw7")
    assert title == "Homework 7: lines"
    assert [(s.id, s.title) for s in subtasks] == [("q1", "Fit a line"), ("q2", "Q2: the weights."), ("q3_net", "q3_net")]
    assert [(c.id, c.subtask, c.points, c.probe) for c in checks] == [
        ("q1.fit", "q1", 2.0, "fit"), ("q1.predict", "q1", 1.0, "predict"),
        ("q2.result", "q2", 1.0, "q2_result"), ("q3_net.Net", "q3_net", 1.5, "Net")]
    assert checks[2].names == ("w", "b")


def test_a_notebook_without_marks_is_refused(tmp_path: Path) -> None:
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    path = tmp_path / "plain.ipynb"
    nbformat.write(nb, path)
    assert main(["new-pack", "plain", "--from", str(path), "--out", str(tmp_path / "pack")]) == EXIT_USAGE
    assert not (tmp_path / "pack").exists()


def _scaffold(tmp_path: Path, nb: nbformat.NotebookNode | Path) -> Path:
    name = f"np{uuid.uuid4().hex[:8]}"
    if isinstance(nb, Path):
        source = nb
    else:
        source = tmp_path / "solution.ipynb"
        nbformat.write(nb, source)
    out = tmp_path / name
    assert main(["new-pack", name, "--from", str(source), "--out", str(out)]) == EXIT_OK
    return out


def test_the_scaffold_validates_and_its_stubs_never_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _scaffold(tmp_path, homework())
    assert "4 check(s), 5.5 point(s)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["__init__.py", "checks.py", "conventions.py", "probes.py", "rubric.yaml"]
    rubric = load_rubric(out)  # validated on load
    pack = open_pack(rubric)
    assert rubric.total_points == 5.5 and [s.points for s in rubric.subtasks] == [3, 1, 1.5]
    assert pack.outline.__module__.endswith(".conventions")

    # the stub probes run (here, on a namespace standing for a notebook) and return data
    ns: dict[str, Any] = {"fit": lambda x, y: (0, 0), "w": 3}
    inputs = pack.checks_module.make_inputs(rubric, rubric.probe_plan(), 7, source={})
    calls: dict[str, ProbeOutcome] = {}
    for subtask, names in rubric.probe_plan().items():
        probes: dict[str, Any] = {"__name__": "__grader_probes__"}
        exec(compile(rubric.probe_source(subtask), "probes.py", "exec"), probes)  # the pack just written, not a student's
        calls[subtask] = ProbeOutcome({n: ProbeCall(n, True, probes[n](ns, inputs[subtask][n])) for n in names})
    assert calls["q1"].calls["fit"].value == {"fit": "function"}
    assert calls["q2"].calls["q2_result"].value == {"w": "int"}

    ctx = CheckContext(probes=calls, reference=pack.checks_module.reference(rubric, inputs), inputs=inputs)
    for spec in rubric.checks:
        result = run_check(spec, pack.check_functions[spec.id], ctx)
        assert (result.status, result.points) == ("failed", 0.0)
        assert NOT_WRITTEN in result.message and spec.id in result.message


def test_an_existing_pack_is_never_written_over(tmp_path: Path) -> None:
    out = _scaffold(tmp_path, homework())
    before = (out / "checks.py").read_text(encoding="utf-8")
    source = tmp_path / "solution.ipynb"
    assert main(["new-pack", out.name, "--from", str(source), "--out", str(out)]) == EXIT_USAGE
    assert (out / "checks.py").read_text(encoding="utf-8") == before


@needs_anchor
def test_scaffold_from_the_anchor_solution(tmp_path: Path) -> None:
    rubric = load_rubric(_scaffold(tmp_path, ANCHOR))
    assert [(s.id, s.points) for s in rubric.subtasks] == [("train", 1), ("metrics", 1), ("collate", 1)]
    assert [c.id for c in rubric.checks] == ["train.result", "metrics.compute_metrics", "collate.collate"]
    assert rubric.subtasks[0].title == "Part 1: build a tiny DistilBertForMultipleChoice and train it for 20 steps"


@needs_anchor
@pytest.mark.slow
def test_the_scaffold_grades_the_anchor_solution_with_no_points(tmp_path: Path, built_store: Path) -> None:
    """Through the real pipeline (sandboxed kernel): the stub probes run in the kernel and return
    what the notebook defined; every stub check fails, saying it is not written yet."""
    from grader.steps.pipeline import GradeOptions, grade_submission

    out = _scaffold(tmp_path, ANCHOR)
    result = grade_submission(ANCHOR, tmp_path / "graded", GradeOptions(rubric=out, torch_threads=1))
    assert result.status == "graded" and result.kernel_status == "ok", result.error
    assert result.auto_points == 0 and result.auto_max == 3
    assert all(c.status == "failed" and NOT_WRITTEN in c.message for c in result.checks), result.checks
    assert not [n for n in result.notes if n.kind == "kernel"], result.notes  # the probes ran
