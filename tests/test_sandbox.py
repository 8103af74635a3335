"""The sandbox blocks what it claims to block, and only the sandbox does.

Every test runs a tiny in-memory notebook through nbclient in a sandboxed kernel; cells print one
JSON line each, so the assertions read the kernel's own view. Where a block is asserted, a control
shows the same action succeeds without the sandbox (or outside the blocked place).
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat.v4 as v4
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from grader.kernel import sandbox
from grader.kernel.sandbox import (
    SandboxPolicy,
    SandboxReport,
    make_kernel_manager,
    probe_capabilities,
    stop_kernel,
)

REPO = Path(__file__).resolve().parents[1]
CAPS = probe_capabilities() if sys.platform.startswith("linux") else {}

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only"),
]
needs_bwrap = pytest.mark.skipif(
    not CAPS.get("bwrap"), reason="bubblewrap missing or cannot create namespaces (apt-get install -y bubblewrap)"
)
needs_root = pytest.mark.skipif(not CAPS.get("root"), reason="switching the kernel's uid needs root")


class Run:
    def __init__(self, outputs: list[Any], report: SandboxReport, uid: int | None, marker: str) -> None:
        self.outputs = outputs
        self.report = report
        self.uid = uid
        self.marker = marker  # the connection file's path: in the cmdline of the kernel and its forks

    def lines(self, cell: int) -> list[Any]:
        text = "".join(o["text"] for o in self.outputs[cell] if o.get("name") == "stdout")
        return [json.loads(line) for line in text.strip().splitlines()]

    def json(self, cell: int) -> Any:
        return self.lines(cell)[-1]


def run_cells(policy: SandboxPolicy, workdir: Path, *sources: str, env: dict[str, str] | None = None,
              **client: Any) -> Run:
    nb = v4.new_notebook(cells=[v4.new_code_cell(s) for s in sources])
    km, report = make_kernel_manager(policy, workdir, env or {})
    marker = km.connection_file
    uid = km.kernel_uid

    async def go() -> None:
        nbc = NotebookClient(nb, km=km, **{"timeout": 60, **client})
        try:
            await nbc.async_execute()
        finally:
            await stop_kernel(km, nbc.kc)

    asyncio.run(go())
    return Run([c.outputs for c in nb.cells], report, uid, marker)


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture
def canaries() -> Iterator[dict[str, Path]]:
    """World-readable files outside /tmp (the sandbox's /tmp is private, which would hide them anyway)."""
    root = Path(tempfile.mkdtemp(prefix="sandbox-canary-", dir="/var/tmp"))
    try:
        root.chmod(0o755)
        paths = {"secret_dir": root / "reference", "visible": root / "visible.txt"}
        paths["secret_dir"].mkdir(mode=0o755)
        paths["secret_in_dir"] = paths["secret_dir"] / "answers.txt"
        paths["secret_file"] = root / "gradebook.csv"
        for name in ("visible", "secret_in_dir", "secret_file"):
            paths[name].write_text(f"canary-{name}")
            paths[name].chmod(0o644)
        yield paths
    finally:
        shutil.rmtree(root)


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def read_cell(*paths: Path) -> str:
    return f"""
import json
def attempt(p):
    try:
        return open(p).read()
    except OSError as e:
        return type(e).__name__
print(json.dumps([attempt(p) for p in {[str(p) for p in paths]!r}]))
"""


def connect_cell(port: int) -> str:
    return f"""
import json, socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    print(json.dumps("connected"))
except OSError as e:
    print(json.dumps(type(e).__name__))
"""


# ----------------------------------------------------------------------------- no kernel needed


def test_disabled_policy_reports_everything_off(tmp_path: Path) -> None:
    km, report = make_kernel_manager(SandboxPolicy(enabled=False), tmp_path, {})
    assert not any(report.layers.values()) and report.missing == ("sandbox disabled (enabled=False)",)
    assert km.format_kernel_cmd()[0] == sys.executable  # no wrapper


def test_refuses_to_kill_root_processes() -> None:
    with pytest.raises(ValueError):
        sandbox.kill_user_processes(0)


# ----------------------------------------------------------------------------- kernels


@needs_bwrap
@needs_root
def test_hidden_paths_unreadable_while_rest_readable_and_uid_unprivileged(
        tmp_path: Path, canaries: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_SECRET", "leaked")
    policy = SandboxPolicy(hide_paths=(canaries["secret_dir"], canaries["secret_file"]))
    run = run_cells(policy, tmp_path, read_cell(canaries["visible"], canaries["secret_in_dir"],
                                                canaries["secret_file"]),
                    "import os, json; print(json.dumps([os.getuid(), os.geteuid()]))",
                    "import os, json; print(json.dumps([os.environ.get(k) for k in ('GRADER_SECRET', 'STORE_HINT')]))",
                    env={"STORE_HINT": "passed"})
    assert run.report.complete, run.report.missing
    visible, in_dir, single = run.json(0)
    assert visible == "canary-visible"
    assert in_dir == "PermissionError"
    assert single == "PermissionError"
    assert run.json(1) == [run.uid, run.uid] and run.uid not in (0, None)
    assert run.json(2) == [None, "passed"]  # the grader's own environment stays outside


def test_plain_kernel_reads_canary_and_reaches_loopback(
        tmp_path: Path, canaries: dict[str, Path], listener: int) -> None:
    policy = SandboxPolicy(enabled=False, hide_paths=(canaries["secret_dir"],))
    run = run_cells(policy, tmp_path, read_cell(canaries["secret_in_dir"]), connect_cell(listener))
    assert run.json(0) == ["canary-secret_in_dir"]
    assert run.json(1) == "connected"


@needs_bwrap
@needs_root
def test_store_behind_a_closed_folder_is_exposed_read_only(tmp_path: Path) -> None:
    closed = Path(tempfile.mkdtemp(prefix="sandbox-closed-", dir="/var/tmp"))  # mode 0700
    try:
        store = closed / "hf"
        store.mkdir(mode=0o755)
        (store / "config.json").write_text("{}")
        (store / "config.json").chmod(0o644)
        (store / "model.safetensors").write_text("weights")
        (store / "model.safetensors").chmod(0o600)  # what transformers 5.x writes
        code = read_cell(store / "config.json", store / "model.safetensors") + """
import os, tempfile
with tempfile.TemporaryFile() as f:
    f.write(b"x")
print(json.dumps([os.environ["HF_HOME"], os.access(os.environ["HF_HOME"], os.W_OK), tempfile.gettempdir()]))
"""
        run = run_cells(SandboxPolicy(), tmp_path, code, env={"HF_HOME": str(store)})
        readable, (hf_home, writable, tmp) = run.lines(0)
        assert readable == ["{}", "PermissionError"]
        assert (hf_home, writable, tmp) == (str(store), False, "/tmp")
        assert any("model.safetensors" in note for note in run.report.notes)
    finally:
        shutil.rmtree(closed)


@needs_bwrap
def test_root_is_read_only_but_workdir_writable(tmp_path: Path) -> None:
    # Stay root (capabilities dropped) so that only the read-only mount can refuse the writes.
    code = f"""
import json, os
def attempt(p):
    try:
        with open(p, "w") as f:
            f.write("x")
        return "written"
    except OSError as e:
        return e.errno
print(json.dumps([attempt(p) for p in ["/usr/sandbox-probe", {str(REPO / "sandbox-probe")!r},
                                       os.path.join(os.getcwd(), "ok.txt")]]))
"""
    run = run_cells(SandboxPolicy(run_as_user=None), tmp_path, code)
    assert run.report.layers["readonly_fs"]
    usr, repo, work = run.json(0)
    assert (usr, work) == (errno.EROFS, "written")
    # a checkout under /tmp lies in the kernel's private, throw-away /tmp: a write there is allowed
    # and never reaches the real folder; anywhere else the folder is read-only
    assert repo == ("written" if str(REPO).startswith("/tmp/") else errno.EROFS)
    assert (tmp_path / "ok.txt").read_text() == "x"
    assert not (REPO / "sandbox-probe").exists()


@needs_bwrap
def test_no_network_even_to_loopback_listener_outside(tmp_path: Path, listener: int) -> None:
    run = run_cells(SandboxPolicy(), tmp_path, connect_cell(listener))
    assert run.report.layers["network_namespace"]
    assert run.json(0) in ("ConnectionRefusedError", "OSError", "TimeoutError")


@needs_bwrap
def test_memory_bomb_raises_memory_error(tmp_path: Path) -> None:
    code = """
import json
try:
    b = bytearray(6 * 2**30)
    print(json.dumps("allocated"))
except MemoryError:
    print(json.dumps("MemoryError"))
"""
    assert run_cells(SandboxPolicy(), tmp_path, code).json(0) == "MemoryError"


FORK_BOMB = """
import json, os, time
count = 0
for _ in range(300):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        os.setsid()  # leave the kernel's process group: killpg alone would miss it
        time.sleep(120)
        os._exit(0)
    count += 1
print(json.dumps(count))
"""


@needs_bwrap
@needs_root
def test_fork_bomb_is_capped_and_reaped(tmp_path: Path) -> None:
    run = run_cells(SandboxPolicy(max_processes=64), tmp_path, FORK_BOMB)
    assert 0 < run.json(0) < 64  # the kernel's own threads count against the cap too
    assert processes_with(run.marker) == []


@needs_bwrap
def test_cpu_limit_kills_busy_loop(tmp_path: Path) -> None:
    with pytest.raises(DeadKernelError):
        run_cells(SandboxPolicy(cpu_seconds=1), tmp_path, "while True:\n    pass")


@needs_bwrap
def test_interrupt_reaches_kernel_inside_pid_namespace(tmp_path: Path) -> None:
    run = run_cells(SandboxPolicy(), tmp_path, "import time\ntime.sleep(60)", "print('{\"after\": 1}')",
                    interrupt_on_timeout=True, allow_errors=True, timeout=3)
    assert run.outputs[0][0]["ename"] == "KeyboardInterrupt"
    assert run.json(1) == {"after": 1}


@needs_root
@pytest.mark.parametrize("fallback", ["unshare", "rlimits-only"])
def test_fallbacks_without_bwrap_say_what_is_off_and_still_reap(
        tmp_path: Path, listener: int, monkeypatch: pytest.MonkeyPatch, fallback: str) -> None:
    caps = dict(sandbox._probe())
    if fallback == "unshare" and not caps["unshare"]:
        pytest.skip("unshare cannot create namespaces here")
    caps["bwrap"] = caps["bwrap_tmpfs_size"] = False
    caps["unshare"] = caps["unshare"] and fallback == "unshare"
    monkeypatch.setattr(sandbox, "probe_capabilities", lambda: caps)
    run = run_cells(SandboxPolicy(max_processes=64), tmp_path, connect_cell(listener), FORK_BOMB,
                    "import os, json; print(json.dumps(os.getuid()))")
    layers = run.report.layers
    assert not layers["readonly_fs"]
    assert any("read-only file system" in line for line in run.report.missing)
    if fallback == "unshare":
        assert layers["network_namespace"] and layers["pid_namespace"]
        assert run.json(0) != "connected"
    else:
        assert not layers["network_namespace"] and not layers["pid_namespace"]
        assert any("no network or PID namespace" in line for line in run.report.missing)
        assert run.json(0) == "connected"  # what the report warns about
    # pyenv's Python under /root is out of reach for another uid without bwrap: then it stays root,
    # RLIMIT_NPROC does not bind, and only the reaping stops the 300 setsid'd children.
    if layers["unprivileged_user"]:
        assert run.json(2) == run.uid != 0 and 0 < run.json(1) < 64
    else:
        assert run.json(2) == 0 and any("RLIMIT_NPROC" in line for line in run.report.missing)
    assert processes_with(run.marker) == []


# --- GPU kernels -----------------------------------------------------------------------------------

RESERVE = """
import ctypes, json, mmap
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
# what CUDA does at start-up: reserve a large range of address space it never touches
reserved = libc.mmap(None, 16 * 2**30, 0, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000, -1, 0)  # PROT_NONE, NORESERVE
ok = reserved not in (None, ctypes.c_void_p(-1).value)
try:
    b = bytearray(6 * 2**30)
    used = "allocated"
except MemoryError:
    used = "MemoryError"
print(json.dumps([ok, used]))
"""


def test_gpu_kernels_may_reserve_address_space_but_not_use_memory(tmp_path: Path) -> None:
    """CUDA reserves tens of GiB of address space at start-up: under RLIMIT_AS it cannot start. A
    GPU kernel is capped with RLIMIT_DATA instead, which still stops real allocations."""
    assert run_cells(SandboxPolicy(), tmp_path, RESERVE).json(0) == [False, "MemoryError"]
    gpu = SandboxPolicy(gpus=(Path("/dev/null"),))  # a stand-in device: the binding is what is tested
    assert run_cells(gpu, tmp_path, RESERVE).json(0) == [True, "MemoryError"]


@needs_bwrap
def test_gpu_devices_are_bound_into_the_minimal_dev(tmp_path: Path) -> None:
    devices = sandbox.gpu_devices(tmp_path)
    assert devices == ()  # no nvidia* in an empty folder
    for name in ("nvidia0", "nvidiactl", "nvidia-uvm"):
        (tmp_path / name).touch()
    (tmp_path / "nvidia-caps").mkdir()
    (tmp_path / "nvidia-caps" / "nvidia-cap1").touch()
    assert [p.name for p in sandbox.gpu_devices(tmp_path)] == ["nvidia-uvm", "nvidia0", "nvidiactl", "nvidia-cap1"]
    # /dev/kmsg stands in for a GPU device: a real device file that bubblewrap's minimal /dev lacks
    code = "import json, os\nprint(json.dumps(os.path.exists('/dev/kmsg')))"
    for name in ("w1", "w2"):
        (tmp_path / name).mkdir()
    assert run_cells(SandboxPolicy(), tmp_path / "w1", code).json(0) is False
    assert run_cells(SandboxPolicy(gpus=(Path("/dev/kmsg"),)), tmp_path / "w2", code).json(0) is True
