"""Batch throughput, measured honestly: ``grader batch`` against the same notebooks run one after
another by plain nbclient, under the same limits, in one process run, interleaved.

    .venv/bin/python benchmarks/batch_throughput.py [--rounds 2] [--workers N] [--no-real] [--out DIR]
        [--grader-tree DIR ...] [--grader-arg=--no-warm-kernels] [--variant LABEL=ARGS ...]

Why it is built this way (issue 12): an earlier version timed the first 20 samples in name order,
mostly broken files and infinite loops, so it measured time-outs, not grading. Here:

- Only notebooks that finish on their own: the honest samples (``full-marks__*``, ``loses-*``,
  ``partial__*``, ``zero__*``) and the real notebooks in ``../shared/real/`` when that folder exists
  (read from there, copied only into a temporary folder, never into the repository). The hostile
  samples have their own benchmark, ``benchmarks/robustness_figures.py``.
- The serial baseline is what an instructor would do by hand (``jupyter nbconvert --execute``, one
  notebook after the other, nbclient starting and shutting down its own kernel), in the very kernel
  environment the grader uses (the rubric's kernel venv, the offline store, the Colab stand-ins),
  with the same training cap and shims (the rubric's kernel preamble run by a first cell, as the
  grader runs it) and the same ``%pip``/network lines skipped (``grader.steps.notebook.neutralize``). It
  gets no sandbox, probes, checks or reports, and keeps torch's default threads (one kernel alone
  may use every core).
- Both sides run in this one process run, in rounds that alternate which side goes first, so a
  change in the machine's load (it is shared) hits both sides alike. The load average is printed,
  and the CPU seconds each side used (its processes and all they started): on a machine with C
  cores, a side that needs X CPU seconds cannot take less than X / C seconds of wall time.
- ``grader batch`` runs as its own process, as an instructor runs it. ``--grader-tree DIR`` (more
  than once) runs it from other checkouts instead, in the same rounds: before/after figures of a
  change from one run. Every tree gets the same ``GRADER_SECRET`` (the same probe inputs), so their
  result.json files can be compared too.
- CPU is counted in cpuacct cgroups where they can be made (root): a sandboxed kernel killed before
  anything waited for it is counted too, which ``getrusage`` would miss.

It prints the ratio grader / serial (lower is better; the issue's goal is at most 0.40x on 2 cores),
the median per notebook on each side, and where the grader's time goes, from the per-submission
``timings`` of each ``result.json``. No assertions: figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REAL = REPO.parent / "shared" / "real"
sys.path.insert(0, str(REPO))

HONEST_PREFIXES = ("full-marks__", "loses-", "partial__", "zero__")
BENCH_SECRET = os.urandom(16).hex()

# result.json timing keys, in the order of the pipeline; "critical" says whether a submission waits
# for the step (a warmed kernel starts and imports while another submission runs)
STEPS = (
    ("load", "load + normalize"),
    ("execute_kernel_wait", "wait for a warmed kernel"),
    ("execute_kernel_start", "kernel start"),
    ("execute_preamble", "preamble (shims, cap)"),
    ("execute_imports", "imports (torch, transformers)"),
    ("execute_cells", "cells"),
    ("execute_probe", "probes"),
    ("execute_shutdown", "kernel shutdown"),
    ("compare", "compare (checks)"),
    ("render", "render reports"),
)


def honest_notebooks(real: Path | None) -> list[Path]:
    found = sorted(p for p in (REPO / "submissions").glob("*.ipynb") if p.name.startswith(HONEST_PREFIXES))
    if real is not None and real.is_dir():
        found += sorted(real.glob("*.ipynb"))
    if not found:
        raise SystemExit("no honest sample notebooks under submissions/")
    return found


def stage(notebooks: list[Path], folder: Path) -> list[Path]:
    """Copies in a temporary folder: the batch's source (the real notebooks never enter the repo)."""
    folder.mkdir(parents=True, exist_ok=True)
    staged = []
    for path in notebooks:
        prefix = "" if path.parent == REPO / "submissions" else "real-"
        dst = folder / f"{prefix}{path.name}"
        shutil.copyfile(path, dst)
        staged.append(dst)
    return staged


