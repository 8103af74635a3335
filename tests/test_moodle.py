"""Moodle in and out: the download zip, team names, the grading worksheet and the feedback zip.

The Moodle zip and worksheet are made here, with the names that break naive code: spaces, accents,
commas, an underscore, a group submission, two notebooks, a PDF only, a flat-layout file, the 4.1
folder name without the trailing underscore, macOS junk and a member that tries to escape.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.course.moodle import (
    FeedbackEntry,
    WorksheetGrade,
    feedback_folder_name,
    fill_worksheet,
    ingest,
    parse_moodle_name,
    read_team,
    read_worksheet,
    team_from_text,
    worksheet_participant,
    write_feedback_zip,
    write_worksheet,
)


def notebook_bytes(*, team_line: str = "", code: str = "x = 1\nprint(x)", marker: str = "") -> bytes:
    cells = [new_markdown_cell("# Assignment 3")]
    if team_line:
        cells.append(new_markdown_cell(team_line))
    cells.append(new_code_cell(code))
    nb = new_notebook(cells=cells)
    if marker:
        nb.metadata["fake"] = {"behaviour": marker}
    return nbformat.writes(nb).encode()


# participant id -> (full name, {path inside the folder: bytes})
PARTICIPANTS = {
    "1234567": ("José García, Jr.", {"assignment3.ipynb": notebook_bytes()}),
    "2345678": ("Ada Lovelace", {"A3 group.ipynb": notebook_bytes(team_line="**Team:** Ada Lovelace, Alan Turing")}),
    "3456789": ("Anna-Lena Müller", {"A3.ipynb": notebook_bytes(code="y = 2"), "A3-Copy1.ipynb": notebook_bytes(code="y = 3"),
                                     "notes.txt": b"see notebook"}),
    "4567890": ("Bob O'Neil", {"report.pdf": b"%PDF-1.4 not a notebook"}),
}


def make_moodle_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for pid, (name, files) in PARTICIPANTS.items():
            for inner, data in files.items():
                zf.writestr(f"{name}_{pid}_assignsubmission_file_/{inner}", data)
        # Flat layout (download as folders off); the name has an underscore, as the brief warns.
        zf.writestr("Zoë van_der Berg_5678901_assignsubmission_file_my notebook.ipynb", notebook_bytes(code="z = 5"))
        # Moodle 4.1+ drops the trailing underscore of the folder name.
        zf.writestr("Chen Wei_6789012_assignsubmission_file/sol.ipynb", notebook_bytes(code="w = 6"))
        zf.writestr("Chen Wei_6789012_assignsubmission_onlinetext_/onlinetext.html", "<p>see the notebook</p>")
        zf.writestr("__MACOSX/José García, Jr._1234567_assignsubmission_file_/._assignment3.ipynb", b"\x00junk")
        zf.writestr("../escape.ipynb", notebook_bytes())
        zf.writestr("readme.txt", "downloaded from Moodle")
    return path


def test_parse_moodle_names() -> None:
    info = parse_moodle_name("José García, Jr._1234567_assignsubmission_file_")
    assert info is not None
    assert (info.name, info.participant_id, info.subtype, info.plugin, info.rest) == ("José García, Jr.", "1234567", "assignsubmission", "file", None)
    flat = parse_moodle_name("Zoë van_der Berg_5678901_assignsubmission_file_my notebook.ipynb")
    assert flat is not None and flat.name == "Zoë van_der Berg" and flat.participant_id == "5678901" and flat.rest == "my notebook.ipynb"
    new = parse_moodle_name("Chen Wei_6789012_assignsubmission_file")
    assert new is not None and new.participant_id == "6789012" and new.rest is None
    assert parse_moodle_name("assignment3.ipynb") is None
    assert parse_moodle_name("Ada_Lovelace.ipynb") is None


def test_ingest_moodle_zip(tmp_path: Path) -> None:
    found = ingest(make_moodle_zip(tmp_path / "download.zip"), tmp_path / "work")
    by_id = {s.id: s for s in found.submissions}
    assert found.moodle
    assert sorted(by_id) == ["1234567", "2345678", "3456789", "4567890", "5678901", "6789012"]
    assert found.stray == ("readme.txt",)
    assert not (tmp_path / "escape.ipynb").exists() and not (tmp_path / "work" / ".." / "escape.ipynb").resolve().exists()

    jose = by_id["1234567"]
    assert jose.name == "José García, Jr." and jose.participant_id == "1234567"
    assert jose.notebook is not None and jose.notebook.name == "assignment3.ipynb" and jose.problems == ()
    assert jose.folder_name == "José García, Jr._1234567_assignsubmission_file_"

    two = by_id["3456789"]
    assert two.notebook is not None and two.notebook.name == "A3.ipynb"
    assert any("2 notebooks" in p and "A3-Copy1.ipynb" in p for p in two.problems)
    assert any("notes.txt" in p for p in two.problems)

    pdf = by_id["4567890"]
    assert pdf.notebook is None and pdf.files == ("report.pdf",)
    assert "no notebook" in pdf.problems[0] and "report.pdf" in pdf.problems[0]

    flat = by_id["5678901"]
    assert flat.notebook is not None and flat.name == "Zoë van_der Berg"
    assert flat.folder_name == "Zoë van der Berg_5678901_assignsubmission_file_"

    chen = by_id["6789012"]
    assert chen.notebook is not None and chen.notebook.name == "sol.ipynb"
    assert "onlinetext.html" in chen.files

    group = by_id["2345678"]
    assert group.notebook is not None and read_team(group.notebook) == ("Ada Lovelace", "Alan Turing")


def test_ingest_plain_folder(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "hw.ipynb").write_bytes(notebook_bytes())
    (tmp_path / "b" / "hw.ipynb").write_bytes(notebook_bytes(code="q = 1"))
    (tmp_path / "solo.ipynb").write_bytes(notebook_bytes())
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "solo-checkpoint.ipynb").write_bytes(notebook_bytes())
    found = ingest(tmp_path, tmp_path / "unused")
    assert not found.moodle
    assert [s.id for s in found.submissions] == ["hw", "hw-2", "solo"]
    assert found.submissions[1].problems and "hw-2" in found.submissions[1].problems[0]


def test_plain_folder_grades_a_notebook_under_another_name_and_names_the_rest(tmp_path: Path) -> None:
    """Nothing in the folder is dropped in silence: a notebook saved as .txt/.json is graded, and
    every other file is named as not graded."""
    (tmp_path / "alice.ipynb").write_bytes(notebook_bytes())
    (tmp_path / "bob.txt").write_bytes(b"\xef\xbb\xbf\n  " + notebook_bytes(code="b = 1"))  # BOM, blank lines
    (tmp_path / "carol.json").write_bytes(notebook_bytes(code="c = 1"))
    (tmp_path / "notes.txt").write_bytes(b"my answers are in the notebook")
    (tmp_path / "data.json").write_bytes(b'{"rows": [1, 2, 3]}')
    found = ingest(tmp_path, tmp_path / "unused")
    assert [s.id for s in found.submissions] == ["alice", "bob", "carol"]
    assert found.stray == ("data.json", "notes.txt")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("**Team:** Ada Lovelace, Alan Turing", ("Ada Lovelace", "Alan Turing")),
        ("Names: José García, Jr.; Zoë Müller", ("José García, Jr.", "Zoë Müller")),
        ("### Team members:\n- Ada Lovelace (3456789)\n- Alan Turing <alan@example.org>\n\nThe rest", ("Ada Lovelace", "Alan Turing")),
        ("Name 1: Grace Hopper\nName 2: Edsger Dijkstra", ("Grace Hopper", "Edsger Dijkstra")),
        ("Gruppenmitglieder: Anna Schmidt und Jonas Weber", ("Anna Schmidt", "Jonas Weber")),
        ("*Authors*: Ada Lovelace & Alan Turing", ("Ada Lovelace", "Alan Turing")),
        ("It is sufficient if one person per group uploads the solution, but make sure that the full names "
         "of all team members are given in the notebook.", ()),
        ("Group: 12", ()),
    ],
)
def test_team_from_text(text: str, expected: tuple[str, ...]) -> None:
    assert team_from_text(text) == expected


def test_read_team_from_code_comment_and_broken_file(tmp_path: Path) -> None:
    nb = new_notebook(cells=[new_markdown_cell("# A3"), new_code_cell("# Team: Ada Lovelace, Alan Turing\nimport torch")])
    path = tmp_path / "c.ipynb"
    path.write_text(nbformat.writes(nb))
    assert read_team(path) == ("Ada Lovelace", "Alan Turing")
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    assert read_team(broken) == ()


# --- worksheet ----------------------------------------------------------------------------------

HEADER = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade", "Grade can be changed",
          "Last modified (submission)", "Online text", "Last modified (grade)", "Feedback comments"]


def php_line(cells: list[str]) -> str:
    """What PHP's fputcsv (Moodle's writer) makes of a row."""
    return ",".join('"' + c.replace('"', '""') + '"' if any(ch in c for ch in ', "\t\n\r\\') else c for c in cells)


WORKSHEET_ROWS = [
    ["Participant 1234567", "José García, Jr.", "jose@example.org", "Submitted for grading", "", "40.00", "Yes",
     "Monday, 8 January 2024, 1:59 PM", "", "-", ""],
    ["Participant 2345678", "Ada Lovelace", "ada@example.org", "Submitted for grading", "", "40.00", "Yes",
     "Monday, 8 January 2024, 1:12 PM", "", "-", "<p>old comment</p>"],
    ["Participant 7777777", "Alan Turing", "alan@example.org", "No submission", "", "40.00", "Yes", "-", "", "-", ""],
    ["Participant 8888888", "Nobody Graded", "nobody@example.org", "No submission", "", "40.00", "Yes", "-", "", "-", ""],
]


def make_worksheet(path: Path) -> Path:
    text = "\r\n".join(php_line(r) for r in [HEADER, *WORKSHEET_ROWS]) + "\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    return path


def test_worksheet_round_trip(tmp_path: Path) -> None:
    src = make_worksheet(tmp_path / "worksheet.csv")
    ws = read_worksheet(src)
    assert ws.bom and ws.newline == "\r\n" and ws.header == HEADER
    grades = {
        "1234567": WorksheetGrade(31.5, "<p>Total: 31.5 / 40</p>"),
        "2345678": WorksheetGrade(38.0, "<p>Total: 38 / 40</p>", team=("Ada Lovelace", "Alan Turing")),
        "9999999": WorksheetGrade(10.0, "<p>not in the worksheet</p>"),
    }
    report = fill_worksheet(ws, grades)
    out = tmp_path / "filled.csv"
    write_worksheet(ws, out)

    assert report.matched == ["1234567", "2345678", "7777777"]
    assert report.matched_by_team == [("7777777", "2345678")]
    assert report.unmatched_rows == ["Participant 8888888"]
    assert report.unmatched_grades == ["9999999"]

    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == HEADER
    grade, feedback = HEADER.index("Grade"), HEADER.index("Feedback comments")
    assert rows[1][grade] == "31.50" and rows[1][feedback] == "<p>Total: 31.5 / 40</p>"
    assert rows[2][grade] == "38.00" and rows[3][grade] == "38.00"
    for before, after in zip(WORKSHEET_ROWS, rows[1:], strict=True):  # every other column untouched
        assert [c for i, c in enumerate(before) if i not in (grade, feedback)] == [c for i, c in enumerate(after) if i not in (grade, feedback)]
    # The unmatched row comes out byte for byte as Moodle wrote it.
    original_lines = src.read_bytes().decode("utf-8-sig").split("\r\n")
    assert raw.decode("utf-8-sig").split("\r\n")[4] == original_lines[4]


def test_worksheet_participant_and_missing_column(tmp_path: Path) -> None:
    assert worksheet_participant("Participant 1234567") == "1234567"
    assert worksheet_participant("Teilnehmer/in 42") == "42"
    assert worksheet_participant("someone") is None
    bad = tmp_path / "bad.csv"
    bad.write_text("Identifier,Full name\nParticipant 1,A\n")
    with pytest.raises(ValueError, match="no Grade column"):
        fill_worksheet(read_worksheet(bad), {})


def test_feedback_zip_layout_matches_moodle_importer(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text("<html>feedback</html>")
    names = {"1234567": "José García, Jr.", "5678901": "Zoë van_der Berg"}
    entries = [FeedbackEntry(feedback_folder_name(name, pid), (("report.html", report),)) for pid, name in names.items()]
    out = tmp_path / "feedback.zip"
    assert write_feedback_zip(entries, out) == 2
    with zipfile.ZipFile(out) as zf:
        members = sorted(zf.namelist())
        assert members == [
            "José García, Jr._1234567_assignsubmission_file_/report.html",
            "Zoë van der Berg_5678901_assignsubmission_file_/report.html",
        ]
        assert zf.read(members[0]) == b"<html>feedback</html>"
    for member in members:
        # assignfeedback_file_zip_importer: explode('_', $pathpart, 5) on the folder component.
        info = member.split("/")[0].split("_", 4)
        assert info[1] in names and info[2] == "assignsubmission" and info[3] == "file"
