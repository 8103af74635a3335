"""Process pools for tests that grade several notebooks at once.

Children are spawned, never forked: by the time a slow test builds its pool, earlier tests have
used torch in the pytest process, and a forked child inherits torch's OpenMP pool in a locked
state and hangs in its first matrix product (seen: a full-suite run stuck in `custom_forward`).
The batch command spawns its workers for the same reason, or forks them from a prototype process
that checked it runs a single thread (grader/course/prototype.py)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def grading_pool(workers: int, **kwargs: Any) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn"), **kwargs
    )
