"""``grader.safety.untrusted`` and the probe reader built on it: files, nesting and arrays the kernel chose.

No kernel runs here. Each refusal has a control: the same call on honest input succeeds, so a test
cannot pass because everything is refused.
"""

from __future__ import annotations

import json
import os
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader.kernel.probe_runtime import to_data
from grader.safety.untrusted import (
    MAX_ARRAY_ELEMENTS,
    ElementBudget,
    Refused,
    decode_array,
    load_json,
    nesting_depth,
    parse_json,
    read_bytes,
)
from grader.steps.probe import from_data, read_results

TOKEN = "f" * 32


def probe_file(path: Path, value: Any, token: str = TOKEN) -> Path:
    path.write_text(json.dumps({"token": token, "results": {"x": {"value": value, "seconds": 0.5}}}), encoding="utf-8")
    return path


def in_thread(fn: Any, *args: Any) -> Any:
    """Run ``fn`` in a daemon thread and fail (not hang) if it blocks: a FIFO read would block for ever."""
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), f"{fn.__name__} blocked"
    if "error" in box:
        raise box["error"]
    return box["value"]


# --- files --------------------------------------------------------------------------------------------


def test_reads_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello")
    assert read_bytes(tmp_path / "f", max_bytes=5) == b"hello"


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_bytes(tmp_path / "nothing", max_bytes=10)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(Refused, match="FIFO"):
        in_thread(lambda: read_bytes(tmp_path / "fifo", max_bytes=10))


def test_symlink_is_refused_even_to_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "zero").symlink_to("/dev/zero")
    assert read_bytes(tmp_path / "real", max_bytes=10) == b"{}"
    for name in ("link", "zero"):
        with pytest.raises(Refused, match="symbolic link"):
            read_bytes(tmp_path / name, max_bytes=10)


def test_device_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Refused, match="device"):
        read_bytes(Path("/dev/null"), max_bytes=10)
    with pytest.raises(Refused, match="folder"):
        read_bytes(tmp_path, max_bytes=10)


def test_size_cap_is_checked_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as fh:
        fh.truncate(600 * 2**20)  # sparse: 600 MiB that a plain read() would allocate
    tracemalloc.start()
    try:
        with pytest.raises(Refused, match="600.0 MiB"):
            read_bytes(big, max_bytes=2**20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20
    assert len(read_bytes(big, max_bytes=600 * 2**20, timeout=60)) == 600 * 2**20  # control: the cap decides


# --- nesting ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "depth"), [
    ("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4), ('["[[[[", "]]]"]', 1), (r'["\"[[[["]', 1), ('{"k": "}}}"}', 1),
])
def test_nesting_depth_skips_strings(text: str, depth: int) -> None:
    assert nesting_depth(text, 100) == depth
    assert json.loads(text) is not None or text == "null"


def test_nesting_depth_stops_early_on_100000_levels() -> None:
    text = "[" * 100_000 + "]" * 100_000
    assert nesting_depth(text, 200) == 201
    with pytest.raises(RecursionError):  # what json.loads alone does with it
        json.loads(text)
    with pytest.raises(Refused, match="nested too deeply"):
        parse_json(text, max_depth=200)


def test_parse_json_names_other_refusals_and_passes_syntax_errors() -> None:
    assert parse_json('{"a": [1, 2]}', max_depth=5) == {"a": [1, 2]}
    with pytest.raises(Refused, match="not usable JSON"):
        parse_json("1" * 5000, max_depth=5)  # more digits than Python converts
    with pytest.raises(json.JSONDecodeError):
        parse_json("{not json", max_depth=5)


def test_load_json_bounds_size_and_depth(tmp_path: Path) -> None:
    (tmp_path / "ok.json").write_text('{"cells": []}')
    (tmp_path / "deep.json").write_text("[" * 300 + "]" * 300)
    assert load_json(tmp_path / "ok.json", max_bytes=100, max_depth=10) == {"cells": []}
    with pytest.raises(Refused, match="nested too deeply"):
        load_json(tmp_path / "deep.json", max_bytes=10_000, max_depth=200)
    with pytest.raises(Refused, match="is not read"):
        load_json(tmp_path / "deep.json", max_bytes=100, max_depth=1000)


# --- arrays -------------------------------------------------------------------------------------------


def test_arrays_round_trip_through_to_data() -> None:
    for value in (np.arange(6, dtype=np.int64).reshape(2, 3), np.array([[0.5, -1.0]], dtype=np.float32),
                  np.array([True, False]), np.array(["a", "bc"]), np.zeros((0, 4), dtype=np.float64)):
        back = from_data(to_data(value))
        assert back.shape == value.shape and back.dtype.kind == value.dtype.kind
        assert np.array_equal(back, value)


