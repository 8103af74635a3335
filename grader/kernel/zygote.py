"""The zygote: a process that has done, once, what every kernel of one setup does first, and forks a
fresh, confined kernel for each submission.

Booting a kernel of the course costs about 2.4 CPU-seconds of imports (torch, transformers,
datasets, evaluate) before the first cell, the same for every submission. A batch starts one
zygote per kernel setup (its prototype, ``grader.course.prototype``, or else each pool worker,
``grader.kernel.warm``): it runs in the sandbox
(``grader.kernel.forkserver`` starts it under bubblewrap exactly as a kernel would be), runs the
grader's preamble (the pack's compatibility shims) and the setup's imports, and then only listens.
It never runs a cell, never receives a submission, and holds nothing of one. Each request forks:

    zygote --fork--> A: own mount, PID, network, IPC and UTS namespaces; private /tmp and /dev/shm;
                        every other kernel's working and runtime folders covered
           --fork--> B: PID 1 of the new namespace (fresh /proc, loopback up): reaps, and ends the
                        namespace (every process in it) when the kernel exits
           --fork--> C: the kernel: rlimits, its own ephemeral uid (which drops every capability),
                        no_new_privs, then ipykernel, in memory already holding the imports.

So a forked kernel is confined as a spawned one is (``grader.kernel.sandbox``): its own PID, network,
IPC and UTS namespaces, a read-only file system with the same hidden paths, a private /tmp, its
working folder and runtime folder the only writable ones, its own uid, the same rlimits; and it
starts from a state no submission has touched. The grader talks to it through a proxy process that
jupyter_client launches as "the kernel" (``forkserver.PROXY``): the proxy sends the request, waits,
and exits with the kernel's status; when the proxy dies (the grader kills it), the zygote kills A,
which takes B and with it the whole namespace down (PR_SET_PDEATHSIG).

Libraries read some paths from the environment once, at import (``datasets.config``): the paths that
differ per kernel (HOME, the datasets scratch folder) are therefore fixed paths in /tmp
(``FIXED_HOME``, ``FIXED_SCRATCH``), onto which each kernel's own folders are bound. A request whose
environment differs from the zygote's in any other variable is refused (its kernel would not be
the kernel a fresh start gives).

Runs in the kernel environment's Python: standard library only. Linux only; needs root in the
sandbox (it is: bubblewrap started by root keeps the capabilities).
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import gc
import importlib
import importlib.util
import json
import os
import random
import resource
import select
import signal
import socket
import struct
import sys
import traceback
from typing import Any

FIXED_HOME = "/tmp/.grader-home"
FIXED_SCRATCH = "/tmp/.grader-scratch"
# variables a forked kernel may have of its own: read by ipykernel and jupyter_client at start-up,
# after the fork (every other variable must equal the zygote's)
OWN_VARIABLES = ("JUPYTER_RUNTIME_DIR", "JPY_PARENT_PID", "JPY_SESSION_NAME", "PWD")
MAX_REQUEST = 4 * 2**20
# what every ipykernel imports as it starts, after ``ipykernel.kernelapp`` (about 0.25 CPU-seconds a kernel;
# its debugger, debugpy, 0.15 of the 0.2 left in ``IPKernelApp.initialize`` once these are imported)
KERNEL_MODULES = ("ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.iostream", "IPython.core.interactiveshell",
                  "ipykernel.debugger", "pdb", "sqlite3")

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 4096, 8192, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _enc(s: str | None) -> bytes | None:
    return s.encode() if s is not None else None


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = _enc
    _check(_libc.mount(enc(source), target.encode(), enc(fstype), flags, enc(data)), f"mount {target}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl({option})")


# --------------------------------------------------------------------------- the kernel's layout


def _outermost(paths: list[str]) -> list[str]:
    keep: list[str] = []
    for p in sorted({os.path.normpath(p) for p in paths}, key=lambda q: (q.count("/"), q)):
        if not any(p == k or p.startswith(k + "/") for k in keep):
            keep.append(p)
    return keep


def _layout(req: dict[str, Any]) -> None:
    """In the new mount namespace (A): private /tmp and /dev/shm, every folder of the zygote's other
    kernels covered, this kernel's working and runtime folders bound back, HOME and the scratch
    folder at their fixed paths. Nothing propagates back to the zygote's namespace."""
    workdir, runtime, tmp_bytes = req["workdir"], req["runtime"], int(req["tmp_bytes"])
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_bytes},mode=1777")
    stash = "/dev/shm/.grader-stash"
    own = [workdir, runtime]
    for i, path in enumerate(own):  # held aside while what lies around them is covered
        os.makedirs(f"{stash}/{i}")
        _mount(path, f"{stash}/{i}", None, MS_BIND | MS_REC)
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_bytes},mode=1777")
    covers = [c for c in _outermost(req["covers"]) if not (c == "/tmp" or c.startswith("/tmp/"))]
    for cover in covers:
        _mount("tmpfs", cover, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for i, path in enumerate(own):
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"{stash}/{i}", path, None, MS_MOVE)
        os.rmdir(f"{stash}/{i}")
    os.rmdir(stash)
    for cover in covers:  # the covers are read-only (the kernel's own folders, mounted on them, are not)
        _mount(None, cover, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for fixed, real in ((FIXED_HOME, req["home"]), (FIXED_SCRATCH, req["scratch"])):
        os.makedirs(real, exist_ok=True)
        os.makedirs(fixed)
        _mount(real, fixed, None, MS_BIND)


def _loopback_up() -> None:
    """Bring ``lo`` up in the new network namespace (bubblewrap does the same)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        raw = fcntl.ioctl(s, 0x8913, struct.pack("16sH14s", b"lo", 0, b""))  # SIOCGIFFLAGS
        flags = struct.unpack("16sH", raw[:18])[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 1, b""))  # SIOCSIFFLAGS, IFF_UP


def _confine(req: dict[str, Any]) -> None:
    """The kernel process (C): rlimits, its own uid (no capabilities left), no_new_privs."""
    limits = req["limits"]
    memory = resource.RLIMIT_DATA if limits["data_only"] else resource.RLIMIT_AS
    for res, soft, hard in ((memory, limits["memory"], limits["memory"]),
                            (resource.RLIMIT_CPU, limits["cpu"], limits["cpu"] + 5),
                            (resource.RLIMIT_NPROC, limits["nproc"], limits["nproc"]),
                            (resource.RLIMIT_FSIZE, limits["fsize"], limits["fsize"]),
                            (resource.RLIMIT_CORE, 0, 0)):
        if soft >= 0:
            resource.setrlimit(res, (soft, hard))
    uid, gid = int(req["uid"]), int(req["gid"])
    if uid <= 0:
        raise PermissionError("a forked kernel never runs as root")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def _pin(cores: Any) -> None:
    """The kernel on the cores of the worker that asked for it (a zygote shared by a batch's workers
    is not pinned itself); cores outside the zygote's own set are ignored."""
    if not isinstance(cores, list):
        return
    allowed = os.sched_getaffinity(0)
    wanted = {c for c in cores if isinstance(c, int) and c in allowed}
    if wanted and wanted != allowed:
        os.sched_setaffinity(0, wanted)


def _run_kernel(req: dict[str, Any]) -> int:
    """C: become the kernel the request describes, in this (already importing-done) interpreter."""
    os.chdir(req["workdir"])
    _pin(req.get("cores"))
    _confine(req)
    # the zygote's environment (as its preamble and imports left it, as a fresh kernel's would be),
    # with the variables a kernel has of its own
    for key in OWN_VARIABLES:
        if key in req["env"]:
            os.environ[key] = req["env"][key]
        else:
            os.environ.pop(key, None)
    args = list(req["args"])
    spec = importlib.util.find_spec("ipykernel_launcher")
    sys.argv = [spec.origin if spec is not None and spec.origin else "ipykernel_launcher", *args]
    os.environ["JPY_PARENT_PID"] = "1"  # no parent poller: the kernel ends with its namespace
    random.seed()  # a fresh state, as a freshly started interpreter has
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    from ipykernel import kernelapp

    code = 0
    before = (sys.stdout, sys.stderr)
    try:
        # what ``ipykernel_launcher`` does, in two steps; the parent's pid is read from the environment
        # at ipykernel's import, which was in the zygote: given here as a fresh kernel would read it
        app = kernelapp.IPKernelApp.instance(parent_handle=int(os.environ.get("JPY_PARENT_PID") or 0))
        app.initialize(args)
        _follow_streams(*before)
        app.start()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def _follow_streams(stdout: Any, stderr: Any) -> None:
    """Logging handlers made at import (transformers', datasets') hold the streams of that moment: in
    a fresh kernel, whose imports come after ipykernel's start, those are ipykernel's, so the messages
    reach the notebook as its stderr. Here the imports came first: hand the handlers the kernel's."""
    import logging

    loggers = [logging.getLogger(), *(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                if handler.stream is stderr:
                    handler.setStream(sys.stderr)
                elif handler.stream is stdout:
                    handler.setStream(sys.stdout)


def _init(req: dict[str, Any]) -> None:
    """B: PID 1 of the kernel's namespace. Returns never."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _loopback_up()
    kernel = os.fork()
    if kernel == 0:
        os._exit(_guarded(_run_kernel, req))
    while True:  # PID 1 reaps every orphan of the namespace; it ends with the kernel
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == kernel:
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _namespace(req: dict[str, Any], zygote: int) -> None:
    """A: the new namespaces and the layout, then B. Returns never."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != zygote:
        os._exit(1)
    _oom_score_adj(0)  # the kernel is the process to kill when memory runs out, not its zygote
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    _layout(req)
    init = os.fork()
    if init == 0:
        _guarded(_init, req)
        os._exit(1)
    _, status = os.waitpid(init, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _oom_score_adj(value: int) -> None:
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError:
        pass


def _guarded(fn: Any, req: dict[str, Any]) -> int:
    try:
        return int(fn(req) or 0)
    except BaseException:  # noqa: BLE001 - a child must never return into the zygote's loop
        traceback.print_exc()
        return 70


# --------------------------------------------------------------------------- the zygote


class ZMQInteractiveShell:
    """What ``get_ipython()`` shows the zygote's imports: libraries decide at import whether they run
    in a notebook (transformers' Trainer picks its progress display, tqdm its bar) by asking for the
    shell and its ``IPKernelApp`` config. In a fresh kernel the imports come after the kernel's start,
    so they find one; here they must too. Nothing else of a shell is there."""

    config: dict[str, Any] = {"IPKernelApp": {}}


class _as_in_a_kernel:
    """While the zygote imports: ``IPython.get_ipython()`` returns a ``ZMQInteractiveShell`` stand-in
    when there is no real shell (a module that kept the function asks the real one afterwards)."""

    def __init__(self) -> None:
        self.active = False
        self.saved: list[tuple[Any, Any]] = []

    def __enter__(self) -> _as_in_a_kernel:
        try:
            import IPython
            import IPython.core.getipython as getipython
        except ImportError:
            return self
        real = getipython.get_ipython
        stand_in = ZMQInteractiveShell()

        def get_ipython() -> Any:
            shell = real()
            return shell if shell is not None or not self.active else stand_in

        self.active = True
        for module in (IPython, getipython):
            self.saved.append((module, module.get_ipython))
            module.get_ipython = get_ipython  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.active = False
        for module, original in self.saved:
            module.get_ipython = original



class Zygote:
    def __init__(self, ctl: str) -> None:
        self.ctl = ctl
        self.env = dict(os.environ)
        self.listener: socket.socket | None = None
        self.clients: dict[int, tuple[socket.socket, int | None]] = {}  # fd -> (connection, pid of A)
        self.wake_r, self.wake_w = -1, -1

    def prepare(self, setup: dict[str, Any]) -> None:
        for folder in (f"{FIXED_HOME}/.cache", f"{FIXED_HOME}/.config/matplotlib", f"{FIXED_HOME}/.ipython",
                       f"{FIXED_SCRATCH}/datasets"):
            os.makedirs(folder, exist_ok=True)
        # in a fresh kernel, ipykernel comes first (it is the kernel), then the preamble, then the imports
        for name in ("ipykernel.kernelapp", *KERNEL_MODULES):
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the kernel then imports it after the fork, as a fresh one would
                pass
        with _as_in_a_kernel():
            exec(compile(setup["preamble"], "<grader preamble>", "exec"), {"__name__": "__grader_preamble__"})
            for name in setup["imports"]:
                try:
                    importlib.import_module(name)
                except Exception:  # noqa: BLE001 - the notebook meets the same error in its own cell
                    pass
        gc.collect()
        gc.freeze()  # what the imports made stays in shared pages: the collector never touches it

    def threads(self) -> list[str]:
        """The names of this process's threads (one, ``python``, makes forking safe)."""
        names = []
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/comm") as f:
                    names.append(f.read().strip())
            except OSError:
                continue
        return names

    def listen(self) -> None:
        path = os.path.join(self.ctl, "zygote.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        os.chmod(path, 0o600)
        self.listener.listen(64)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def serve(self) -> None:
        assert self.listener is not None
        while True:
            fds = [self.listener.fileno(), self.wake_r, *self.clients]
            ready, _, _ = select.select(fds, [], [])
            if self.wake_r in ready:
                os.read(self.wake_r, 4096)
            self._reap()
            if self.listener.fileno() in ready:
                conn, _ = self.listener.accept()
                self.clients[conn.fileno()] = (conn, None)
            for fd in ready:
                if fd in self.clients:
                    self._read(fd)

    def _read(self, fd: int) -> None:
        conn, pid = self.clients[fd]
        if pid is not None:  # a proxy whose kernel runs: anything it sends, or its death, ends the kernel
            self._drop(fd, kill=True)
            return
        data = b""
        conn.settimeout(10)
        try:
            while not data.endswith(b"\n") and len(data) < MAX_REQUEST:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            req = json.loads(data)
            self._refuse_other_environment(req["env"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._answer(conn, f"error {type(exc).__name__}: {exc}")
            self._drop(fd, kill=False)
            return
        conn.settimeout(None)
        zygote = os.getpid()
        child = os.fork()
        if child == 0:
            self._forget()
            _guarded(lambda r: _namespace(r, zygote), req)
            os._exit(70)
        self.clients[fd] = (conn, child)
        self._answer(conn, f"started {child}")

    def _refuse_other_environment(self, env: dict[str, str]) -> None:
        keys = (set(env) | set(self.env)) - set(OWN_VARIABLES)
        differ = sorted(k for k in keys if env.get(k) != self.env.get(k))
        if differ:
            raise ValueError(f"the kernel's environment differs from the zygote's in {', '.join(differ[:5])}")

    def _forget(self) -> None:
        """In a child: close every socket and pipe of the zygote, through their own objects (an
        object closed later would close a number the kernel has reused)."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for conn, _ in self.clients.values():
            conn.close()
        self.clients.clear()
        if self.listener is not None:
            self.listener.close()
        for fd in (self.wake_r, self.wake_w):
            os.close(fd)

    def _answer(self, conn: socket.socket, line: str) -> None:
        try:
            conn.sendall(line.encode() + b"\n")
        except OSError:
            pass

    def _drop(self, fd: int, kill: bool) -> None:
        conn, pid = self.clients.pop(fd)
        if kill and pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        conn.close()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for fd, (conn, child) in list(self.clients.items()):
                if child == pid:
                    self._answer(conn, f"exit {os.waitstatus_to_exitcode(status)}")
                    self.clients.pop(fd)
                    conn.close()


def main() -> None:
    ctl = sys.argv[1]
    # as ``ipykernel_launcher`` does before it imports anything: the working folder is not on the path
    if sys.path and (sys.path[0] == "" or os.path.realpath(sys.path[0]) == os.path.realpath(os.getcwd())):
        del sys.path[0]
    with open(os.path.join(ctl, "setup.json"), encoding="utf-8") as f:
        setup = json.load(f)
    zygote = Zygote(ctl)
    _oom_score_adj(-500)  # its death would end every kernel forked from it; each kernel goes back to 0
    # what the imports print (deprecation warnings) goes to a log, as a fresh kernel's goes to its hidden
    # boot output; the grader shows the log's end if the zygote fails
    saved = os.dup(2)
    log = os.open(os.path.join(ctl, "prepare.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 2)
    try:
        zygote.prepare(setup)
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(log)
    zygote.listen()
    # the one line the grader waits for; afterwards the zygote's (and its kernels') output goes where
    # a kernel's goes, to standard error
    sys.stdout.write(json.dumps({"ready": True, "threads": zygote.threads(), "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    os.dup2(2, 1)
    zygote.serve()


if __name__ == "__main__":
    main()
