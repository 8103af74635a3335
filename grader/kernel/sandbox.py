"""Run the student's Jupyter kernel confined, on Linux, without Docker.

The kernel is untrusted code with the grader's privileges unless something stops it. This module
wraps the kernelspec's argv so that the kernel starts inside, from the outside in:

1. bubblewrap (``bwrap``): own network namespace (loopback only, so the kernel talks to the grader
   over ``ipc`` sockets in a runtime folder both sides see), own PID namespace (``--die-with-parent``:
   killing bwrap kills every process the notebook started), a read-only view of ``/``, a private
   ``/tmp``, the workdir bound writable, and every ``hide_paths`` entry covered by an unreadable
   empty file or folder. Without bwrap, as root, ``unshare`` still gives the network and PID
   namespaces, but not the file-system layers.
2. A tiny Python shim that sets rlimits (address space, CPU seconds, process count, file size),
   drops to an unprivileged uid, sets no_new_privs, then execs the kernel.

Use: ``km, report = make_kernel_manager(policy, workdir, env)``, run ``NotebookClient(nb, km=km)``,
then always ``await stop_kernel(km)``: it kills whatever the notebook left running.

RLIMIT_NPROC counts every process of a *real uid* on the host and does not apply to root, so the
default user is ``"auto"``: a fresh uid per kernel (no /etc/passwd entry needed). Then the cap is
this kernel's alone, and "every process of that uid" is an exact list of what to kill afterwards.

Whatever cannot be had on the machine is switched off and named in ``SandboxReport.missing``; the
caller decides whether a missing layer is acceptable.
"""

from __future__ import annotations

import asyncio
import functools
import grp
import json
import logging
import os
import pwd
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.client import KernelClient
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager

from grader.kernel.diskquota import DiskWatch

log = logging.getLogger(__name__)

EPHEMERAL_USER = "auto"
"""``run_as_user`` value meaning: a fresh, otherwise unused uid for each kernel."""

_EPHEMERAL_UIDS = range(2_100_000_000, 2_101_000_000)
# Only the grader's locale and search path reach the kernel; secrets in the grader's environment
# (tokens, credentials) do not. Everything else comes from the caller's ``env``.
_INHERITED_ENV = ("PATH", "LANG", "LANGUAGE", "TZ")

LAYERS = ("rlimits", "network_namespace", "pid_namespace", "readonly_fs", "hidden_paths", "unprivileged_user")


@dataclass(frozen=True)
class SandboxPolicy:
    enabled: bool = True
    memory_bytes: int = 4 * 2**30  # RLIMIT_AS; torch + transformers + a tiny Trainer need 3-4 GiB
    # GPU device files bound into the sandbox (``gpu_devices()``; a rubric with ``limits: {gpu: true}``).
    # With any, the memory cap is RLIMIT_DATA instead of RLIMIT_AS: CUDA reserves far more address
    # space (PROT_NONE, counted by RLIMIT_AS only) than it ever uses.
    gpus: tuple[Path, ...] = ()
    cpu_seconds: int = 600  # RLIMIT_CPU, per process (SIGXCPU, SIGKILL 5 s later)
    max_processes: int = 256  # RLIMIT_NPROC: processes *and threads* of the kernel's uid
    max_file_bytes: int = 512 * 2**20  # RLIMIT_FSIZE
    max_output_bytes: int = 8 * 2**20  # read by the executor, which enforces it
    tmp_bytes: int = 2**30  # size of the private /tmp (a tmpfs: it is memory)
    # growth of the workdir and the kernel's runtime folder (HOME) past which the kernel is stopped
    # (grader.kernel.diskquota; 0: no quota); an honest run of the course's solution writes about 9 MiB
    disk_bytes: int = 2**30
    max_files: int = 100_000  # files and folders the kernel may create there
    network: bool = False  # False: own network namespace, loopback only
    hide_paths: tuple[Path, ...] = ()
    # folders the kernel must read although they may sit where the sandbox shows nothing (under /tmp,
    # /root): the grader package the kernel imports its shims from, say
    expose_paths: tuple[Path, ...] = ()  # unreadable inside: references, rubrics, other submissions
    readonly_root: bool = True
    run_as_user: str | None = EPHEMERAL_USER  # "auto", a user name, a numeric uid, or None (stay)


@dataclass(frozen=True)
class SandboxReport:
    layers: dict[str, bool]
    missing: tuple[str, ...]  # one sentence per protection that is off, and why
    notes: tuple[str, ...] = ()  # things that may break the notebook (unreadable store files, ...)

    @property
    def complete(self) -> bool:
        return all(self.layers.values())


