"""Kernel start-to-first-cell time with and without the sandbox (median of N runs).

    python benchmarks/sandbox_overhead.py [--runs 5]

Measures, per mode: make_kernel_manager + kernel start + the first (trivial) cell's reply, and then
``stop_kernel`` (kill + clean-up) separately. Prints one line per mode and the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import nbformat.v4 as v4
from nbclient import NotebookClient

from grader.kernel.sandbox import SandboxPolicy, make_kernel_manager, stop_kernel


async def one(policy: SandboxPolicy) -> tuple[float, float]:
    nb = v4.new_notebook(cells=[v4.new_code_cell("1 + 1")])
    with tempfile.TemporaryDirectory() as work:
        t0 = time.perf_counter()
        km, _ = make_kernel_manager(policy, Path(work), {})
        client = NotebookClient(nb, km=km, timeout=60)
        try:
            async with client.async_setup_kernel():
                await client.async_execute_cell(nb.cells[0], 0)
                t1 = time.perf_counter()
        finally:
            await stop_kernel(km, client.kc)
        return t1 - t0, time.perf_counter() - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    medians = {}
    for name, policy in (("plain", SandboxPolicy(enabled=False)), ("sandbox", SandboxPolicy())):
        runs = [asyncio.run(one(policy)) for _ in range(args.runs)]
        first = statistics.median(r[0] for r in runs)
        stop = statistics.median(r[1] for r in runs)
        medians[name] = first
        print(f"{name:8s} start-to-first-cell {first:.3f} s   stop {stop:.3f} s   (median of {args.runs})")
    print(f"overhead {medians['sandbox'] - medians['plain']:+.3f} s")


if __name__ == "__main__":
    main()
