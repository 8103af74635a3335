"""Kernels forked from a zygote, seen from the grader: start a zygote for a kernel setup, plan the
kernels forked from it, stop it.

The zygote (``grader.kernel.zygote``, which says how a forked kernel is confined) starts under
bubblewrap with the layout of a kernel of its setup (``sandbox._bwrap_args``: the same read-only
file system, hidden paths, network namespace and GPU devices), with two folders writable: the work
root, where the kernels' working folders are made, and its own folder (``ZygoteHandle.root``)::

    root/ctl/zygote.sock   the socket the proxies connect to (root only; covered in every kernel)
    root/k/<8 chars>/      each forked kernel's runtime folder (connection file, ipc sockets, HOME);
                           short, because a socket's path has at most 107 bytes
    root/template/         the folders whose paths the zygote's environment names

A kernel forked from it is a ``SandboxedKernelManager`` like any other: jupyter_client launches its
command, which is ``PROXY`` (a few lines of Python, no imports beyond the standard library): the
proxy asks the zygote for the kernel, waits, and exits with the kernel's exit status. Killing the
proxy kills the kernel (the zygote sees the connection close); killing every process of the
kernel's ephemeral uid, which the grader does after every notebook, kills it too.

Needs what a complete sandbox needs (Linux, bubblewrap, root for the ephemeral uids); ``usable``
says whether this machine has it. Anything else (the warmer's choice) starts kernels fresh.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grader.kernel import zygote as _zygote
from grader.kernel.sandbox import (
    EPHEMERAL_USER,
    SandboxPolicy,
    _bwrap_args,
    _exposed_paths,
    _kernel_env,
    _Plan,
    kill_process_tree,
    probe_capabilities,
)

log = logging.getLogger("grader")
REPO_ROOT = Path(__file__).resolve().parents[2]

# jupyter_client's "kernel": ``python -I -S -c PROXY SOCKET REQUEST -- <kernel argv>``. Sends the request
# (with its own environment and the kernel's arguments), waits for the zygote's "exit N", exits N.
PROXY = """\
import json, os, socket, sys
a = sys.argv[1:]
cut = a.index("--")
req = json.loads(a[1])
argv = a[cut + 1:]
req["args"] = argv[argv.index("ipykernel_launcher") + 1:] if "ipykernel_launcher" in argv else argv[1:]
req["env"] = dict(os.environ)
req["cores"] = sorted(os.sched_getaffinity(0))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(a[0])
s.sendall(json.dumps(req).encode() + b"\\n")
got = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    got += chunk
code = 1
for line in got.decode(errors="replace").splitlines():
    if line.startswith("exit "):
        code = int(line.split()[1])
    elif line.startswith("error "):
        sys.stderr.write("zygote: " + line[6:] + "\\n")
sys.exit(code if code >= 0 else 128 - code)
"""


MAX_SOCKET_PATH = 100  # sun_path holds 107 bytes and a NUL


class ZygoteError(RuntimeError):
    """The zygote could not be started (the warmer then starts kernels fresh)."""


def usable(policy: SandboxPolicy | None) -> str | None:
    """None when kernels of ``policy`` can be forked here; otherwise why not, in words."""
    if policy is None or not policy.enabled:
        return "the sandbox is off"
    caps = probe_capabilities()
    if not caps["bwrap"]:
        return "bubblewrap cannot create namespaces here"
    if not caps["root"]:
        return "forked kernels need root (each runs under its own ephemeral uid)"
    if policy.run_as_user != EPHEMERAL_USER:
        return f"forked kernels run under ephemeral uids (run_as_user={policy.run_as_user!r})"
    if policy.network:
        return "the policy allows network"
    if policy.gpus:  # an import that touches CUDA (an availability check) makes CUDA unusable after fork
        return "kernels with GPUs start fresh (CUDA cannot be initialized again in a forked process)"
    return None


@dataclass
class ZygoteHandle:
    root: Path
    process: subprocess.Popen[bytes]
    policy: SandboxPolicy
    work_root: Path
    env: dict[str, str]  # the zygote's environment: every forked kernel's, but for ``zygote.OWN_VARIABLES``
    threads: list[str]  # the zygote's threads when it was ready (only ``python``: forking is safe)
    # False in a pool worker using the zygote its batch's prototype started and stops
    # (``grader.course.prototype``): the worker neither waits for it nor stops it
    owned: bool = True

    @property
    def socket(self) -> Path:
        return self.root / "ctl" / "zygote.sock"

    @property
    def kernels(self) -> Path:
        return self.root / "k"

    def covers(self) -> list[str]:
        """What every forked kernel covers: the other kernels' working and runtime folders."""
        return [str(self.work_root), str(self.root)]

    def alive(self) -> bool:
        if self.owned:
            return self.process.poll() is None
        return _running(self.process.pid)

    def exit_code(self) -> int | None:
        """The zygote's exit code, once it ended (None while it runs, or when another process started it)."""
        return self.process.poll() if self.owned else None

    def shared(self) -> ZygoteHandle:
        """This handle as a process that did not start the zygote sees it (``owned`` False)."""
        return replace(self, owned=False)

    def stop(self) -> None:
        """Kill the zygote (and with it every kernel still forked from it) and remove its folder;
        nothing for a zygote another process started (that process stops it)."""
        if not self.owned:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        kill_process_tree(self.process.pid)
        with contextlib.suppress(Exception):
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def kernel_environment(env: dict[str, str], runtime: Path, workdir: Path) -> dict[str, str]:
    """A forked kernel's environment: the sandbox's (``_kernel_env``), with HOME and the datasets
    scratch folder at the zygote's fixed paths (libraries read them once, at import, in the zygote)."""
    out = _kernel_env(env, runtime, private_tmp=True)
    swaps = sorted(((str(runtime / "home"), _zygote.FIXED_HOME),
                    (str((workdir / ".hf-scratch").resolve()), _zygote.FIXED_SCRATCH)), key=lambda s: -len(s[0]))
    for key, value in out.items():
        for real, fixed in swaps:
            if value == real or value.startswith(real + "/"):
                out[key] = fixed + value[len(real):]
                break
    return out


