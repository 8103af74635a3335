"""Small helpers the tasks' runners share."""

from __future__ import annotations

import time
from typing import Any


def subset(ds: Any, rows: int | None) -> Any:
    """The first ``rows`` rows of a data set (all of them for ``None``)."""
    return ds if rows is None else ds.select(range(min(rows, len(ds))))


class Laps:
    """Named wall-clock laps: ``laps.lap("data")`` records the time since the previous lap."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._t, 3)
        self._t = now
