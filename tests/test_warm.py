"""Kernels warmed ahead (grader.kernel.warm): isolation as strict as without, grades the same.

What could go wrong, each checked here: a kernel serving two submissions, a warmed kernel carrying
anything of a submission (a name, a file, its history), a warmed kernel differing from a cold one,
a kernel warmed for another setup being handed out, kernels or folders left behind, and a batch
whose grades change when its kernels are warmed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader.kernel.lifecycle import GradingKernel, KernelReused
from grader.kernel.setup import KernelSetup
from grader.kernel.warm import KernelWarmer
from grader.steps import execute
from grader.steps.execute import ExecConfig

REPO = Path(__file__).resolve().parent.parent

# Prints what a kernel holds when the notebook starts, then leaves a trace for a next submission
# to find (a file in the working folder, a global): a kernel that served before would show both.
STATE = """\
import json, os, sys
ip = get_ipython()
print(json.dumps({
    "names": sorted(k for k in ip.user_ns if not k.startswith("_") and k not in ("In", "Out", "get_ipython", "exit", "quit", "open")),
    "count": ip.execution_count,
    "history": len(ip.user_ns["In"]),
    "files": sorted(os.listdir(".")),
    "warm_import": "decimal" in sys.modules,
    "capped": os.environ.get("GRADER_MAX_TRAIN_STEPS"),
    "compat": "grader.kernel.runtime" in sys.modules,
    "seen_before": os.path.exists("mark") or "LEAK" in ip.user_ns,
}))
print(json.dumps({"pid": os.getpid(), "uid": os.getuid()}))
open("mark", "w").write("a trace of this submission")
LEAK = 1
"""


def _sandbox_usable() -> bool:
    from grader.kernel.sandbox import probe_capabilities

    caps = probe_capabilities()
    return caps["bwrap"] and caps["root"]


def light_setup(tmp_path: Path, sandbox: bool) -> KernelSetup:
    """A setup with a cheap kernel (an empty store, a stdlib module as its 'warm import')."""
    (tmp_path / "empty-store" / "hf").mkdir(parents=True, exist_ok=True)
    policy = None
    if sandbox:
        from grader.kernel.sandbox import SandboxPolicy

        policy = SandboxPolicy(expose_paths=(REPO / "grader",))
    config = ExecConfig(cell_timeout=60, deadline=120, torch_threads=1, sandbox=policy, imports=("decimal",))
    return KernelSetup(store=tmp_path / "empty-store", work_root=tmp_path / "work", platform="", store_models="", config=config)


def run_state(setup: KernelSetup, kernel: GradingKernel | None, warmer: KernelWarmer | None) -> tuple[dict[str, Any], dict[str, int]]:
    """Run the STATE notebook the way the pipeline does (the working folder removed after); (state,
    identity)."""
    nb = new_notebook(cells=[new_code_cell(STATE)])
    workdir = kernel.workdir if kernel is not None else setup.new_workdir()
    try:
        ex = execute.run(nb, workdir, setup.config_for(workdir), None, None, kernel=kernel, runner=warmer)
    finally:
        if warmer is not None:
            warmer.remove_later(workdir)
        else:
            shutil.rmtree(workdir)
    assert ex.kernel_status == "ok", ex.kernel_message
    lines = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.get("output_type") == "stream").splitlines()
    assert len(lines) == 2, nb.cells[0].outputs
    return json.loads(lines[0]), json.loads(lines[1])


# --- without a kernel -------------------------------------------------------------------------------


def test_a_kernel_serves_exactly_one_submission(tmp_path: Path) -> None:
    kernel = GradingKernel(ExecConfig(), tmp_path)  # a plain kernel manager; nothing started
    kernel.claim()
    with pytest.raises(KernelReused):
        kernel.claim()


def test_every_submission_of_a_batch_has_the_same_setup_and_it_names_none(tmp_path: Path, built_store: Path) -> None:
    from grader.kernel.setup import kernel_setup
    from grader.pack.rubric import load_rubric
    from grader.steps.pipeline import GradeOptions

    rubric = load_rubric("assignment3")
    source = tmp_path / "submissions"
    (source / "alice").mkdir(parents=True)
    (source / "bob").mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    base = GradeOptions(hide_paths=(source,), work_root=tmp_path / "work")
    alice = kernel_setup(rubric, replace(base, submission_id="alice")).hiding(source / "alice")
    bob = kernel_setup(rubric, replace(base, submission_id="bob")).hiding(source / "bob")
    assert alice == bob  # the kernel booted while alice's notebook ran fits bob's
    assert "alice" not in repr(alice) and "bob" not in repr(bob)
    other = kernel_setup(rubric, base).hiding(outside)
    assert other != alice  # a folder not hidden yet: another setup, so no warmed kernel is handed out
    assert other.config.sandbox is not None and outside.resolve() in other.config.sandbox.hide_paths


def test_no_kernel_is_booted_for_a_submission_that_will_not_come(tmp_path: Path) -> None:
    warmer = KernelWarmer()
    try:
        warmer.ahead = False  # the pool said: no submission left for this worker
        assert warmer.take(light_setup(tmp_path, sandbox=False)) is None
        time.sleep(1.0)  # a boot would have made its working folder by now
        assert not list((tmp_path / "work").glob("grader-work-*"))
    finally:
        warmer.close()


# --- light kernels --------------------------------------------------------------------------------


SANDBOX_OR_NOT = [pytest.param(False, id="plain"),
                  pytest.param(True, id="sandboxed", marks=[pytest.mark.sandbox, pytest.mark.skipif(
                      not _sandbox_usable(), reason="needs bubblewrap and root (ephemeral uids)")])]


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", SANDBOX_OR_NOT)
def test_a_warmed_kernel_has_seen_nothing_and_equals_a_cold_one(tmp_path: Path, sandbox: bool) -> None:
    setup = light_setup(tmp_path, sandbox)
    cold, _ = run_state(setup, None, None)
    warmer = KernelWarmer()
    try:
        assert warmer.take(setup) is None  # the first submission: nothing was booting yet
        kernel = warmer.take(setup)
        assert kernel is not None and not kernel.claimed and warmer.booted >= 1
        assert sorted(os.listdir(kernel.workdir)) == [".hf-scratch"]  # nothing of any submission in it
        warm, _ = run_state(setup, kernel, warmer)
    finally:
        warmer.close()
    assert warm == cold
    assert warm["names"] == ["ip", "json", "os", "sys"] and warm["history"] == 2  # no hidden code in its history
    assert warm["files"] == [".hf-scratch"] and warm["warm_import"] and warm["compat"] and warm["capped"] == "2"
    assert not warm["seen_before"]


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", SANDBOX_OR_NOT)
def test_each_submission_gets_a_fresh_kernel_that_is_discarded_after_it(tmp_path: Path, sandbox: bool) -> None:
    setup = light_setup(tmp_path, sandbox)
    warmer = KernelWarmer()
    kernels: list[GradingKernel] = []
    seen: list[dict[str, int]] = []
    try:
        for _ in range(3):
            kernel = warmer.take(setup)
            if kernel is not None:
                kernels.append(kernel)
            state, who = run_state(setup, kernel, warmer)
            assert not state["seen_before"], "a kernel or working folder served an earlier submission"
            seen.append(who)
        assert len(kernels) == 2  # the second and third submissions ran on kernels booted ahead
        assert len({id(k) for k in kernels}) == 2 and all(k.claimed for k in kernels)
        with pytest.raises(KernelReused):  # handed to a second notebook: refused
            run_state(setup, kernels[0], warmer)
    finally:
        warmer.close()
    if sandbox:
        uids = [w["uid"] for w in seen]
        assert len(set(uids)) == 3 and 0 not in uids  # one fresh unprivileged uid per kernel
        from grader.kernel.sandbox import count_user_tasks

        assert all(count_user_tasks(uid) == 0 for uid in uids)  # nothing of any kernel still runs
    else:
        pids = [w["pid"] for w in seen]
        assert len(set(pids)) == 3 and not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert list(setup.work_root.glob("grader-work-*")) == []  # every working folder, the unused kernel's too


@pytest.mark.slow
def test_a_kernel_warmed_for_another_setup_is_discarded_not_handed_out(tmp_path: Path) -> None:
    first = light_setup(tmp_path, sandbox=False)
    other = light_setup(tmp_path / "other", sandbox=False)
    assert first != other
    warmer = KernelWarmer()
    try:
        assert warmer.take(first) is None
        assert warmer.take(other) is None  # booted for `first`: dropped
        kernel = warmer.take(other)
        assert kernel is not None and kernel.workdir.parent == other.work_root.resolve()
        state, _ = run_state(other, kernel, warmer)
        assert not state["seen_before"]
    finally:
        warmer.close()
    assert list(first.work_root.glob("grader-work-*")) == []  # the dropped kernel's folder is gone
    assert list(other.work_root.glob("grader-work-*")) == []


# --- a real batch -------------------------------------------------------------------------------


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    """A result without what depends on timing."""
    out = {k: v for k, v in result.items() if k not in ("timings", "submission", "source")}
    out["cells"] = [{k: v for k, v in c.items() if k != "seconds"} for c in result["cells"]]
    out["checks"] = [{k: v for k, v in c.items() if k != "seconds"} for c in result["checks"]]
    return out


@pytest.mark.slow
def test_a_batch_grades_the_same_on_warmed_kernels(tmp_path: Path, built_store: Path) -> None:
    """Two copies of the solution through one worker: the first on a kernel started for it, the
    second on the kernel booted while the first ran. Every grade, check, cell and note must match."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a-solution", "b-solution"):
        shutil.copyfile(REPO / "submissions" / "full-marks__solution.ipynb", src / f"{name}.ipynb")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "grader", "batch", str(src), "--out", str(out), "--workers", "1",
                           "--no-similarity", "--rubric", "assignment3", "--no-fork-kernels"],  # forked: tests/test_forkserver.py
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = (json.loads((out / n / "result.json").read_text()) for n in ("a-solution", "b-solution"))
    warmed = [r for r in (a, b) if "execute_kernel_wait" in r["timings"]]
    assert len(warmed) == 1, [r["timings"] for r in (a, b)]
    assert a["auto_points"] == a["auto_max"] and a["kernel_status"] == "ok"
    assert _comparable(a) == _comparable(b)
    nb = nbformat.read(src / "a-solution.ipynb", as_version=4)
    assert nb.cells  # the source was not touched
