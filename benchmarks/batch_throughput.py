"""Batch throughput: ``grader batch`` with its pool vs the same notebooks run one after another by
plain nbclient in the same grading environment, and the re-grade time of the unchanged batch.

    .venv/bin/python benchmarks/batch_throughput.py [--copies 20] [--workers N] [--out DIR] [--skip-serial]

Goals (the issue): pool at least 1.8x faster than serial nbclient on a 2-core machine; re-grade of
the unchanged batch under 0.5 s per submission.

The serial baseline gets what every grading kernel gets (the offline store's environment, the
course-era API shims with the training-step cap, the same working-directory layout) but nothing of
the grader's own work (no sandbox, probes, checks, reports): it is the cost of just running the
notebooks. It keeps the default thread settings, since one kernel alone may use every core.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_copies(out: Path, copies: int) -> list[Path]:
    samples = sorted((REPO / "submissions").glob("*.ipynb"))
    if not samples:
        raise SystemExit("no sample submissions under submissions/")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(copies):
        src = samples[i % len(samples)]
        dst = out / f"{i:02d}-{src.stem}.ipynb"
        shutil.copyfile(src, dst)
        paths.append(dst)
    return paths


def serial_nbclient(notebooks: list[Path], cell_timeout: float) -> list[float]:
    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell

    from grader.execute import PREAMBLE
    from grader.rubric import load_rubric
    from grader.store import store_env, store_root

    rubric = load_rubric(None)
    env = {**__import__("os").environ, **store_env(store_root())}
    env["GRADER_MAX_TRAIN_STEPS"] = str(rubric.limits.max_train_steps)
    env["PYTHONPATH"] = str(REPO) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update({"TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"})
    times = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nb.cells.insert(0, new_code_cell(PREAMBLE))
        with tempfile.TemporaryDirectory(prefix="bench-serial-") as work:
            t0 = time.perf_counter()
            client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", allow_errors=True,
                                    resources={"metadata": {"path": work}})
            client.execute(env=env)
            times.append(time.perf_counter() - t0)
        print(f"  serial {path.name}: {times[-1]:.1f}s", flush=True)
    return times


def pooled(src: Path, out: Path, workers: int) -> float:
    from grader.cli import main

    t0 = time.perf_counter()
    code = main(["batch", str(src), "--out", str(out), "--workers", str(workers), "--no-similarity"])
    wall = time.perf_counter() - t0
    if code not in (0, 1):
        raise SystemExit(f"grader batch exited {code}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=20, help="notebooks in the batch (copies of the samples, cycled)")
    parser.add_argument("--workers", type=int, default=0, help="pool size (default: grader batch's own choice)")
    parser.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--skip-serial", action="store_true", help="only the pool and the re-grade")
    parser.add_argument("--cell-timeout", type=float, default=300.0)
    args = parser.parse_args()

    from grader.batch import default_workers

    root = args.out or Path(tempfile.mkdtemp(prefix="bench-batch-"))
    if root.exists():
        shutil.rmtree(root / "out", ignore_errors=True)
    notebooks = make_copies(root / "src", args.copies)
    workers = args.workers or default_workers()
    n = len(notebooks)
    print(f"{n} notebooks, {workers} worker(s), work folder {root}", flush=True)

    serial = None if args.skip_serial else serial_nbclient(notebooks, args.cell_timeout)
    pool_wall = pooled(root / "src", root / "out", workers)
    regrade_wall = pooled(root / "src", root / "out", workers)

    print("\n| measure | value |\n|---|---|")
    if serial is not None:
        print(f"| serial nbclient, total | {sum(serial):.1f} s ({statistics.median(serial):.1f} s median per notebook) |")
    print(f"| grader batch, {workers} workers, total | {pool_wall:.1f} s ({pool_wall / n:.2f} s per notebook) |")
    if serial is not None:
        print(f"| speed-up (serial / pool) | {sum(serial) / pool_wall:.2f}x (goal >= 1.8x) |")
    print(f"| re-grade of the unchanged batch | {regrade_wall:.2f} s ({regrade_wall / n:.3f} s per submission; goal < 0.5 s) |")


if __name__ == "__main__":
    main()
