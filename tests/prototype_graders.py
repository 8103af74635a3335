"""Grade functions for tests/test_prototype.py: module-level, so that they pickle into a batch's
prototype and its workers. Each says, in a note of its result, where it ran and what it inherited."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nbformat.v4 import new_code_cell, new_notebook

from grader.steps.results import GradeResult, Note

WARMED: int | None = None  # the pid of the process whose warm_up ran, as this process has it


@dataclass(frozen=True)
class Recording:
    log: str  # one line per warm_up: the pid of the process that ran it
    threads: bool = False  # warm_up leaves a thread running (no process may be forked from it then)
    sandbox: bool = False  # kernels of a sandboxed setup, forked from the batch's zygote

    def warm_up(self) -> None:
        global WARMED
        WARMED = os.getpid()
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        if self.threads:
            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()

    def kernel_setup(self, work_root: Path) -> Any:
        if not self.sandbox:
            return None
        from test_warm import light_setup

        return replace(light_setup(Path(self.log).parent, sandbox=True), work_root=work_root.resolve())

    def __call__(self, notebook: Path, out_dir: Path) -> GradeResult:
        info: dict[str, Any] = {"pid": os.getpid(), "ppid": os.getppid(), "warmed": WARMED,
                                "cores": sorted(os.sched_getaffinity(0))}
        if self.sandbox:
            info.update(_kernel_facts(self.kernel_setup(Path(os.environ["TMPDIR"]))))
        return GradeResult(submission=notebook.stem, status="graded", notes=(Note("info", json.dumps(info)),))


def _kernel_facts(setup: Any) -> dict[str, Any]:
    """Take this worker's kernel, as the pipeline does, and say where it came from and runs."""
    from grader.course.prototype import shared_zygote
    from grader.kernel import warm
    from grader.steps import execute

    warmer = warm.current()
    assert warmer is not None
    kernel = warmer.take(setup)
    assert kernel is not None
    shared = shared_zygote()
    facts: dict[str, Any] = {
        "shared": None if shared is None else {"socket": str(shared[1].socket), "owned": shared[1].owned,
                                                "alive": shared[1].alive(), "fits": setup.forks_from(shared[0])},
        "zygote": None if kernel._zygote is None else str(kernel._zygote.socket),
    }
    nb = new_notebook(cells=[new_code_cell("import os; print(sorted(os.sched_getaffinity(0)))")])
    try:
        ex = execute.run(nb, kernel.workdir, setup.config_for(kernel.workdir), None, None, kernel=kernel, runner=warmer)
    finally:
        shutil.rmtree(kernel.workdir, ignore_errors=True)
    facts["kernel_status"] = ex.kernel_status
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.get("output_type") == "stream")
    facts["kernel_cores"] = json.loads(text.strip().splitlines()[-1]) if text.strip() else None
    return facts
