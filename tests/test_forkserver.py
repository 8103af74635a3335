"""Kernels forked from a zygote (grader.kernel.zygote, grader.kernel.forkserver): as confined as a
kernel started fresh, as clean, and graded the same.

What could go wrong, each checked here: a forked kernel that is root or keeps a capability, sees
another kernel (its processes, files, /tmp, /dev/shm, abstract sockets), reaches the network, lacks
a limit, carries anything of an earlier kernel, outlives its proxy, or differs from a fresh kernel in
what a notebook sees; a zygote that accepts a kernel its imports do not fit, or outlives its worker.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from nbformat.v4 import new_code_cell, new_notebook
from test_warm import _comparable, light_setup, run_state

from grader.kernel import forkserver
from grader.kernel.lifecycle import GradingKernel
from grader.kernel.warm import KernelWarmer
from grader.steps import execute

REPO = Path(__file__).resolve().parent.parent


def _usable() -> bool:
    from grader.kernel.sandbox import SandboxPolicy

    return forkserver.usable(SandboxPolicy()) is None


needs_fork = pytest.mark.skipif(not _usable(), reason="needs bubblewrap and root (ephemeral uids)")

# What a notebook can learn about its confinement: the same in a forked and a fresh kernel
CONFINEMENT = r"""
import json, os, resource, socket
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
def net():
    try:
        socket.create_connection(("10.255.255.1", 9), timeout=1).close()
        return "connected"
    except OSError as exc:
        return type(exc).__name__
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0)); s.listen(1)  # loopback is up
print(json.dumps({
    "uid": os.getuid(), "caps": status["CapEff"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
    "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "cwd_is_workdir": os.getcwd() == os.environ.get("PWD_EXPECTED", os.getcwd()),
    "siblings": sorted(os.listdir(os.path.dirname(os.getcwd()))) == [os.path.basename(os.getcwd())],
    "tmp_writable": os.access("/tmp", os.W_OK), "root_writable": os.access("/usr", os.W_OK),
    "limits": [resource.getrlimit(r) for r in (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NPROC, resource.RLIMIT_FSIZE)],
    "net": net(), "home_writable": os.access(os.environ["HOME"], os.W_OK),
    "grader_package": os.path.isdir(os.environ["PYTHONPATH"].split(":")[0]),
}))
"""


def _gone(uid: int, timeout: float = 10.0) -> bool:
    """Whether every process and thread of ``uid`` is gone (waiting up to ``timeout``)."""
    from grader.kernel.sandbox import count_user_tasks

    deadline = time.monotonic() + timeout
    while count_user_tasks(uid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return count_user_tasks(uid) == 0


def _drop(warmer: KernelWarmer, kernel: GradingKernel) -> None:
    """What the pipeline does with a kernel after its notebook."""
    kernel.kill_now()
    warmer.run(kernel.stop())
    shutil.rmtree(kernel.workdir, ignore_errors=True)


def _run(setup: Any, kernel: GradingKernel | None, warmer: KernelWarmer | None, source: str) -> dict[str, Any]:
    nb = new_notebook(cells=[new_code_cell(source)])
    workdir = kernel.workdir if kernel is not None else setup.new_workdir()
    try:
        ex = execute.run(nb, workdir, setup.config_for(workdir), None, None, kernel=kernel, runner=warmer)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    assert ex.kernel_status == "ok", ex.kernel_message
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.get("output_type") == "stream")
    assert text, nb.cells[0].outputs
    return json.loads(text.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.sandbox
@needs_fork
def test_a_forked_kernel_is_confined_as_a_fresh_one_and_has_seen_nothing(tmp_path: Path) -> None:
    setup = light_setup(tmp_path, sandbox=True)
    fresh = _run(setup, None, None, CONFINEMENT)
    cold_state, _ = run_state(setup, None, None)
    warmer = KernelWarmer(fork=True)
    try:
        kernel = warmer.take(setup)  # forked at once, even for the first submission
        assert kernel is not None and kernel.forked
        assert kernel.seconds["imports"] == 0.0  # done in the zygote, before the fork
        forked = _run(setup, kernel, warmer, CONFINEMENT)
        second = warmer.take(setup)  # booted ahead, from the same zygote
        assert second is not None and second.forked
        state, _ = run_state(setup, second, warmer)
    finally:
        warmer.close()
    uids = (forked.pop("uid"), fresh.pop("uid"))
    assert forked == fresh  # each its own ephemeral uid; everything else alike
    assert 0 not in uids and uids[0] != uids[1]
    assert forked["caps"] == "0000000000000000" and forked["no_new_privs"] == "1"
    assert forked["processes"] == [1, 2]  # its own PID namespace: its init and itself
    assert forked["siblings"] and forked["tmp_writable"] and not forked["root_writable"]
    assert forked["net"] in ("OSError", "ConnectionRefusedError") or "Unreachable" in forked["net"]
    assert state == cold_state and not state["seen_before"] and state["warm_import"] and state["compat"]


@pytest.mark.slow
@pytest.mark.sandbox
@needs_fork
def test_two_forked_kernels_cannot_reach_each_other(tmp_path: Path) -> None:
    """One kernel leaves marks everywhere it can write and listens on an abstract socket; another
    forked from the same zygote at the same time must find none of them and none of its processes."""
    setup = light_setup(tmp_path, sandbox=True)
    warmer = KernelWarmer(fork=True)
    leave = (
        "import os, socket, json\n"
        "for d in ('.', '/tmp', '/dev/shm', os.environ['HOME']):\n"
        "    open(os.path.join(d, 'mark-of-a'), 'w').write('a')\n"
        "s = socket.socket(socket.AF_UNIX); s.bind('\\0grader-test-a'); s.listen(1)\n"
        "import subprocess; subprocess.Popen(['sleep', '60'])\n"
        "print(json.dumps({'pid': os.getpid(), 'uid': os.getuid()}))\n"
    )
    look = (
        "import os, socket, json, glob\n"
        "found = [p for d in ('.', '/tmp', '/dev/shm', os.environ['HOME']) for p in glob.glob(os.path.join(d, 'mark-of-*'))]\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        "    s.connect('\\0grader-test-a'); reached = True\n"
        "except OSError:\n"
        "    reached = False\n"
        "procs = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "cmdlines = [open(f'/proc/{p}/cmdline').read() for p in procs]\n"
        "run = os.path.dirname(os.environ['JUPYTER_RUNTIME_DIR'])  # this kernel's runtime folder, in the zygote's\n"
        "zyg = os.path.dirname(os.path.dirname(run))\n"
        "print(json.dumps({'found': found, 'reached': reached, 'sleep_seen': any('sleep' in c for c in cmdlines), 'uid': os.getuid(),\n"
        "                  'zygote_folder': sorted(os.listdir(zyg)), 'runtimes': os.listdir(os.path.dirname(run)) == [os.path.basename(run)]}))\n"
    )
    try:
        a = warmer.take(setup)
        assert a is not None and a.forked
        b = warmer.take(setup)
        assert b is not None and b.forked
        # both kernels stay alive while b looks: driven by hand, not through a notebook run
        failed, out = warmer.run(a.hidden(leave, 30))
        assert not failed, failed
        who_a = json.loads(out)
        failed, out = warmer.run(b.hidden(look, 30))
        assert not failed, failed
        seen = json.loads(out)
        # nothing of a, and of the zygote's folder only the way to b's own runtime folder (no socket)
        assert seen == {"found": [], "reached": False, "sleep_seen": False, "uid": seen["uid"],
                        "zygote_folder": ["k"], "runtimes": True}
        assert seen["uid"] != who_a["uid"]
        from grader.kernel.sandbox import count_user_tasks

        assert count_user_tasks(who_a["uid"]) >= 2  # the kernel and its sleep
        a.kill_now()  # what the pipeline does after a notebook
        assert _gone(who_a["uid"])  # the kernel and everything it started
        failed, _ = warmer.run(b.hidden("1", 30))  # b (and the zygote) unaffected
        assert not failed
        for k in (a, b):
            _drop(warmer, k)
    finally:
        warmer.close()


@pytest.mark.slow
@pytest.mark.sandbox
@needs_fork
def test_killing_the_proxy_kills_the_kernel_and_the_zygote_lives_on(tmp_path: Path) -> None:
    setup = light_setup(tmp_path, sandbox=True)
    warmer = KernelWarmer(fork=True)
    try:
        kernel = warmer.take(setup)
        assert kernel is not None
        failed, out = warmer.run(kernel.hidden("import os; print(os.getuid())", 30))
        uid = int(out)
        proxy = kernel.km.provisioner.process
        os.kill(proxy.pid, 9)  # as jupyter_client's kill does
        assert _gone(uid)
        zygote = next(z for _, z in warmer._zygotes if z is not None)
        assert zygote.alive()
        _drop(warmer, kernel)
        again = warmer.take(setup)
        assert again is not None and again.forked
        failed, out = warmer.run(again.hidden("print(6 * 7)", 30))
        assert (failed, out.strip()) == ("", "42")
        _drop(warmer, again)
    finally:
        warmer.close()
    assert not zygote.alive() and not zygote.root.exists()  # the zygote ends with its warmer


@pytest.mark.slow
@pytest.mark.sandbox
@needs_fork
def test_a_kernel_ended_by_its_zygotes_death_is_the_graders_failure_not_the_students(tmp_path: Path) -> None:
    """The zygote killed while a notebook runs: the kernel dies with it, and that is named a grading
    failure (the pipeline's boundary turns it into an error result to grade again), never a dead
    kernel the student caused. A kernel that dies by itself leaves the zygote alive: the student's."""
    import threading

    from grader.kernel.lifecycle import ZygoteDied

    setup = light_setup(tmp_path, sandbox=True)
    warmer = KernelWarmer(fork=True)
    try:
        own = warmer.take(setup)
        assert own is not None and own.forked
        ex = execute.run(new_notebook(cells=[new_code_cell("import os; os.kill(os.getpid(), 9)")]), own.workdir,
                         setup.config_for(own.workdir), None, None, kernel=own, runner=warmer)
        assert ex.kernel_status != "ok"
        own.check_zygote(ex.kernel_status)  # the student's own doing: no harness failure
        kernel = warmer.take(setup)
        assert kernel is not None and kernel.forked
        zygote = next(z for _, z in warmer._zygotes if z is not None)
        threading.Timer(2.0, zygote.stop).start()
        ex = execute.run(new_notebook(cells=[new_code_cell("import time; time.sleep(30)")]), kernel.workdir,
                         setup.config_for(kernel.workdir), None, None, kernel=kernel, runner=warmer)
        assert ex.kernel_status != "ok"
        with pytest.raises(ZygoteDied):
            kernel.check_zygote(ex.kernel_status)
    finally:
        warmer.close()


@pytest.mark.slow
@pytest.mark.sandbox
@needs_fork
def test_the_zygote_refuses_a_kernel_whose_environment_its_imports_do_not_fit(tmp_path: Path) -> None:
    setup = light_setup(tmp_path, sandbox=True)
    warmer = KernelWarmer(fork=True)
    try:
        zygote = warmer.run(warmer._zygote(setup))
        assert zygote is not None and zygote.alive()
        req = {"env": {**zygote.env, "HF_DATASETS_CACHE": "/somewhere/else"}, "args": []}
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(zygote.socket))
            s.sendall(json.dumps(req).encode() + b"\n")
            answer = s.recv(4096).decode()
        assert answer.startswith("error ") and "HF_DATASETS_CACHE" in answer
        assert zygote.alive()
    finally:
        warmer.close()


def test_kernels_start_fresh_where_forking_would_be_unsafe_or_impossible(tmp_path: Path) -> None:
    from dataclasses import replace

    from grader.kernel.sandbox import SandboxPolicy

    policy = SandboxPolicy()
    assert forkserver.usable(None) == "the sandbox is off"
    assert "network" in (forkserver.usable(replace(policy, network=True)) or "")
    assert "CUDA" in (forkserver.usable(replace(policy, gpus=(Path("/dev/nvidia0"),))) or "")
    assert "ephemeral" in (forkserver.usable(replace(policy, run_as_user=None)) or "")


@pytest.mark.slow
def test_a_warmer_asked_to_fork_without_a_sandbox_starts_kernels_fresh(tmp_path: Path) -> None:
    setup = light_setup(tmp_path, sandbox=False)
    warmer = KernelWarmer(fork=True)
    try:
        kernel = warmer.take(setup)
        assert kernel is not None and not kernel.forked and kernel.seconds["imports"] > 0.0
        state, _ = run_state(setup, kernel, warmer)
        assert not state["seen_before"] and state["warm_import"]
    finally:
        warmer.close()


@pytest.mark.slow
@pytest.mark.sandbox
@needs_fork
def test_kernels_start_fresh_when_the_work_root_holds_what_they_need(tmp_path: Path) -> None:
    """A forked kernel covers the whole work root (the other kernels' folders): a work root that holds
    the store would hide it, so the warmer starts kernels fresh instead."""
    from dataclasses import replace

    setup = replace(light_setup(tmp_path, sandbox=True), work_root=tmp_path)  # the store is tmp_path/empty-store
    warmer = KernelWarmer(fork=True)
    try:
        kernel = warmer.take(setup)
        assert kernel is not None and not kernel.forked
        state, _ = run_state(setup, kernel, warmer)
        assert not state["seen_before"]
    finally:
        warmer.close()


def test_a_forked_kernels_environment_names_the_fixed_paths(tmp_path: Path) -> None:
    from grader.kernel import zygote

    workdir, runtime = tmp_path / "w", tmp_path / "r"
    workdir.mkdir()
    runtime.mkdir()
    scratch = str((workdir / ".hf-scratch").resolve())
    env = forkserver.kernel_environment({"HF_DATASETS_CACHE": scratch + "/datasets", "HF_HOME": "/store/hf",
                                         "OTHER": scratch + "-not-inside"}, runtime, workdir)
    assert env["HF_DATASETS_CACHE"] == zygote.FIXED_SCRATCH + "/datasets"
    assert env["HOME"] == zygote.FIXED_HOME and env["IPYTHONDIR"] == zygote.FIXED_HOME + "/.ipython"
    assert env["HF_HOME"] == "/store/hf" and env["OTHER"] == scratch + "-not-inside"
    assert env["JUPYTER_RUNTIME_DIR"] == str(runtime / "jupyter")  # read after the fork: its own


# What modules decide at import, and how a kernel looks to the notebook: a forked kernel of the course
# must match a fresh one (libraries that ask at import whether they run in a notebook, logging
# handlers bound to the streams of that moment, the launcher's sys.argv and sys.path)
IMPORT_FACTS = r"""
import sys, json, logging, warnings
import tqdm.auto, transformers, transformers.trainer, torch
def streams(name):
    return [type(h).__name__ + ":" + type(getattr(h, "stream", None)).__name__ for h in logging.getLogger(name).handlers]
print(json.dumps({
    "modules": sorted(sys.modules), "argv0": sys.argv[0], "path": sys.path, "warning_filters": len(warnings.filters),
    "progress": transformers.trainer.DEFAULT_PROGRESS_CALLBACK.__name__, "tqdm": tqdm.auto.tqdm.__mro__[1].__module__,
    "handlers": [streams(n) for n in ("", "transformers", "datasets")], "displayhook": type(sys.displayhook).__name__,
    "torch_threads": torch.get_num_threads(), "stdout": type(sys.stdout).__name__,
}))
"""


@pytest.mark.slow
@pytest.mark.sandbox
@needs_fork
def test_a_forked_course_kernel_imported_the_same_modules_the_same_way_as_a_fresh_one(tmp_path: Path, built_store: Path) -> None:
    from grader.kernel.setup import kernel_setup
    from grader.pack.rubric import load_rubric
    from grader.steps.pipeline import GradeOptions

    setup = kernel_setup(load_rubric("assignment3"), GradeOptions(work_root=tmp_path / "work"))
    fresh = _run(setup, None, None, IMPORT_FACTS)
    warmer = KernelWarmer(fork=True)
    try:
        kernel = warmer.take(setup)
        assert kernel is not None and kernel.forked
        forked = _run(setup, kernel, warmer, IMPORT_FACTS)
    finally:
        warmer.close()
    assert set(forked["modules"]) ^ set(fresh["modules"]) == set()
    assert forked == fresh
    assert forked["progress"] == "NotebookProgressCallback"  # transformers saw a notebook at import, as in a fresh kernel
    assert forked["handlers"][1] == ["StreamHandler:OutStream"]  # its messages reach the notebook's output


@pytest.mark.slow
@pytest.mark.sandbox
@needs_fork
def test_a_batch_grades_the_same_on_forked_kernels(tmp_path: Path, built_store: Path) -> None:
    """The solution and a notebook that loses points, graded in one batch on forked kernels and in
    another on kernels started fresh: every grade, check, cell and note must match."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("full-marks__solution.ipynb", "loses-2.3__missing-tanh.ipynb"):
        shutil.copyfile(REPO / "submissions" / name, src / name)
    results = {}
    for mode, extra in (("forked", []), ("fresh", ["--no-fork-kernels"])):
        out = tmp_path / mode
        done = subprocess.run([sys.executable, "-m", "grader", "batch", str(src), "--out", str(out), "--workers", "1",
                               "--no-similarity", "--rubric", "assignment3", *extra],
                              cwd=REPO, capture_output=True, text=True, timeout=900, env={**os.environ, "GRADER_SECRET": "fork-test"})
        assert done.returncode == 0, done.stderr[-3000:]
        results[mode] = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/result.json")}
    assert len(results["forked"]) == 2
    for sid, forked in results["forked"].items():
        fresh = results["fresh"][sid]
        assert forked["timings"]["execute_imports"] == 0.0 and fresh["timings"]["execute_imports"] > 0.0
        assert _comparable(forked) == _comparable(fresh), sid
    solution = results["forked"]["full-marks__solution"]
    assert solution["auto_points"] == solution["auto_max"]
