"""Where the time of grading one notebook goes, and what the grader adds to the notebook's own run.

Prints, for the solution notebook graded N times (sandbox on, all cores to the kernel): kernel start,
cell execution, probes, compare, render, total (medians), the grader's share (probes + compare +
render) relative to the notebook's own execution (goal: at most 10 %), and the wall time of a
student's self-check `grader check` as a whole process (goal: within 20 s).

    .venv/bin/python benchmarks/pipeline_overhead.py [--runs 3] [--notebook PATH]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--notebook", type=Path, default=REPO / "submissions" / "full-marks__solution.ipynb")
    args = ap.parse_args()

    from grader.kernel.store import activate

    activate()
    from grader.pack.rubric import load_rubric
    from grader.steps.pipeline import GradeOptions, grade_submission

    rubric = load_rubric("assignment3")
    grade_submission(args.notebook, Path(tempfile.mkdtemp()), GradeOptions(), rubric=rubric)  # warm-up: caches
    rows: dict[str, list[float]] = {}
    for _ in range(args.runs):
        r = grade_submission(args.notebook, Path(tempfile.mkdtemp()), GradeOptions(), rubric=rubric)
        assert r.status == "graded", r.error
        for key, value in r.timings.items():
            rows.setdefault(key, []).append(value)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"grading {args.notebook.name}, {args.runs} runs after a warm-up (medians, seconds)")
    for key in ("load", "execute_kernel_start", "execute_cells", "execute_probe", "compare", "render", "total"):
        if key in med:
            print(f"  {key:22s} {med[key]:8.3f}   (min {min(rows[key]):.3f}, max {max(rows[key]):.3f})")
    added = med.get("execute_probe", 0) + med.get("compare", 0) + med.get("render", 0)
    print(f"  grader's share (probes + compare + render) / notebook execution: {added:.2f} s / {med['execute_cells']:.2f} s = {100 * added / med['execute_cells']:.1f} %  (goal <= 10 %)")
    print(f"  checks alone (compare + render) / notebook execution: {100 * (med.get('compare', 0) + med.get('render', 0)) / med['execute_cells']:.1f} %")

    walls = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "grader", "check", str(args.notebook), "--out", tempfile.mkdtemp()],
                              capture_output=True, text=True, cwd=REPO)
        walls.append(time.perf_counter() - t0)
        assert proc.returncode == 0, proc.stderr[-2000:]
    print(f"self-check `grader check` wall time, whole process: median {statistics.median(walls):.1f} s (min {min(walls):.1f}, max {max(walls):.1f}; goal <= 20 s)")


if __name__ == "__main__":
    main()
