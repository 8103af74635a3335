"""A batch's prototype worker: what every pool worker would do before its first submission, done
once, and the workers forked from it.

Each spawned worker used to import the grading stack, draw a first set of probe inputs (which
imports torch and transformers and loads the pack's datasets: about 4 CPU-seconds) and start a
zygote of its own (``grader.kernel.forkserver``: 2.5 more), all before its first notebook, and on a
machine with as many workers as cores each of them on its own core. The prototype does it once:

- it starts **one zygote** for the batch's kernel setup, shared by every worker (each kernel is
  still forked, confined and pinned for the worker that asks: ``zygote._pin``), and while the
  zygote imports,
- it **warms the grade function** (``PipelineGrader.warm_up``: the rubric, the store, one set of
  probe inputs, thrown away);
- then it only forks: every worker is a copy of it that grades submissions as a spawned one does.

It is a ``multiprocessing`` fork server of the pool's own (not the module-wide one, so that its
environment and warm-up are this batch's): the standard library's ``forkserver.main`` imports this
module first (``_boot``, keyed by an environment variable set for that process alone) and then serves
fork requests; every worker is a ``multiprocessing`` process with its pid, sentinel and exit code.
Nothing of a submission reaches the prototype: it forks before any is handed out, and a worker
receives its submissions over its own pipe, as a spawned worker does.

Forking is only safe from a single thread: a prototype that has more after its warm-up exits, and the
pool spawns its workers instead (``pool._Pool._start``). A failed warm-up or zygote is logged; the workers then
do their own, as spawned ones do.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pickle
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.context import ForkServerProcess, set_spawning_popen
from pathlib import Path
from typing import Any

log = logging.getLogger("grader")
SPEC_VAR = "GRADER_POOL_PROTOTYPE"  # the spec file's path, in the prototype's environment only
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PrototypeSpec:
    grade_fn: Any  # has ``warm_up()`` and ``kernel_setup(work_root)`` (``grader.course.finish.PipelineGrader``)
    env: dict[str, str]  # what every worker adds to its environment (threads per kernel)
    work_root: Path  # the batch's scratch folder: every worker's kernels work below it
    fork_kernels: bool  # start the shared zygote


# --- in the prototype --------------------------------------------------------------------

_shared: tuple[Any, Any] | None = None  # (KernelSetup, ZygoteHandle) of the zygote this prototype started
_prototype_pid = 0


def shared_zygote() -> tuple[Any, Any] | None:
    """In a worker forked from a prototype: the setup of the batch's zygote and a handle to it (not
    owned: the prototype stops it), or None (no prototype, or it started no zygote)."""
    if _shared is None or os.getpid() == _prototype_pid:
        return None
    setup, handle = _shared
    return setup, handle.shared()


def _boot() -> None:
    """The prototype's work before it serves (run at import, in the prototype only)."""
    global _shared, _prototype_pid
    path = os.environ.pop(SPEC_VAR, None)
    if path is None:
        return
    _prototype_pid = os.getpid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the batch decides what an interrupt means (it stops us)
    try:
        with open(path, "rb") as fh:
            # the environment first: unpickling the grade function imports numpy, whose thread pool
            # is sized by the environment at that moment
            env, pythonpath, path_list = json.loads(fh.readline())
            sys.path[:] = [p for p in path_list if isinstance(p, str)] or sys.path  # the pool's, as a spawned worker gets
            if pythonpath is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = pythonpath
            os.environ.update(env)  # as every worker's (one thread per numeric library): the zygote's is its kernels'
            # pyarrow's jemalloc keeps a thread of its own unless told not to (forking needs one thread)
            os.environ.setdefault("JE_ARROW_MALLOC_CONF", "background_thread:false")
            spec: PrototypeSpec = pickle.load(fh)
    except Exception as exc:  # noqa: BLE001 - the workers then do their own warm-up
        log.warning("the batch's prototype could not read its spec (%s: %s)", type(exc).__name__, exc)
        return
    tempfile.tempdir = str(spec.work_root)
    t0 = time.monotonic()
    zygote = _start_zygote(spec) if spec.fork_kernels else None
    _no_monitor_threads()
    try:
        spec.grade_fn.warm_up()
    except Exception as exc:  # noqa: BLE001
        log.warning("warming up the batch's workers failed (%s: %s); each worker does its own", type(exc).__name__, exc)
    if zygote is not None:
        _shared = _zygote_ready(*zygote)
    log.debug("prototype ready in %.1f s", time.monotonic() - t0)
    if not _single_threaded():
        log.warning("the batch's prototype runs threads after its warm-up (%s); workers are spawned instead",
                    ", ".join(_thread_names()))
        if _shared is not None:
            _shared[1].stop()
        os._exit(3)


