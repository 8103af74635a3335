"""One grading kernel's life outside the notebook: launch, boot, hidden code, stop.

A kernel is booted before any cell of a notebook runs: started (sandboxed when the config says so),
the grader's preamble run in it (``ExecConfig.preamble``: the kernel runtime and the pack's shims),
then the modules the pack says every notebook imports first (``ExecConfig.imports``).
Booting is the same whether it happens on the critical path (``grader.steps.execute`` starts its own
kernel) or ahead of time (``grader.kernel.warm``): kernels are alike in both cases, so grades are too.

A ``GradingKernel`` serves exactly one submission: ``claim`` marks it taken and refuses a second
claim. Stopping has two halves, because only the first is on the critical path: ``kill_now`` stops
everything the notebook left running at once (the grader then reads the working folder with nothing
writing to it), ``stop`` waits for the processes, closes the channels and cleans up, and may run in
the background.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbclient.exceptions import DeadKernelError

if TYPE_CHECKING:
    from grader.steps.execute import ExecConfig


class KernelSetupError(RuntimeError):
    """The kernel started but the grader's own set-up code failed in it: a harness failure."""


class ZygoteDied(KernelSetupError):
    """The zygote a kernel was forked from died while the notebook ran, and took the kernel with it:
    the grader's failure, never the student's (``grader.kernel.forkserver``)."""


class KernelReused(RuntimeError):
    """A kernel was handed to a second submission: never allowed (isolation)."""


