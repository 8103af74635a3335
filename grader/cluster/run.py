"""The client side of a batch on Dask: start or join the cluster, send submissions, stream results back.

``ClusterBatch.grade_all`` is a drop-in for the local pool's ``_grade_all``: it yields one
``Outcome`` per submission as each finishes, and ``run_batch`` records them. So the client alone
writes the gradebook, result.json and the report files (sent back as bytes); workers write nothing
but their own temp folders.

Why each choice:

- At most a couple of submissions per worker thread are in flight: the client reads a notebook
  only when it sends it and drops each result once written, so its memory does not grow with the
  course (a Moodle download of 300 notebooks with outputs is gigabytes).
- A worker that dies mid-task is Dask's business: the scheduler gives the task to another worker
  (up to ``distributed.scheduler.allowed-failures`` times, then ``KilledWorker``, recorded here as
  "the grading process died", as the local pool does). The task is idempotent and the client
  takes each future's result once, so nothing is lost or recorded twice. Dask counts a death
  against every task the worker held, queued ones too, so each failed submission is sent again
  (``_Stream._bystander``): a bystander of another's crash then gets graded.
- GPU submissions ask for the ``GPU`` resource: Dask never runs them on a worker without it.
- The hard timeout counts from the "started" event the worker sends; past it, the client records a
  timeout and restarts that worker through its nanny (which ends the kernel with it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from grader.cluster.spec import ClusterSpec
from grader.cluster.task import Job, Shipped, grade_remote, safe_relative, worker_report
from grader.course.finish import harness_error_result
from grader.course.moodle import Submission
from grader.course.pool import BatchOptions, GradeFn, Outcome, default_workers, kernel_env
from grader.course.progress import Progress
from grader.steps.results import Note, result_from_json

log = logging.getLogger("grader")

IN_FLIGHT_PER_THREAD = 2  # enough to keep every worker busy between two client polls
MAX_ATTEMPTS = 2  # a KilledWorker submission that barely started is sent again this many times at most


class ClusterError(Exception):
    """The cluster cannot grade this batch (no workers, a worker without the store, ...)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class ClusterBatch:
    """How ``run_batch`` grades on Dask. ``rubric`` is what the grade function loads (checked on workers)."""

    spec: ClusterSpec
    rubric_hash: str = ""  # the client's; empty: a caller's own grade function, workers are not checked
    rubric: str | None = None
    kernel_env: str | None = None  # --kernel-env: must be built on every worker
    gpu: bool = False
    local_workers: int = 0  # --cluster local: worker processes (0: sized to the machine)
    workers: int = 0  # most workers seen at once, for the summary
    worker_names: set[str] = field(default_factory=set)  # every worker that graded something

    def grade_all(
        self, todo: Sequence[Submission], out_dir: Path, grade_fn: GradeFn, options: BatchOptions, progress: Progress,
    ) -> Iterator[Outcome]:
        local = min(len(todo), self.local_workers or default_workers(options.threads_per_kernel, options.memory_per_kernel_gib))
        with connect(self.spec, max(1, local), gpu=self.gpu) as client:
            self._wait_for_workers(client)
            if self.rubric_hash:
                self._preflight(client)
            yield from _Stream(self, client, todo, out_dir, grade_fn, options, progress).run()

    def _wait_for_workers(self, client: Any) -> None:
        try:
            client.wait_for_workers(1, timeout=self.spec.wait_for_workers)
        except TimeoutError:
            raise ClusterError(
                f"no Dask worker joined {self.spec.label} within {self.spec.wait_for_workers:.0f} s",
                hint="for a cluster file: are the jobs still queued (squeue --me)? raise wait_for_workers; "
                     "for tcp://: start workers with `dask worker tcp://HOST:PORT --nthreads 1`",
            ) from None
        if self.gpu and not any(_gpu_units(w) for w in _workers(client).values()):
            if self.spec.kind == "jobqueue" and self.spec.jobqueue is not None and self.spec.jobqueue.gpus:
                return  # GPU jobs are declared; the first ones may simply not be running yet
            raise ClusterError(
                f"--gpu: no worker of {self.spec.label} has a GPU resource, so no submission could run",
                hint="start GPU workers with `dask worker ADDRESS --nthreads 1 --resources GPU=1`, or set gpus: in the cluster file",
            )

    def _preflight(self, client: Any) -> None:
        """Every worker present must have the same grader, the same rubric and a complete store."""
        import grader

        reports: dict[str, dict[str, Any]] = client.run(worker_report, self.rubric, self.kernel_env)
        problems: list[str] = []
        for address, info in sorted(reports.items()):
            where = f"{address} ({info.get('host', '?')})"
            if info.get("grader") != grader.__version__:
                problems.append(f"{where}: grader {info.get('grader')}, the client has {grader.__version__}")
            if info.get("store") != "ok":
                problems.append(f"{where}: store {info.get('store_path')}: {info.get('store')}")
            if info.get("kernel_env") != "ok":
                problems.append(f"{where}: {info.get('kernel_env')}")
            if info.get("rubric_error"):
                problems.append(f"{where}: rubric: {info['rubric_error']}")
            elif info.get("rubric_hash") != self.rubric_hash:
                problems.append(f"{where}: the rubric differs from the client's (another checkout or version?)")
        if problems:
            raise ClusterError("workers not ready to grade:\n  " + "\n  ".join(problems),
                               hint="see docs/CLUSTER.md: the same checkout on every node, the store built there (`grader store "
                                    "build`) or GRADER_STORE pointing at a shared copy, and `grader env build`")


