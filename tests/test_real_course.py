"""The real course: four notebooks of Assignment 3 as they ran on Colab in WS 2023/24 (the course's
sample solution and three student groups'), graded in both kernel environments the rubric declares.

They are read from ``../shared/real/`` and never copied into the repository (other people's work);
the tests skip when that folder is absent. What is written here is only what ``../shared/real/
README.md`` says about them: a careful human reading per subtask, and which of their cells fail
because of the student (the README's "why, in short").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pools import grading_pool

REPO = Path(__file__).resolve().parent.parent
REAL = REPO.parent / "shared" / "real"
NOTEBOOKS = ("official-sample-solution", "student-g04", "student-gx", "student-medimind")
ENVS = ("course", "current")

# ../shared/real/README.md, "A careful human reading of each notebook against that rubric" (±0.5)
HUMAN: dict[str, dict[str, float]] = {
    "official-sample-solution": {"2.1": 4, "2.2": 3, "2.3": 5, "2.4": 2, "3.1": 5, "3.2": 2, "3.3": 2},
    "student-g04": {"2.1": 3.75, "2.2": 2.5, "2.3": 3.0, "2.4": 1.0, "3.1": 4.5, "3.2": 1.75, "3.3": 1.5},
    "student-gx": {"2.1": 3.0, "2.2": 2.75, "2.3": 4.75, "2.4": 2.0, "3.1": 4.0, "3.2": 1.0, "3.3": 1.75},
    "student-medimind": {"2.1": 3.5, "2.2": 0.5, "2.3": 4.0, "2.4": 0.25, "3.1": 4.5, "3.2": 2.0, "3.3": 1.5},
}
# Cells that fail because of the student, as the README describes them (cell index: what fails).
STUDENT_FAILURES: dict[str, dict[int, str]] = {
    "official-sample-solution": {},
    # "2.4 ... adds logits without argmax": evaluate's add() refuses float logits
    "student-g04": {96: "Evaluation module inputs don't match the expected format"},
    # "the collator puts -100 on input pads too": the embedding lookup of -100 fails when T5 trains
    "student-gx": {129: "index out of range in self"},
    # "2.4 loop body empty (IndentationError)"
    "student-medimind": {89: "IndentationError"},
}
# What a grading environment breaks in these notebooks when it is not theirs (issue 8's list).
ENV_SIGNATURES = (
    "unexpected keyword argument 'tokenizer'", "AcceleratorState", "Read-only file system", "Repo id must",
    "google.colab", "Torch not compiled with CUDA", "all_tied_weights_keys", "text2text-generation",
    "meta device", "didn't pass an `eval_dataset`", "Weights only load failed", "couldn't connect",
    "must be called with a dataclass", "untagged enum", "Token is required", "offline store",
)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real is absent")]


def _grade(path: str, out: str, env: str) -> dict[str, Any]:
    from grader.kernel.store import activate

    activate()
    from grader.steps.pipeline import GradeOptions, grade_submission

    return grade_submission(Path(path), Path(out), GradeOptions(torch_threads=1, kernel_env=env)).to_json()


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, built_store: Path) -> dict[tuple[str, str], dict[str, Any]]:
    from grader.kernel.envs import is_built
    from grader.pack.rubric import load_rubric

    rubric = load_rubric("assignment3")
    missing = [e for e in ENVS if not is_built(rubric.kernel.env(e))]
    assert not missing, f"kernel environments not built: {missing} (run `grader env build`)"
    out = tmp_path_factory.mktemp("real")
    jobs = [(name, env) for env in ENVS for name in NOTEBOOKS]
    with grading_pool(max(1, min(2, os.cpu_count() or 1))) as pool:
        futures = {job: pool.submit(_grade, str(REAL / f"{job[0]}.ipynb"), str(out / job[1] / job[0]), job[1]) for job in jobs}
        return {job: f.result() for job, f in futures.items()}


def subtask_score(result: dict[str, Any], subtask: str) -> float:
    """What a person would read off the result: the automatic points plus the points the grader
    suggests for the items a TA confirms (the questions in 2.1 and 2.2)."""
    auto = result["subtasks"][subtask]["auto_points"]
    suggested = sum(m["suggested"] or 0 for m in result["manual"] if m["subtask"] == subtask and m.get("suggested") is not None)
    return float(auto + suggested)


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_subtask_within_half_a_point_of_the_human_reading(name: str, env: str, graded: Any) -> None:
    result = graded[(name, env)]
    assert result["status"] == "graded", result.get("error")
    got = {s: subtask_score(result, s) for s in HUMAN[name]}
    off = {s: (got[s], want) for s, want in HUMAN[name].items() if abs(got[s] - want) > 0.5}
    assert not off, f"{name} ({env}): subtasks more than 0.5 from the human reading (got, human): {off}"


@pytest.mark.parametrize("env", ENVS)
def test_the_sample_solution_gets_every_automatic_point(env: str, graded: Any) -> None:
    result = graded[("official-sample-solution", env)]
    failed = [(c["id"], c["message"]) for c in result["checks"] if c["status"] != "passed"]
    assert not failed and result["auto_points"] == result["auto_max"], failed
    assert all(m["suggested"] == m["max_points"] for m in result["manual"] if m.get("suggested") is not None)


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_cell_fails_for_an_environment_reason(name: str, env: str, graded: Any) -> None:
    result = graded[(name, env)]
    failing = {c["index"]: c["error"] for c in result["cells"] if c["status"] != "ok"}
    expected = STUDENT_FAILURES[name]
    assert set(failing) == set(expected), f"{name} ({env}): failing cells {failing}, expected only {expected}"
    for index, error in failing.items():
        assert expected[index] in error, f"{name} ({env}) cell {index}: {error}"
        assert not any(sig in error for sig in ENV_SIGNATURES), f"{name} ({env}) cell {index} fails for the environment: {error}"


def test_colab_habits_are_emulated_and_named(graded: Any) -> None:
    """student-g04 loads in float16 and sets push_to_hub=True (Colab habits): both run, both are
    named in the report's Colab group, neither costs a point by itself."""
    result = graded[("student-g04", "course")]
    colab = " ".join(n["message"] for n in result["notes"] if n["kind"] == "colab")
    assert "float16" in colab and "push_to_hub" in colab, colab
    assert any("/content" in n["message"] for n in result["notes"]), "the /content paths are not named"


def test_course_era_drift_in_the_current_environment_is_named(graded: Any) -> None:
    """The sample solution under transformers 5: Seq2SeqTrainer(tokenizer=) and friends are mapped
    and named; the same notebook in the course's environment needs none of it."""
    current = {n["message"].split("`")[1] for n in graded[("official-sample-solution", "current")]["notes"] if n["kind"] == "drift" and "`" in n["message"]}
    course = [n for n in graded[("official-sample-solution", "course")]["notes"] if n["kind"] == "drift"]
    assert {"Seq2SeqTrainer(tokenizer=)", "evaluation_strategy=", "Trainer(tokenizer=)"} <= current, current
    assert not course, [n["message"] for n in course]
