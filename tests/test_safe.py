"""``grader.safety.escape``: ids, terminal text and spreadsheet cells made from what students control."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from grader.safety.escape import (
    FALLBACK_ID,
    csv_cell,
    csv_uncell,
    is_plain_number,
    safe_id,
    terminal_safe,
    unique_ids,
)

ID_SHAPE = re.compile(r"[\w(][\w\-.()+, ]*")


@pytest.mark.parametrize("name", ["alice_smith", "full-marks__solution", "1234567", "Übung 3 (Kopie)", "hw3.v2"])
def test_ordinary_names_are_kept(name: str) -> None:
    assert safe_id(name) == name


@pytest.mark.parametrize(("name", "start"), [
    ("..", FALLBACK_ID), ("...", FALLBACK_ID), (".", FALLBACK_ID), ("", FALLBACK_ID),
    ("javascript:alert(document.domain);0", "javascript_alert(document.domain)_0"),
    ("a/b", "a_b"), ("a\\b", "a_b"), (".hidden", "hidden"), ("-rf", "rf"), ("CON", "CON_"), ("nul.txt", "nul_.txt"),
    ("\x1b]0;pwned\x07x", "0_pwned_x"), ("a\u202eb", "a_b"), ("\uff0e\uff0e", FALLBACK_ID),
])
def test_unsafe_names_change_and_say_so_with_a_hash(name: str, start: str) -> None:
    sid = safe_id(name)
    assert sid.startswith(start + "-") and re.fullmatch(r".*-[0-9a-f]{8}", sid)
    assert sid not in (".", "..") and "/" not in sid and ":" not in sid


def test_names_that_clean_up_alike_stay_apart() -> None:
    assert safe_id("a:b") != safe_id("a;b")
    assert safe_id("..") != safe_id("...")
    assert len(safe_id("x" * 500)) <= 80 and safe_id("x" * 500) != safe_id("x" * 501)


@given(st.text(max_size=300))
@example("NUL")  # found by hypothesis in CI: "_NUL-<hash>" read back lost its "_" and changed
@example("com1.tar.gz")
def test_any_name_becomes_one_path_segment(name: str) -> None:
    sid = safe_id(name)
    assert 0 < len(sid) <= 80
    assert ID_SHAPE.fullmatch(sid), sid
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in sid)
    assert safe_id(sid) == sid  # stable: an id read back is the same id


@given(st.text(max_size=40), st.text(max_size=40))
def test_different_names_get_different_ids(a: str, b: str) -> None:
    if a != b:
        assert safe_id(a) != safe_id(b)


def test_unique_ids_counts_case_insensitive_duplicates() -> None:
    assert unique_ids(["a", "A", "a", "b"]) == ["a", "A-2", "a-3", "b"]


# --- terminals ----------------------------------------------------------------------------------------

ATTACK = "\x1b]0;pwned\x07\x1b[2K\r\x1b[32m[1/1] 1234: 40/40 auto\x1b[0m\nnext\u202eline\x9b31mX\x1bPdcs\x1b\\"


def test_terminal_safe_removes_sequences_and_line_breaks() -> None:
    out = terminal_safe(ATTACK)
    assert "\x1b" not in out and "\x9b" not in out and "\r" not in out and "\n" not in out and "\u202e" not in out
    assert "pwned" not in out and "dcs" not in out  # the payload of a title / device sequence is dropped too
    assert "[1/1] 1234: 40/40 auto" in out  # the text stays readable, on the line it came with
    assert terminal_safe("plain text: 3/4") == "plain text: 3/4"


def test_terminal_safe_multiline_keeps_newlines_only() -> None:
    assert terminal_safe("a\nb\x1b[31m\tc", single_line=False) == "a\nb?c"
    assert terminal_safe("x" * 50, limit=10) == "x" * 9 + "…"


@given(st.text())
def test_terminal_safe_leaves_no_control_character(text: str) -> None:
    out = terminal_safe(text)
    assert not any(unicodedata.category(c) == "Cc" for c in out)


# --- spreadsheets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=x", "\r=x", " =x", "\uff1d1+1", "-x"])
def test_formula_cells_are_quoted_and_read_back(cell: str) -> None:
    assert csv_cell(cell) == "'" + cell
    assert csv_uncell(csv_cell(cell)) == cell


@pytest.mark.parametrize("cell", ["-0.5", "+3", "1e-3", "12.50", "0", "-", "", "Ada Lovelace", "a=b", "'quoted"])
def test_numbers_and_plain_text_are_left_alone(cell: str) -> None:
    assert csv_cell(cell) == cell
    assert csv_uncell(cell) == cell


def test_plain_number_means_a_number_only() -> None:
    assert is_plain_number("-0.5") and is_plain_number("3.") and not is_plain_number("-1+2") and not is_plain_number("1,5")