# --- the serial baseline ------------------------------------------------------------------------


@dataclass(frozen=True)
class SerialRun:
    name: str
    seconds: float
    errors: int  # cells that raised (the notebook's own errors: both sides see the same ones)
    cpu: float  # CPU seconds of the benchmark process and the kernel


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


class CpuAccount:
    """CPU seconds used by a side: its processes and every process they start, killed ones included.

    A cpuacct cgroup (v1, needs root) counts a sandboxed kernel that was SIGKILLed before anything
    waited for it; ``getrusage`` (the fallback) misses those, so it undercounts the grader."""

    def __init__(self, name: str) -> None:
        self.group: Path | None = CPUACCT / f"nbgrade-bench-{os.getpid()}-{name}"
        try:
            self.group.mkdir()
        except OSError:
            self.group = None

    @property
    def exact(self) -> bool:
        return self.group is not None

    def seconds(self) -> float:
        if self.group is not None:
            return int((self.group / "cpuacct.usage").read_text()) / 1e9
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    def enter(self) -> None:
        """Count this process (and the kernels it starts from now on) here."""
        if self.group is not None:
            (self.group / "cgroup.procs").write_text(str(os.getpid()))

    def leave(self) -> None:
        if self.group is not None:
            (CPUACCT / "cgroup.procs").write_text(str(os.getpid()))

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv``, started inside this account."""
        if self.group is None:
            return argv
        return ["sh", "-c", f'echo $$ > "{self.group}/cgroup.procs" && exec "$@"', "sh", *argv]

    def close(self) -> None:
        for _ in range(50):  # a killed kernel may take a moment to leave
            if self.group is None or not self.group.exists():
                return
            try:
                self.group.rmdir()
            except OSError:
                time.sleep(0.1)
        if self.group is not None and self.group.exists():
            print(f"note: {self.group} is still in use; remove it with rmdir once its processes are gone")


def measured(account: CpuAccount, fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``fn()``."""
    c0, t0 = account.seconds(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, account.seconds() - c0


class Baseline:
    """Plain nbclient in the grader's kernel environment: a kernelspec for the rubric's kernel
    interpreter (what ``python -m ipykernel install`` would register), the store's environment, the
    Colab stand-ins, and the training cap as a first cell."""

    def __init__(self, work: Path, rubric: str, cell_timeout: float | None, account: CpuAccount) -> None:
        from grader.kernel.envs import interpreter
        from grader.kernel.store import check_store, store_root
        from grader.pack.rubric import load_rubric

        self.rubric = load_rubric(rubric)
        self.store = store_root()
        check_store(self.store)
        self.cell_timeout = cell_timeout or self.rubric.limits.cell_timeout
        python = interpreter(self.rubric.kernel.env(None))
        spec_dir = work / "jupyter" / "kernels" / "grading-env"
        spec_dir.mkdir(parents=True, exist_ok=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "grading environment", "language": "python"}))
        os.environ["JUPYTER_PATH"] = str(work / "jupyter") + os.pathsep + os.environ.get("JUPYTER_PATH", "")
        self.work = work
        self.account = account

    def env(self, workdir: Path) -> dict[str, str]:
        from grader.kernel.store import prepare_scratch, read_manifest, store_env
        from grader.steps.execute import ExecConfig, _kernel_env  # the very variables a grading kernel gets

        scratch = prepare_scratch(self.store, workdir / ".hf-scratch")
        models = [e.id for e in read_manifest(self.store).entries if e.kind == "model"]
        kernel_vars = {**store_env(self.store, scratch), "GRADER_STORE_MODELS": ",".join(models)}
        if self.rubric.kernel.platform == "colab":
            from grader.kernel.platforms import colab

            colab.prepare_workdir(workdir)
            kernel_vars = colab.kernel_env(kernel_vars)
        config = ExecConfig(max_train_steps=self.rubric.limits.max_train_steps, torch_threads=None, env=kernel_vars)
        return {**os.environ, **_kernel_env(config, workdir)}

    def run(self, notebook: Path) -> SerialRun:
        import nbformat
        from nbclient import NotebookClient
        from nbformat.v4 import new_code_cell

        from grader.steps.notebook import neutralize

        t0, c0 = time.perf_counter(), self.account.seconds()
        nb = nbformat.read(notebook, as_version=4)
        nb, _ = neutralize(nb, self.rubric.kernel.platform)  # the %pip lines an instructor would delete
        nb.cells.insert(0, new_code_cell(self.rubric.kernel_preamble))  # the same training cap and shims
        workdir = Path(tempfile.mkdtemp(prefix="serial-", dir=self.work))
        try:
            client = NotebookClient(nb, timeout=int(self.cell_timeout), kernel_name="grading-env", allow_errors=True,
                                    resources={"metadata": {"path": str(workdir)}})
            client.execute(cwd=str(workdir), env=self.env(workdir))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        seconds = time.perf_counter() - t0
        errors = sum(1 for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "error")
        return SerialRun(notebook.name, seconds, errors, self.account.seconds() - c0)


