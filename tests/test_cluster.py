"""Batches on a real Dask ``LocalCluster`` (worker processes on loopback) with the fake grade function
of test_batch: results and reports come back as data, a killed worker re-queues its submission, GPU
submissions only reach workers with a ``GPU`` resource, a hung submission is stopped.

The real pipeline on a cluster is in test_cluster_pipeline.py (slow).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import dask
import pytest
from distributed import Client, LocalCluster
from test_batch import fake_grade, subs_for, write_nb

from grader.cluster.run import ClusterBatch, ClusterError
from grader.cluster.spec import ClusterSpec
from grader.course.batch import run_batch
from grader.course.gradebook import Gradebook
from grader.course.pool import BatchOptions
from grader.course.progress import Progress
from grader.steps.results import Note

TESTS = Path(__file__).parent


@contextlib.contextmanager
def local_cluster(n: int = 2, **kwargs: object) -> Iterator[tuple[LocalCluster, Client]]:
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, **kwargs) as cluster, Client(cluster) as client:  # type: ignore[arg-type]
        yield cluster, client


def on(cluster: LocalCluster, **kwargs: object) -> ClusterBatch:
    return ClusterBatch(ClusterSpec(kind="address", address=cluster.scheduler_address, wait_for_workers=30,
                                    label="test cluster"), **kwargs)  # type: ignore[arg-type]


class Recording(Progress):
    """Counts starts per submission; calls ``on_start(sid)`` once, at the first start."""

    def __init__(self, total: int, on_start: Callable[[str], None] | None = None) -> None:
        super().__init__(total, stream=io.StringIO(), tty=False)
        self.starts: Counter[str] = Counter()
        self.on_start = on_start

    def started(self, sid: str) -> None:
        self.starts[sid] += 1
        super().started(sid)
        if self.on_start is not None:
            hook, self.on_start = self.on_start, None
            hook(sid)


def test_results_and_reports_come_back_as_data(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i, score in enumerate((4, 3, 1, 0)):
        write_nb(src / f"s{i}.ipynb", code=f"v = {i}", score=score, sleep=0.5)  # long enough to be seen running
    write_nb(src / "raise.ipynb", behaviour="raise", sleep=0.5)
    out = tmp_path / "out"
    with local_cluster() as (cluster, _), Gradebook(out / "gradebook.sqlite") as gb:
        batch = on(cluster)
        progress = Recording(5)
        summary = run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1", progress=progress, cluster=batch)
        by_id = {o.submission.id: o.result for o in summary.outcomes}
        assert [by_id[f"s{i}"].auto_points for i in range(4)] == [4.0, 3.0, 1.0, 0.0]
        assert by_id["raise"].error_kind == "grader" and "RuntimeError: the fake grader broke" in by_id["raise"].error
        for i in range(4):
            # the report was written on a worker, in its own temp folder, and shipped back
            assert (out / f"s{i}" / "report.html").read_text() == f"<html>report for s{i}</html>"
            assert by_id[f"s{i}"].source == str(src / f"s{i}.ipynb")  # the client's path, not the worker's
            assert Note("info", "OMP_NUM_THREADS=1") in by_id[f"s{i}"].notes
            assert gb.run_count(f"s{i}") == 1
        assert summary.workers == 2 and len(batch.worker_names) == 2
        assert progress.done == 5 and progress.failed == 1 and not progress.running
        assert sorted(progress.starts) == sorted(by_id)


def test_killed_worker_requeues_its_submission(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    n = 6
    scores = (4, 3, 1, 0, 4, 3)  # the fake's points for these scores are the same numbers
    for i in range(n):
        write_nb(src / f"s{i}.ipynb", code=f"v = {i}", score=scores[i], sleep=1.5)
    out = tmp_path / "out"
    killed: list[tuple[str, int]] = []
    with local_cluster() as (cluster, client), Gradebook(out / "gradebook.sqlite") as gb:
        pids: dict[str, int] = client.run(os.getpid)

        def kill_worker_running(sid: str) -> None:
            for address, keys in client.processing().items():
                if any(sid in str(k) for k in keys):
                    os.kill(pids[address], signal.SIGKILL)
                    killed.append((sid, pids[address]))
                    return

        progress = Recording(n, on_start=kill_worker_running)
        summary = run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1", progress=progress, cluster=on(cluster))
        assert killed, "no worker was killed"
        sid, pid = killed[0]
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert progress.starts[sid] >= 2, "the killed submission was not graded again"
        by_id = {o.submission.id: o.result for o in summary.outcomes}
        assert sorted(by_id) == [f"s{i}" for i in range(n)]  # nothing lost, nothing twice
        assert all(r.status == "graded" for r in by_id.values())
        assert [by_id[f"s{i}"].auto_points for i in range(n)] == [float(x) for x in scores]
        assert all(gb.run_count(f"s{i}") == 1 for i in range(n)) and gb.run_count() == n
        assert progress.done == n and progress.failed == 0 and not progress.running


def test_submission_that_kills_every_worker_ends_as_an_error(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_nb(src / "crash.ipynb", behaviour="crash")
    for i in range(3):
        write_nb(src / f"ok{i}.ipynb", code=f"v = {i}", score=4)
    out = tmp_path / "out"
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), local_cluster() as (cluster, _), \
            Gradebook(out / "gradebook.sqlite") as gb:
        summary = run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1", cluster=on(cluster))
    by_id = {o.submission.id: o.result for o in summary.outcomes}
    assert by_id["crash"].status == "error" and by_id["crash"].error_kind == "grader"
    assert by_id["crash"].kernel_status == "died" and "died on every worker" in by_id["crash"].error
    assert all(by_id[f"ok{i}"].auto_points == 4.0 for i in range(3)), {k: (r.status, r.error[-80:]) for k, r in by_id.items()}


def test_gpu_submissions_only_reach_gpu_workers(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        write_nb(src / f"s{i}.ipynb", code=f"v = {i}", sleep=0.3)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    with local_cluster(n=1) as (cluster, client):
        # a second worker, started the way a GPU node joins: the dask CLI with a GPU resource
        gpu_worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address, "--nthreads", "1",
             "--resources", "GPU=1", "--name", "gpu-node", "--no-dashboard"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            client.wait_for_workers(2, timeout=60)
            gpu_address = next(a for a, w in client.scheduler_info(n_workers=-1)["workers"].items() if w.get("resources"))
            with Gradebook(tmp_path / "gpu.sqlite") as gb:
                gpu = on(cluster, gpu=True)
                run_batch(subs_for(src), tmp_path / "gpu", fake_grade, gb, rubric_hash="r1", cluster=gpu)
                assert gpu.worker_names == {gpu_address}
            with Gradebook(tmp_path / "any.sqlite") as gb:  # the same batch without --gpu uses both workers
                anywhere = on(cluster)
                run_batch(subs_for(src), tmp_path / "any", fake_grade, gb, rubric_hash="r1", cluster=anywhere)
                assert len(anywhere.worker_names) == 2
        finally:
            gpu_worker.terminate()
            gpu_worker.wait(timeout=30)


def test_gpu_batch_without_any_gpu_worker_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_nb(src / "a.ipynb")
    with local_cluster(n=1) as (cluster, _), Gradebook(tmp_path / "gb.sqlite") as gb, \
            pytest.raises(ClusterError, match="no worker of test cluster has a GPU resource"):
        run_batch(subs_for(src), tmp_path / "out", fake_grade, gb, rubric_hash="r1", cluster=on(cluster, gpu=True))


def test_workers_without_the_store_or_the_rubric_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_nb(src / "a.ipynb")
    missing = tmp_path / "no-store"
    with local_cluster(n=1, env={"GRADER_STORE": str(missing)}) as (cluster, _), Gradebook(tmp_path / "gb.sqlite") as gb, \
            pytest.raises(ClusterError) as err:
        run_batch(subs_for(src), tmp_path / "out", fake_grade, gb, rubric_hash="r1",
                  cluster=on(cluster, rubric_hash="not-the-workers-rubric"))
    message = str(err.value)
    assert message.startswith("workers not ready to grade:")
    assert f"store {missing}:" in message and "the rubric differs from the client's" in message
    assert not (tmp_path / "out" / "a").exists()  # nothing was graded


def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_nb(src / "a.ipynb")
    batch = ClusterBatch(ClusterSpec(kind="address", address="tcp://127.0.0.1:9", wait_for_workers=2, label="tcp://127.0.0.1:9"))
    with Gradebook(tmp_path / "gb.sqlite") as gb, pytest.raises(ClusterError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_batch(subs_for(src), tmp_path / "out", fake_grade, gb, rubric_hash="r1", cluster=batch)


def test_hung_submission_is_stopped_and_its_worker_restarted(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    child_pid = tmp_path / "child.pid"
    write_nb(src / "hang.ipynb", behaviour="hang", child_pid_file=str(child_pid))
    for i in range(3):
        write_nb(src / f"ok{i}.ipynb", code=f"v = {i}", score=3)
    out = tmp_path / "out"
    try:
        with local_cluster() as (cluster, _), Gradebook(out / "gradebook.sqlite") as gb:
            t0 = time.monotonic()
            summary = run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1",
                                options=BatchOptions(hard_timeout_s=4.0), cluster=on(cluster))
            assert time.monotonic() - t0 < 60
        by_id = {o.submission.id: o.result for o in summary.outcomes}
        assert by_id["hang"].kernel_status == "deadline" and "batch limit of 4 s" in by_id["hang"].error
        assert all(by_id[f"ok{i}"].auto_points == 3.0 for i in range(3))
    finally:  # the fake's stand-in for a kernel is not sandboxed: end it here
        if child_pid.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child_pid.read_text()), signal.SIGKILL)


def test_cli_cluster_local(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from grader.cli.commands import batch

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        write_nb(src / f"s{i}.ipynb", code=f"v = {i}", score=i + 1)
    parser = argparse.ArgumentParser()
    batch.register(parser.add_subparsers())
    args = parser.parse_args(["batch", str(src), "--out", str(tmp_path / "out"), "--cluster", "local", "--workers", "2",
                              "--no-similarity"])
    assert batch.run(args, grade_fn=fake_grade) == 0
    printed = capsys.readouterr().out
    assert "3 submission(s), 3 graded now with 2 worker(s)" in printed
    grades = (tmp_path / "out" / "grades.csv").read_text().splitlines()
    assert len(grades) == 4 and grades[1].startswith("s0,")
