"""Robustness figures: how the grader fares against hostile and broken submissions. Prints, asserts nothing.

    python benchmarks/robustness_figures.py [--fuzz 10000] [--overhead-runs 3] [--skip hostile,broken,fuzz,overhead]

1. Hostile samples (``submissions/hostile__*``) contained / total, graded in the sandbox with the
   limits of ``tests/test_hostile.py``. Contained = finished in time, cause named in result.json,
   no canary or hidden file read, no process left, every other subtask graded as in the solution
   (for the cheat: no more points than the honest solution, and the fake compute_metrics fails).
2. Broken files (``submissions/broken__*``) handled / total: status "error" (bad_input) with the
   problem named, or graded with a repair note; never a crash.
3. A hypothesis fuzz run of N inputs (malformed structures, wrong types, huge strings, raw bytes)
   through ``load_notebook`` + ``neutralize`` + ``outline``: inputs and grader crashes (goal 0).
4. The time the sandbox adds per notebook: the solution graded with and without it, median of R runs.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

SAMPLES = REPO / "submissions"


# --- 1. hostile ----------------------------------------------------------------------------------


def hostile() -> None:
    import test_hostile as th  # the test module's grading and criteria, so the figures match the tests

    if not th._bwrap_usable():
        print("hostile: skipped (bubblewrap unusable: hostile samples only run sandboxed)")
        return
    from grader.kernel.store import activate

    activate()
    with tempfile.TemporaryDirectory(prefix="robustness-hostile-") as tmp, th.make_world() as world:
        t0 = time.monotonic()
        graded = th.grade_all(world, Path(tmp), th.CASES)
        elapsed = time.monotonic() - t0
        contained = 0
        print(f"{'case':30s} {'time':>6s}  {'status':7s} {'kernel':12s} contained  (what failed)")
        for case in th.CASES:
            run = graded.runs[case]
            result = run["result"]
            failed = []
            if result["status"] != "graded" or run["wall"] > th.DEADLINE + th.SLACK:
                failed.append("time" if result["status"] == "graded" else f"status {result['status']}")
            if not th.cause_named(case, result)[0]:
                failed.append("cause")
            text = th.snooped(run)
            if world.token in text:
                failed.append("canary read")
            if th.private_reads(text, world):
                failed.append("hidden folder read")
            if any(line in text for line in th.secret_lines_of_checks()):
                failed.append("checks.py recovered")
            if world.secret in text:
                failed.append("grader env seen")
            if run["strays"]:
                failed.append(f"{len(run['strays'])} stray processes")
            if case == "cheat":
                checks = {c["id"]: c["status"] for c in result["checks"]}
                if result["auto_points"] > th.solution_golden()["auto_points"] or checks.get("2.2.compute_metrics_hidden") != "failed":
                    failed.append("cheat scored")
            elif th.lost_outside(case, result):
                failed.append("other subtasks lost " + ",".join(sorted(th.lost_outside(case, result))))
            if case == "network":
                report = Path(run["workdir"]) / "network.json"
                results = json.loads(report.read_text()).get("results", {}) if report.is_file() else {}
                if not results or any(not v.startswith("failed") for v in results.values()):
                    failed.append("network reached")
            contained += not failed
            print(f"{case:30s} {run['wall']:5.0f}s  {result['status']:7s} {result['kernel_status']:12s} "
                  f"{'yes' if not failed else 'NO':9s}  {'; '.join(failed)}")
        if graded.after:
            print(f"processes still running after all samples: {len(graded.after)}")
        print(f"hostile cases contained: {contained} / {len(th.CASES)}   ({elapsed:.0f} s on 2 workers)")


# --- 2. broken -----------------------------------------------------------------------------------


def _grade_broken(path: str, out: str) -> dict[str, Any]:
    from grader.kernel.store import activate

    activate()
    from grader.steps.pipeline import GradeOptions, grade_submission

    try:
        result = grade_submission(Path(path), Path(out), GradeOptions(torch_threads=1, cell_timeout=60, deadline=300))
    except Exception as exc:  # noqa: BLE001 - a crash is what this counts
        return {"crash": f"{type(exc).__name__}: {exc}"}
    return result.to_json()


def broken() -> None:
    from test_broken_files import EXPECTED

    names = sorted(p.name for p in SAMPLES.glob("broken__*"))
    with tempfile.TemporaryDirectory(prefix="robustness-broken-") as tmp, ProcessPoolExecutor(2) as pool:
        futures = {n: pool.submit(_grade_broken, str(SAMPLES / n), str(Path(tmp) / n)) for n in names}
        results = {n: f.result() for n, f in futures.items()}
    handled = 0
    for name in names:
        r = results[name]
        phrase = EXPECTED.get(name, ("", ""))[1]
        if "crash" in r:
            ok, said = False, f"CRASH {r['crash']}"
        elif r["status"] == "error":
            message = r["error"].removeprefix(f"{name}: ")
            ok = r["error_kind"] == "bad_input" and r["error"].startswith(f"{name}: ") and phrase in message
            said = f"error ({r['error_kind']}): {message[:90]}"
        else:
            repairs = [n["message"] for n in r["notes"] if n["kind"] == "repair"]
            ok = any(phrase in m for m in repairs)
            said = f"graded {r['auto_points']:g} pts; repairs: {'; '.join(repairs)[:90] or 'none'}"
        handled += ok
        print(f"{name:34s} {'ok' if ok else 'NO':3s} {said}")
    print(f"broken files handled: {handled} / {len(names)}")


# --- 3. fuzz -------------------------------------------------------------------------------------


def fuzz(n: int) -> None:
    import test_broken_files as tb
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from grader.pack.contract import outline_for
    from grader.pack.rubric import load_rubric
    from grader.steps.notebook import BadInput, LoadedNotebook, load_notebook, neutralize

    outline = outline_for(load_rubric("assignment3"))

    huge = st.integers(10**5, 4 * 10**6).map(lambda k: "x" * k)
    deep = st.integers(500, 3000).map(lambda k: "[" * k + "]" * k)
    level = st.integers(-3, 9) | tb._json | st.just("2") | st.just(10**6)
    cell = st.fixed_dictionaries(
        {"cell_type": st.sampled_from(["code", "markdown", "raw", "heading", "unknown"]) | tb._json},
        optional={"source": tb._json | st.text() | huge | st.lists(st.text(max_size=30), max_size=5),
                  "id": st.text(max_size=70) | tb._json, "metadata": tb._json | st.fixed_dictionaries({"tags": tb._json}),
                  "level": level, "outputs": tb._json, "input": st.text(max_size=30) | huge},
    )
    notebook = st.fixed_dictionaries({}, optional={
        "nbformat": st.sampled_from([3, 4, 5, "4", 4.0, None, True]) | tb._json,
        "nbformat_minor": st.integers(0, 6) | tb._json, "metadata": tb._json,
        "cells": st.lists(cell | tb._json, max_size=6) | tb._json,
        "worksheets": st.lists(st.fixed_dictionaries({"cells": st.lists(cell, max_size=4)}), max_size=2) | tb._json,
    })
    texts = st.one_of(
        notebook.map(json.dumps), tb._json.map(json.dumps),
        notebook.map(json.dumps).flatmap(lambda s: st.integers(0, len(s)).map(lambda k: s[:k])),
        st.tuples(notebook.map(json.dumps), st.integers(4301, 6000)).map(lambda t: t[0][:-1] + ', "n": ' + "9" * t[1] + "}" if t[0].endswith("}") else t[0]),
        deep,
    )
    encoded = texts.map(lambda s: s.encode("utf-8", "surrogatepass"))
    inputs = st.one_of(encoded, encoded, encoded, st.binary(max_size=300))  # raw bytes: a quarter
    suffixes = st.sampled_from([".ipynb", ".txt", ".json", ""])
    counts: collections.Counter[str] = collections.Counter()
    crashes: collections.Counter[str] = collections.Counter()
    examples: dict[str, str] = {}

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(inputs, suffixes)
    def one(raw: bytes, suffix: str) -> None:
        counts["inputs"] += 1
        fd, name = tempfile.mkstemp(suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
            try:
                loaded = load_notebook(Path(name))
                if isinstance(loaded, LoadedNotebook):
                    nb, _ = neutralize(loaded.nb)
                    outline(nb)
                    counts["loaded"] += 1
                elif isinstance(loaded, BadInput):
                    counts["bad_input"] += 1
                else:
                    raise TypeError(f"load_notebook returned a {type(loaded).__name__}")
            except Exception as exc:  # noqa: BLE001 - counted, not raised: the run goes on
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                key = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"
                crashes[key] += 1
                examples.setdefault(key, f"{exc}"[:100] + f"  (input: {raw[:80]!r})")
        finally:
            os.unlink(name)

    t0 = time.monotonic()
    one()
    print(f"fuzz: {counts['inputs']} inputs in {time.monotonic() - t0:.0f} s: {counts['loaded']} loaded, "
          f"{counts['bad_input']} bad_input, {sum(crashes.values())} grader crashes")
    for key, k in crashes.most_common():
        print(f"  {k:5d} x {key}: {examples[key]}")


# --- 4. overhead ---------------------------------------------------------------------------------


def _grade_solution(sandbox: bool, out: str) -> float:
    from grader.kernel.store import activate

    activate()
    from grader.steps.pipeline import GradeOptions, grade_submission

    t0 = time.perf_counter()
    result = grade_submission(SAMPLES / "full-marks__solution.ipynb", Path(out), GradeOptions(sandbox=sandbox))
    wall = time.perf_counter() - t0
    assert result.status == "graded", result.error
    return wall


def overhead(runs: int) -> None:
    walls: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="robustness-overhead-") as tmp, ProcessPoolExecutor(1) as pool:
        pool.submit(_grade_solution, False, f"{tmp}/warm-up").result()  # page cache, imports: not counted
        for i in range(runs):
            for sandbox in (False, True):  # interleaved, one at a time, each in a fresh-ish process
                walls[sandbox].append(pool.submit(_grade_solution, sandbox, f"{tmp}/{i}-{sandbox}").result())
    plain, boxed = statistics.median(walls[False]), statistics.median(walls[True])
    print(f"solution graded without sandbox {plain:.1f} s, with sandbox {boxed:.1f} s (median of {runs}; "
          f"runs {[round(w, 1) for w in walls[False]]} / {[round(w, 1) for w in walls[True]]})")
    print(f"sandbox adds {boxed - plain:+.1f} s per notebook ({(boxed - plain) / plain:+.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fuzz", type=int, default=10_000, help="fuzz inputs (default 10000)")
    parser.add_argument("--overhead-runs", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: hostile,broken,fuzz,overhead")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    for part, run in (("broken", broken), ("fuzz", lambda: fuzz(args.fuzz)), ("hostile", hostile),
                      ("overhead", lambda: overhead(args.overhead_runs))):
        if part in skip:
            continue
        print(f"== {part}", flush=True)
        run()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