# --- the grader -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchRun:
    wall: float
    cpu: float
    timings: dict[str, dict[str, float]]  # submission id -> result.json timings
    statuses: dict[str, str]
    points: dict[str, float]


def grader_batch(tree: Path, src: Path, out: Path, workers: int, extra: list[str], account: CpuAccount) -> BatchRun:
    """``grader batch`` from checkout ``tree``, as its own process (the store and the kernel
    environments are this checkout's, so that every tree grades in the same environment)."""
    argv = ["batch", str(src), "--out", str(out), "--no-similarity", *extra]
    if workers:
        argv += ["--workers", str(workers)]
    code = f"import sys; sys.path.insert(0, {str(tree)!r}); from grader.cli.main import main; sys.exit(main({argv!r}))"
    env = {**os.environ, "GRADER_STORE": os.environ.get("GRADER_STORE", str(REPO / ".store")),
           "GRADER_ENVS": os.environ.get("GRADER_ENVS", str(REPO / ".kenv")),
           # one secret for every tree: the same probe inputs, so that their grades can be compared
           "GRADER_SECRET": os.environ.get("GRADER_SECRET", BENCH_SECRET)}
    done: list[subprocess.CompletedProcess[str]] = []
    wall, cpu = measured(account, lambda: done.append(subprocess.run(account.wrap([sys.executable, "-c", code]), cwd=tree,
                                                                       env=env, capture_output=True, text=True, check=False)))
    if done[0].returncode not in (0, 1):
        raise SystemExit(f"grader batch ({tree}) exited {done[0].returncode}:\n{done[0].stderr[-3000:]}")
    timings: dict[str, dict[str, float]] = {}
    statuses: dict[str, str] = {}
    points: dict[str, float] = {}
    for path in sorted(out.glob("*/result.json")):
        data: dict[str, Any] = json.loads(path.read_text())
        sid = path.parent.name
        timings[sid] = {k: float(v) for k, v in data.get("timings", {}).items()}
        statuses[sid] = f"{data.get('status')}/{data.get('kernel_status')}"
        points[sid] = float(data.get("auto_points") or 0.0)
    return BatchRun(wall, cpu, timings, statuses, points)