class SandboxError(RuntimeError):
    """The sandbox cannot be set up as asked (bad user name, workdir the kernel cannot reach)."""


# --------------------------------------------------------------------------- capabilities


def _runs(argv: list[str]) -> bool:
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@functools.cache
def _probe() -> tuple[tuple[str, bool], ...]:
    linux = sys.platform.startswith("linux")
    root = linux and os.geteuid() == 0
    bwrap = shutil.which("bwrap")
    unshare = shutil.which("unshare")
    bwrap_ok = bool(linux and bwrap) and _runs(
        [bwrap or "bwrap", "--unshare-net", "--unshare-pid", "--die-with-parent", "--ro-bind", "/", "/",
         "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--", "/bin/true"]
    )
    unshare_ok = bool(root and unshare) and _runs(
        [unshare or "unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--", "/bin/true"]
    )
    size_ok = bwrap_ok and "--size" in subprocess.run(
        [bwrap or "bwrap", "--help"], capture_output=True, text=True, check=False
    ).stdout
    return (
        ("linux", linux),
        ("root", root),
        ("bwrap", bwrap_ok),
        ("bwrap_tmpfs_size", size_ok),
        ("unshare", unshare_ok),
        ("prlimit", bool(shutil.which("prlimit"))),
    )


def probe_capabilities() -> dict[str, bool]:
    """What this machine offers; measured once per process (each probe starts a process)."""
    return dict(_probe())


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    uid: int
    zombie: bool  # exited, waiting for its parent: runs nothing, cannot be killed


def _processes() -> Iterator[_Proc]:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            uid = os.stat(f"/proc/{entry.name}").st_uid
        except (OSError, IndexError):
            continue  # exited while we looked
        yield _Proc(int(entry.name), int(fields[1]), uid, fields[0] == "Z")


def _signal_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_process_tree(pid: int, include_root: bool = True) -> int:
    """SIGKILL ``pid`` (unless ``include_root`` is false) and all its descendants; return how many.

    Everything is stopped first so that a fork bomb cannot outrun the walk. Limits: a process that
    re-parented itself (double fork, its parent then exiting) is no longer a descendant, and
    ``setsid`` escapes a process-group kill. Inside a PID namespace none of that matters (killing
    bwrap ends the namespace); outside one, ``kill_user_processes`` on an ephemeral uid does.
    """
    found: set[int] = set()
    for _ in range(5):
        children: dict[int, list[int]] = {}
        alive = set()
        for p in _processes():
            children.setdefault(p.ppid, []).append(p.pid)
            alive.add(p.pid)
        tree, todo = set(), [pid] if pid in alive else []
        while todo:
            current = todo.pop()
            if current not in tree:
                tree.add(current)
                todo.extend(children.get(current, ()))
        new = tree - found
        if not new:
            break
        if not include_root:
            new.discard(pid)
        _signal_all(new, signal.SIGSTOP)
        found |= new
    _signal_all(found, signal.SIGKILL)
    return len(found)