def _start_zygote(spec: PrototypeSpec) -> tuple[Any, Any] | None:
    from grader.kernel import forkserver as zygotes
    from grader.kernel.lifecycle import kernel_env

    try:
        setup = spec.grade_fn.kernel_setup(spec.work_root)
        if setup is None:  # the grade function starts no kernels of its own setup
            return None
        config = setup.config
        why = zygotes.usable(config.sandbox)
        if why is not None:
            log.info("kernels start fresh, not forked: %s", why)
            return None
        handle = zygotes.launch(config.sandbox, lambda w: kernel_env(setup.config_for(w), w),
                                config.python or sys.executable, config.preamble, config.imports, setup.work_root)
    except Exception as exc:  # noqa: BLE001 - each worker starts its own zygote instead
        log.warning("the batch's zygote did not start (%s: %s); each worker starts its own", type(exc).__name__, exc)
        return None
    return setup, handle


def _zygote_ready(setup: Any, handle: Any) -> tuple[Any, Any] | None:
    from grader.kernel import forkserver as zygotes

    try:
        zygotes.wait_ready(handle, setup.config.startup_timeout * 2)
    except Exception as exc:  # noqa: BLE001
        log.warning("the batch's zygote did not start (%s: %s); each worker starts its own", type(exc).__name__, exc)
        handle.stop()
        return None
    return setup, handle


def _no_monitor_threads() -> None:
    """tqdm watches its progress bars from a thread of its own, started with the first bar (datasets
    shows one while it loads): none here, where nothing looks at a bar."""
    try:
        import tqdm
    except ImportError:
        return
    tqdm.tqdm.monitor_interval = 0


def _thread_names() -> list[str]:
    try:
        return [Path(f"/proc/self/task/{t}/comm").read_text().strip() for t in os.listdir("/proc/self/task")]
    except OSError:
        return [t.name for t in threading.enumerate()]


def _single_threaded(wait_s: float = 2.0) -> bool:
    """One thread left (a helper thread that is ending gets ``wait_s``)."""
    deadline = time.monotonic() + wait_s
    while True:
        if len(_thread_names()) == 1:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


# --- in the pool ------------------------------------------------------------------------------------

_servers: dict[str, forkserver.ForkServer] = {}
_start_lock = threading.Lock()


class Prototype:
    """The pool's side: starts the prototype, makes its worker processes (``process``), stops it
    (``stop``)."""

    def __init__(self, spec: PrototypeSpec, scratch: Path) -> None:
        self.key = f"{os.getpid()}-{id(self)}"
        self.server = forkserver.ForkServer()
        self.server.set_forkserver_preload([__name__])
        spec_file = scratch / "prototype.spec"
        header = json.dumps([spec.env, os.environ.get("PYTHONPATH"), sys.path]).encode() + b"\n"
        fd = os.open(spec_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(header + pickle.dumps(spec))
        with _start_lock:  # the variables are the new process's: set around its start only
            saved = {k: os.environ.get(k) for k in (SPEC_VAR, "PYTHONPATH")}
            os.environ[SPEC_VAR] = str(spec_file)
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), saved["PYTHONPATH"]) if p)
            try:
                self.server.ensure_running()
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        _servers[self.key] = self.server

    def process(self, target: Callable[..., Any], args: tuple[Any, ...]) -> PrototypeProcess:
        proc = PrototypeProcess(target=target, args=args, daemon=True)
        proc._prototype_key = self.key
        return proc

    def stop(self, timeout: float = 5.0) -> None:
        """End the prototype (and with it the batch's zygote and any kernel still forked from it):
        it ends once the pool and every worker have let go of it, or is killed after ``timeout``."""
        _servers.pop(self.key, None)
        server: Any = self.server
        pid, alive, address = server._forkserver_pid, server._forkserver_alive_fd, server._forkserver_address
        server._forkserver_pid = server._forkserver_alive_fd = server._forkserver_address = None
        if pid is None:
            return
        os.close(alive)
        deadline = time.monotonic() + timeout
        try:
            while os.waitpid(pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.02)
        except (ChildProcessError, ProcessLookupError):
            pass
        if isinstance(address, str) and not util.is_abstract_socket_namespace(address):
            with contextlib.suppress(OSError):
                os.unlink(address)


class _Popen(popen_forkserver.Popen):
    """``popen_forkserver.Popen`` on a prototype's server rather than the module-wide one."""

    def _launch(self, process_obj: Any) -> None:
        server = _servers[process_obj._prototype_key]
        # popen_forkserver.Popen._launch (Python 3.11), with ``server`` for ``forkserver``
        prep_data = spawn.get_preparation_data(process_obj._name)
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        self.sentinel, w = server.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        _parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))  # type: ignore[attr-defined]
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class PrototypeProcess(ForkServerProcess):
    """A worker forked from a prototype (pickled into it by class name: module level)."""

    _prototype_key = ""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _Popen(process_obj)


_boot()
