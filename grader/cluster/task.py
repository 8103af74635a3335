"""What runs on a Dask worker: one submission in as bytes, its result and report files out as bytes.

No shared file system is assumed: the worker writes the notebook into a temp folder of its own,
grades it there with the very grade function the local pool uses, and ships back the result JSON
and every file the pipeline wrote (reports, ``grader.log``). The task writes nothing outside that
temp folder (a worker of one thread also boots its next kernel ahead, as the local pool's workers
do: a kernel that has seen no submission), so Dask may run it again after a worker died mid-task
(it does): the client keeps the first completed copy and nothing is written twice.

Every temporary folder of a worker process (job folders, its kernels' folders) lies in one folder
named after the host and the process, ``grader-dask-worker-<host>-<pid>``; a worker's first job
removes such folders of processes on its host that are gone (a worker killed mid-task), so a node's
``/tmp`` does not fill up with the folders of dead workers.

The worker also tells the client when a submission starts (a Dask event), so that the progress
bar's "running" and the batch's hard timeout count from the real start, not from the submission.
"""

from __future__ import annotations

import functools
import multiprocessing.util
import os
import shutil
import socket
import tempfile
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from grader.course.finish import finish_result
from grader.course.moodle import Submission
from grader.course.outputs import rerender_reports
from grader.course.pool import GradeFn, sweep_dead
from grader.safety.escape import install_safe_logging

# what a worker ships back at most per submission: reports are small; a runaway log is not sent whole
MAX_FILE_BYTES = 32 * 2**20


@dataclass(frozen=True)
class Job:
    """One submission as data. ``submission`` keeps the client's paths, for the result's ``source``."""

    submission: Submission
    notebook_name: str
    notebook: bytes
    topic: str  # the batch's event topic on the scheduler
    more: bool = True  # more submissions are likely to follow on this worker: worth booting a kernel ahead


@dataclass(frozen=True)
class Shipped:
    """What comes back: the result (``None`` if the grade function raised) and the files to write."""

    submission_id: str
    result: dict[str, Any] | None
    files: tuple[tuple[str, bytes], ...]
    seconds: float
    worker: str
    error: str = ""
    detail: str = ""


def grade_remote(job: Job, grade_fn: GradeFn, env: dict[str, str], warm_kernels: bool = False,
                 fork_kernels: bool = False) -> Shipped:
    """Grade ``job`` in a private temp folder; the Dask task body (must stay idempotent)."""
    t0 = time.monotonic()
    worker = _announce(job.topic, job.submission.id)
    os.environ.update(env)  # as the local pool's workers do: the numeric libraries' thread caps
    install_safe_logging()  # as the pool's workers do: log lines carry student text, made terminal-safe
    _worker_tmp()
    root = _job_folder(warm_kernels, job.more, fork_kernels)
    try:
        notebook = root / "in" / job.notebook_name
        notebook.parent.mkdir()
        notebook.write_bytes(job.notebook)
        out = root / "out" / job.submission.id  # the folder name is the submission id the pipeline uses
        out.mkdir(parents=True)
        try:
            raw = grade_fn(notebook, out)
            if raw.source == str(notebook):  # say where the client has it, not this temp path
                raw = replace(raw, source=str(job.submission.notebook or ""))
            result = finish_result(raw, replace(job.submission, notebook=notebook))  # the client writes result.json
            if result.notes != raw.notes or result.team != raw.team:
                rerender_reports(result, out)  # the report names the submission's problems too
        except Exception as exc:  # a harness bug: reported like the local pool does, the worker lives on
            return Shipped(job.submission.id, None, (), time.monotonic() - t0, worker,
                           error=f"{type(exc).__name__}: {exc}", detail="".join(traceback.format_exception(exc)))
        return Shipped(job.submission.id, result.to_json(), _files(out), time.monotonic() - t0, worker)
    finally:
        shutil.rmtree(root, ignore_errors=True)


WORKER_TMP_PREFIX = "grader-dask-worker-"


def sweep_dead_workers(base: Path, host: str | None = None) -> list[Path]:
    """Remove the temporary folders of this host's worker processes that are gone; returns them.
    (The name ends in the pid alone: another host's tag may end in ``-<digits>`` too.)"""
    return sweep_dead(base, f"{WORKER_TMP_PREFIX}{host or _host_tag()}-", random_suffix=False)


def _host_tag() -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in socket.gethostname())[:64] or "host"


@functools.cache
def _worker_tmp() -> Path:
    """This worker process's temporary folder (set as its ``TMPDIR``); dead workers' folders go first."""
    base = Path(tempfile.gettempdir())
    sweep_dead_workers(base)
    mine = base / f"{WORKER_TMP_PREFIX}{_host_tag()}-{os.getpid()}"
    shutil.rmtree(mine, ignore_errors=True)
    mine.mkdir()
    os.chmod(mine, 0o755)  # kernels running as another user reach their folders below
    os.environ["TMPDIR"] = str(mine)
    tempfile.tempdir = str(mine)
    # removed when the worker process ends normally (multiprocessing runs these at a child's exit,
    # atexit at the main process's)
    multiprocessing.util.Finalize(None, shutil.rmtree, args=(mine, True), exitpriority=0)
    return mine