# What of the grader's own environment a kernel may see: nothing else (cloud credentials, tokens
# and the like stay outside). The sandbox applies its own, narrower list on top.
_INHERITED = ("PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "CUDA_HOME")
_INHERITED_PREFIXES = ("LC_", "OPENBLAS_", "NVIDIA_")
# ipykernel's history database: in memory, so that nothing of a notebook outlives its kernel
_EXTRA_ARGUMENTS = ["--HistoryManager.hist_file=:memory:"]


def kernel_env(config: ExecConfig, workdir: Path) -> dict[str, str]:
    """The kernel's whole environment (the sandbox narrows it further)."""
    env = {k: v for k, v in os.environ.items() if k in _INHERITED or k.startswith(_INHERITED_PREFIXES)}
    if config.sandbox is None and "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    env.update(config.env)
    env["GRADER_MAX_TRAIN_STEPS"] = str(config.max_train_steps)
    if config.torch_threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GRADER_TORCH_THREADS"):
            env[var] = str(config.torch_threads)
    env.setdefault("PYTHONHASHSEED", "0")
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    env["TQDM_DISABLE"] = "1"
    env["MPLBACKEND"] = "Agg"
    # the grader package must be importable in the kernel for the compat shims
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def imports_source(modules: tuple[str, ...]) -> str:
    """Code that imports ``modules`` in the kernel and binds no name the notebook could see; a module
    the kernel environment lacks is skipped (the notebook meets the same error in its own cell)."""
    return (
        "def __grader_imports():\n"
        "    import importlib\n"
        f"    for name in {list(modules)!r}:\n"
        "        try:\n"
        "            importlib.import_module(name)\n"
        "        except Exception:\n"
        "            pass\n"
        "__grader_imports()\n"
        "del __grader_imports\n"
    )


def _make_km(config: ExecConfig, workdir: Path, env: dict[str, str], zygote: Any = None
             ) -> tuple[Any, dict[str, bool], tuple[str, ...]]:
    if config.sandbox is not None:
        from grader.kernel.sandbox import make_kernel_manager

        km, report = make_kernel_manager(config.sandbox, workdir, env, kernel_name=config.kernel_name,
                                         python=config.python, zygote=zygote)
        return km, dict(report.layers), tuple(report.missing)
    from jupyter_client.manager import AsyncKernelManager

    plain: Any = AsyncKernelManager(kernel_name=config.kernel_name)
    if config.python is not None:
        from grader.kernel.sandbox import python_kernel_spec

        plain._kernel_spec = python_kernel_spec(config.python)
    return plain, {}, ("the sandbox was off (plain kernel)",)


class GradingKernel:
    """A kernel for one submission, in its own working folder (the kernel's cwd)."""

    def __init__(self, config: ExecConfig, workdir: Path, zygote: Any = None) -> None:
        """``zygote``: a ``forkserver.ZygoteHandle`` of this config's setup to fork the kernel from
        (the sandbox's layers are the same; the preamble and the imports are done already)."""
        self.config = config
        self.workdir = workdir
        self.env = kernel_env(config, workdir)
        self.km, self.layers, self.missing = _make_km(config, workdir, self.env, zygote)
        self._zygote = zygote
        self.kc: Any = None
        # kernel_start, preamble, imports; kernel_wait when it was warmed ahead (``grader.kernel.warm``)
        self.seconds: dict[str, float] = {}
        self._claimed = False

    def claim(self) -> None:
        """Mark the kernel as serving a submission; a second claim raises ``KernelReused``."""
        if self._claimed:
            raise KernelReused("a grading kernel serves exactly one submission")
        self._claimed = True

    @property
    def claimed(self) -> bool:
        return self._claimed

    @property
    def forked(self) -> bool:
        """Forked from a zygote, which ran the preamble and the imports before the fork."""
        return self._zygote is not None

    def check_zygote(self, kernel_status: str) -> None:
        """Raise ``ZygoteDied`` when the notebook's kernel did not end well and the zygote it was forked
        from is dead: its death ended the kernel (a kernel that died by itself leaves the zygote alive)."""
        if kernel_status != "ok" and self._zygote is not None and not self._zygote.alive():
            raise ZygoteDied(f"the process this kernel was forked from died while the notebook ran (exit code "
                             f"{self._zygote.exit_code()}): a grading failure, not the student's; grade it again")

    async def boot(self, preamble: str) -> None:
        """Start the kernel, connect, run the preamble, then the imports. The caller stops the kernel
        whatever happens (``stop``), also when this raises."""
        t0 = time.monotonic()
        await self.km.start_kernel(extra_arguments=list(_EXTRA_ARGUMENTS), cwd=str(self.workdir), env=self.env)
        self.kc = self.km.client()
        self.kc.start_channels()
        await self.kc.wait_for_ready(timeout=self.config.startup_timeout)
        self.kc.allow_stdin = False
        t1 = time.monotonic()
        if self.forked:  # the zygote ran both before the fork
            self.seconds.update(kernel_start=t1 - t0, preamble=0.0, imports=0.0)
            return
        failed, _ = await self.hidden(preamble, self.config.startup_timeout)
        if failed:  # without the shims and the training cap, no grade would mean anything
            raise KernelSetupError(f"the grading environment could not be set up in the kernel: {failed}")
        t2 = time.monotonic()
        if self.config.imports:
            failed, _ = await self.hidden(imports_source(self.config.imports), self.config.startup_timeout)
            if failed:  # only a timeout gets here (import errors are skipped): a machine that is far too busy
                raise KernelSetupError(f"the kernel could not import {', '.join(self.config.imports)}: {failed}")
        self.seconds.update(kernel_start=t1 - t0, preamble=t2 - t1, imports=time.monotonic() - t2)

    async def hidden(self, source: str, timeout: float) -> tuple[str, str]:
        """Run grader code in the kernel without touching the notebook; (error line, stdout)."""
        return await run_hidden(self.kc, self.km, source, timeout)

    def exit_code(self) -> int | None:
        with contextlib.suppress(Exception):
            proc = getattr(self.km.provisioner, "process", None)
            return proc.poll() if proc is not None else None
        return None

    @property
    def limit_exceeded(self) -> str | None:
        """Why the sandbox stopped the kernel itself (its disk quota); None if it did not."""
        return getattr(self.km, "limit_exceeded", None)

    def kill_now(self) -> None:
        """SIGKILL the kernel and all it started, without waiting: after this no code of the
        notebook runs, and ``stop`` (which may come later) finds nothing left to stop."""
        kill = getattr(self.km, "kill_now", None)
        if kill is not None:  # the sandbox's manager: its wrapper, PID namespace and uid
            kill()
            return
        process = getattr(self.km.provisioner, "process", None) if self.km.has_kernel else None
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # launch_kernel made the kernel a session leader
            with contextlib.suppress(Exception):
                process.kill()

    async def stop(self) -> None:
        """Shut down and clean up; nbclient does neither for a kernel it was handed. Safe on a
        kernel that never started or is dead already."""
        if self.config.sandbox is not None:
            from grader.kernel.sandbox import stop_kernel

            with contextlib.suppress(Exception):
                await stop_kernel(self.km, self.kc)
            return
        with contextlib.suppress(Exception):
            if self.kc is not None:
                self.kc.stop_channels()
        with contextlib.suppress(Exception):
            if self.km.has_kernel:
                await self.km.shutdown_kernel(now=True)
        with contextlib.suppress(Exception):
            await self.km.cleanup_resources()


async def run_hidden(kc: Any, km: Any, source: str, timeout: float) -> tuple[str, str]:
    """Run grader code in the kernel without touching the notebook (no history, no execution
    count); returns (first error line, stdout)."""
    assert kc is not None and km is not None
    stdout: list[str] = []
    error: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        kind = msg["msg_type"]
        if kind == "stream" and msg["content"].get("name") == "stdout" and sum(map(len, stdout)) < 2**20:
            stdout.append(msg["content"].get("text", ""))
        elif kind == "error":
            error.append(f"{msg['content'].get('ename')}: {msg['content'].get('evalue')}"[:500])

    try:
        await kc.execute_interactive(source, store_history=False, allow_stdin=False, timeout=timeout, output_hook=hook)
    except TimeoutError:
        with contextlib.suppress(Exception):
            await km.interrupt_kernel()
        return f"timed out after {timeout:.0f} s", "".join(stdout)
    except Exception as exc:  # a garbled message from a kernel in trouble: treat it as gone
        raise DeadKernelError(f"the kernel stopped answering properly ({type(exc).__name__})") from exc
    if not await kc.is_alive():
        raise DeadKernelError("Kernel died")
    return (error[0] if error else ""), "".join(stdout)
