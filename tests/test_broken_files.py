"""Broken files (``submissions/broken__*``): each ends as status "error" with ``error_kind="bad_input"``
and a message naming the file and the problem, or is repaired, graded and the repair noted. Never a
crash. Plus a property test: ``load_notebook`` (and ``neutralize``/``outline`` after it) never raises,
whatever the bytes or JSON structure.

Everything here but ``test_repaired_files_are_graded_end_to_end`` runs without a kernel.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pools import grading_pool

from grader.pack.contract import outline_for
from grader.pack.rubric import load_rubric
from grader.steps.notebook import BadInput, LoadedNotebook, load_notebook, neutralize

outline = outline_for(load_rubric("assignment3"))  # Assignment 3's notebook conventions

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "submissions"
BROKEN = sorted(p.name for p in SAMPLES.glob("broken__*"))

# file -> (what it should end as, a phrase the message or the repair note must contain)
EXPECTED: dict[str, tuple[str, str]] = {
    "broken__not-json.ipynb": ("error", "not valid JSON"),
    "broken__truncated-json.ipynb": ("error", "truncated"),
    "broken__empty.ipynb": ("error", "empty"),
    "broken__top-level-list.ipynb": ("error", "top level is a list"),
    "broken__nbformat3.ipynb": ("graded", "nbformat 3"),
    "broken__notebook-as-txt.txt": ("graded", "holds a notebook"),
    "broken__missing-ids.ipynb": ("graded", "cell id"),
    "broken__duplicate-ids.ipynb": ("graded", "cell id"),
    "broken__source-is-number.ipynb": ("graded", "not text"),
}
ERRORS = [n for n in BROKEN if EXPECTED.get(n, ("", ""))[0] == "error"]
REPAIRED = [n for n in BROKEN if EXPECTED.get(n, ("", ""))[0] == "graded"]

KNOWN_BUGS: dict[str, str] = {}  # sample -> the grader bug it shows (a strict xfail until fixed)


def param(name: str) -> Any:
    return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[name])) if name in KNOWN_BUGS else name


def test_every_sample_has_an_expectation() -> None:
    assert set(BROKEN) == set(EXPECTED)


# --- load / normalize, no kernel ----------------------------------------------------------------


@pytest.mark.parametrize("name", [param(n) for n in ERRORS])
def test_unusable_file_is_bad_input_naming_the_problem(name: str) -> None:
    loaded = load_notebook(SAMPLES / name)
    assert isinstance(loaded, BadInput)
    assert EXPECTED[name][1] in loaded.message


@pytest.mark.parametrize("name", [param(n) for n in REPAIRED])
def test_repairable_file_loads_with_a_repair_note(name: str) -> None:
    loaded = load_notebook(SAMPLES / name)
    assert isinstance(loaded, LoadedNotebook), loaded
    nbformat.validate(loaded.nb)
    assert any(EXPECTED[name][1] in r for r in loaded.repairs), loaded.repairs


@pytest.mark.parametrize("name", REPAIRED)
def test_repaired_notebook_keeps_its_code_and_outline(name: str) -> None:
    loaded = load_notebook(SAMPLES / name)
    assert isinstance(loaded, LoadedNotebook)
    nb, _ = neutralize(loaded.nb)
    shape = outline(nb)
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids))
    code = [(c.source, s.subtask) for c, s in zip(nb.cells, shape.sections, strict=True) if c.cell_type == "code"]
    assert code and code[0][0].startswith("from transformers import AutoTokenizer") and code[0][1] == "2.1", code


@pytest.mark.parametrize("name", [param(n) for n in ERRORS])
def test_bad_input_is_an_error_result_and_no_kernel_starts(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import grader.steps.pipeline as pipeline

    def no_kernel(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a kernel was started for a file that is not a notebook")

    monkeypatch.setattr(pipeline, "_execute", no_kernel)
    result = pipeline.grade_submission(SAMPLES / name, tmp_path / "out", pipeline.GradeOptions())
    assert (result.status, result.error_kind) == ("error", "bad_input"), result.error
    assert result.error.startswith(f"{name}: "), result.error
    assert EXPECTED[name][1] in result.error.removeprefix(f"{name}: "), result.error
    written = json.loads((tmp_path / "out" / "result.json").read_text(encoding="utf-8"))
    assert written["status"] == "error" and written["error_kind"] == "bad_input" and written["auto_points"] == 0
    assert (tmp_path / "out" / "report.html").is_file()


# --- inputs outside the samples that used to crash the grader (regressions) ----------------------


def _v4(cells: list[Any], **extra: Any) -> dict[str, Any]:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells, **extra}


REGRESSIONS: dict[str, tuple[bytes, str]] = {
    # json.loads raises ValueError (not JSONDecodeError) past sys.get_int_max_str_digits()
    "huge-integer": (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {"n": ' + b"7" * 5000 + b'}, "cells": []}', "bad_input"),
    # a heading cell's level went through int()
    "heading-level-text": (json.dumps(_v4([{"cell_type": "heading", "level": "two", "source": "Task 2", "metadata": {}}])).encode(), "loaded"),
    "heading-level-list": (json.dumps(_v4([{"cell_type": "heading", "level": [2], "source": "Task 2", "metadata": {}}])).encode(), "loaded"),
    "heading-level-huge": (json.dumps(_v4([{"cell_type": "heading", "level": 10**9, "source": "Task 2", "metadata": {}}])).encode(), "loaded"),
}


@pytest.mark.parametrize("case", sorted(REGRESSIONS))
def test_odd_json_never_crashes_load_notebook(case: str) -> None:
    raw, expected = REGRESSIONS[case]
    assert check_load(raw) == expected


def test_file_name_that_is_not_utf8_is_bad_input_not_a_crash(tmp_path: Path) -> None:
    """A zip from Moodle can hold a Latin-1 file name: os.fsdecode makes it a lone surrogate."""
    from grader.steps.pipeline import GradeOptions, grade_submission

    path = Path(os.fsdecode(os.path.join(os.fsencode(str(tmp_path)), b"caf\xe9.ipynb")))
    path.write_bytes(b"not json")
    result = grade_submission(path, tmp_path / "out", GradeOptions())
    assert (result.status, result.error_kind) == ("error", "bad_input")
    assert json.loads((tmp_path / "out" / "result.json").read_text(encoding="utf-8"))["error_kind"] == "bad_input"


# --- property: load_notebook never raises -------------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                     st.text(max_size=40))
_json = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                     max_leaves=12)
_cell = st.fixed_dictionaries(
    {"cell_type": st.sampled_from(["code", "markdown", "raw", "heading", "unknown"]) | _json},
    optional={
        "source": _json | st.text() | st.lists(st.text(max_size=30), max_size=5),
        "id": st.text(max_size=70) | _json,
        "metadata": _json | st.fixed_dictionaries({"tags": _json}),
        "level": st.integers(-3, 9) | _json,
        "outputs": _json,
        "execution_count": _json,
        "input": st.text(max_size=30),
    },
)
_notebook = st.fixed_dictionaries(
    {},
    optional={
        "nbformat": st.sampled_from([3, 4, 5, "4", 4.0, None, True]) | _json,
        "nbformat_minor": st.integers(0, 6) | _json,
        "metadata": _json,
        "cells": st.lists(_cell | _json, max_size=6) | _json,
        "worksheets": st.lists(st.fixed_dictionaries({"cells": st.lists(_cell, max_size=4)}), max_size=2) | _json,
    },
)
_text_of = st.one_of(
    _notebook.map(json.dumps),
    _json.map(json.dumps),
    _notebook.map(json.dumps).flatmap(lambda s: st.integers(0, len(s)).map(lambda n: s[:n])),  # truncated
)
INPUTS = st.one_of(_text_of.map(lambda s: s.encode("utf-8", "surrogatepass")), st.binary(max_size=300))


def check_load(raw: bytes, suffix: str = ".ipynb") -> str:
    """Load, normalize and outline ``raw``; return "loaded" or "bad_input". Raises if the grader does."""
    fd, name = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        loaded = load_notebook(Path(name))
    finally:
        os.unlink(name)
    if isinstance(loaded, BadInput):
        assert loaded.message and isinstance(loaded.message, str)
        return "bad_input"
    assert isinstance(loaded, LoadedNotebook)
    nbformat.validate(loaded.nb)
    nb, _ = neutralize(loaded.nb)
    shape = outline(nb)
    assert len(shape.sections) == len(nb.cells)
    return "loaded"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(INPUTS)
def test_load_notebook_never_raises(raw: bytes) -> None:
    check_load(raw)


# --- end to end, with a kernel -------------------------------------------------------------------


def _grade(path: str, out: str) -> dict[str, Any]:
    from grader.kernel.store import activate

    activate()
    from grader.steps.pipeline import GradeOptions, grade_submission

    return grade_submission(Path(path), Path(out), GradeOptions(torch_threads=1, cell_timeout=60, deadline=300)).to_json()


@pytest.fixture(scope="module")
def graded_repaired(tmp_path_factory: pytest.TempPathFactory, built_store: Path) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("broken")
    with grading_pool(max(1, min(2, os.cpu_count() or 1))) as pool:
        futures = {n: pool.submit(_grade, str(SAMPLES / n), str(out / n)) for n in REPAIRED}
        return {n: f.result() for n, f in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", [param(n) for n in REPAIRED])
def test_repaired_files_are_graded_end_to_end(name: str, graded_repaired: dict[str, dict[str, Any]]) -> None:
    result = graded_repaired[name]
    assert result["status"] == "graded", result["error"]
    assert any(n["kind"] == "repair" and EXPECTED[name][1] in n["message"] for n in result["notes"]), result["notes"]
    checks = {c["id"]: c["status"] for c in result["checks"]}
    assert checks["2.1.tokenizer"] == "passed"  # the repaired notebook really ran
