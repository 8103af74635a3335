"""Kernels warmed ahead: while one submission runs, the kernel for the next one boots.

Starting a kernel (the sandbox, ipykernel, the grader's preamble) and the imports every notebook
begins with (the pack's ``kernel.imports``: torch, transformers) take seconds, the same for
every submission, and so does cleaning up after it. A pool worker (``grader.course.batch``) grades one
submission after another with the same setup, so it boots the next submission's kernel in the
background while the current one runs, and a finished kernel is killed at once and cleaned up in
the background: neither start-up nor shutdown is on a submission's critical path.

Isolation is what it is without warming:

- a kernel boots from a ``KernelSetup`` alone (no notebook, no id, no path of a submission), in its
  own fresh working folder and, sandboxed, under its own uid;
- ``take`` hands a kernel out once and keeps no reference to it; ``GradingKernel.claim`` refuses a
  second use, and a kernel that must be restarted mid-notebook is replaced by a fresh one;
- a kernel warmed for another setup (another rubric, other hidden paths) is discarded, never adapted,
  and so is one found dead: the submission then gets a kernel started for it.

Every kernel of the worker lives on one event loop in one thread: bubblewrap's
``--die-with-parent`` watches the thread that started the kernel, so that thread lives as long as
the worker, and the grading code hands its notebook to that loop (``run``).

Only a process that grades one submission at a time turns this on (``enable``): the local pool's
workers. Elsewhere ``current()`` is None and the pipeline starts and stops its kernel itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import shutil
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from grader.kernel import forkserver
from grader.kernel.forkserver import ZygoteHandle
from grader.kernel.lifecycle import GradingKernel, kernel_env
from grader.kernel.setup import KernelSetup

log = logging.getLogger("grader")
T = TypeVar("T")
MAX_ZYGOTES = 2  # a worker's own, per worker: a batch has one kernel setup; a zygote holds its imports in memory


class KernelWarmer:
    """One per worker process: the kernel booting for the next submission, and the loop that runs
    every kernel of the worker (``run``, ``later``)."""

    def __init__(self, fork: bool = False) -> None:
        self.fork = fork  # fork kernels from a zygote per setup (``grader.kernel.forkserver``)
        # per kernel setup (compared, not hashed: a setup holds mappings); None: its kernels start fresh
        self._zygotes: list[tuple[KernelSetup, ZygoteHandle | None]] = []
        self._zygote_lock: asyncio.Lock | None = None  # made on the loop
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="grader-kernels", daemon=True)
        self._thread.start()
        self._next: tuple[KernelSetup, concurrent.futures.Future[GradingKernel]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # boots and clean-ups (touched on the loop only)
        self.ahead = True  # boot a kernel for a next submission (False: the pool has none left to give)
        self.booted = 0  # kernels booted ahead, handed out or not (tests)

    def take(self, setup: KernelSetup) -> GradingKernel | None:
        """The kernel booted for ``setup`` (waiting for it to be ready), or None: none was booting (the
        worker's first submission), it was booted for another setup, or it failed or died. Either way
        the kernel for the next submission starts booting now, unless none is expected (``ahead``)."""
        t0 = time.monotonic()
        kernel = None
        if self._next is not None:
            booted_for, future = self._next
            self._next = None
            if booted_for == setup:
                kernel = self._ready(future)
            else:
                self._drop(future)
        if kernel is None and self.fork:
            # forked kernels: this one comes from the zygote too (the zygote's imports replace the
            # ones a fresh kernel would make, so nothing is gained by starting one fresh)
            kernel = self._ready(asyncio.run_coroutine_threadsafe(self._tracked(self._boot(setup)), self._loop))
        if self.ahead:
            self._next = (setup, asyncio.run_coroutine_threadsafe(self._tracked(self._boot(setup)), self._loop))
        if kernel is not None:
            kernel.seconds["kernel_wait"] = time.monotonic() - t0
        return kernel

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the kernels' loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def later(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` on the kernels' loop without waiting for it (a kernel's clean-up)."""
        asyncio.run_coroutine_threadsafe(self._tracked(_logged(coro)), self._loop)

    def remove_later(self, folder: Path) -> None:
        """Remove a working folder in the background (once its kernel is dead)."""
        self.later(asyncio.to_thread(shutil.rmtree, folder, True))

    def close(self, timeout: float = 10.0) -> None:
        """Discard the kernel booting ahead, wait for every clean-up, stop the loop."""
        if self._next is not None:
            self._drop(self._next[1])
            self._next = None
        try:
            self.run(asyncio.wait_for(self._drain(), timeout))
        except (TimeoutError, concurrent.futures.TimeoutError):
            log.warning("kernel clean-up did not finish within %.0f s", timeout)
        for _, zygote in self._zygotes:
            if zygote is not None:
                zygote.stop()
        self._zygotes.clear()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _ready(self, future: concurrent.futures.Future[GradingKernel]) -> GradingKernel | None:
        try:
            kernel = future.result()
        except Exception as exc:  # noqa: BLE001 - the submission starts its own kernel, which names the problem
            log.warning("a kernel booted ahead failed (%s: %s); starting one for this submission", type(exc).__name__, exc)
            return None
        if not self.run(kernel.km.is_alive()):  # died while waiting (killed from outside, out of memory)
            self.later(_discard(kernel))
            return None
        return kernel

    def _drop(self, future: concurrent.futures.Future[GradingKernel]) -> None:
        """Discard a kernel that will not be handed out: cancel its boot, or stop it once booted."""
        if not future.cancel():  # booted already (or failed): ``_boot`` cleans up after a cancel itself
            self.later(_discard_booted(future))

    async def _tracked(self, coro: Coroutine[Any, Any, T]) -> T:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            return await coro
        finally:
            self._tasks.discard(task)

    async def _drain(self) -> None:
        """Wait for every boot and clean-up (a cancelled boot cleans up after itself)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _zygote(self, setup: KernelSetup) -> ZygoteHandle | None:
        """The zygote of ``setup``: the batch's, when this worker was forked from the batch's prototype
        and ``setup`` fits it, or else one of this worker's own, started on first use (None: kernels of
        this setup start fresh)."""
        if self._zygote_lock is None:
            self._zygote_lock = asyncio.Lock()
        async with self._zygote_lock:
            known = next((i for i, (s, _) in enumerate(self._zygotes) if s == setup), None)
            if known is not None:
                zygote = self._zygotes[known][1]
                if zygote is None or zygote.alive():
                    return zygote
                log.warning("the zygote of this kernel setup died (exit code %s); kernels start fresh",
                            zygote.exit_code())
                zygote.stop()
                self._zygotes[known] = (setup, None)
                return None
            from grader.course.prototype import shared_zygote

            shared = shared_zygote()  # the batch's, when this worker was forked from its prototype
            if shared is not None and setup.forks_from(shared[0]):
                if shared[1].alive():
                    self._zygotes.append((setup, shared[1]))
                    return shared[1]
                log.warning("the batch's zygote is gone; this worker starts its own")
            why = forkserver.usable(setup.config.sandbox)
            if why is None and sum(z is not None and z.owned for _, z in self._zygotes) >= MAX_ZYGOTES:
                why = f"this worker runs {MAX_ZYGOTES} zygotes already (one per kernel setup)"
            if why is not None:
                log.info("kernels start fresh, not forked: %s", why)
                self._zygotes.append((setup, None))
                return None
            config = setup.config
            try:
                # launched on this loop's thread (which lives as long as the worker), waited for in another
                zygote = forkserver.launch(config.sandbox, lambda w: kernel_env(setup.config_for(w), w),
                                           config.python or sys.executable, config.preamble, config.imports,
                                           setup.work_root)
                await asyncio.to_thread(forkserver.wait_ready, zygote, config.startup_timeout * 2)
            except Exception as exc:  # noqa: BLE001 - fresh kernels still grade; the reason is logged
                log.warning("kernels start fresh, not forked: the zygote failed (%s: %s)", type(exc).__name__, exc)
                self._zygotes.append((setup, None))
                return None
            self._zygotes.append((setup, zygote))
            return zygote

    async def _boot(self, setup: KernelSetup) -> GradingKernel:
        zygote = await self._zygote(setup) if self.fork else None
        workdir = setup.new_workdir()  # a few folders and links: not worth a thread (nor a leak on cancel)
        try:
            kernel = GradingKernel(setup.config_for(workdir), workdir, zygote=zygote)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        try:
            await kernel.boot(setup.config.preamble)
        except BaseException:
            await _discard(kernel)
            raise
        self.booted += 1
        return kernel


async def _discard(kernel: GradingKernel) -> None:
    kernel.kill_now()
    await kernel.stop()
    await asyncio.to_thread(shutil.rmtree, kernel.workdir, True)


async def _discard_booted(future: concurrent.futures.Future[GradingKernel]) -> None:
    try:
        kernel = await asyncio.wrap_future(future)
    except BaseException:  # noqa: BLE001 - it failed to boot: it cleaned up after itself
        return
    await _discard(kernel)


async def _logged(coro: Coroutine[Any, Any, Any]) -> None:
    try:
        await coro
    except Exception as exc:  # noqa: BLE001 - a clean-up that fails must not take the loop down
        log.warning("kernel clean-up failed: %s: %s", type(exc).__name__, exc)


# --- the worker process's warmer ------------------------------------------------------------------

_enabled = False
_fork = False
_ahead = True
_warmer: KernelWarmer | None = None


def enable(fork: bool = False) -> None:
    """Warm kernels ahead in this process (a pool worker: one submission at a time); ``fork``: fork
    them from a zygote per kernel setup where the machine allows it (``grader.kernel.forkserver``)."""
    global _enabled, _fork
    _enabled = True
    _fork = fork


def current() -> KernelWarmer | None:
    """This process's warmer (made on first use), or None where warming is not enabled."""
    global _warmer
    if _enabled and _warmer is None:
        _warmer = KernelWarmer(fork=_fork)
        _warmer.ahead = _ahead
    return _warmer if _enabled else None


def expect_more(more: bool) -> None:
    """Whether the pool has submissions left for this worker after the one it hands over now: when
    it has none, booting a kernel ahead would only burn CPU the other workers' notebooks need."""
    global _ahead
    _ahead = more
    if _warmer is not None:
        _warmer.ahead = more


def shutdown() -> None:
    """Discard the kernel booting ahead, finish every clean-up and turn warming off (the worker is
    about to exit)."""
    global _enabled, _warmer
    _enabled = False
    if _warmer is not None:
        _warmer.close()
        _warmer = None
