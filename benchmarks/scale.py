"""Scale: what the batch's parent process costs as the class grows (50, 200, 500 submissions).

    .venv/bin/python benchmarks/scale.py [--sizes 50 200 500] [--workers N] [--cluster local] [--keep DIR]

Each size is a fresh ``grader batch`` in a child process, on generated notebooks of the Assignment 3
layout that define only ``ending_names`` (one kernel each, a few seconds; the rubric grades them
whole: probes, checks, reports, gradebook, grades.csv, the overview and the similarity report). Each
notebook has a line of its own, so that no two have the same content hash.

Printed per size:
- the parent's peak RSS (``ru_maxrss`` of the batch process itself, not of its workers or kernels;
  goal: <= 300 MB at 500);
- the parent's CPU time per submission (what the parent does per submission: ingest, hashing,
  scheduling, recording, outputs; should stay flat as the class grows), and the wall time per
  submission minus the grading time the workers spent (the same overhead, as the clock sees it);
- the gradebook's size on disk (with its WAL) and per submission.

No timed assertions: figures to read, as the other scripts in benchmarks/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The child: the real CLI in-process, then its own resource usage (children excluded).
CHILD = """
import json, resource, sys, time
t0 = time.monotonic()
from grader.cli.main import main
code = main(sys.argv[2:])
ru = resource.getrusage(resource.RUSAGE_SELF)
json.dump({"code": code, "wall_s": time.monotonic() - t0, "maxrss_kib": ru.ru_maxrss,
           "cpu_s": ru.ru_utime + ru.ru_stime}, open(sys.argv[1], "w"))
"""


def make_notebooks(folder: Path, n: int) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    folder.mkdir(parents=True)
    for i in range(n):
        nb = new_notebook(cells=[
            new_markdown_cell("## **Task 2: Fine-tuning a model for multiple choice**"),
            new_markdown_cell("### Subtask 1: Loading and processing the data"),
            new_code_cell('ending_names = ["ending0", "ending1", "ending2", "ending3"]\nprint(ending_names)'),
            new_code_cell(f"student_{i} = {i} * {i % 7 + 1}  # a line of this student's own\nstudent_{i}"),
        ])
        nbformat.write(nb, folder / f"s{i:04d}.ipynb")


def grading_seconds(db: Path) -> tuple[float, int]:
    with sqlite3.connect(db) as conn:
        total, runs = conn.execute("SELECT COALESCE(SUM(seconds), 0), COUNT(*) FROM runs").fetchone()
    return float(total), int(runs)


def size_on_disk(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def run_size(n: int, work: Path, workers: int, extra: list[str]) -> dict[str, float]:
    src, out, stats = work / f"src-{n}", work / f"out-{n}", work / f"stats-{n}.json"
    make_notebooks(src, n)
    args = ["batch", str(src), "--out", str(out), "--workers", str(workers), *extra]
    with open(work / f"batch-{n}.log", "w") as log:
        subprocess.run([sys.executable, "-c", CHILD, str(stats), *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                       check=False)
    child = json.loads(stats.read_text())
    db = out / "gradebook.sqlite"
    graded_s, runs = grading_seconds(db)
    wall = float(child["wall_s"])
    return {
        "n": n, "code": child["code"], "runs": runs, "wall_s": wall,
        "peak_rss_mb": child["maxrss_kib"] / 1024,
        "parent_cpu_ms_per_sub": 1000 * float(child["cpu_s"]) / n,
        "overhead_ms_per_sub": 1000 * max(0.0, wall - graded_s / workers) / n,
        "grade_s_per_sub": graded_s / max(1, runs),
        "gradebook_mb": size_on_disk(db) / 2**20,
        "gradebook_kb_per_sub": size_on_disk(db) / 1024 / n,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cluster", default=None, help="pass --cluster to grader batch (e.g. local)")
    ap.add_argument("--rubric", default="assignment3", help="the rubric that grades the generated notebooks")
    ap.add_argument("--keep", type=Path, default=None, help="keep the notebooks and outputs in this folder")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--grader-arg", action="append", default=[], help="extra argument to grader batch (repeat)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="grader-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    extra = ["--rubric", args.rubric] + (["--cluster", args.cluster] if args.cluster else []) + args.grader_arg
    rows = []
    try:
        for n in args.sizes:
            t0 = time.monotonic()
            row = run_size(n, work, args.workers, extra)
            rows.append(row)
            print(f"# {n} submissions done in {time.monotonic() - t0:.0f} s (exit {row['code']}, {row['runs']} runs)",
                  file=sys.stderr, flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    header = ("submissions", "parent peak RSS MB", "parent CPU ms/sub", "overhead ms/sub", "grading s/sub",
              "wall s", "gradebook MB", "gradebook kB/sub")
    keys = ("n", "peak_rss_mb", "parent_cpu_ms_per_sub", "overhead_ms_per_sub", "grade_s_per_sub", "wall_s",
            "gradebook_mb", "gradebook_kb_per_sub")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{row[k]:.0f}" if k in ("n", "wall_s") else f"{row[k]:.1f}" for k in keys) + " |")
    print(f"\nworkers: {args.workers}{', cluster: ' + args.cluster if args.cluster else ''}; goal: peak RSS <= 300 MB at 500; "
          f"overhead per submission flat; cpus: {os.cpu_count()}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