def _job_folder(warm_kernels: bool, more: bool, fork_kernels: bool = False) -> Path:
    """An empty folder for one job.

    A worker of one thread grades one submission at a time, like a process of the local pool: it
    warms kernels ahead the same way (``grader.kernel.warm``), and its jobs reuse one folder, emptied each
    time, because a kernel is booted for a setup that names the folder it hides (the submission's)
    and a new folder per job would throw every warmed kernel away. Elsewhere each job gets a folder
    of its own (several run at once).
    """
    if not (warm_kernels and _single_threaded() and _warm_enabled(fork_kernels)):
        return Path(tempfile.mkdtemp(prefix="grader-dask-"))
    from grader.kernel import warm
    if hasattr(warm, "expect_more"):  # as the pool does: no kernel booted for a submission that will not come
        warm.expect_more(more)
    root = Path(tempfile.gettempdir()) / f"grader-dask-{os.getpid()}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(mode=0o700)
    return root


def _single_threaded() -> bool:
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads) == 1
    except (ImportError, ValueError, AttributeError):
        return False


@functools.cache
def _warm_enabled(fork: bool = False) -> bool:
    """Turn kernel warming on in this worker process (kernels forked from a zygote with ``fork``, as
    the local pool's), once; False where the grader has none.

    The worker's close ends the kernel booted for a submission that never came: a teardown hook,
    because at interpreter exit (atexit) the threads that clean-up needs are already gone."""
    try:
        from distributed import get_worker

        from grader.kernel import warm
    except ImportError:
        return False
    get_worker().plugins.setdefault("grader-warm-kernels", _WarmShutdown())
    warm.enable(fork=fork)
    return True


class _WarmShutdown(WorkerPlugin):
    """``Worker.close`` calls ``teardown`` on each plugin of the worker."""

    async def teardown(self, worker: Any) -> None:
        import asyncio

        from grader.kernel import warm
        await asyncio.to_thread(warm.shutdown)


def _files(folder: Path) -> tuple[tuple[str, bytes], ...]:
    """Every file the pipeline wrote but result.json (the client writes that one, with manual scores)."""
    out: list[tuple[str, bytes]] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == "result.json":
            continue
        data = path.read_bytes()
        if len(data) > MAX_FILE_BYTES:
            data = data[:MAX_FILE_BYTES] + b"\n[cut by the grader: file over 32 MiB]\n"
        out.append((rel, data))
    return tuple(out)


def _announce(topic: str, sid: str) -> str:
    """Log a "started" event for the client; the worker's address (or host name outside Dask)."""
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        return socket.gethostname()
    w.log_event(topic, {"event": "started", "submission": sid, "worker": w.address})
    return str(w.address)


def safe_relative(rel: str) -> PurePosixPath | None:
    """``rel`` as a path inside the submission's folder, or ``None`` if it would leave it."""
    p = PurePosixPath(rel)
    if p.is_absolute() or not p.parts or any(part in ("..", "") for part in p.parts):
        return None
    return p


# --- checking a worker before the batch -----------------------------------------------------------------


def worker_report(rubric: str | None, kernel_env: str | None = None) -> dict[str, Any]:
    """What the client checks on every worker before sending work: the same grader and rubric, a store,
    the kernel environment built. Runs on the worker (``Client.run``); returns plain data, never raises.
    """
    import grader

    info: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid(), "grader": grader.__version__,
                            "store": "", "store_path": "", "rubric_hash": "", "rubric_error": "", "kernel_env": "ok"}
    try:
        from grader.kernel.envs import interpreter
        from grader.pack.rubric import load_rubric

        settings = getattr(load_rubric(rubric), "kernel", None)
        if settings is not None:  # None: a grader whose kernels run on the worker's own Python
            interpreter(settings.env(kernel_env))
    except ImportError:
        pass  # the same, an older grader
    except Exception as exc:  # noqa: BLE001 - EnvMissing names the command that builds it
        info["kernel_env"] = str(exc) or type(exc).__name__
    try:
        from grader.kernel.store import check_store, store_root

        root = store_root()
        info["store_path"] = str(root)
        check_store(root)
        info["store"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        info["store"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        from grader.pack.rubric import load_rubric

        info["rubric_hash"] = load_rubric(rubric).fingerprint(kernel_env)
    except Exception as exc:  # noqa: BLE001
        info["rubric_error"] = f"{type(exc).__name__}: {exc}"
    return info
