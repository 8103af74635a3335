"""The SQLite gradebook: runs, idempotence, manual scores, re-scoring without execution."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from grader.course.gradebook import (
    Gradebook,
    ManualScore,
    SubmissionRecord,
    find_gradebook,
    rescore,
    run_is_complete,
    subtask_order,
)
from grader.steps.results import (
    CheckResult,
    GradeResult,
    ManualItem,
    SubtaskScore,
    result_from_json,
    write_result,
)
from grader.steps.score import apply_manual, manual_scored, rescore_result


def graded(sid: str = "s1", *, passed: bool = True) -> GradeResult:
    checks = (
        CheckResult("tok", "2.1", "passed", 2.0, 2.0),
        CheckResult("collator", "2.1", "passed" if passed else "failed", 2.0 if passed else 0.0, 2.0),
        CheckResult("args", "3.2", "failed", 1.0, 2.0, message="half right"),
    )
    return GradeResult(
        submission=sid,
        status="graded",
        auto_points=5.0,
        auto_max=6.0,
        manual_max=4.0,
        subtasks={"2.1": SubtaskScore(4.0, 4.0, 1.0), "3.2": SubtaskScore(1.0, 2.0, 0.0), "1.1": SubtaskScore(0, 0, 3.0)},
        checks=checks,
        manual=(ManualItem("1.1", "1.1", 3.0, "Explain copying", answer="softmax ..."),
                ManualItem("2.1.fields", "2.1", 1.0, "What are the fields?")),
        comments={"1.1": "peer: clear answer"},
        team=("Ada Lovelace", "Alan Turing"),
    )


@pytest.fixture
def gb(tmp_path: Path) -> Gradebook:
    book = Gradebook(tmp_path / "gradebook.sqlite")
    book.upsert_submission(SubmissionRecord(id="s1", content_hash="h1", name="José García, Jr.", participant_id="1234567"))
    return book


def test_schema_and_wal(gb: Gradebook) -> None:
    assert gb.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert gb.get_meta("schema_version") == "1"
    gb.set_meta("schema_version", "99")
    gb.close()
    with pytest.raises(ValueError, match="schema 99"):
        Gradebook(gb.path)


def test_record_run_stores_checks_comments_and_team(gb: Gradebook, tmp_path: Path) -> None:
    path = write_result(tmp_path / "s1", graded())
    run_id = gb.record_run("s1", "h1", "r1", graded(), path, seconds=3.0, batch_id="b1")
    assert gb.completed_run("s1", "h1", "r1") is not None
    assert gb.completed_run("s1", "h2", "r1") is None  # changed notebook
    assert gb.completed_run("s1", "h1", "r2") is None  # changed rubric
    rows = gb.conn.execute("SELECT check_id, status, points FROM checks WHERE run_id = ? ORDER BY check_id", (run_id,)).fetchall()
    assert [tuple(r) for r in rows] == [("args", "failed", 1.0), ("collator", "passed", 2.0), ("tok", "passed", 2.0)]
    assert gb.conn.execute("SELECT text FROM comments WHERE run_id = ?", (run_id,)).fetchone()[0] == "peer: clear answer"
    rec = gb.submission("s1")
    assert rec is not None and rec.team == ("Ada Lovelace", "Alan Turing") and rec.display_name == "José García, Jr."


def test_record_run_is_idempotent_within_a_batch(gb: Gradebook, tmp_path: Path) -> None:
    path = write_result(tmp_path / "s1", graded())
    gb.record_run("s1", "h1", "r1", graded(), path, seconds=3.0, batch_id="b1")
    gb.record_run("s1", "h1", "r1", graded(), path, seconds=3.5, batch_id="b1")
    assert gb.run_count("s1") == 1
    assert gb.conn.execute("SELECT COUNT(*) FROM checks").fetchone()[0] == 3  # the old run's checks went with it
    gb.record_run("s1", "h1", "r1", graded(), path, seconds=3.0, batch_id="b2")  # --force: a second run, kept
    assert gb.run_count("s1") == 2


def test_harness_failure_is_not_a_completed_run(gb: Gradebook, tmp_path: Path) -> None:
    crashed = GradeResult(submission="s1", status="error", error="worker died", error_kind="grader")
    bad = GradeResult(submission="s1", status="error", error="not JSON", error_kind="bad_input")
    assert not run_is_complete(crashed) and run_is_complete(bad)
    gb.record_run("s1", "h1", "r1", crashed, tmp_path / "s1" / "result.json", seconds=1.0, batch_id="b1")
    assert gb.completed_run("s1", "h1", "r1") is None
    gb.record_run("s1", "h1", "r1", bad, tmp_path / "s1" / "result.json", seconds=1.0, batch_id="b2")
    assert gb.completed_run("s1", "h1", "r1") is not None


def test_apply_manual_keeps_unscored_apart_from_zero() -> None:
    r = graded()
    assert apply_manual(r, {}).manual_points is None
    scored = apply_manual(r, {"1.1": ManualScore(0.0, "nothing right", 3.0)})
    assert scored.manual_points is None  # as grader.steps.score: not every item is scored yet
    assert manual_scored(scored) == 0.0
    assert scored.subtasks["1.1"].manual_points == 0.0  # its only item is scored: zero, not None
    assert scored.subtasks["2.1"].manual_points is None  # 2.1.fields not scored yet
    both = apply_manual(r, {"1.1": ManualScore(2.5, "", 3.0), "2.1.fields": ManualScore(1.0, "ok", 1.0)})
    assert both.manual_points == 3.5 and both.subtasks["2.1"].manual_points == 1.0
    assert [m.comment for m in both.manual] == ["", "ok"]
    capped = apply_manual(r, {"2.1.fields": ManualScore(5.0, "", 5.0)})  # scored before the maximum went down
    assert manual_scored(capped, "2.1") == 1.0


def test_manual_scores_survive_and_are_logged(gb: Gradebook, tmp_path: Path) -> None:
    gb.record_run("s1", "h1", "r1", graded(), write_result(tmp_path / "s1", graded()), seconds=1.0, batch_id="b1")
    gb.set_manual("s1", "1.1", ManualScore(2.0, "good", 3.0, "h1"), source="sheet.csv")
    gb.set_manual("s1", "1.1", ManualScore(2.5, "better", 3.0, "h1"), source="sheet2.csv")
    assert gb.manual_scores("s1")["1.1"].points == 2.5
    assert gb.conn.execute("SELECT COUNT(*) FROM manual_log").fetchone()[0] == 2
    (entry,) = gb.entries()
    assert entry.result.manual_points is None and manual_scored(entry.result) == 2.5 and entry.total == 7.5


def test_rescore_result_scales_partial_credit() -> None:
    new = rescore_result(graded(passed=False), {"tok": 4.0, "collator": 3.0, "args": 6.0})
    by_id = {c.id: c for c in new.checks}
    assert (by_id["tok"].points, by_id["tok"].max_points) == (4.0, 4.0)
    assert (by_id["collator"].points, by_id["collator"].max_points) == (0.0, 3.0)
    assert (by_id["args"].points, by_id["args"].max_points) == (3.0, 6.0)  # half right stays half
    assert new.subtasks["2.1"].auto_points == 4.0 and new.subtasks["2.1"].auto_max == 7.0
    assert new.subtasks["1.1"].manual_max == 3.0  # manual-only subtask untouched
    assert (new.auto_points, new.auto_max) == (7.0, 13.0)


def test_rescore_writes_result_and_new_run_without_executing(gb: Gradebook, tmp_path: Path) -> None:
    path = write_result(tmp_path / "s1", graded())
    gb.record_run("s1", "h1", "r1", graded(), path, seconds=9.0, batch_id="b1")
    gb.set_manual("s1", "1.1", ManualScore(3.0, "", 3.0, "h1"), source="t")
    assert rescore(gb, {"tok": 2.0, "collator": 2.0, "args": 2.0}) == []  # same points: nothing to do
    assert rescore(gb, {"tok": 5.0}) == ["s1"]
    on_disk = result_from_json(json.loads(path.read_text()))
    assert on_disk.auto_points == 8.0 and on_disk.manual[0].points == 3.0  # manual scores kept
    assert gb.run_count("s1") == 2
    (entry,) = gb.entries()
    assert entry.run.kind == "rescore" and entry.total == 11.0
    assert gb.completed_run("s1", "h1", "r1") is not None  # a re-score is still a completed run


def test_rescore_manual_maximum(gb: Gradebook, tmp_path: Path) -> None:
    path = write_result(tmp_path / "s1", graded())
    gb.record_run("s1", "h1", "r1", graded(), path, seconds=1.0, batch_id="b1")
    assert rescore(gb, {}, {"1.1": 5.0}) == ["s1"]
    (entry,) = gb.entries()
    assert entry.result.manual[0].max_points == 5.0
    assert entry.result.subtasks["1.1"].manual_max == 5.0 and entry.result.manual_max == 6.0


def test_check_rows_only_latest_runs(gb: Gradebook, tmp_path: Path) -> None:
    path = write_result(tmp_path / "s1", graded())
    gb.record_run("s1", "h1", "r1", graded(passed=False), path, seconds=1.0, batch_id="b1")
    gb.record_run("s1", "h1", "r1", graded(passed=True), path, seconds=1.0, batch_id="b2")
    rows = {r["check_id"]: r["status"] for r in gb.check_rows()}
    assert rows["collator"] == "passed" and len(rows) == 3


def test_find_gradebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Gradebook(tmp_path / "out" / "gradebook.sqlite").close()
    assert find_gradebook(tmp_path / "out") == tmp_path / "out" / "gradebook.sqlite"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="--gradebook"):
        find_gradebook(None)


def test_subtask_order() -> None:
    assert subtask_order({"2.1", "1.10", "1.2", "3.4", "1.1"}) == ["1.1", "1.2", "1.10", "2.1", "3.4"]


def test_transaction_rolls_back_on_error(gb: Gradebook, tmp_path: Path) -> None:
    bad = GradeResult(submission="s1", status="graded", checks=(CheckResult("a", "1", "passed", 1, 1), CheckResult("a", "1", "passed", 1, 1)))
    with pytest.raises(sqlite3.IntegrityError):  # duplicate check id inside one run
        gb.record_run("s1", "h1", "r1", bad, tmp_path / "x.json", seconds=1.0, batch_id="b1")
    assert gb.run_count() == 0