# --- report ---------------------------------------------------------------------------------------


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def breakdown(label: str, runs: list[BatchRun], workers: int) -> None:
    """Where a grader's time goes, from the result.json timings of every submission it graded."""
    per_sub = [t for run in runs for t in run.timings.values()]
    if not per_sub:
        return
    totals = [t.get("total", 0.0) + t.get("render", 0.0) for t in per_sub]
    grand = sum(totals)
    warm = [t for t in per_sub if "execute_kernel_wait" in t]
    print(f"\nWhere the time of {label} goes: {len(per_sub)} submission runs, {len(warm)} of them on a kernel "
          f"warmed ahead (its start, preamble and imports ran while the worker's previous submission did, "
          f"off the critical path; the submission waited only for 'wait for a warmed kernel').")
    print("| step | median s | on the critical path, sum s | share | off the path, sum s |\n|---|---|---|---|---|")
    on_path = 0.0
    for key, name in STEPS:
        values = [t[key] for t in per_sub if key in t]
        if not values:
            continue
        ahead = key in ("execute_kernel_start", "execute_preamble", "execute_imports")
        on = sum(t[key] for t in per_sub if key in t and not (ahead and "execute_kernel_wait" in t))
        off = sum(values) - on
        on_path += on
        print(f"| {name} | {statistics.median(values):.2f} | {on:.1f} | {100 * on / grand:.0f} % | {off:.1f} |")
    other = grand - on_path
    print(f"| other (store check, inputs, workdir, saved files, clean-up) | - | {other:.1f} | {100 * other / grand:.0f} % | - |")
    print(f"| per-submission time, total | {statistics.median(totals):.2f} | {grand:.1f} | 100 % | - |")
    wall = sum(r.wall for r in runs)
    print(f"\n{label}: {workers} worker(s); batch wall {wall:.1f} s against per-submission time / workers "
          f"{grand / workers:.1f} s (the rest: the grader's start-up, workers importing the grading stack, ingest, "
          f"gradebook, overview, a worker idle at the end)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="rounds; each runs every side, alternating the order")
    parser.add_argument("--workers", type=int, default=0, help="pool size (default: grader batch's own choice)")
    parser.add_argument("--real", type=Path, default=REAL, help="the real notebooks' folder (default: ../shared/real)")
    parser.add_argument("--no-real", action="store_true", help="leave out the real notebooks even when present")
    parser.add_argument("--cell-timeout", type=float, default=None, help="serial side (default: the rubric's)")
    parser.add_argument("--rubric", default="assignment3", help="the rubric pack the samples belong to")
    parser.add_argument("--only", default="", help="only notebooks whose name contains this (quick checks)")
    parser.add_argument("--out", type=Path, help="work folder (default: a temporary one, removed afterwards)")
    parser.add_argument("--grader-tree", type=Path, action="append", default=[],
                        help="run grader batch from this checkout (repeat; default: this one)")
    parser.add_argument("--grader-arg", action="append", default=[], help="extra argument to grader batch (repeat)")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=ARGS",
                        help="run each tree's grader batch once per variant, with ARGS (space-separated) added: "
                             "e.g. --variant forked= --variant 'fresh=--no-fork-kernels' (repeat)")
    args = parser.parse_args()

    from grader.course.pool import available_cpus, default_workers
    from grader.kernel.store import activate

    activate()
    root = args.out or Path(tempfile.mkdtemp(prefix="bench-batch-"))
    root.mkdir(parents=True, exist_ok=True)
    notebooks = stage([p for p in honest_notebooks(None if args.no_real else args.real) if args.only in p.name], root / "src")
    accounts = {"serial": CpuAccount("serial")}
    baseline = Baseline(root, args.rubric, args.cell_timeout, accounts["serial"])
    workers = args.workers or default_workers()
    cores = available_cpus()
    variants = [(v.split("=", 1)[0], v.split("=", 1)[1].split() if "=" in v else []) for v in args.variant] or [("", [])]
    trees = {f"grader ({t.resolve()}){' ' + name if name else ''}": (t.resolve(), extra)
             for t in args.grader_tree or [REPO] for name, extra in variants}
    accounts.update({label: CpuAccount(f"grader{i}") for i, label in enumerate(trees)})
    n = len(notebooks)
    print(f"{n} notebooks ({sum(1 for p in notebooks if p.name.startswith('real-'))} real), {workers} worker(s), "
          f"{cores} CPUs, {args.rounds} round(s), work folder {root}; CPU seconds from "
          f"{'cpuacct cgroups' if accounts['serial'].exact else 'getrusage (kernels killed unwaited are missed)'}", flush=True)

    sides = ["serial", *trees]
    serial_runs: list[list[SerialRun]] = []
    batch_runs: dict[str, list[BatchRun]] = {label: [] for label in trees}
    for r in range(args.rounds):
        order = sides[r % len(sides):] + sides[:r % len(sides)]  # each side goes first in turn
        for side in order:
            print(f"round {r + 1}: {side} (load {loadavg()})", flush=True)
            if side == "serial":
                runs = []
                accounts["serial"].enter()
                try:
                    for path in notebooks:
                        runs.append(baseline.run(path))
                        print(f"  serial {runs[-1].name}: {runs[-1].seconds:.1f} s ({runs[-1].errors} cell errors)", flush=True)
                finally:
                    accounts["serial"].leave()
                serial_runs.append(runs)
            else:
                out = root / f"out-{r}-{len(batch_runs[side])}-{list(trees).index(side)}"
                shutil.rmtree(out, ignore_errors=True)
                tree, extra = trees[side]
                batch_runs[side].append(grader_batch(tree, root / "src", out, workers,
                                                      ["--rubric", args.rubric, *args.grader_arg, *extra], accounts[side]))
                print(f"  grader batch: {batch_runs[side][-1].wall:.1f} s", flush=True)

    print(f"\nload average at the end: {loadavg()}")
    s_all = sum(x.seconds for runs in serial_runs for x in runs)
    s_cpu = sum(x.cpu for runs in serial_runs for x in runs)
    print("\n| side | round | wall s | CPU s | ratio to serial (wall) |\n|---|---|---|---|---|")
    for r, runs in enumerate(serial_runs):
        print(f"| serial nbclient | {r + 1} | {sum(x.seconds for x in runs):.1f} | {sum(x.cpu for x in runs):.1f} | 1 |")
    for label, b_runs in batch_runs.items():
        for r, (s_runs, b) in enumerate(zip(serial_runs, b_runs, strict=True)):
            print(f"| {label} | {r + 1} | {b.wall:.1f} | {b.cpu:.1f} | {b.wall / sum(x.seconds for x in s_runs):.2f}x |")
    print(f"\nSerial nbclient: {s_all:.1f} s in all, median {statistics.median(x.seconds for runs in serial_runs for x in runs):.1f} s "
          f"per notebook, {s_cpu / (n * len(serial_runs)):.1f} CPU s per notebook.")
    for label, b_runs in batch_runs.items():
        b_all = sum(b.wall for b in b_runs)
        b_cpu = sum(b.cpu for b in b_runs)
        b_med = statistics.median(t.get("total", 0.0) + t.get("render", 0.0) for b in b_runs for t in b.timings.values())
        print(f"{label}: {b_all:.1f} s in all, ratio grader/serial **{b_all / s_all:.2f}x** (goal <= 0.40x); "
              f"median {b_med:.1f} s per submission, {b_all / (n * len(b_runs)):.1f} s of batch wall per notebook; "
              f"{b_cpu / (n * len(b_runs)):.1f} CPU s per notebook, so on {cores} cores no less than "
              f"{b_cpu / cores / s_all * len(serial_runs) / len(b_runs):.2f}x whatever the scheduling.")
    print("\n| notebook | serial s (per round) | " + " | ".join(f"{label} s (per round), status, points" for label in batch_runs)
          + " |\n|" + "---|" * (2 + len(batch_runs)))
    for i, path in enumerate(notebooks):
        sid = path.stem
        cells = [path.name, " / ".join(f"{runs[i].seconds:.1f}" for runs in serial_runs)]
        for b_runs in batch_runs.values():
            times = " / ".join(f"{b.timings.get(sid, {}).get('total', float('nan')):.1f}" for b in b_runs)
            cells.append(f"{times}, {b_runs[-1].statuses.get(sid, '?')}, {b_runs[-1].points.get(sid, 0.0):g}")
        print("| " + " | ".join(cells) + " |")
    for label, b_runs in batch_runs.items():
        breakdown(label, b_runs, workers)
    for account in accounts.values():
        account.close()
    if args.out is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
