"""The outputs (result.json, reports, grades.csv, the overview) brought up to date after saves,
in one background thread.

Why not in the request: rewriting grades.csv and the overview reads every submission's result,
which with a few hundred submissions takes longer than a keystroke (benchmarks/review_scoring.py).
The gradebook, which is the truth, is written before the page gets its answer; the files follow a
moment later, several saves coalesced into one rewrite. Stopping the server waits for them.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from grader.course.gradebook import Gradebook
from grader.course.manual import refresh_outputs


class OutputRefresher:
    def __init__(self, gradebook: Path, out_dir: Path | None = None) -> None:
        self.gradebook = gradebook
        self.out_dir = out_dir
        self.warnings: list[str] = []
        self._pending: set[str] = set()
        self._busy = False
        self._stop = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="review-outputs", daemon=True)
        self._thread.start()

    def submit(self, submission_ids: Iterable[str]) -> None:
        with self._cond:
            self._pending.update(submission_ids)
            self._cond.notify_all()

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every submitted change is in the files; False if that took too long."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout=timeout)

    def close(self, timeout: float = 60.0) -> None:
        self.flush(timeout)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stop)
                if not self._pending:
                    return
                ids, self._pending, self._busy = sorted(self._pending), set(), True
            try:
                with Gradebook(self.gradebook) as gb:  # its own connection: SQLite's are per thread
                    problems = refresh_outputs(gb, ids, self.out_dir)
            except Exception as exc:  # a broken output must not stop later refreshes; say it
                problems = [f"outputs of {', '.join(ids)} not rewritten: {type(exc).__name__}: {exc}"]
            with self._cond:
                for p in problems:
                    if p not in self.warnings:  # once each: the same save problem comes back with every save
                        print(f"grader review: warning: {p}", file=sys.stderr)
                self.warnings = list(dict.fromkeys(self.warnings + problems))[-200:]
                self._busy = False
                self._cond.notify_all()
