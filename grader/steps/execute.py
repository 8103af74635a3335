"""Execute: run a notebook top to bottom in a fresh (sandboxed) kernel, probing as it goes.

The probes of a subtask run right after that subtask's last code cell, so every check sees the
objects as they stood at the end of their own subtask, although a notebook reuses names
(``training_args``, ``trainer``, ``model``, ``t5``) and changes objects in place from one subtask to
the next. A probe whose object did not exist yet at its subtask's end (a definition in a later cell)
is tried once more after the last cell, and marked as such.

Every code cell gets an outcome (ok / error with its last traceback line / timeout / not_run).
Errors do not stop the notebook. A cell that kills the kernel is recorded, the kernel is started
again and the notebook replayed without that cell, so later subtasks can still be graded. The
whole run has a deadline; output beyond a size cap is dropped and named.

Inside the kernel, before the first cell, ``ExecConfig.preamble`` loads the grader's kernel runtime
and the rubric pack's shims (``grader.kernel.runtime``; Assignment 3's map course-era APIs onto
current ones, stand in for the GPU and the Hub, and cap training steps).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from grader.kernel.lifecycle import GradingKernel, KernelSetupError, kernel_env, run_hidden
from grader.kernel.runtime import DRIFT_PROBE
from grader.kernel.runtime import preamble as runtime_preamble
from grader.safety.untrusted import Refused, parse_json
from grader.steps.artifacts import resolve_tensors
from grader.steps.probe import ProbeCall, ProbeOutcome, ProbeRequest, build_cell, new_token, read_results
from grader.steps.results import CellOutcome, KernelStatus

# Probes by the subtask after whose last cell they run; "" runs after the notebook's last cell.
ProbePlan = Mapping[str, ProbeRequest]

MAX_RESTARTS = 2



MAX_DRIFT_CHARS = 256 * 1024  # the drift record read back from the kernel, at most
MAX_DRIFT_ENTRIES = 100

@dataclass(frozen=True)
class ExecConfig:
    cell_timeout: float = 300.0
    deadline: float = 1800.0
    max_train_steps: int = 2
    torch_threads: int | None = 1
    max_output_bytes: int = 8 * 2**20
    env: Mapping[str, str] = field(default_factory=dict)
    sandbox: Any = None  # grader.kernel.sandbox.SandboxPolicy; None means a plain kernel
    kernel_name: str = "python3"
    python: str | None = None  # the kernel environment's interpreter (None: the grader's own)
    startup_timeout: float = 60.0
    # imported in the kernel after the preamble, before the first cell: what every notebook imports
    # first, so that a kernel warmed ahead (grader.kernel.warm) has it done off the critical path
    imports: tuple[str, ...] = ()
    # run in the kernel before anything else: the kernel runtime and the pack's shims
    # (``Rubric.kernel_preamble``); the default loads the runtime alone
    preamble: str = field(default_factory=lambda: runtime_preamble(()))


@dataclass(frozen=True)
class Execution:
    cells: tuple[CellOutcome, ...]
    kernel_status: KernelStatus
    kernel_message: str
    probes: dict[str, ProbeOutcome]  # by subtask, as ``ProbePlan``
    drift: dict[str, str]
    sandbox_layers: dict[str, bool]
    sandbox_missing: tuple[str, ...]
    restarts: int
    output_truncated: bool
    seconds: dict[str, float]


class _Client(NotebookClient):
    """nbclient with an output budget: output past the cap is dropped and the cell interrupted."""

    def __init__(self, *args: Any, max_output_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._budget = max_output_bytes
        self._spent = 0
        self.output_truncated = False
        self.truncated_cells: set[int] = set()

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int) -> NotebookNode | None:
        if msg.get("msg_type") == "error":  # small, and how a cell's failure is known: always kept
            return super().output(outs, msg, display_id, cell_index)
        size = len(json.dumps(msg.get("content", {}), default=str))
        self._spent += size
        if self._spent > self._budget:
            if not self.output_truncated:  # only the cell that crossed the cap is interrupted
                self.output_truncated = True
                self.truncated_cells.add(cell_index)
                if self.km is not None:
                    with contextlib.suppress(Exception):
                        asyncio.ensure_future(self._interrupt())
            return None  # later output is dropped, later cells run as usual
        return super().output(outs, msg, display_id, cell_index)

    async def _interrupt(self) -> None:
        km: Any = self.km
        await km.interrupt_kernel()


def _last_error(cell: NotebookNode) -> str:
    for out in reversed(cell.get("outputs", [])):
        if out.get("output_type") == "error":
            return f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".strip()[:500]
    return ""


# Kept under its old name: the environment a grading kernel gets (benchmarks build the same one).
_kernel_env = kernel_env

# Schedules a coroutine to run later on the running loop (``grader.kernel.warm``): the kernel's clean-up.
Later = Callable[[Coroutine[Any, Any, Any]], None]


def _classify_death(code: int | None, last_errors: list[str]) -> tuple[KernelStatus, str]:
    text = " ".join(last_errors)
    if "CUDA" in text or "cuda" in text:
        return "cuda", "the kernel died after a CUDA error"
    if code in (-9, 137):
        return "died", "the kernel was killed (SIGKILL): it may have run out of memory or killed itself"
    if code in (-24, 152):
        return "timeout", "the kernel used up its CPU-time limit"
    return "died", f"the kernel died (exit code {code})" if code is not None else "the kernel died"


async def execute_notebook(
    nb: NotebookNode,
    workdir: Path,
    config: ExecConfig,
    probes: ProbePlan | ProbeRequest | None,
    subtask_of: list[str | None] | None = None,
    kernel: GradingKernel | None = None,
    later: Later | None = None,
) -> Execution:
    """Run ``nb`` in ``workdir`` (which becomes the kernel's cwd), and the probes of each subtask in
    the same kernel right after that subtask's last code cell (see the module docstring).

    ``kernel``: one booted ahead for exactly this ``workdir`` and ``config`` (``grader.kernel.warm``); it
    is claimed, so it can serve no other notebook. Without one, a kernel is started here. A kernel
    that must be started again (the notebook killed it) is always started here. ``later``: where the
    kernel's clean-up goes once it is killed, so that no submission waits for it (without it, the
    clean-up is awaited)."""
    plan: dict[str, ProbeRequest] = {"": probes} if isinstance(probes, ProbeRequest) else dict(probes or {})
    workdir.mkdir(parents=True, exist_ok=True)
    if kernel is not None:
        if kernel.workdir != workdir or kernel.config != config:
            raise ValueError("the kernel handed over was booted for another working folder or configuration")
        kernel.claim()
    outcomes: dict[int, CellOutcome] = {}
    skip: set[int] = set()
    kernel_status: KernelStatus = "ok"
    kernel_message = ""
    restarts = 0
    started = time.monotonic()
    deadline = started + config.deadline
    probe_outcomes: dict[str, ProbeOutcome] = {}
    drift: dict[str, str] = {}
    layers: dict[str, bool] = {}
    missing: tuple[str, ...] = ()
    truncated = False
    timings = {"kernel_start": 0.0, "preamble": 0.0, "imports": 0.0, "cells": 0.0, "probe": 0.0, "shutdown": 0.0}

    def sub(i: int) -> str | None:
        return subtask_of[i] if subtask_of and i < len(subtask_of) else None

    def last_cells() -> dict[str, int]:
        """The last code cell of each probed subtask that will run in this kernel session."""
        found: dict[str, int] = {}
        for j, c in enumerate(nb.cells):
            s = sub(j)
            if c.cell_type == "code" and j not in skip and s in plan and s:
                found[s] = j
        return found

    async def probe(client: _Client, subtask: str, names: tuple[str, ...] | None = None) -> ProbeOutcome:
        request = plan[subtask] if names is None else replace(plan[subtask], names=names)
        counts = {int(c["execution_count"]): sub(j) for j, c in enumerate(nb.cells)
                  if c.cell_type == "code" and c.get("execution_count") and sub(j)}
        # the probes may outlast the notebook's deadline, but not by more than a minute
        bounded = replace(request, timeout=min(request.timeout, max(60.0, deadline - time.monotonic() + 60.0)))
        p0 = time.monotonic()
        try:
            return await _run_probe(client, bounded, workdir, counts)
        finally:
            timings["probe"] += time.monotonic() - p0

    while True:
        if kernel is None:
            k = GradingKernel(config, workdir)
            k.claim()
        else:
            k, kernel = kernel, None  # handed over once: a restart gets a fresh kernel
        layers, missing = k.layers, k.missing
        probed: set[str] = set()
        last_of = last_cells()
        client = _Client(
            nb,
            km=k.km,
            timeout=int(config.cell_timeout),
            startup_timeout=int(config.startup_timeout),
            allow_errors=True,
            interrupt_on_timeout=True,
            error_on_timeout={"ename": "CellTimeoutError", "evalue": f"the cell ran longer than {config.cell_timeout:.0f} s and was interrupted"},
            record_timing=False,
            kernel_name=config.kernel_name,
            resources={"metadata": {"path": str(workdir)}},
            max_output_bytes=config.max_output_bytes,
        )
        died_at: int | None = None
        hung_at: int | None = None
        faulted_at: int | None = None
        try:
            if k.kc is None:
                await k.boot(config.preamble)
            for step, secs in k.seconds.items():
                timings[step] = timings.get(step, 0.0) + secs
            client.kc = k.kc
            async with client.async_setup_kernel():  # a started kernel and its client: only nbclient's hooks
                t_cells = time.monotonic()
                for i, cell in enumerate(nb.cells):
                    if cell.cell_type != "code" or i in skip:
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 1:
                        kernel_status, kernel_message = "deadline", f"the notebook ran past its {config.deadline:.0f} s deadline; later cells did not run"
                        break
                    client.timeout = int(max(1, min(config.cell_timeout, remaining)))
                    c0 = time.monotonic()
                    try:
                        await client.async_execute_cell(cell, i)
                    except DeadKernelError:
                        died_at = i
                        break
                    except CellTimeoutError:
                        outcomes[i] = CellOutcome(i, "timeout", sub(i), "the cell timed out and could not be interrupted", time.monotonic() - c0)
                        died_at = i
                        break
                    except Exception as exc:  # noqa: BLE001 - a garbled or missing kernel message
                        outcomes[i] = CellOutcome(i, "error", sub(i), f"the kernel stopped answering properly ({type(exc).__name__}); it was restarted without this cell", time.monotonic() - c0)
                        faulted_at = died_at = i
                        break
                    secs = time.monotonic() - c0
                    crowd = _task_count(client, config)
                    if crowd is not None:
                        outcomes[i] = CellOutcome(i, "error", sub(i), f"the cell left {crowd} processes and threads running (limit {config.sandbox.max_processes}); the kernel was restarted without it", secs)
                        faulted_at = died_at = i
                        break
                    if _last_error(cell).startswith("MemoryError"):
                        # IPython keeps the failed cell's traceback, and with it what filled the memory
                        with contextlib.suppress(Exception):
                            await _run_hidden(client, _FREE_MEMORY, 30)
                    err = _last_error(cell)
                    if i in outcomes and restarts:
                        continue  # keep the outcome of the first run of this cell
                    # nbclient interrupts a cell at its timeout; the error output may be missing (a
                    # loop that ignores SIGINT), so the elapsed time is what tells
                    if secs >= client.timeout or (err.startswith(("CellTimeoutError", "KeyboardInterrupt")) and secs >= client.timeout * 0.9):
                        outcomes[i] = CellOutcome(i, "timeout", sub(i), f"the cell ran longer than {client.timeout} s and was interrupted", secs)
                        if not await _responsive(client):
                            outcomes[i] = CellOutcome(i, "timeout", sub(i), f"the cell ran longer than {client.timeout} s and ignored the interrupt; the kernel was restarted without it", secs)
                            hung_at = i
                            died_at = i
                            break
                    elif i in client.truncated_cells:
                        outcomes[i] = CellOutcome(i, "error", sub(i), f"the cell printed more than {config.max_output_bytes // 2**20} MiB; output was cut and the cell interrupted", secs)
                    elif err:
                        outcomes[i] = CellOutcome(i, "error", sub(i), err, secs)
                    else:
                        outcomes[i] = CellOutcome(i, "ok", sub(i), "", secs)
                    s_i = sub(i)
                    if s_i and last_of.get(s_i) == i:
                        t_p = time.monotonic()
                        probe_outcomes[s_i] = await probe(client, s_i)
                        probed.add(s_i)
                        t_cells += time.monotonic() - t_p  # probe time is counted as such, not as cells
                timings["cells"] += time.monotonic() - t_cells
                truncated = truncated or client.output_truncated
                if died_at is None:
                    with contextlib.suppress(Exception):
                        _, stdout = await _run_hidden(client, DRIFT_PROBE, 30)
                        # the kernel's own account of the shims that acted: untrusted, so bounded
                        # (depth, entries, length) and shown as notes only, never scored
                        loaded = parse_json(stdout.strip().splitlines()[-1][:MAX_DRIFT_CHARS], max_depth=4,
                                            what="the kernel's drift record")
                        if isinstance(loaded, dict):
                            drift = {str(k)[:200]: str(v)[:500] for k, v in list(loaded.items())[:MAX_DRIFT_ENTRIES]}
                    for s_name in plan:  # subtasks without code cells (or none ran), and "" (after the notebook)
                        if s_name not in probed:
                            probe_outcomes[s_name] = await probe(client, s_name)
                            probed.add(s_name)
                    for s_name, outcome in list(probe_outcomes.items()):
                        late = tuple(n for n, c in outcome.calls.items() if not c.ok and _not_defined(c.error))
                        if late and s_name:
                            again = await probe(client, s_name, late)
                            probe_outcomes[s_name] = _merge_late(outcome, again)
        except DeadKernelError:
            died_at = died_at if died_at is not None else -1
        except KernelSetupError:
            raise  # the harness's failure, not the student's: the pipeline's boundary names it
        except (RuntimeError, TimeoutError) as exc:
            if died_at is None:
                kernel_status, kernel_message = "died", f"the kernel could not be started: {exc}"
                break
        finally:
            exit_code = k.exit_code()
            limit = k.limit_exceeded  # the sandbox stopped the kernel itself (disk quota)
            t_stop = time.monotonic()
            if later is None:
                await k.stop()
            else:  # nothing of the notebook runs on once this returns; the clean-up needs no waiting for
                k.kill_now()
                later(k.stop())
            timings["shutdown"] += time.monotonic() - t_stop
        if died_at is None:
            break
        status: KernelStatus
        if limit:
            status, message = "disk", str(limit)
        elif hung_at is not None:
            status, message = "timeout", f"cell {hung_at + 1} ran past its time limit and could not be interrupted"
        elif faulted_at is not None:
            status, message = "died", outcomes[faulted_at].error.split(";")[0].replace("the cell", f"cell {faulted_at + 1}")
        else:
            status, message = _classify_death(exit_code, [o.error for o in outcomes.values()])
        if died_at >= 0:
            prev = outcomes.get(died_at)
            if prev is None or (prev.status != "timeout" and faulted_at is None):
                outcomes[died_at] = CellOutcome(died_at, "error", sub(died_at), message, 0.0)
            skip.add(died_at)
        kernel_status, kernel_message = status, message
        if restarts >= MAX_RESTARTS or time.monotonic() > deadline - 5 or died_at < 0:
            break
        restarts += 1
        kernel_message += f"; the notebook was run again without cell {died_at + 1}"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and i not in outcomes and cell.source.strip():
            outcomes[i] = CellOutcome(i, "not_run", sub(i))
    for o in outcomes.values():
        if o.status == "error" and o.error.startswith("MemoryError") and kernel_status == "ok":
            kernel_status, kernel_message = "memory", f"cell {o.index + 1} ran out of memory (MemoryError)"
    if truncated and kernel_status == "ok":
        kernel_status, kernel_message = "output_limit", f"the notebook printed more than {config.max_output_bytes // 2**20} MiB; the rest was dropped"
    return Execution(
        cells=tuple(outcomes[i] for i in sorted(outcomes)),
        kernel_status=kernel_status,
        kernel_message=kernel_message,
        probes=probe_outcomes,
        drift=drift,
        sandbox_layers=layers,
        sandbox_missing=missing,
        restarts=restarts,
        output_truncated=truncated,
        seconds={k: round(v, 3) for k, v in timings.items()},
    )


async def _run_hidden(client: _Client, source: str, timeout: float) -> tuple[str, str]:
    """Run grader code in the notebook's kernel without touching the notebook; (error line, stdout)."""
    return await run_hidden(client.kc, client.km, source, timeout)