def test_array_without_values_is_a_view_of_its_shape_not_an_allocation() -> None:
    tracemalloc.start()
    try:
        arr = decode_array({"__array__": None, "shape": [4096, 4096], "dtype": "float32"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert arr.shape == (4096, 4096) and bool(np.isnan(arr[0, 0]))
    assert peak < 2**20  # 64 MiB if it were allocated


@pytest.mark.parametrize(("entry", "message"), [
    ({"__array__": None, "shape": [8192, 16384], "dtype": "float32"}, "more than"),  # 512 MiB declared
    ({"__array__": None, "shape": [-1, 4], "dtype": "float32"}, "sizes from 0"),
    ({"__array__": None, "shape": "big", "dtype": "float32"}, "list"),
    ({"__array__": None, "shape": [1] * 40, "dtype": "float32"}, "at most 32"),
    ({"__array__": None, "shape": [True, 2], "dtype": "float32"}, "sizes from 0"),
    ({"__array__": [1, 2, 3], "shape": [2, 2], "dtype": "int64"}, "declared shape"),
    ({"__array__": [[1, 2], [3]], "shape": [2, 2], "dtype": "int64"}, "declared shape"),
    ({"__array__": [1, "2"], "shape": [2], "dtype": "int64"}, "another type"),
    ({"__array__": [[1], [2]], "shape": [2], "dtype": "int64"}, "another type"),
    ({"__array__": [1], "shape": [1], "dtype": "object"}, "not one the grader reads"),
    ({"__array__": [1], "shape": [1], "dtype": "V8"}, "not one the grader reads"),
    ({"__array__": [10**30], "shape": [1], "dtype": "int64"}, "do not fit"),
    ({"__array__": [1], "shape": [1]}, "no dtype"),
])
def test_bad_array_entries_are_refused(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(Refused, match=message):
        decode_array(entry)


def test_string_arrays_take_their_width_from_the_data() -> None:
    arr = decode_array({"__array__": ["ab"], "shape": [1], "dtype": "<U999999999"})
    assert arr.dtype == np.dtype("<U2")


def test_budget_bounds_all_arrays_of_a_payload_together() -> None:
    entry = {"__array__": None, "shape": [MAX_ARRAY_ELEMENTS], "dtype": "float32"}
    budget = ElementBudget(total=3 * MAX_ARRAY_ELEMENTS)
    for _ in range(3):
        decode_array(entry, budget)
    with pytest.raises(Refused, match="in all"):
        decode_array(entry, budget)


# --- the probe reader ---------------------------------------------------------------------------------


def test_read_results_control(tmp_path: Path) -> None:
    path = probe_file(tmp_path / "p.json", to_data({"logits": np.ones((2, 4), dtype=np.float32), "n": 3}))
    outcome = read_results(path, TOKEN, ("x",))
    assert outcome.error == "" and outcome.get("x").ok
    value = outcome.get("x").value
    assert value["n"] == 3 and value["logits"].shape == (2, 4)


@pytest.mark.parametrize("kind", ["fifo", "symlink", "padding", "folder", "deep", "not-utf8"])
def test_read_results_never_raises_and_names_the_problem(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "p.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        path.symlink_to("/dev/zero")
    elif kind == "padding":
        probe_file(path, 1)
        with open(path, "r+b") as fh:
            fh.truncate(600 * 2**20)
    elif kind == "folder":
        path.mkdir()
    elif kind == "deep":
        path.write_text(f'{{"token": "{TOKEN}", "results": {{"x": {{"value": {"[" * 100_000}{"]" * 100_000}}}}}}}')
    else:
        path.write_bytes(b'{"token": "\xff"}')
    outcome = in_thread(read_results, path, TOKEN, ("x",))
    expected = {"fifo": "FIFO", "symlink": "symbolic link", "padding": "600.0 MiB", "folder": "folder",
                "deep": "nested too deeply", "not-utf8": "malformed"}[kind]
    assert expected in outcome.error
    assert "kernel could not be started" not in outcome.error
    assert outcome.get("x").ok is False and expected in outcome.get("x").error


def test_one_bad_value_costs_only_its_probe(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"token": TOKEN, "results": {
        "bad": {"value": {"__array__": None, "shape": [8192, 16384], "dtype": "float32"}},
        "good": {"value": [1, 2]},
    }}))
    outcome = read_results(path, TOKEN, ("bad", "good"))
    assert outcome.error == ""
    assert not outcome.get("bad").ok and "malformed probe value" in outcome.get("bad").error
    assert outcome.get("good").ok and outcome.get("good").value == [1, 2]


def test_many_null_arrays_exceed_the_payload_budget(tmp_path: Path) -> None:
    null = {"__array__": None, "shape": [4096, 4096], "dtype": "float32"}
    path = probe_file(tmp_path / "p.json", [null] * 10_000)
    call = read_results(path, TOKEN, ("x",)).get("x")
    assert not call.ok and "in all" in call.error
    assert read_results(probe_file(tmp_path / "q.json", [null] * 2), TOKEN, ("x",)).get("x").ok  # control


def test_wrong_token_is_still_refused(tmp_path: Path) -> None:
    path = probe_file(tmp_path / "p.json", 1, token="0" * 32)
    assert "token mismatch" in read_results(path, TOKEN, ("x",)).error
