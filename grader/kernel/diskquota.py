"""A disk quota for the folders a kernel may write: a watcher that stops the kernel past the limit.

RLIMIT_FSIZE caps one file; nothing capped the sum, so a notebook could fill the grading machine's
disk with many files (1.2 GB passed unnoticed). A size-limited tmpfs at the working folder inside
bubblewrap would give the kernel a plain ENOSPC, but the grader reads the probe result, and
``--keep-workdir`` keeps the folder, from outside the sandbox's mount namespace, where such a tmpfs
is invisible; a host-side mount needs root and mount rights that grading machines often lack. So a
thread measures the folders (every regular file's allocated size, hard links once; the number of
entries too, against millions of empty files) every ``INTERVAL`` seconds (a walk of a working
folder takes well under a millisecond; on a huge tree the watcher waits longer, so that it never takes
more than ``MAX_OVERHEAD`` of a core), and calls ``stop`` once they grew by more than the quota since
the kernel started. Between two looks a kernel can still write a little past the quota: what it
writes in one interval (a 1.5 GB/s writer: about 75 MiB). A slower first pace of 0.25 s let such a
writer put 400 MiB past a 64 MiB quota on a busy machine before the first look.

The measurement never follows symbolic links, never recurses (an explicit stack), and counts a tree
it cannot walk (deeper than ``MAX_DEPTH``, names past PATH_MAX) as over the limit: a place the
watcher cannot see is a place to hide data.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

INTERVAL = 0.05  # seconds between two measurements
MAX_OVERHEAD = 0.2  # the watcher spends at most this share of one core: it waits 1/0.2 times a walk's time
MAX_DEPTH = 64


@dataclass(frozen=True)
class Usage:
    bytes: int
    entries: int
    unreadable: str = ""  # why part of the tree could not be measured ("" when all of it was)


def measure(roots: Sequence[Path], max_entries: int) -> Usage:
    """Bytes allocated by the regular files under ``roots`` (``max(size, blocks * 512)``, so that
    data not yet allocated on disk counts) and the number of entries; stops counting entries past
    ``max_entries``."""
    total = 0
    entries = 0
    seen: set[tuple[int, int]] = set()
    todo: list[tuple[str, int]] = [(str(r), 0) for r in roots]
    while todo:
        folder, depth = todo.pop()
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    entries += 1
                    if entries > max_entries:
                        return Usage(total, entries)
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # removed while we looked
                    if stat.S_ISDIR(st.st_mode):
                        if depth + 1 > MAX_DEPTH:
                            return Usage(total, entries, f"folders nested more than {MAX_DEPTH} deep")
                        todo.append((entry.path, depth + 1))
                    elif stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        total += max(st.st_size, st.st_blocks * 512)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if folder in map(str, roots):
                continue  # the folder itself went away (the kernel is being cleaned up)
            return Usage(total, entries, f"a folder could not be measured ({exc.strerror})")
    return Usage(total, entries)


def _size(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


class DiskWatch:
    """Watches ``roots`` from a daemon thread; calls ``stop(message)`` once, when they grew past
    ``quota_bytes`` (or ``max_entries``) since :meth:`start`. ``exceeded`` then holds the message."""

    def __init__(self, roots: Sequence[Path], quota_bytes: int, max_entries: int, stop: Callable[[str], None]) -> None:
        self.roots = tuple(roots)
        self.quota = quota_bytes
        self.max_entries = max_entries
        self._stop_kernel = stop
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.exceeded: str | None = None
        self.baseline = Usage(0, 0)
        self.peak = 0

    def start(self) -> None:
        self.baseline = measure(self.roots, self.max_entries * 2)
        self._thread = threading.Thread(target=self._run, name="grader-disk-quota", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def check(self) -> str | None:
        """Measure once; the message if the quota is exceeded (and the kernel must stop)."""
        usage = measure(self.roots, self.baseline.entries + self.max_entries)
        grown = usage.bytes - self.baseline.bytes
        self.peak = max(self.peak, grown)
        if usage.unreadable:
            return f"the kernel's working folder could not be measured ({usage.unreadable}); the kernel was stopped"
        if grown > self.quota:
            return (f"the notebook wrote {_size(grown)} to its working folder, more than its disk quota of "
                    f"{_size(self.quota)}; the kernel was stopped")
        if usage.entries - self.baseline.entries > self.max_entries:
            return (f"the notebook created more than {self.max_entries:,} files and folders in its working "
                    f"folder; the kernel was stopped")
        return None

    def _run(self) -> None:
        while not self._done.is_set():
            t0 = time.monotonic()
            message = self.check()
            if message is not None:
                self.exceeded = message
                self._stop_kernel(message)
                return
            spent = time.monotonic() - t0
            self._done.wait(max(INTERVAL, spent / MAX_OVERHEAD))