def launch(policy: SandboxPolicy, env_for: Any, python: str, preamble: str, imports: tuple[str, ...],
           work_root: Path) -> ZygoteHandle:
    """Start a zygote (quick: ``wait_ready`` waits for its imports). Call it in the thread that
    will outlive it: bubblewrap's ``--die-with-parent`` watches that thread.

    ``env_for(workdir)`` is the kernel environment of a kernel working in ``workdir`` (before the
    sandbox's additions): it is called once, for the zygote's template folder.
    """
    why = usable(policy)
    if why:
        raise ZygoteError(why)
    work_root.mkdir(parents=True, exist_ok=True)
    work_root = Path(os.path.realpath(work_root))
    root = Path(tempfile.mkdtemp(prefix="zyg-"))
    try:
        longest = root / "k" / "12345678" / "ipc-9999"  # a kernel's ipc socket (runtime folders: mkdtemp, 8 chars)
        if len(str(longest)) > MAX_SOCKET_PATH:
            raise ZygoteError(f"the temporary folder's path is too long for a kernel's sockets ({longest})")
        os.chmod(root, 0o755)
        (root / "ctl").mkdir(mode=0o700)
        (root / "k").mkdir(mode=0o755)
        template_work = root / "template" / "work"
        template_run = root / "template" / "run"
        template_work.mkdir(parents=True)
        template_run.mkdir(parents=True)
        env = kernel_environment(dict(env_for(template_work)), template_run, template_work)
        exposed = _exposed_paths(policy, env, python)
        covered = [p for p in exposed if p == work_root or work_root in p.parents]
        if covered:  # every forked kernel covers the work root: it would not see these
            raise ZygoteError(f"the work root {work_root} holds what every kernel needs ({covered[0]})")
        (root / "ctl" / "setup.json").write_text(json.dumps({"preamble": preamble, "imports": list(imports)}))
        caps = probe_capabilities()
        blank = root / "blank"
        blank.touch(mode=0)
        os.chmod(blank, 0)
        # the zygote's layout is a kernel's, with the work root and its own folder writable; it stays
        # root with its capabilities (it makes each kernel's namespaces), and never runs a cell
        plan = _Plan(workdir=work_root, runtime=root, uid=0)
        argv = _bwrap_args(policy, caps, plan, exposed, blank)
        argv += [python, "-m", "grader.kernel.zygote", str(root / "ctl")]
        process = subprocess.Popen(argv, env=env, cwd=str(work_root), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, start_new_session=True)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return ZygoteHandle(root, process, policy, work_root, env, threads=[])


def wait_ready(handle: ZygoteHandle, timeout: float = 120.0) -> ZygoteHandle:
    """Wait (blocking) until the zygote has run the preamble and the imports and listens."""
    line = _read_line(handle.process, timeout)
    try:
        ready = json.loads(line)
        handle.threads = [str(t) for t in ready["threads"]]
    except (ValueError, KeyError, TypeError):
        try:
            tail = (handle.root / "ctl" / "prepare.log").read_text(errors="replace")[-1500:]
        except OSError:
            tail = ""
        handle.stop()
        raise ZygoteError(f"the zygote did not start (exit code {handle.process.poll()}): {line[:200]!r} {tail}") from None
    if len(handle.threads) != 1:
        log.debug("zygote has threads after its imports: %s", ", ".join(handle.threads))
    return handle


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    got: list[bytes] = []

    def read() -> None:
        assert process.stdout is not None
        got.append(process.stdout.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return got[0].decode(errors="replace") if got else ""


def request(handle: ZygoteHandle, workdir: Path, runtime: Path, uid: int, gid: int) -> dict[str, Any]:
    """What the proxy sends for one kernel (it adds the kernel's arguments and environment)."""
    policy = handle.policy
    return {
        "workdir": str(workdir), "runtime": str(runtime), "home": str(runtime / "home"),
        "scratch": str((workdir / ".hf-scratch").resolve()), "covers": handle.covers(),
        "tmp_bytes": policy.tmp_bytes, "uid": uid, "gid": gid,
        "limits": {"memory": policy.memory_bytes, "cpu": policy.cpu_seconds, "nproc": policy.max_processes,
                   "fsize": policy.max_file_bytes, "data_only": bool(policy.gpus)},
    }
