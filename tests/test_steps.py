"""Unit tests of the pipeline's steps, each alone: rubric loading, checks' error boundary, score,
probe channel, render. Fast: no kernel, no model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from grader.kernel.probe_runtime import to_data
from grader.pack.rubric import RUBRICS_DIR, CheckSpec, RubricError, load_rubric
from grader.reports.render import render_reports
from grader.steps.checks import CheckContext, Missing, Verdict, collect, run_check
from grader.steps.probe import ProbeCall, ProbeOutcome, build_cell, from_data, read_results
from grader.steps.results import CheckResult, GradeResult, ManualItem, result_from_json
from grader.steps.score import score

RUBRIC = load_rubric("assignment3")
REPO = Path(__file__).resolve().parent.parent


# --- rubric ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", sorted(p.parent for p in RUBRICS_DIR.glob("*/rubric.yaml")))
def test_every_rubric_pack_is_complete(folder: Path) -> None:
    """The contract every pack keeps: checks declared = checks implemented, probes exist, points add up."""
    rubric = load_rubric(folder)
    implemented = set(collect(rubric.checks_module))
    declared = {c.id for c in rubric.checks}
    assert declared == implemented, f"declared but missing: {declared - implemented}; implemented but undeclared: {implemented - declared}"
    namespace: dict = {"__name__": "__grader_probes__"}
    exec(compile(rubric.probes_source, "probes.py", "exec"), namespace)
    defined = {n for n, f in namespace.items() if callable(f) and not n.startswith("_") and getattr(f, "__module__", None) == "__grader_probes__"}
    assert set(rubric.probe_names()) <= defined, set(rubric.probe_names()) - defined
    assert sum(s.points for s in rubric.subtasks) == rubric.total_points
    assert callable(rubric.checks_module.make_inputs) and callable(rubric.checks_module.reference)


def test_assignment3_points_are_the_assignments() -> None:
    pts = {s.id: s.points for s in RUBRIC.subtasks}
    assert pts == {"1.1": 3, "1.2": 4, "1.3": 4, "1.4": 1, "2.1": 4, "2.2": 3, "2.3": 5, "2.4": 2, "3.1": 5, "3.2": 2, "3.3": 2, "3.4": 5}
    assert RUBRIC.total_points == 40


def _write_rubric(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "pack"
    folder.mkdir()
    (folder / "rubric.yaml").write_text(text)
    return folder


def test_unknown_key_is_an_error_with_a_hint(tmp_path: Path) -> None:
    folder = _write_rubric(tmp_path, "schema_version: 1\ntotal_points: 1\nsubtasks: [{id: '1', title: t, points: 1}]\nchecks: [{id: a, subtask: '1', points: 1, title: t, hiden: true}]\n")
    with pytest.raises(RubricError, match="unknown key 'hiden' \\(did you mean 'hidden'\\?\\)"):
        load_rubric(folder)


def test_points_that_do_not_add_up_are_an_error(tmp_path: Path) -> None:
    folder = _write_rubric(tmp_path, "schema_version: 1\ntotal_points: 2\nsubtasks: [{id: '1', title: t, points: 2}]\nchecks: [{id: a, subtask: '1', points: 1, title: t}]\n")
    with pytest.raises(RubricError, match="subtask 1 is worth 2 points but its checks and manual items add up to 1"):
        load_rubric(folder)


# --- checks' error boundary -----------------------------------------------------------------------

SPEC = CheckSpec(id="x", subtask="2.1", points=2.0, title="t")


def _ctx(calls: dict[str, ProbeCall]) -> CheckContext:
    return CheckContext(probes=ProbeOutcome(calls), reference={}, inputs={})


def test_a_check_that_raises_is_the_graders_error_and_scores_zero() -> None:
    def broken(ctx: CheckContext) -> Verdict:
        raise KeyError("oops")

    r = run_check(SPEC, broken, _ctx({}))
    assert (r.status, r.points) == ("error", 0.0)
    assert r.message == "the grader could not run this check" and "KeyError" in r.detail


def test_a_missing_probe_result_scores_zero_with_the_reason() -> None:
    def needs(ctx: CheckContext) -> Verdict:
        ctx.value("collator")
        return Verdict(1.0)

    r = run_check(SPEC, needs, _ctx({"collator": ProbeCall("collator", ok=False, error="NameError: name 'MultipleChoiceDataCollator' is not defined")}))
    assert (r.status, r.points) == ("failed", 0.0)
    assert "MultipleChoiceDataCollator" in r.message and "did its cell run" in r.message
    r2 = run_check(SPEC, needs, CheckContext(probes=ProbeOutcome({}, error="the kernel died"), reference={}, inputs={}))
    assert (r2.status, r2.points) == ("failed", 0.0) and "the kernel died" in r2.message


def test_partial_credit_and_bad_verdicts() -> None:
    r = run_check(SPEC, lambda ctx: Verdict.of([(True, ""), (False, "labels has shape [2, 4], expected [2]")]), _ctx({}))
    assert (r.status, r.points, r.message) == ("failed", 1.0, "labels has shape [2, 4], expected [2]")
    assert run_check(SPEC, lambda ctx: Verdict(float("nan")), _ctx({})).status == "error"
    assert run_check(SPEC, lambda ctx: 1.0, _ctx({})).status == "error"  # type: ignore[arg-type, return-value]
    assert run_check(SPEC, None, _ctx({})).status == "error"
    assert run_check(SPEC, lambda ctx: Verdict(7.0), _ctx({})).points == 2.0  # capped at the check's points


def test_missing_is_not_swallowed_as_grader_error() -> None:
    def check(ctx: CheckContext) -> Verdict:
        raise Missing("no trainer")

    assert run_check(SPEC, check, _ctx({})).status == "failed"


# --- score ----------------------------------------------------------------------------------------


def test_score_takes_maxima_from_the_rubric_not_from_results() -> None:
    sc = score(RUBRIC, [CheckResult("2.1.collator_shapes", "2.1", "passed", 0.5, 0.5)], [])
    assert sc.auto_max == 22.25 and sc.auto_points == 0.5 and sc.manual_max == 17.75
    assert sc.subtasks["2.1"].auto_points == 0.5 and sc.subtasks["2.1"].auto_max == 3.75
    assert sc.manual_points is None


def test_score_of_a_self_check_leaves_hidden_checks_out() -> None:
    assert score(RUBRIC, [], [], public_only=True).auto_max == sum(c.points for c in RUBRIC.checks if not c.hidden)


def test_manual_points_count_once_every_item_is_scored() -> None:
    items = [ManualItem(m.id, m.subtask, m.points, m.prompt, points=m.points / 2) for m in RUBRIC.manual]
    assert score(RUBRIC, [], items).manual_points == 8.875  # half of 17.75
    assert score(RUBRIC, [], items[1:]).manual_points is None


# --- the probe channel ----------------------------------------------------------------------------


def test_probe_values_round_trip_and_keep_arrays() -> None:
    import torch

    value = {"t": torch.arange(6).view(2, 3), "a": np.ones((2, 2), dtype=np.float32), "f": float("inf"), "s": (1, "x")}
    back = from_data(json.loads(json.dumps(to_data(value))))
    assert back["t"].shape == (2, 3) and back["t"].dtype == np.int64 and back["t"][1, 2] == 5
    assert back["a"].dtype == np.float32 and back["f"] == float("inf") and back["s"] == (1, "x")


def test_a_forged_or_foreign_result_file_is_no_result(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"token": "guess", "results": {"p": {"value": 1}}}))
    assert read_results(path, "real-token", ("p",)).calls == {}
    path.write_text("{not json")
    assert read_results(path, "t", ("p",)).error == "the probe result was malformed"
    assert read_results(tmp_path / "absent.json", "t", ("p",)).error.startswith("the probes produced no result")


def test_probe_cell_runs_the_probes_and_writes_the_token(tmp_path: Path) -> None:
    from grader.steps.probe import ProbeRequest

    out = tmp_path / "probe.json"
    cell = build_cell(ProbeRequest("PROBES = {'double': lambda ns, inp: ns['x'] * inp['k']}", ("double", "absent"), {"double": {"k": 2}}), out, "tok123")
    exec(compile(cell, "cell", "exec"), {"x": 21})
    res = read_results(out, "tok123", ("double", "absent"))
    assert res.calls["double"].ok and res.calls["double"].value == 42
    assert not res.calls["absent"].ok


# --- render -----------------------------------------------------------------------------------------


def _result() -> GradeResult:
    sc = score(RUBRIC, [], [])
    checks = (
        CheckResult("2.1.collator", "2.1", "failed", 0.25, 0.5, message="labels has shape <b>[2, 4]</b>, expected [2]"),
        CheckResult("2.1.collator_hidden", "2.1", "failed", 0.0, 0.5, hidden=True, message="SECRET hidden message"),
    )
    return GradeResult(submission="s<1>", status="graded", auto_max=sc.auto_max, manual_max=sc.manual_max, subtasks=sc.subtasks, checks=checks,
                       manual=(ManualItem("3.4", "3.4", 5, "T5 paper", answer="text-to-text", reference="REFERENCE ANSWER"),))


def test_reports_never_name_hidden_checks_nor_show_reference_answers(tmp_path: Path) -> None:
    html, md = render_reports(_result(), tmp_path, RUBRIC)
    for text in (html.read_text(), md.read_text()):
        assert "collator_hidden" not in text and "SECRET" not in text and "REFERENCE ANSWER" not in text
        assert "Hidden checks" in text and "labels has shape" in text
    page = html.read_text()
    assert "&lt;b&gt;[2, 4]&lt;/b&gt;" in page and "<b>[2, 4]</b>" not in page  # autoescape
    assert "s&lt;1&gt;" in page
    assert "<b>[2, 4]</b>" in md.read_text()  # markdown is not HTML-escaped
    assert "http://" not in page and "https://" not in page  # self-contained


def test_result_json_round_trips(tmp_path: Path) -> None:
    r = replace(_result(), notes=())
    assert result_from_json(json.loads(json.dumps(r.to_json()))) == r
    assert r.student_view().checks == (r.checks[0],) and r.student_view().manual[0].reference == ""


# --- the per-submission error boundary ------------------------------------------------------------


def test_a_grader_failure_is_its_own_status_never_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import grader.steps.pipeline as pipeline

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the harness broke")

    monkeypatch.setattr(pipeline, "_execute", explode)
    r = pipeline.grade_submission(REPO / "submissions" / "full-marks__solution.ipynb", tmp_path, pipeline.GradeOptions())
    assert (r.status, r.error_kind, r.auto_points) == ("error", "grader", 0.0)
    assert "the harness broke" in r.error and r.auto_max == 22.25
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["status"] == "error" and on_disk["schema_version"] == 1
    assert "RuntimeError" in (tmp_path / "grader.log").read_text()
    assert "could not be graded" in (tmp_path / "report.html").read_text()


def test_a_bad_file_is_bad_input_named_in_the_result(tmp_path: Path) -> None:
    import grader.steps.pipeline as pipeline

    bad = tmp_path / "student.ipynb"
    bad.write_text('{"cells": [')
    r = pipeline.grade_submission(bad, tmp_path / "out", pipeline.GradeOptions())
    assert (r.status, r.error_kind) == ("error", "bad_input")
    assert r.error.startswith("student.ipynb: the file is truncated")


def test_a_kernel_without_the_graders_shims_is_a_grader_error_not_a_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the set-up code cannot run in the kernel (say the grader package is not visible there),
    the notebook must not be graded without the shims and the training cap."""
    import grader.steps.pipeline as pipeline
    from grader.pack.rubric import Rubric

    monkeypatch.setattr(Rubric, "kernel_preamble", property(lambda self: "import grader_package_that_is_not_there\n"))
    r = pipeline.grade_submission(REPO / "submissions" / "zero__blank-template.ipynb", tmp_path, pipeline.GradeOptions(sandbox=False))
    assert (r.status, r.error_kind) == ("error", "grader")
    assert "could not be set up in the kernel" in r.error and "grader_package_that_is_not_there" in r.error


def test_a_batch_pipeline_leaves_result_json_to_the_batch(tmp_path: Path) -> None:
    """In a batch the pipeline renders the reports but does not write result.json: the batch writes
    it once, with the submission's notes and manual scores (``grader.course.batch._record``)."""
    import grader.steps.pipeline as pipeline

    bad = tmp_path / "bad.ipynb"
    bad.write_text("{ not json", encoding="utf-8")
    for write, out in ((True, tmp_path / "single"), (False, tmp_path / "batch")):
        r = pipeline.grade_submission(bad, out, pipeline.GradeOptions(sandbox=False, write_result=write))
        assert r.status == "error" and (out / "report.html").is_file()
        assert (out / "result.json").is_file() is write
