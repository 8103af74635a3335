"""The progress display of a batch: one line per finished submission, a live status line on a
terminal (everything a student controls is made terminal-safe).
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from grader.safety.escape import terminal_safe
from grader.steps.results import GradeResult


def _fmt_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def fmt_points(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{round(value, 2):g}"


def status_word(result: GradeResult) -> str:
    if result.status == "error":
        return "error" if result.error_kind == "grader" else "bad input"
    if result.kernel_status != "ok":
        return result.kernel_status
    return "ok"


class Progress:
    """Done / failed / running and an ETA: one line per finished submission plus a summary every
    ``interval`` seconds on a pipe or file, a single line updated in place on a terminal."""

    def __init__(
        self, total: int, *, stream: TextIO | None = None, tty: bool | None = None, interval: float = 15.0
    ) -> None:
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.total = total
        self.interval = interval
        self.workers = 1
        self.done = 0
        self.failed = 0
        self.skipped_n = 0
        self.running: dict[str, float] = {}
        self.seconds: list[float] = []
        self.t0 = time.monotonic()
        self.last_summary = self.t0
        self._line = ""

    def set_workers(self, workers: int) -> None:
        self.workers = workers
        self._emit(
            f"grading {self.total - self.skipped_n - self.done} submission(s) with {workers} worker(s)"
        )

    def skipped(self, sid: str) -> None:
        self.skipped_n += 1

    def started(self, sid: str) -> None:
        self.running[sid] = time.monotonic()
        self._redraw()

    def finished(self, sid: str, name: str, result: GradeResult, seconds: float) -> None:
        self.running.pop(sid, None)
        self.done += 1
        if result.status == "error":
            self.failed += 1
        else:
            self.seconds.append(seconds)
        label = f"{sid} ({name})" if name else sid
        if result.status == "graded":
            points = f"{fmt_points(result.auto_points)}/{fmt_points(result.auto_max)} auto"
            tail = f" [{result.kernel_status}]" if result.kernel_status != "ok" else ""
            text = f"{points}{tail}"
        else:
            text = f"{status_word(result)}: {result.error.splitlines()[0] if result.error else ''}"
        self._emit(
            f"[{self.done + self.skipped_n:>{len(str(self.total))}}/{self.total}] {label}: {text} ({seconds:.1f}s)"
        )

    def eta(self) -> float | None:
        remaining = self.total - self.done - self.skipped_n
        if not self.seconds or remaining <= 0:
            return None if remaining > 0 else 0.0
        per = sum(self.seconds) / len(self.seconds)
        running_left = sum(max(0.0, per - (time.monotonic() - t)) for t in self.running.values())
        queued = remaining - len(self.running)
        return (queued * per + running_left) / max(1, self.workers)

    def status_line(self) -> str:
        eta = self.eta()
        ok = self.done - self.failed
        parts = [f"done {ok + self.skipped_n}/{self.total}"]
        if self.skipped_n:
            parts.append(f"(unchanged {self.skipped_n})")
        parts += [f"failed {self.failed}", f"running {len(self.running)}"]
        parts.append(f"elapsed {_fmt_duration(time.monotonic() - self.t0)}")
        parts.append(f"ETA {_fmt_duration(eta)}" if eta is not None else "ETA ?")
        return " ".join(parts)

    def tick(self) -> None:
        now = time.monotonic()
        if self.tty:
            self._redraw()
        elif now - self.last_summary >= self.interval:
            self.last_summary = now
            self._emit(self.status_line())

    def close(self) -> None:
        if self.tty and self._line:
            self.stream.write("\r\x1b[K")
            self._line = ""
        self._emit(self.status_line())

    def _emit(self, text: str) -> None:
        # ids, Moodle names and error lines are the students': no escape sequence reaches the terminal
        text = terminal_safe(text)
        if self.tty:
            self.stream.write("\r\x1b[K" + text + "\n")
            self._line = ""
            self._redraw()
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _redraw(self) -> None:
        if not self.tty:
            return
        line = self.status_line()
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.stream.write("\r\x1b[K" + line[:width])
        self.stream.flush()
        self._line = line