_FREE_MEMORY = (
    "import sys as __s, gc as __g\n"
    "__s.last_traceback = __s.last_value = __s.last_type = None\n"
    "getattr(__s, 'last_exc', None) is not None and setattr(__s, 'last_exc', None)\n"
    "__g.collect()\ndel __s, __g\n"
)


def _task_count(client: _Client, config: ExecConfig) -> int | None:
    """The kernel's processes + threads when they crowd its process cap (a fork bomb), else None."""
    uid = getattr(client.km, "kernel_uid", None)
    if config.sandbox is None or not isinstance(uid, int) or uid == 0:
        return None
    from grader.kernel.sandbox import count_user_tasks

    n = count_user_tasks(uid)
    return n if n >= 0.8 * config.sandbox.max_processes else None


async def _responsive(client: _Client, grace: float = 10.0) -> bool:
    """After an interrupted cell: does the kernel answer again? (A loop that ignores SIGINT doesn't.)"""
    try:
        err, _ = await _run_hidden(client, "pass", grace)
    except DeadKernelError:
        return False
    return not err.startswith("timed out")


def _not_defined(error: str) -> bool:
    return error.startswith("NameError") or "is not defined" in error


def _merge_late(first: ProbeOutcome, again: ProbeOutcome) -> ProbeOutcome:
    """Probes that failed for a missing name at their subtask's end and worked after the last cell."""
    calls = dict(first.calls)
    for name, call in again.calls.items():
        if call.ok:
            calls[name] = replace(call, late=True)
    return ProbeOutcome(calls, error=first.error)


