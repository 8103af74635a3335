"""Grade a batch of submissions in parallel, record every run in the gradebook, show progress.

The pool is a few long-lived worker processes, each grading one submission at a time with
``grade_fn(notebook, out_dir)``. Long-lived, because starting a Python process that imports the
grading stack costs about as much as a small notebook's own run. When the grade function says how to
warm up (``PipelineGrader``), the workers are forked from a prototype that did it once and started
the batch's one zygote (``grader.course.prototype``; ``BatchOptions.fork_workers``); otherwise, or
where forking would not be safe, they are spawned. Each worker leads its own
process group, so a worker that hangs past the hard timeout is killed together with its kernel, and
a worker that dies (segfault, OOM killer) only costs the submission it held: that submission gets an
error result, a fresh worker takes its place, and the batch goes on. Workers also die with the batch:
``kill -9`` of the batch leaves no orphan kernels.

Kernels in parallel only pay off when each one is held to its share of the cores (the field notes
measured 2 kernels on 2 cores gaining nothing until ``OMP_NUM_THREADS=1``), hence ``kernel_env``.
Each worker boots the kernel of its next submission while it grades the current one, and cleans up
after a kernel in the background (``grader.kernel.warm``; ``BatchOptions.warm_kernels``).

When the workers' kernels fit the cores, worker ``i`` and everything it starts (its kernels, warmed
or not) are pinned to cores ``i*t .. i*t+t-1`` of the batch's CPU set (``t`` threads per kernel), so
two kernels never share a core's caches or migrate between cores (``BatchOptions.pin_kernels``).
Each worker keeps its temporary folders (kernel work folders, connection files) in a folder of its
own, removed by the batch when the worker ends or is killed: a worker killed at the hard timeout
leaves nothing behind in ``/tmp``. Submissions are handed out largest notebook first, so the batch
does not end waiting for one long notebook started last.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import shutil
import signal
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grader.course.finish import finish_result, harness_error_result
from grader.course.moodle import Submission
from grader.course.outputs import rerender_reports
from grader.course.progress import Progress
from grader.safety.escape import install_safe_logging
from grader.steps.results import GradeResult, Note, result_from_json

GradeFn = Callable[[Path, Path], GradeResult]
log = logging.getLogger("grader")

# Environment variables that bound the threads of the numeric libraries a kernel loads.
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "RAYON_NUM_THREADS",
)


@dataclass(frozen=True)
class BatchOptions:
    workers: int = 0  # 0: sized to the machine (see default_workers)
    threads_per_kernel: int = 1
    force: bool = False  # re-grade submissions that have a completed run for the same content and rubric
    hard_timeout_s: float | None = 3600.0  # backstop per submission, beyond the pipeline's own limits
    memory_per_kernel_gib: float = 3.0  # field notes: a tiny Trainer run needs 2 GiB; allow 3
    warm_kernels: bool = True  # each worker boots its next kernel while grading (grader.kernel.warm)
    # ... forked from a zygote that has imported the libraries once (grader.kernel.forkserver), where
    # the machine allows it (bubblewrap and root); only with warm_kernels
    fork_kernels: bool = True
    pin_kernels: bool = True  # each worker (and its kernels) on cores of its own, when they fit
    # workers forked from a prototype that warmed the grade function and started the batch's one zygote
    # (grader.course.prototype), when the grade function says how (``warm_up``, ``kernel_setup``)
    fork_workers: bool = True


@dataclass(frozen=True)
class Outcome:
    submission: Submission
    result: GradeResult
    seconds: float
    skipped: bool = False


def available_cpus() -> int:
    """CPUs this process may use: affinity mask, then a cgroup v2 CPU quota if one is set."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def available_memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_workers(threads_per_kernel: int = 1, memory_per_kernel_gib: float = 3.0) -> int:
    """One kernel per ``threads_per_kernel`` cores, fewer if memory would not hold them."""
    workers = max(1, available_cpus() // max(1, threads_per_kernel))
    mem = available_memory_gib()
    if mem is not None and memory_per_kernel_gib > 0:
        workers = min(workers, max(1, int(mem // memory_per_kernel_gib)))
    return workers


def kernel_env(threads_per_kernel: int) -> dict[str, str]:
    """Environment for every kernel of the batch: numeric libraries limited to their share of cores.

    torch sizes its intra-op pool from ``OMP_NUM_THREADS``; tokenizers' Rust pool from ``RAYON_NUM_THREADS``.
    """
    n = str(max(1, threads_per_kernel))
    env = dict.fromkeys(_THREAD_VARS, n)
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


def core_slots(workers: int, threads_per_kernel: int) -> list[tuple[int, ...]] | None:
    """The cores of each worker, or None when the workers' kernels do not fit the CPU set."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    t = max(1, threads_per_kernel)
    if workers * t > len(cpus) or workers < 1:
        return None
    return [tuple(cpus[i * t:(i + 1) * t]) for i in range(workers)]


def _worker_main(
    conn: multiprocessing.connection.Connection,
    grade_fn: GradeFn,
    env: dict[str, str],
    warm_kernels: bool = False,
    cores: tuple[int, ...] | None = None,
    scratch: str | None = None,
    fork_kernels: bool = False,
) -> None:
    os.setpgrp()  # our own process group: the batch can kill us together with our kernel
    install_safe_logging()  # the worker's log lines reach the instructor's terminal too
    os.environ.update(env)
    if cores:
        os.sched_setaffinity(0, cores)  # inherited by every kernel this worker starts
    if scratch:
        os.environ["TMPDIR"] = scratch  # this worker's temporary folders; the batch removes them
        tempfile.tempdir = scratch
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the batch decides what an interrupt means
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_die_with_parent, args=(parent.sentinel,), daemon=True).start()
    if warm_kernels:
        from grader.kernel import warm

        warm.enable(fork=fork_kernels)  # one submission at a time here: the next one's kernel boots while this one runs
    try:
        _serve(conn, grade_fn)
    finally:
        if warm_kernels:
            warm.shutdown()  # the kernel booted for a submission that never came, and every clean-up


def _serve(conn: multiprocessing.connection.Connection, grade_fn: GradeFn) -> None:
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        sub, out_dir, more = job
        if more is not None:
            from grader.kernel import warm

            warm.expect_more(more)  # no kernel is booted ahead for a next submission that will not come
        t0 = time.monotonic()
        try:
            assert sub.notebook is not None
            raw = grade_fn(sub.notebook, out_dir)
            result = finish_result(raw, sub)  # result.json: written once, by the parent (``_record``)
            if result.notes != raw.notes or result.team != raw.team:
                rerender_reports(result, out_dir)  # the report names the submission's problems too
            conn.send(("ok", result.to_json(), time.monotonic() - t0))
        except BaseException as exc:  # a harness bug: report it, keep the worker
            detail = "".join(traceback.format_exception(exc))
            conn.send(("raised", f"{type(exc).__name__}: {exc}", detail, time.monotonic() - t0))


def _die_with_parent(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os.killpg(os.getpgrp(), signal.SIGKILL)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    slot: int = 0
    scratch: Path | None = None
    job: Submission | None = None
    out_dir: Path | None = None
    started: float = 0.0


BATCH_TMP_PREFIX = "grader-batch-"


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs (or belongs to another user: not ours to judge)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead(base: Path, prefix: str, random_suffix: bool) -> list[Path]:
    """Remove the folders ``<prefix><pid>`` (``<prefix><pid>-<random>`` with ``random_suffix``) under
    ``base`` whose process is gone: a process killed with -9 cannot remove its own. Returns them."""
    removed = []
    for old in base.glob(f"{prefix}*"):
        rest = old.name[len(prefix):]
        pid = rest.split("-", 1)[0] if random_suffix else rest
        if not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old)
    return removed


class _Pool:
    def __init__(self, size: int, grade_fn: GradeFn, env: dict[str, str], warm_kernels: bool = False,
                 slots: list[tuple[int, ...]] | None = None, fork_kernels: bool = False,
                 fork_workers: bool = False) -> None:
        self.ctx = multiprocessing.get_context("spawn")
        self.grade_fn = grade_fn
        self.env = env
        self.warm_kernels = warm_kernels
        self.fork_kernels = fork_kernels
        self.slots = slots
        sweep_dead(Path(tempfile.gettempdir()), BATCH_TMP_PREFIX, random_suffix=True)
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{BATCH_TMP_PREFIX}{os.getpid()}-"))
        os.chmod(self.scratch, 0o755)  # kernels running as another user reach their folders below
        self.prototype: Any = None
        if fork_workers and callable(getattr(grade_fn, "warm_up", None)) and callable(getattr(grade_fn, "kernel_setup", None)):
            from grader.course.prototype import Prototype, PrototypeSpec

            try:  # its zygote's kernels are forked for workers whose work roots lie below ``scratch``
                self.prototype = Prototype(PrototypeSpec(grade_fn, env, self.scratch, warm_kernels and fork_kernels),
                                           self.scratch)
            except Exception as exc:  # noqa: BLE001 - spawned workers grade all the same
                log.warning("the batch's prototype worker did not start (%s: %s); workers start as fresh processes",
                            type(exc).__name__, exc)
        self.workers = [self._start(i) for i in range(size)]

    def _start(self, slot: int) -> _Worker:
        scratch = Path(tempfile.mkdtemp(prefix=f"worker-{slot}-", dir=self.scratch))
        os.chmod(scratch, 0o755)
        cores = self.slots[slot] if self.slots else None
        args = (self.grade_fn, self.env, self.warm_kernels, cores, str(scratch), self.fork_kernels)
        if self.prototype is not None:
            parent, child = self.ctx.Pipe()
            proc: multiprocessing.process.BaseProcess = self.prototype.process(_worker_main, (child, *args))
            try:
                proc.start()  # the first waits for the prototype's warm-up
            except (OSError, EOFError) as exc:  # it exited (threads after its warm-up) or died
                log.warning("the batch's prototype worker is gone (%s: %s); workers start as fresh processes",
                            type(exc).__name__, exc)
                parent.close()
                child.close()
                self.prototype.stop()
                self.prototype = None
            else:
                child.close()
                return _Worker(process=proc, conn=parent, slot=slot, scratch=scratch)
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, args=(child, *args), daemon=True)
        proc.start()
        child.close()
        return _Worker(process=proc, conn=parent, slot=slot, scratch=scratch)

    def replace(self, w: _Worker) -> None:
        self.kill(w)
        self.workers[self.workers.index(w)] = self._start(w.slot)

    @staticmethod
    def kill(w: _Worker) -> None:
        """Kill the worker's process group (the worker and any kernel it left behind, even if it
        died) and remove its temporary folders."""
        if w.process.pid is not None:
            try:
                os.killpg(w.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                if w.process.exitcode is None:
                    w.process.kill()
        w.process.join(timeout=5)
        w.conn.close()
        if w.scratch is not None:
            shutil.rmtree(w.scratch, ignore_errors=True)

    def shutdown(self) -> None:
        for w in self.workers:
            if w.job is None and w.process.exitcode is None:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for w in self.workers:
            w.process.join(timeout=max(0.1, deadline - time.monotonic()))
            self.kill(w)  # also whatever a finished worker left in its process group
        if self.prototype is not None:
            self.prototype.stop()  # and with it the batch's zygote
        shutil.rmtree(self.scratch, ignore_errors=True)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def check_picklable(grade_fn: GradeFn) -> None:
    try:
        pickle.dumps(grade_fn)
    except Exception as exc:
        raise TypeError(
            f"the grade function must be picklable (a module-level function or a partial of one): {exc}"
        ) from exc


def grade_all(
    todo: list[Submission],
    out_dir: Path,
    grade_fn: GradeFn,
    workers: int,
    options: BatchOptions,
    progress: Progress,
) -> Any:
    """Yield an ``Outcome`` per submission as each finishes (in the order they finish)."""
    pending: deque[Submission] = deque(longest_first(todo))
    slots = core_slots(workers, options.threads_per_kernel) if options.pin_kernels else None
    pool = _Pool(workers, grade_fn, kernel_env(options.threads_per_kernel), options.warm_kernels, slots,
                 options.fork_kernels, options.fork_workers)
    try:
        while pending or any(w.job is not None for w in pool.workers):
            for w in pool.workers:
                if w.job is None and pending and w.process.exitcode is None:
                    sub = pending.popleft()
                    w.job, w.out_dir, w.started = sub, out_dir / sub.id, time.monotonic()
                    w.out_dir.mkdir(parents=True, exist_ok=True)
                    w.conn.send((sub, w.out_dir, bool(pending) if options.warm_kernels else None))
                    progress.started(sub.id)
            busy = [w for w in pool.workers if w.job is not None]
            waitables: list[Any] = [w.conn for w in busy if not w.conn.closed] + [
                w.process.sentinel for w in busy
            ]
            multiprocessing.connection.wait(waitables, timeout=0.5)
            now = time.monotonic()
            for w in list(pool.workers):
                outcome = _collect(w, now, options)
                if outcome is not None:
                    yield outcome
                if w.job is None and pending and (w.process.exitcode is not None or w.conn.closed):
                    pool.replace(w)  # it died (or was killed) with a submission: a fresh one takes over
            progress.tick()
    finally:
        pool.shutdown()


def longest_first(todo: list[Submission]) -> list[Submission]:
    """Largest notebook first (a stable sort: equal sizes keep their order), so that the batch does
    not end with one worker grading a long notebook while the others wait."""
    def size(sub: Submission) -> int:
        try:
            return sub.notebook.stat().st_size if sub.notebook is not None else 0
        except OSError:
            return 0
    return sorted(todo, key=size, reverse=True)


def _collect(w: _Worker, now: float, options: BatchOptions) -> Outcome | None:
    """The outcome ``w`` has for us now, if any: a message, a death, or a timeout."""
    sub = w.job
    if sub is None:
        return None
    seconds = now - w.started
    message: Any = None
    if not w.conn.closed and w.conn.poll():
        try:
            message = w.conn.recv()
        except (EOFError, OSError):
            message = None
    if message is not None:
        w.job = None
        if message[0] == "ok":
            return Outcome(sub, result_from_json(message[1]), float(message[2]))
        result = harness_error_result(sub, f"the grader raised {message[1]}")
        result = replace(result, notes=result.notes + (Note(kind="info", message=message[2][-4000:]),))
        return Outcome(sub, result, float(message[3]))
    if w.process.exitcode is not None:
        w.job = None
        w.process.join(timeout=1)
        why = _describe_exit(w.process.exitcode)
        hint = " (out of memory?)" if w.process.exitcode == -signal.SIGKILL else ""
        return Outcome(
            sub,
            harness_error_result(sub, f"the grading process died: {why}{hint}", kernel_status="died"),
            seconds,
        )
    if options.hard_timeout_s is not None and seconds > options.hard_timeout_s:
        w.job = None
        _Pool.kill(w)
        message_text = (
            f"grading took longer than the batch limit of {options.hard_timeout_s:.0f} s and was stopped"
        )
        return Outcome(sub, harness_error_result(sub, message_text, kernel_status="deadline"), seconds)
    return None