class _Stream:
    """One batch on one client: a bounded window of futures, drained as they complete."""

    def __init__(self, owner: ClusterBatch, client: Any, todo: Sequence[Submission], out_dir: Path, grade_fn: GradeFn,
                 options: BatchOptions, progress: Progress) -> None:
        self.owner, self.client, self.out_dir, self.grade_fn = owner, client, out_dir, grade_fn
        self.options, self.progress = options, progress
        self.pending = list(reversed(todo))  # popped from the end: submission order
        self.topic = f"grader-batch-{uuid.uuid4().hex}"
        self.token = uuid.uuid4().hex[:12]
        self.env = kernel_env(options.threads_per_kernel)
        self.warm = bool(getattr(options, "warm_kernels", False))  # as the local pool does
        self.fork = self.warm and bool(getattr(options, "fork_kernels", False))
        self.events: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.in_flight: dict[str, tuple[Any, Submission]] = {}  # future key -> (future, submission)
        self.started: dict[str, tuple[float, str]] = {}  # submission id -> (monotonic start, worker)
        self.starts: dict[str, int] = {}  # submission id -> "started" events seen (every attempt)
        self.attempts: dict[str, int] = {}  # submission id -> times sent again after a KilledWorker
        self.no_workers_since: float | None = None
        self.info: dict[str, Any] = {}
        self.info_at = -1e9

    def run(self) -> Iterator[Outcome]:
        from distributed import as_completed

        self.client.subscribe_topic(self.topic, lambda event: self.events.put(event[1]))
        done = as_completed()
        n_workers = self._update_workers()
        self.progress.set_workers(n_workers)
        try:
            while self.pending or self.in_flight:
                self._fill(done)
                for future in done.next_batch(block=False):
                    outcome = self._outcome(future)
                    if outcome is not None:
                        yield outcome
                self._drain_events()
                yield from self._timeouts()
                workers = self._update_workers()
                if workers != n_workers and workers:
                    n_workers = workers
                    self.progress.set_workers(workers)
                self._check_alive(workers)
                self.progress.tick()
                if not done.has_ready():
                    time.sleep(0.1)
        finally:
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(self.topic)
            for future, _ in self.in_flight.values():
                future.cancel()

    def _fill(self, done: Any) -> None:
        """Send submissions until each worker thread has ``IN_FLIGHT_PER_THREAD``. The grade function
        travels with each task (a few kB): data scattered once would be lost with the last worker."""
        threads = sum(int(w.get("nthreads", 1)) for w in self._worker_info().values()) or 1
        resources = {"GPU": 1} if self.owner.gpu else None
        while self.pending and len(self.in_flight) < IN_FLIGHT_PER_THREAD * threads:
            sub = self.pending.pop()
            assert sub.notebook is not None
            # a worker is likely to get another one when at least one per thread follows this one
            more = len(self.pending) + len(self.in_flight) >= threads
            job = Job(sub, sub.notebook.name, sub.notebook.read_bytes(), self.topic, more)
            attempt = self.attempts.get(sub.id, 0)
            key = f"grade-{sub.id}-{self.token}" + (f"-again{attempt}" if attempt else "")
            future = self.client.submit(grade_remote, job, self.grade_fn, self.env, self.warm, self.fork, key=key, pure=False,
                                        resources=resources)
            self.in_flight[future.key] = (future, sub)
            done.add(future)

    def _outcome(self, future: Any) -> Outcome | None:
        self._drain_events()  # its "started" events count while it is still in flight
        entry = self.in_flight.pop(future.key, None)
        if entry is None:  # cancelled here after a timeout: already recorded
            return None
        sub = entry[1]
        start = self.started.pop(sub.id, None)
        seconds = time.monotonic() - start[0] if start else 0.0
        try:
            shipped: Shipped = future.result()
        except Exception as exc:  # noqa: BLE001 - KilledWorker, a lost scheduler: the submission gets an error result
            name = type(exc).__name__
            if name == "KilledWorker" and self._bystander(sub):
                self.attempts[sub.id] = self.attempts.get(sub.id, 0) + 1
                self.pending.append(sub)  # next to be sent, under a new key
                log.info("%s: was waiting on workers that another submission killed; sent again", sub.id)
                return None
            why = (f"the grading process died on every worker that tried it (it started {self.starts.get(sub.id, 0)} "
                   f"time(s), sent {self.attempts.get(sub.id, 0) + 1} time(s))" if name == "KilledWorker"
                   else f"Dask could not run it ({name}: {exc})")
            return Outcome(sub, harness_error_result(sub, f"the grading process died: {why}", kernel_status="died"), seconds)
        finally:
            future.release()
        self.owner.worker_names.add(shipped.worker)
        if shipped.result is None:
            result = harness_error_result(sub, f"the grader raised {shipped.error}")
            result = replace(result, notes=result.notes + (Note(kind="info", message=shipped.detail[-4000:]),))
            return Outcome(sub, result, shipped.seconds)
        self._write_files(sub, shipped)
        return Outcome(sub, result_from_json(shipped.result), shipped.seconds)

    def _bystander(self, sub: Submission) -> bool:
        """Whether a submission that Dask failed with ``KilledWorker`` gets another try. A worker holds
        a task or two beyond the one it runs, and when another submission kills that worker, the
        scheduler counts the death against every task the worker held, so an innocent submission can
        run out of allowed failures without having done anything. Every such submission is sent
        again once; one that had not even started twice is sent again up to ``MAX_ATTEMPTS`` times.
        A submission that kills its worker each time it runs still ends as an error, after twice the
        scheduler's allowed failures (a few worker restarts, against losing a student's grade)."""
        attempts = self.attempts.get(sub.id, 0)
        return attempts < 1 or (self.starts.get(sub.id, 0) < 2 and attempts < MAX_ATTEMPTS)

    def _write_files(self, sub: Submission, shipped: Shipped) -> None:
        folder = self.out_dir / sub.id
        folder.mkdir(parents=True, exist_ok=True)
        for rel, data in shipped.files:
            path = safe_relative(rel)
            if path is None:
                log.warning("%s: ignored a file the worker named %r (outside the submission's folder)", sub.id, rel)
                continue
            _write_bytes_atomic(folder / path, data)

    def _drain_events(self) -> None:
        while True:
            try:
                msg = self.events.get_nowait()
            except queue.Empty:
                return
            if not isinstance(msg, dict):
                continue
            sid = msg.get("submission")
            if msg.get("event") == "started" and any(s.id == sid for _, s in self.in_flight.values()):
                self.started[str(sid)] = (time.monotonic(), str(msg.get("worker", "")))
                self.starts[str(sid)] = self.starts.get(str(sid), 0) + 1
                self.progress.started(str(sid))

    def _timeouts(self) -> Iterator[Outcome]:
        limit = self.options.hard_timeout_s
        if limit is None:
            return
        now = time.monotonic()
        for key, (future, sub) in list(self.in_flight.items()):
            start = self.started.get(sub.id)
            if start is None or now - start[0] <= limit:
                continue
            del self.in_flight[key]
            self.started.pop(sub.id, None)
            future.cancel()
            self._restart(start[1])
            message = f"grading took longer than the batch limit of {limit:.0f} s and was stopped"
            yield Outcome(sub, harness_error_result(sub, message, kernel_status="deadline"), now - start[0])

    def _restart(self, worker: str) -> None:
        """Restart the worker stuck on a timed-out submission (its nanny ends the process and its kernel)."""
        if not worker:
            return
        try:
            self.client.restart_workers([worker], timeout=60, raise_for_error=False)
        except Exception as exc:  # noqa: BLE001 - a worker without a nanny: say so, go on
            log.warning("could not restart worker %s after a timeout (%s); it may stay busy", worker, exc)

    def _worker_info(self) -> dict[str, Any]:
        """The scheduler's worker table, asked at most once a second (it is a round trip)."""
        now = time.monotonic()
        if now - self.info_at >= 1.0:
            self.info, self.info_at = _workers(self.client), now
        return self.info

    def _update_workers(self) -> int:
        """The number of workers now; a start on a worker that has gone no longer counts for the hard
        timeout (its submission waits in the queue until it starts again, with a new event)."""
        info = self._worker_info()
        for sid, (_, worker) in list(self.started.items()):
            if worker and worker not in info:
                del self.started[sid]
        self.owner.workers = max(self.owner.workers, len(info))
        return len(info)

    def _check_alive(self, workers: int) -> None:
        """Fail the batch (resumable) when the cluster has had no worker for too long."""
        if workers:
            self.no_workers_since = None
            return
        now = time.monotonic()
        self.no_workers_since = self.no_workers_since or now
        if now - self.no_workers_since > self.owner.spec.wait_for_workers:
            left = len(self.pending) + len(self.in_flight)
            raise ClusterError(
                f"the cluster has had no worker for {self.owner.spec.wait_for_workers:.0f} s; {left} submission(s) not graded",
                hint="run the same command again when workers are back: graded submissions are kept and skipped",
            )


