"""The TA sheet: export with answers and references, import with row-level rejection, outputs updated."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from grader.course.gradebook import Gradebook, SubmissionRecord
from grader.course.manual import COLUMNS, export_sheet, import_sheet, parse_points, refresh_outputs
from grader.steps.results import GradeResult, ManualItem, SubtaskScore, result_from_json, write_result


def result(sid: str) -> GradeResult:
    return GradeResult(
        submission=sid,
        status="graded",
        auto_points=4.0,
        auto_max=4.0,
        manual_max=4.0,
        subtasks={"1.1": SubtaskScore(0.0, 0.0, 3.0), "2.1": SubtaskScore(4.0, 4.0, 1.0)},
        manual=(
            ManualItem("1.1", "1.1", 3.0, "Explain why a is a categorical distribution", answer=f"{sid}: softmax sums to one",
                       hints=("mentions softmax",), reference="non-negative weights that sum to 1"),
            ManualItem("2.1.fields", "2.1", 1.0, "What are sent1 and sent2?", answer="context, start of the ending",
                       reference="sent1: context; sent2: beginning of the ending"),
        ),
    )


@pytest.fixture
def book(tmp_path: Path) -> Gradebook:
    gb = Gradebook(tmp_path / "out" / "gradebook.sqlite")
    gb.set_meta("out_dir", str(tmp_path / "out"))
    for sid, name in (("1234567", "José García, Jr."), ("2345678", "Ada Lovelace")):
        gb.upsert_submission(SubmissionRecord(id=sid, content_hash=f"h{sid}", name=name, participant_id=sid))
        path = write_result(tmp_path / "out" / sid, result(sid))
        gb.record_run(sid, f"h{sid}", "r1", result(sid), path, seconds=1.0, batch_id="b1")
    return gb


def read_csv_sheet(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


def test_export_csv_has_answer_and_reference(book: Gradebook, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    assert export_sheet(book, sheet) == 4
    assert sheet.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = read_csv_sheet(sheet)
    assert list(rows[0]) == list(COLUMNS)
    first = rows[0]
    assert (first["submission"], first["name"], first["item"], first["max_points"], first["points"]) == ("1234567", "José García, Jr.", "1.1", "3", "")
    assert first["answer"] == "1234567: softmax sums to one"
    assert first["reference"] == "non-negative weights that sum to 1"
    assert first["hints"] == "mentions softmax"


def test_import_rejects_bad_rows_and_keeps_good_ones(book: Gradebook, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    export_sheet(book, sheet)
    rows = read_csv_sheet(sheet)
    rows[0]["points"], rows[0]["comment"] = "2.5", "good idea, no proof"  # good
    rows[1]["points"] = "3"  # 2.1.fields max 1: above the maximum
    rows[2]["points"] = "two"  # not a number
    rows[3]["points"] = "1,0"  # good: a decimal comma
    rows.append({**rows[0], "submission": "0000000"})  # unknown submission
    rows.append({**rows[0], "submission": "2345678", "item": "9.9"})  # unknown item
    rows.append({**rows[3], "points": "-1"})  # negative
    rows.append({**rows[0], "points": "1"})  # the same cell twice
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS))
    w.writeheader()
    w.writerows(rows)
    sheet.write_text(buf.getvalue(), encoding="utf-8")

    report = import_sheet(book, sheet)
    assert sorted(report.imported) == [("1234567", "1.1"), ("2345678", "2.1.fields")]
    assert len(report.rejected) == 6
    text = "\n".join(report.rejected)
    assert "row 3 (submission 1234567, item 2.1.fields): points 3 are above the maximum 1" in text
    assert "row 4 (submission 2345678, item 1.1): points 'two' is not a number" in text
    assert "unknown submission '0000000'" in text
    assert "unknown manual item '9.9'" in text and "1.1, 2.1.fields" in text
    assert "are negative" in text
    assert "the same submission and item as row 2" in text
    assert book.manual_scores("1234567")["1.1"].points == 2.5
    assert book.manual_scores("1234567")["1.1"].comment == "good idea, no proof"
    assert book.manual_scores("2345678")["2.1.fields"].points == 1.0
    assert "2.1.fields" not in book.manual_scores("1234567")

    warnings = refresh_outputs(book, report.submissions)
    on_disk = result_from_json(json.loads((tmp_path / "out" / "1234567" / "result.json").read_text()))
    assert on_disk.manual_points is None  # 2.1.fields of this submission is still open
    assert on_disk.manual[0].points == 2.5 and on_disk.manual[0].comment == "good idea, no proof"
    assert on_disk.subtasks["1.1"].manual_points == 2.5
    grades = {r["id"]: r for r in csv.DictReader(io.StringIO((tmp_path / "out" / "grades.csv").read_text(encoding="utf-8")))}
    assert grades["1234567"]["total"] == "6.5" and grades["1234567"]["1.1"] == "2.5"
    assert grades["2345678"]["manual_points"] == "1"
    assert (tmp_path / "out" / "index.html").exists()
    assert all("reports not" in w for w in warnings)  # no report.html was rendered for these fakes

    # Importing the same sheet again changes nothing and logs nothing new.
    logged = book.conn.execute("SELECT COUNT(*) FROM manual_log").fetchone()[0]
    again = import_sheet(book, sheet)
    assert again.imported == [] and book.conn.execute("SELECT COUNT(*) FROM manual_log").fetchone()[0] == logged


def test_yaml_round_trip(book: Gradebook, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.yaml"
    export_sheet(book, sheet)
    rows = yaml.safe_load(sheet.read_text(encoding="utf-8"))
    assert rows[0]["answer"] == "1234567: softmax sums to one"
    rows[0]["points"] = 3
    rows[1]["points"] = "x"
    sheet.write_text(yaml.safe_dump(rows, allow_unicode=True), encoding="utf-8")
    report = import_sheet(book, sheet)
    assert report.imported == [("1234567", "1.1")]
    assert report.rejected == ["entry 2 (submission 1234567, item 2.1.fields): points 'x' is not a number"]
    assert report.blank == 2


def test_open_only_export(book: Gradebook, tmp_path: Path) -> None:
    from grader.course.gradebook import ManualScore

    book.set_manual("1234567", "1.1", ManualScore(1.0, "", 3.0), source="t")
    sheet = tmp_path / "open.csv"
    assert export_sheet(book, sheet, open_only=True) == 3


@pytest.mark.parametrize(("value", "expected"), [("", None), (None, None), ("2", 2.0), (" 1.5 ", 1.5), ("0,5", 0.5), (3, 3.0)])
def test_parse_points(value: object, expected: float | None) -> None:
    assert parse_points(value) == expected


@pytest.mark.parametrize("value", ["abc", "nan", "inf", True, "1,5,0"])
def test_parse_points_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_points(value)


def test_cli_import_exit_code(book: Gradebook, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from grader.cli.commands.manual import run_export, run_import

    sheet = tmp_path / "sheet.csv"
    book.close()
    assert run_export(argparse.Namespace(out=sheet, gradebook=tmp_path / "out", open_only=False)) == 0
    rows = read_csv_sheet(sheet)
    rows[0]["points"] = "99"
    rows[1]["points"] = "1"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS))
    w.writeheader()
    w.writerows(rows)
    sheet.write_text(buf.getvalue(), encoding="utf-8")
    assert run_import(argparse.Namespace(sheet=sheet, gradebook=tmp_path / "out")) == 2
    captured = capsys.readouterr()
    assert "rejected: row 2 (submission 1234567, item 1.1): points 99 are above the maximum 3" in captured.err
    assert "imported 1 score(s)" in captured.out
