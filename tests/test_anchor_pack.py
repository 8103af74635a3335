"""The second pack, ``rubrics/anchor``.

End to end: the anchor workload's 20 submissions graded through the real pipeline (sandboxed
kernels, probes, checks outside the kernel, reports), compared with the scores the workload states
(``expected_scores.json``). The workload lives outside this repository
(``../shared/anchor-workload/``, the same notebooks nbgrader and otter-grader were measured on);
those tests skip where it is absent. Its notebooks are read where they are, never copied here.

Without a kernel: the checks on probe values a hostile kernel could send (junk, the README's public
answer, a collate that ignores pad_id). These never import transformers into the test process
(the store must be activated first; forked workers of other tests inherit what is imported).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from pools import grading_pool

REPO = Path(__file__).resolve().parent.parent
WORKLOAD = Path(os.environ.get("ANCHOR_WORKLOAD", REPO.parent / "shared" / "anchor-workload"))
# expected_scores.json names each bug by question; the pack's subtasks are the notebook's cell tags
BUG_SUBTASK = {"q_train": "train", "q_metrics": "metrics", "q_collate": "collate"}

workload = pytest.mark.skipif(not (WORKLOAD / "expected_scores.json").is_file(), reason=f"the anchor workload is not at {WORKLOAD}")


def _grade(path: str, out: str) -> dict[str, Any]:
    from grader.kernel.store import activate

    activate()
    from grader.steps.pipeline import GradeOptions, grade_submission

    return grade_submission(Path(path), Path(out), GradeOptions(rubric="anchor", torch_threads=1)).to_json()


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WORKLOAD / "expected_scores.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, built_store: Path, expected: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("anchor")
    notebooks = {name: WORKLOAD / "submissions" / f"{name}.ipynb" for name in expected["expected"]}
    workers = max(1, min(2, os.cpu_count() or 1))
    with grading_pool(workers) as pool:
        started = time.perf_counter()
        futures = {name: pool.submit(_grade, str(nb), str(out / name)) for name, nb in notebooks.items()}
        results = {name: f.result() for name, f in futures.items()}
        seconds = time.perf_counter() - started
        for name in ("solution", "assignment"):
            results[f"_{name}"] = pool.submit(_grade, str(WORKLOAD / f"{name}.ipynb"), str(out / f"_{name}")).result()
    print(f"\nanchor workload: {len(notebooks)} submissions graded in {seconds:.1f} s with {workers} workers "
          f"({seconds / len(notebooks):.1f} s of wall clock per notebook)")
    for name in notebooks:
        assert (out / name / "report.html").is_file() and (out / name / "result.json").is_file()
    return results


@workload
@pytest.mark.slow
def test_every_submission_gets_its_expected_score(graded: dict[str, dict[str, Any]], expected: dict[str, Any]) -> None:
    got = {name: graded[name]["auto_points"] for name in expected["expected"]}
    assert got == {name: float(points) for name, points in expected["expected"].items()}
    for name in expected["expected"]:
        r = graded[name]
        assert r["status"] == "graded" and r["kernel_status"] == "ok", (name, r["error"], r["kernel_message"])
        assert r["auto_max"] == 3
        assert not [c for c in r["checks"] if c["status"] == "error"], f"{name}: the grader failed on a check"


@workload
@pytest.mark.slow
def test_each_bug_costs_exactly_its_part(graded: dict[str, dict[str, Any]], expected: dict[str, Any]) -> None:
    per_part = expected["points_per_part"]
    for name, bug in expected["bugs"].items():
        subtasks = {k: v["auto_points"] for k, v in graded[name]["subtasks"].items()}
        lost = BUG_SUBTASK[bug]
        assert subtasks == {s: (0 if s == lost else per_part) for s in BUG_SUBTASK.values()}, name


@workload
@pytest.mark.slow
def test_the_failures_say_what_went_wrong(graded: dict[str, dict[str, Any]]) -> None:
    messages = {name: {c["id"]: c["message"] for c in graded[name]["checks"] if c["status"] != "passed"}
                for name in ("s04", "s09", "s13", "s17")}
    assert "ValueError" in messages["s04"]["metrics.accuracy"]  # argmax over the examples: shapes clash
    assert "expected [" in messages["s09"]["collate.shape"] and "[B, 4, L]" in messages["s09"]["collate.shape"]
    assert "diverged" in messages["s13"]["train.losses"] and "diverged" in messages["s13"]["train.model"]
    assert "['acc']" in messages["s17"]["metrics.accuracy"]


@workload
@pytest.mark.slow
def test_solution_gets_everything_and_the_blank_assignment_nothing(graded: dict[str, dict[str, Any]]) -> None:
    solution, blank = graded["_solution"], graded["_assignment"]
    assert solution["auto_points"] == 3 and all(c["status"] == "passed" for c in solution["checks"])
    assert blank["status"] == "graded" and blank["auto_points"] == 0
    assert all(c["status"] == "failed" for c in blank["checks"])


# --- the checks on what a kernel could send ----------------------------------------------------------


def _results(values: dict[str, Any], seed: int = 7) -> dict[str, Any]:
    """Each check's result when the probes returned ``values`` (by probe name; absent: no result)."""
    from grader.pack.rubric import load_rubric
    from grader.steps.checks import CheckContext, collect, run_check
    from grader.steps.probe import ProbeCall, ProbeOutcome

    rubric = load_rubric("anchor")
    pack = rubric.checks_module
    plan = rubric.probe_plan()
    inputs = pack.make_inputs(rubric, plan, seed, source={})
    outcomes = {s: ProbeOutcome({n: ProbeCall(n, True, values[n]) for n in names if n in values}) for s, names in plan.items()}
    ctx = CheckContext(probes=outcomes, reference=pack.reference(rubric, inputs), inputs=inputs)
    fns = collect(pack)
    return {spec.id: run_check(spec, fns[spec.id], ctx) for spec in rubric.checks}