def _workers(client: Any) -> dict[str, Any]:
    """Every worker's entry (newer clients list only the first 5 unless asked for all)."""
    import inspect

    every = "n_workers" in inspect.signature(client.scheduler_info).parameters
    info = client.scheduler_info(n_workers=-1) if every else client.scheduler_info()
    workers: dict[str, Any] = info.get("workers", {})
    return workers


def _gpu_units(worker_info: dict[str, Any]) -> float:
    return float((worker_info.get("resources") or {}).get("GPU", 0))


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- the client ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def connect(spec: ClusterSpec, local_workers: int, *, gpu: bool = False) -> Iterator[Any]:
    """A ``distributed.Client`` for ``spec``; a cluster started here is closed on the way out."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # the dependency is declared; a broken install says so plainly
        raise ClusterError("--cluster needs dask.distributed, which is not importable here",
                           hint="pip install 'dask[distributed]' (scripts/setup.sh installs it)") from exc
    if spec.kind == "address":
        try:
            client = Client(spec.address, timeout=f"{spec.wait_for_workers}s")
        except OSError as exc:  # refused, unreachable, timed out
            raise ClusterError(f"cannot reach the Dask scheduler at {spec.address} ({exc})",
                               hint="is `dask scheduler` running there, and is the port open from this machine?") from None
        with client:
            yield client
        return
    if spec.kind == "local":
        n = local_workers
        resources = None
        if gpu:
            gpus = local_gpus()
            if not gpus:
                raise ClusterError("--gpu with --cluster local: this machine has no GPU (nvidia-smi finds none)")
            n, resources = min(n, gpus), {"GPU": 1}
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, resources=resources) as cluster, Client(cluster) as client:
            yield client
        return
    assert spec.jobqueue is not None
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        raise ClusterError(f"{spec.label}: a cluster file needs dask-jobqueue, which is not installed",
                           hint="pip install 'nbgrade-harness[cluster]' (or pip install dask-jobqueue)") from exc
    with SLURMCluster(**spec.jobqueue.jobqueue_kwargs()) as cluster:
        # adapt with minimum = maximum: Dask submits a new job when one ends (walltime, preemption)
        cluster.adapt(minimum_jobs=spec.jobqueue.jobs, maximum_jobs=spec.jobqueue.jobs)
        with Client(cluster) as client:
            yield client


def local_gpus() -> int:
    """GPUs this machine shows: ``CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi -L`` (no torch import)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))