async def _run_probe(client: _Client, request: ProbeRequest, workdir: Path, cell_subtasks: dict[int, str | None]) -> ProbeOutcome:
    token = new_token()
    out_path = workdir / f".grader-probe-{token}.json"
    artifacts = workdir / f".grader-artifacts-{token}"
    subtasks = {k: v for k, v in cell_subtasks.items() if v}
    try:
        try:
            err, _ = await _run_hidden(client, build_cell(request, out_path, token, subtasks, artifacts), request.timeout)
        except DeadKernelError:
            return ProbeOutcome({}, error="the kernel died while probing")
        outcome = read_results(out_path, token, request.names)
        if outcome.error and err:
            return ProbeOutcome({}, error=f"{outcome.error} ({err})")
        return ProbeOutcome({n: _with_tensors(c, artifacts) for n, c in outcome.calls.items()}, error=outcome.error)
    finally:
        with contextlib.suppress(OSError):
            out_path.unlink()
        shutil.rmtree(artifacts, ignore_errors=True)


def _with_tensors(call: ProbeCall, folder: Path) -> ProbeCall:
    if not call.ok:
        return call
    try:
        return replace(call, value=resolve_tensors(call.value, folder))
    except (Refused, OSError) as exc:
        return ProbeCall(call.name, ok=False, error=f"the probe's tensors could not be read: {exc}"[:500], seconds=call.seconds)


class Runner(Protocol):
    """Where kernels live when they outlast one notebook (``grader.kernel.warm.KernelWarmer``)."""

    def run(self, coro: Coroutine[Any, Any, Execution]) -> Execution: ...

    def later(self, coro: Coroutine[Any, Any, Any]) -> None: ...


def run(nb: NotebookNode, workdir: Path, config: ExecConfig, probe: ProbePlan | ProbeRequest | None = None,
        subtask_of: list[str | None] | None = None, kernel: GradingKernel | None = None,
        runner: Runner | None = None) -> Execution:
    """Synchronous wrapper: on ``runner``'s loop, where ``kernel`` (booted ahead) lives and the
    kernel's clean-up goes on after this returns; else on a fresh event loop, clean-up included."""
    if runner is not None:
        return runner.run(execute_notebook(nb, workdir, config, probe, subtask_of, kernel, runner.later))
    if kernel is not None:
        raise ValueError("a kernel booted ahead lives on its runner's loop: pass the runner too")
    if sys.platform != "win32":
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    return asyncio.run(execute_notebook(nb, workdir, config, probe, subtask_of))
