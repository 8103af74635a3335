"""A batch's workers forked from one prototype (grader.course.prototype): the warm-up done once, the
batch's one zygote shared, and a fresh start for every worker when forking would not be safe."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from prototype_graders import Recording
from test_forkserver import needs_fork

from grader.course.moodle import Submission
from grader.course.pool import BatchOptions, Outcome, grade_all
from grader.course.progress import Progress


def _batch(tmp_path: Path, grade_fn: Any, n: int = 3, workers: int = 2, **options: Any) -> list[dict[str, Any]]:
    subs = []
    for i in range(n):
        path = tmp_path / "src" / f"s{i}.ipynb"
        path.parent.mkdir(exist_ok=True)
        path.write_text(nbformat.writes(new_notebook(cells=[new_code_cell(f"x = {i}")])), encoding="utf-8")
        subs.append(Submission(id=f"s{i}", notebook=path))
    out = tmp_path / "out"
    outcomes: list[Outcome] = list(grade_all(subs, out, grade_fn, workers, BatchOptions(workers=workers, **options),
                                             Progress(n, stream=io.StringIO())))
    assert len(outcomes) == n
    facts = []
    for o in outcomes:
        assert o.result.status == "graded", (o.result.error, [n.message for n in o.result.notes])
        facts.append(json.loads(o.result.notes[0].message))
    return facts


def _warm_ups(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def test_workers_are_forked_from_a_prototype_that_warmed_up_once(tmp_path: Path) -> None:
    log = tmp_path / "warm-ups"
    facts = _batch(tmp_path, Recording(str(log)), n=4)
    (prototype,) = _warm_ups(log)  # once for the batch, in neither the pool nor a worker
    assert prototype != os.getpid()
    assert {f["warmed"] for f in facts} == {prototype}  # every worker holds what the warm-up loaded
    assert {f["ppid"] for f in facts} == {prototype}  # forked from it
    assert len({f["pid"] for f in facts}) == 2 and prototype not in {f["pid"] for f in facts}
    assert not Path(f"/proc/{prototype}").exists()  # ended (and reaped) with the batch
    assert not list(Path(tempfile.gettempdir()).glob(f"grader-batch-{os.getpid()}-*"))


def test_spawned_workers_warm_up_nothing_ahead(tmp_path: Path) -> None:
    log = tmp_path / "warm-ups"
    facts = _batch(tmp_path, Recording(str(log)), fork_workers=False)
    assert _warm_ups(log) == []
    assert {f["warmed"] for f in facts} == {None} and {f["ppid"] for f in facts} == {os.getpid()}


def test_a_prototype_left_with_threads_forks_nothing_and_the_workers_start_fresh(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Forking a process that runs more than one thread can leave a lock held forever in the child:
    the prototype exits instead, and the batch grades on spawned workers."""
    log = tmp_path / "warm-ups"
    with caplog.at_level("WARNING", logger="grader"):
        facts = _batch(tmp_path, Recording(str(log), threads=True))
    assert len(_warm_ups(log)) == 1  # it did warm up, and then refused to fork
    assert {f["warmed"] for f in facts} == {None} and {f["ppid"] for f in facts} == {os.getpid()}
    assert "workers start as fresh processes" in caplog.text


@pytest.mark.sandbox
@needs_fork
def test_the_workers_kernels_are_forked_from_the_batchs_one_zygote_on_their_own_cores(tmp_path: Path) -> None:
    log = tmp_path / "warm-ups"
    facts = _batch(tmp_path, Recording(str(log), sandbox=True), n=4, warm_kernels=True, fork_kernels=True, pin_kernels=True)
    sockets = {f["shared"]["socket"] for f in facts}
    assert len(sockets) == 1  # one zygote for the batch
    for f in facts:
        assert f["shared"]["owned"] is False and f["shared"]["alive"] and f["shared"]["fits"]
        assert f["zygote"] in sockets  # the kernel came from it, not from a zygote of the worker's own
        assert f["kernel_status"] == "ok"
        if len(os.sched_getaffinity(0)) >= 2:
            assert f["kernel_cores"] == f["cores"] and len(f["cores"]) == 1  # pinned as its worker is
    assert len({tuple(f["cores"]) for f in facts}) == min(2, len(os.sched_getaffinity(0)))
    assert not Path(sockets.pop()).exists()  # the zygote's folder went with the batch
    (prototype,) = _warm_ups(log)
    assert not Path(f"/proc/{prototype}").exists()