def _inputs(seed: int = 7) -> dict[str, Any]:
    from grader.pack.rubric import load_rubric

    rubric = load_rubric("anchor")
    per_subtask = rubric.checks_module.make_inputs(rubric, rubric.probe_plan(), seed, source={})
    return {name: value for probes in per_subtask.values() for name, value in probes.items()}


def _collated(case: dict[str, Any], pad_id: int | None = None) -> dict[str, Any]:
    import numpy as np

    from grader.steps.probe import from_data

    pad = case["pad_id"] if pad_id is None else pad_id
    longest = max(len(seq) for example in case["features"] for seq in example)
    out = np.full((len(case["features"]), 4, longest), pad if pad is not None else 0, dtype=np.int64)
    for i, example in enumerate(case["features"]):
        for j, seq in enumerate(example):
            out[i, j, : len(seq)] = seq
    return {"type": "torch.Tensor", "dtype": "torch.int64", "value": from_data({"__array__": out.tolist(), "dtype": "int64", "shape": list(out.shape)})}


@pytest.mark.parametrize("junk", [None, 5, "x", [], {}, {"losses": 5}, {"losses": ["a"], "final_loss": {}},
                                  [{"accuracy": "high"}] * 3, [5, 5, 5], {"value": "zz", "type": 3}, {"class": 1, "weights": 2}])
def test_junk_from_the_kernel_fails_and_never_breaks_the_grader(junk: Any) -> None:
    results = _results(dict.fromkeys(("losses", "model", "compute_metrics", "collate", "collate_with_pad_id"), junk))
    assert {r.status for r in results.values()} == {"failed"}, {k: (r.status, r.detail[-300:]) for k, r in results.items()}


def test_right_answers_pass_and_the_public_answer_does_not() -> None:
    inputs = _inputs()
    losses = [1.4 - 0.01 * i for i in range(20)]
    cases = inputs["compute_metrics"]["cases"]
    import numpy as np

    right = [{"accuracy": float((np.argmax(np.asarray(c["logits"]), -1) == np.asarray(c["labels"])).mean())} for c in cases]
    values = {"losses": {"losses": losses, "final_loss": losses[-1]}, "compute_metrics": right,
              "collate": _collated(inputs["collate"]), "collate_with_pad_id": _collated(inputs["collate_with_pad_id"])}
    results = _results(values)
    assert {k: r.status for k, r in results.items()} == {
        "train.losses": "passed", "train.model": "failed", "metrics.accuracy": "passed", "collate.shape": "passed", "collate.padding": "passed"}

    # the README's example answer (2/3), a collate that pads with 0 whatever pad_id says, a loss short
    forged = {**values, "compute_metrics": [{"accuracy": 2 / 3}] * 3, "collate_with_pad_id": _collated(inputs["collate_with_pad_id"], pad_id=0),
              "losses": {"losses": losses[:19], "final_loss": losses[18]}}
    results = _results(forged)
    assert results["metrics.accuracy"].status == "failed" and "expected" in results["metrics.accuracy"].message
    assert results["collate.shape"].status == "passed" and results["collate.padding"].status == "failed"
    assert results["train.losses"].message == "losses holds 19 values, expected 20 (one per step)"


def test_inputs_never_use_a_batch_of_four() -> None:
    """With 4 choices a batch of 4 would let swapped axes (s09) or argmax over the batch (s04) pass."""
    for seed in range(40):
        inputs = _inputs(seed)
        assert len(inputs["model"]["input_ids"]) != 4
        assert all(len(c["labels"]) != 4 for c in inputs["compute_metrics"]["cases"])
        assert len(inputs["collate"]["features"]) != 4 and len(inputs["collate_with_pad_id"]["features"]) != 4