def _pid_namespace(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def _pid_namespaces_below(pid: int) -> set[int]:
    """PID namespaces (inodes) of ``pid``'s descendants other than our own."""
    children: dict[int, list[int]] = {}
    for p in _processes():
        children.setdefault(p.ppid, []).append(p.pid)
    found: set[int] = set()
    todo = list(children.get(pid, ()))
    while todo:
        current = todo.pop()
        ns = _pid_namespace(current)
        if ns is not None:
            found.add(ns)
        todo.extend(children.get(current, ()))
    found.discard(_pid_namespace(os.getpid()) or -1)
    return found


def _kill_pid_namespace(ns: int, timeout: float = 5.0) -> int:
    """SIGKILL every process in PID namespace ``ns`` and wait until they are gone."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = {p.pid for p in _processes() if not p.zombie and _pid_namespace(p.pid) == ns}
        if not pids:
            break
        _signal_all(pids, signal.SIGKILL)
        killed |= pids
        time.sleep(0.02)
    return len(killed)


def count_user_tasks(uid: int) -> int:
    """Processes and threads owned by ``uid``: what RLIMIT_NPROC counts. A kernel near its cap
    (a fork bomb's sleeping children) can no longer start the threads it needs to answer."""
    total = 0
    for p in _processes():
        if p.uid != uid or p.zombie:
            continue
        try:
            with open(f"/proc/{p.pid}/status") as f:
                threads = next((int(line.split()[1]) for line in f if line.startswith("Threads:")), 1)
        except (OSError, ValueError):
            continue
        total += threads
    return total


def kill_user_processes(uid: int) -> int:
    """SIGKILL every process whose owner is ``uid``, until none is left; return how many.

    Only meant for a uid that belongs to one kernel (``run_as_user="auto"``).
    """
    if uid == 0 or uid == os.getuid():
        raise ValueError(f"refusing to kill every process of uid {uid}")
    killed: set[int] = set()
    for _ in range(20):
        pids = {p.pid for p in _processes() if p.uid == uid and not p.zombie}
        if not pids:
            break
        _signal_all(pids, signal.SIGSTOP)
        _signal_all(pids, signal.SIGKILL)
        killed |= pids
    return len(killed)


# --------------------------------------------------------------------------- the rlimit shim

# Runs as ``python -I -S -c _SHIM MEM CPU NPROC FSIZE UID GID PARENT_PID DATA_ONLY -- argv...``; -1 =
# leave; DATA_ONLY=1 caps memory with RLIMIT_DATA (GPU kernels) instead of RLIMIT_AS.
_SHIM = """\
import os, resource, sys
a = sys.argv[1:]
cut = a.index("--")
mem, cpu, nproc, fsize, uid, gid, ppid, data_only = (int(x) for x in a[:cut])
for res, soft, hard in ((resource.RLIMIT_DATA if data_only else resource.RLIMIT_AS, mem, mem), (resource.RLIMIT_CPU, cpu, cpu + 5),
                        (resource.RLIMIT_NPROC, nproc, nproc), (resource.RLIMIT_FSIZE, fsize, fsize),
                        (resource.RLIMIT_CORE, 0, 0)):
    if soft >= 0:
        resource.setrlimit(res, (soft, hard))
if uid >= 0:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
import ctypes
if ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    sys.exit("sandbox: prctl(PR_SET_NO_NEW_PRIVS) failed")
if ppid >= 0:
    os.environ["JPY_PARENT_PID"] = str(ppid)
os.execv(a[cut + 1], a[cut + 1:])
"""


# --------------------------------------------------------------------------- planning


def _resolve_user(spec: str) -> tuple[int, int, bool]:
    """``(uid, gid, ephemeral)`` for a ``run_as_user`` value."""
    if spec == EPHEMERAL_USER:
        busy = {p.uid for p in _processes()}
        rng = random.SystemRandom()
        for _ in range(100):
            uid = rng.choice(_EPHEMERAL_UIDS)
            try:
                pwd.getpwuid(uid)
                continue
            except KeyError:
                pass
            try:
                grp.getgrgid(uid)
                continue
            except KeyError:
                pass
            if uid not in busy:
                return uid, uid, True
        raise SandboxError("found no free uid for the kernel")
    if spec.isdigit():
        return int(spec), int(spec), False
    try:
        entry = pwd.getpwnam(spec)
    except KeyError:
        raise SandboxError(f"run_as_user={spec!r}: no such user") from None
    if entry.pw_uid == 0:
        raise SandboxError(f"run_as_user={spec!r} is root")
    return entry.pw_uid, entry.pw_gid, False


def _interpreter_paths(argv0: str) -> list[Path]:
    """Folders the kernel's Python needs to read (the venv and the base installation)."""
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    exe = shutil.which(argv0) or argv0
    found.add(os.path.dirname(exe))
    found.add(os.path.dirname(os.path.realpath(exe)))
    venv = os.path.dirname(os.path.dirname(exe))
    if os.path.isfile(os.path.join(venv, "pyvenv.cfg")):  # a kernel environment's venv: its site-packages
        found.add(venv)
        found.add(os.path.dirname(os.path.dirname(os.path.realpath(exe))))  # and the base installation
    return sorted({Path(os.path.realpath(p)) for p in found if p})


def _first_closed_ancestor(path: Path) -> Path | None:
    """The outermost folder on the way to ``path`` that other users cannot traverse."""
    for parent in reversed(path.parents):
        try:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return parent
        except OSError:
            return None
    return None


def _is_under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _unreadable_files(root: Path, limit: int = 5) -> list[str]:
    bad: list[str] = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                mode = os.stat(os.path.join(dirpath, name)).st_mode
            except OSError:
                continue
            if not mode & stat.S_IROTH:
                bad.append(os.path.join(dirpath, name))
                if len(bad) >= limit:
                    return bad
    return bad


@dataclass
class _Plan:
    prefix: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path = Path(".")
    runtime: Path | None = None
    uid: int | None = None  # None: the kernel runs as the grader's user
    gid: int = -1
    ephemeral: bool = False
    owner: tuple[int, int] | None = None  # workdir's owner, restored afterwards
    transport: str = "tcp"
    pid_namespace: bool = False
    disk_bytes: int = 0  # the policy's disk quota (0: none)
    max_files: int = 0


# Top-level folders a kernel sees (read-only); every other folder directly under / is covered.
VISIBLE_TOP = frozenset({"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "opt", "var", "dev", "proc", "sys", "tmp"})


def _hidden_top_level() -> list[Path]:
    hidden = []
    for entry in sorted(os.scandir("/"), key=lambda e: e.name):
        try:
            if entry.is_dir(follow_symlinks=False) and entry.name not in VISIBLE_TOP:
                hidden.append(Path("/", entry.name))
        except OSError:
            continue
    return hidden


def gpu_devices(dev: Path = Path("/dev")) -> tuple[Path, ...]:
    """The NVIDIA device files a CUDA kernel opens (``/dev/nvidia0``, ``nvidiactl``, ``nvidia-uvm``,
    ``nvidia-caps/*``, ...); empty on a machine without them."""
    found = [p for p in sorted(dev.glob("nvidia*")) if not p.is_dir()]
    found += sorted(p for p in (dev / "nvidia-caps").glob("*") if not p.is_dir())
    return tuple(found)


def _bwrap_args(policy: SandboxPolicy, caps: dict[str, bool], plan: _Plan, exposed: list[Path],
                blank: Path) -> list[str]:
    """bubblewrap's argv; order matters (later mounts land on top of earlier ones)."""
    args = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if not policy.network:
        args.append("--unshare-net")
    args += ["--ro-bind" if policy.readonly_root else "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for device in policy.gpus:  # the minimal /dev has no GPU: bind the devices the rubric needs
        args += ["--dev-bind", str(device), str(device)]
    if caps["bwrap_tmpfs_size"]:
        args += ["--size", str(policy.tmp_bytes)]
    args += ["--perms", "1777", "--tmpfs", "/tmp"]
    writable = [plan.workdir] + ([plan.runtime] if plan.runtime else [])
    masks = [Path("/tmp")]
    # Only the system's folders stay visible: other checkouts of the course, home folders and data
    # disks (/work, /home, /srv, /mnt, ...) are covered by an empty tmpfs; what the kernel needs
    # below them (the venv, the store, the grader package) is bound back further down.
    for top in _hidden_top_level():
        masks.append(top)
        args += ["--perms", "0755", "--tmpfs", str(top)]
    if plan.uid is not None:
        # Folders on the way to what the kernel needs that its uid cannot traverse (/root, when
        # Python lives in pyenv): replace them with an empty tmpfs and bind back only what is needed.
        for p in exposed + writable:
            closed = _first_closed_ancestor(p)
            if closed and not any(_is_under(closed, m) for m in masks):
                masks = [m for m in masks if not _is_under(m, closed)] + [closed]
                args += ["--perms", "0755", "--tmpfs", str(closed)]
    dirs: list[str] = []
    binds: list[str] = []
    for p in sorted(set(exposed + writable), key=lambda q: len(q.parts)):
        mask = next((m for m in masks if _is_under(p, m) and p != m), None)
        if mask is None and p not in writable:
            continue  # visible through the root bind already
        if mask is not None:
            for d in reversed(p.parents):
                if mask in d.parents and str(d) not in dirs:
                    dirs.append(str(d))
        binds += ["--bind" if p in writable else "--ro-bind", str(p), str(p)]
    for made in dirs:
        args += ["--perms", "0755", "--dir", made]
    args += binds
    for m in masks:  # the covers are read-only too (the private /tmp stays writable)
        if m != Path("/tmp"):
            args += ["--remount-ro", str(m)]
    bound = [Path(b) for b in binds[2::3]]
    for hidden in policy.hide_paths:
        real = Path(os.path.realpath(hidden))
        if any(_is_under(real, m) for m in masks) and not any(_is_under(b, real) or _is_under(real, b) for b in bound):
            continue  # under a mask and nothing bound back near it: invisible already
        if real.is_dir():
            args += ["--perms", "0000", "--tmpfs", str(real), "--remount-ro", str(real)]
        elif real.exists():
            args += ["--ro-bind", str(blank), str(real)]
    if plan.uid is None and caps["root"]:
        args += ["--cap-drop", "ALL"]  # root inside without caps cannot remount or bypass modes
    return args + ["--chdir", str(plan.workdir), "--"]


def _choose_user(policy: SandboxPolicy, caps: dict[str, bool], use_bwrap: bool, needed: list[Path],
                 missing: list[str]) -> tuple[int, int, bool] | None:
    """``(uid, gid, ephemeral)`` for the kernel, or None to stay the grader's user."""
    if policy.run_as_user is None:
        return None
    if not caps["root"]:
        missing.append("kernel runs as the grader's own user: switching users needs root")
        return None
    uid, gid, ephemeral = _resolve_user(policy.run_as_user)
    # bwrap can expose what sits behind a closed folder; without it the uid must reach it as is.
    blocked = [] if use_bwrap else [p for p in needed if _first_closed_ancestor(p)]
    if blocked:
        missing.append(f"kernel runs as root: uid {uid} cannot reach {blocked[0]} and without "
                       f"bubblewrap it cannot be exposed")
        return None
    return uid, gid, ephemeral


def _kernel_env(env: dict[str, str], runtime: Path, private_tmp: bool) -> dict[str, str]:
    """The grader's locale and PATH, the caller's ``env``, and writable per-kernel dot-folders."""
    home = runtime / "home"
    for sub in (".cache", ".config/matplotlib", ".ipython"):
        (home / sub).mkdir(parents=True)
    (runtime / "jupyter").mkdir()
    inherited = {k: v for k, v in os.environ.items() if k in _INHERITED_ENV or k.startswith("LC_")}
    out = {
        **inherited, **env,
        "HOME": str(home), "USER": "kernel", "LOGNAME": "kernel",  # getpass.getuser() needs one
        "IPYTHONDIR": str(home / ".ipython"), "MPLCONFIGDIR": str(home / ".config/matplotlib"),
        "XDG_CACHE_HOME": str(home / ".cache"), "XDG_CONFIG_HOME": str(home / ".config"),
        "JUPYTER_RUNTIME_DIR": str(runtime / "jupyter"), "PYTHONNOUSERSITE": "1",
    }
    hf_home = env.get("HF_HOME")
    if hf_home and "HF_DATASETS_CACHE" not in env and not os.path.isdir(os.path.join(hf_home, "datasets")):
        # The store is read-only, and `datasets` writes its Arrow cache under HF_HOME by default.
        out["HF_DATASETS_CACHE"] = str(home / ".cache/hf-datasets")
    if private_tmp:
        out["TMPDIR"] = "/tmp"
    return out


def _exposed_paths(policy: SandboxPolicy, env: dict[str, str], argv0: str) -> list[Path]:
    """What the kernel reads although it may lie where the sandbox shows nothing: its Python, the
    policy's ``expose_paths`` (the grader package), the store (HF_HOME)."""
    exposed = _interpreter_paths(argv0) + [Path(os.path.realpath(p)) for p in policy.expose_paths]
    hf_home = env.get("HF_HOME")
    if hf_home:
        exposed.append(Path(os.path.realpath(hf_home)))
    return exposed


def _fork_plan(policy: SandboxPolicy, workdir: Path, env: dict[str, str], zygote: Any
               ) -> tuple[_Plan, SandboxReport]:
    """The plan of a kernel forked from ``zygote`` (``grader.kernel.forkserver``): its own uid and
    runtime folder, as a spawned kernel's, and the proxy as its command."""
    from grader.kernel import forkserver

    uid, gid, _ = _resolve_user(EPHEMERAL_USER)
    runtime = Path(tempfile.mkdtemp(prefix="", dir=zygote.kernels))  # short: ipc socket paths are capped
    plan = _Plan(workdir=workdir, runtime=runtime, transport="ipc", uid=uid, gid=gid, ephemeral=True,
                 env=forkserver.kernel_environment(env, runtime, workdir), pid_namespace=True,
                 disk_bytes=policy.disk_bytes, max_files=policy.max_files)
    _hand_over(plan)
    req = forkserver.request(zygote, workdir, runtime, uid, gid)
    plan.prefix = [sys.executable, "-I", "-S", "-c", forkserver.PROXY, str(zygote.socket), json.dumps(req), "--"]
    return plan, _report(policy, plan, True, False, [], [])


def _plan(policy: SandboxPolicy, workdir: Path, env: dict[str, str], argv0: str
          ) -> tuple[_Plan, SandboxReport]:
    if not policy.enabled:
        plan = _Plan(workdir=workdir, env={**os.environ, **env})
        return plan, SandboxReport({k: False for k in LAYERS}, ("sandbox disabled (enabled=False)",))
    caps = probe_capabilities()
    use_bwrap = caps["bwrap"]
    use_unshare = not use_bwrap and caps["unshare"]
    missing: list[str] = []
    notes: list[str] = []
    exposed = _exposed_paths(policy, env, argv0)
    hf_home = env.get("HF_HOME")

    user = _choose_user(policy, caps, use_bwrap, exposed + [workdir], missing)
    if user and hf_home and os.path.isdir(hf_home):
        bad = _unreadable_files(Path(hf_home))
        if bad:
            notes.append(f"files in HF_HOME are not readable by the kernel's uid (e.g. {bad[0]}): "
                         f"chmod -R a+rX the store")

    runtime = Path(tempfile.mkdtemp(prefix="nbgrade-kernel-"))  # connection file, ipc sockets, HOME
    plan = _Plan(workdir=workdir, runtime=runtime, transport="ipc",  # TCP does not cross a netns
                 env=_kernel_env(env, runtime, private_tmp=use_bwrap),
                 pid_namespace=use_bwrap or use_unshare, disk_bytes=policy.disk_bytes, max_files=policy.max_files)
    blank = runtime / "blank"  # mounted over hidden files: owned by root, mode 000
    blank.touch(mode=0)
    os.chmod(blank, 0)
    if user:
        plan.uid, plan.gid, plan.ephemeral = user
        _hand_over(plan, skip=blank)

    shim = [sys.executable, "-I", "-S", "-c", _SHIM,
            str(policy.memory_bytes), str(policy.cpu_seconds), str(policy.max_processes),
            str(policy.max_file_bytes), str(plan.uid if user else -1), str(plan.gid if user else -1),
            # JPY_PARENT_PID=1: in a PID namespace the kernel's parent is pid 1 (bwrap's init); under
            # unshare the kernel is pid 1 itself and getppid() is 0, which ipykernel also accepts.
            "1" if plan.pid_namespace else "-1", "1" if policy.gpus else "0", "--"]
    if use_bwrap:
        plan.prefix = _bwrap_args(policy, caps, plan, exposed, blank) + shim
    elif use_unshare:
        net = [] if policy.network else ["--net"]
        plan.prefix = ["unshare", *net, "--pid", "--fork", "--kill-child", "--mount-proc", "--"] + shim
    else:
        plan.prefix = shim
    return plan, _report(policy, plan, use_bwrap, use_unshare, missing, notes)


def _report(policy: SandboxPolicy, plan: _Plan, use_bwrap: bool, use_unshare: bool,
            missing: list[str], notes: list[str]) -> SandboxReport:
    layers = {
        "rlimits": True,
        "network_namespace": not policy.network and plan.pid_namespace,
        "pid_namespace": plan.pid_namespace,
        "readonly_fs": use_bwrap and policy.readonly_root,
        "hidden_paths": use_bwrap or not policy.hide_paths,  # vacuously true when none are asked
        "unprivileged_user": plan.uid is not None,
    }
    if not use_bwrap:
        reason = ("bubblewrap not installed (apt-get install -y bubblewrap)" if not shutil.which("bwrap")
                  else "bubblewrap cannot create namespaces here")
        reason += "" if use_unshare else "; unshare needs root"
        missing.append(f"no read-only file system, private /tmp or hidden paths: {reason}")
        if not use_unshare:
            missing.append(f"no network or PID namespace: {reason}")
    if policy.network:
        missing.append("network allowed by policy (network=True)")
    if not policy.readonly_root and use_bwrap:
        missing.append("file system writable by policy (readonly_root=False)")
    if plan.uid is None:
        missing.append("process-count cap (RLIMIT_NPROC) not enforced: it does not apply to root and "
                       "counts all of the grader's processes otherwise")
    elif not plan.ephemeral:
        missing.append(f"process-count cap shared with every other process of uid {plan.uid}")
    return SandboxReport(layers, tuple(missing), tuple(notes))


def _hand_over(plan: _Plan, skip: Path | None = None) -> None:
    """Give the kernel's uid its working and runtime folders (noting the workdir's owner, to whom
    ``_release`` gives it back)."""
    assert plan.uid is not None and plan.runtime is not None
    st = os.stat(plan.workdir)
    plan.owner = (st.st_uid, st.st_gid)
    _chown_tree(plan.workdir, plan.uid, plan.gid, only_from=None)
    _chown_tree(plan.runtime, plan.uid, plan.gid, only_from=None, skip=skip)


def _chown_tree(root: Path, uid: int, gid: int, only_from: int | None, skip: Path | None = None) -> None:
    """lchown ``root`` and everything under it (never following links)."""
    def one(path: str) -> None:
        if skip is not None and path == str(skip):
            return
        try:
            if only_from is None or os.lstat(path).st_uid == only_from:
                os.lchown(path, uid, gid)
        except OSError:
            pass
    one(str(root))
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            one(os.path.join(dirpath, name))


# --------------------------------------------------------------------------- the kernel manager


class SandboxedKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernel command is prefixed with the sandbox wrapper.

    Uses the hooks jupyter_client 8 leaves open: the command (``format_kernel_cmd``), the
    connection file's owner (``write_connection_file``), the environment and cwd
    (``_async_launch_kernel``, after jupyter_client has set JPY_PARENT_PID), shutdown (children
    first when there is no PID namespace) and cleanup (``_async_cleanup_resources``: kills strays,
    gives the workdir back to its owner, removes the runtime folder).
    """

    _plan: _Plan = _Plan()
    _namespaces: set[int] = set()  # inodes of PID namespaces seen below the wrapper
    _disk: DiskWatch | None = None

    @property
    def kernel_uid(self) -> int | None:
        """The uid the kernel runs as (None: the grader's own)."""
        return self._plan.uid

    @property
    def limit_exceeded(self) -> str | None:
        """Why the sandbox stopped the kernel itself (its disk quota), in words; None if it did not.
        The kernel then looks dead to nbclient: callers name the cause with this."""
        return self._disk.exceeded if self._disk is not None else None

    def _watch_disk(self) -> None:
        """Start the disk-quota watcher over the folders the kernel may write (``grader.kernel.diskquota``)."""
        plan = self._plan
        if plan.disk_bytes <= 0 or plan.runtime is None:
            return
        self._disk = DiskWatch((plan.workdir, plan.runtime), plan.disk_bytes, plan.max_files, self._stop_for_disk)
        self._disk.start()

    def _stop_for_disk(self, message: str) -> None:
        """Called from the watcher's thread: kill everything of this kernel, as ``reap`` does."""
        log.warning("sandbox: %s", message)
        self.kill_now()

    def kill_now(self) -> None:
        """SIGKILL the wrapper, its process tree and every process of an ephemeral uid, without
        waiting for them or cleaning up (``stop_kernel`` does both, and may come later): after this
        the kernel runs no more code. The PID namespaces below the wrapper are noted first, for
        ``reap`` to check them once the wrapper is gone."""
        process = getattr(self.provisioner, "process", None)
        if process is not None and self._plan.pid_namespace:
            self._namespaces = self._namespaces | _pid_namespaces_below(process.pid)
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            kill_process_tree(process.pid)
        if self._plan.ephemeral and self._plan.uid is not None:
            kill_user_processes(self._plan.uid)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return self._plan.prefix + super().format_kernel_cmd(extra_arguments)

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self._plan.uid is not None:
            os.chown(self.connection_file, self._plan.uid, self._plan.gid)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        kw["env"] = {**self._plan.env, **{k: v for k, v in kw.get("env", {}).items() if k.startswith("JPY_")}}
        kw["cwd"] = str(self._plan.workdir)
        await super()._async_launch_kernel(kernel_cmd, **kw)
        self._watch_disk()

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        process = getattr(self.provisioner, "process", None)
        if process is not None:
            if self._plan.pid_namespace:
                self._namespaces = self._namespaces | _pid_namespaces_below(process.pid)
            else:
                # Without a PID namespace the notebook's children must go while the kernel lives:
                # once it exits they are re-parented to init and no longer found as descendants.
                kill_process_tree(process.pid, include_root=False)
        await super()._async_shutdown_kernel(now=now, restart=restart)

    shutdown_kernel = _async_shutdown_kernel

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        process = getattr(self.provisioner, "process", None)
        if process is not None and self._plan.pid_namespace:
            self._namespaces = self._namespaces | _pid_namespaces_below(process.pid)
        if self._disk is not None:
            self._disk.close()
        await super()._async_cleanup_resources(restart=restart)
        # /proc walks, chown and rmtree: in a thread, so that the event loop (which may be running
        # another submission's notebook, see grader.kernel.warm) is not held up
        await asyncio.to_thread(self.reap, process.pid if process is not None else None)
        if not restart:
            await asyncio.to_thread(self._release)

    cleanup_resources = _async_cleanup_resources

    def reap(self, pid: int | None) -> None:
        """Make sure nothing the kernel started is still running.

        The wrapper's process group and process tree, then every process left in the kernel's PID
        namespace (the kernel tears a namespace down after its init dies, but not synchronously
        with the wrapper's exit that jupyter_client waits for), then every process of an ephemeral uid.
        """
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)  # launch_kernel made the wrapper a session leader
            except (ProcessLookupError, PermissionError):
                pass
            kill_process_tree(pid)
        for ns in self._namespaces:
            _kill_pid_namespace(ns)
        self._namespaces = set()
        if self._plan.ephemeral and self._plan.uid is not None:
            kill_user_processes(self._plan.uid)

    def _release(self) -> None:
        plan = self._plan
        if plan.owner is not None and plan.uid is not None:
            _chown_tree(plan.workdir, *plan.owner, only_from=plan.uid)
        if plan.runtime is not None:
            shutil.rmtree(plan.runtime, ignore_errors=True)


async def stop_kernel(km: AsyncKernelManager, kc: KernelClient | None = None, now: bool = True) -> None:
    """Shut the kernel down and clean up; nbclient does neither when it was handed ``km=``.

    Pass the notebook client's ``kc`` (``NotebookClient.kc``) too: nbclient leaves its channels
    open in that case (ResourceWarnings otherwise). ``now=True`` kills at once (bwrap's death ends
    the PID namespace); ``now=False`` asks politely and waits up to ``km.shutdown_wait_time``.
    Safe on a dead or never-started kernel.
    """
    try:
        if kc is not None:
            kc.stop_channels()
        if km.has_kernel and await km.is_alive():
            await km.shutdown_kernel(now=now)
    finally:
        await km.cleanup_resources()


def python_kernel_spec(python: str, display_name: str = "Python 3") -> KernelSpec:
    """An ipykernel spec for a given interpreter (a kernel environment's venv, see grader.kernel.envs)."""
    return KernelSpec(argv=[python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                      display_name=display_name, language="python", interrupt_mode="message")


def make_kernel_manager(policy: SandboxPolicy, workdir: Path, env: dict[str, str],
                        kernel_name: str = "python3", python: str | None = None, zygote: Any = None
                        ) -> tuple[SandboxedKernelManager, SandboxReport]:
    """A kernel manager for ``nbclient.NotebookClient(nb, km=km)`` whose kernel runs confined.

    Always finish with ``await stop_kernel(km)`` (in a ``finally``), even if the kernel never
    started: nbclient leaves a kernel it did not create running, and this call has already made
    the runtime folder and handed ``workdir`` to the kernel's uid.

    ``env`` is the kernel's whole environment apart from PATH/LANG/LC_*/TZ; the grader's own
    environment is not passed on. The kernel's cwd is ``workdir`` (owned by the kernel's uid while
    it runs, given back afterwards). HOME, IPYTHONDIR, MPLCONFIGDIR, XDG_* point at a per-kernel
    runtime folder outside ``workdir`` that also holds the connection file and ipc sockets.
    Shut the kernel down in the thread that started it: ``--die-with-parent`` watches that thread.
    """
    workdir = Path(os.path.realpath(workdir))
    workdir.mkdir(parents=True, exist_ok=True)
    km = SandboxedKernelManager(kernel_name=kernel_name)
    if python is not None:
        km._kernel_spec = python_kernel_spec(python)
    spec = km.kernel_spec
    if spec is None:
        raise SandboxError(f"no kernelspec named {kernel_name!r}")
    argv0 = sys.executable if spec.argv[0] in {"python", "python3"} else spec.argv[0]
    if zygote is not None:  # forked from a zygote that has run the preamble and the imports already
        plan, report = _fork_plan(policy, workdir, env, zygote)
    else:
        plan, report = _plan(policy, workdir, env, argv0)
    km._plan = plan
    if policy.enabled:
        # SIGINT to the process group would hit the wrapper too; ipykernel takes the message.
        km._kernel_spec = KernelSpec(**{**spec.to_dict(), "interrupt_mode": "message",
                                        "resource_dir": spec.resource_dir})
        km.transport = plan.transport
        if plan.runtime is not None:
            km.ip = str(plan.runtime / "ipc")
            km.connection_file = str(plan.runtime / "kernel.json")
    for line in report.missing:
        log.info("sandbox: %s", line)
    for line in report.notes:
        log.warning("sandbox: %s", line)
    return km, report
