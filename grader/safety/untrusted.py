"""Reading what untrusted code wrote: a regular file only, bounded in size, time and nesting.

The kernel's probe result file, a student's notebook, a notebook unpacked from a Moodle zip: each
is bytes chosen by someone who may want to hang, exhaust or crash the grader. ``open()`` blocks for
ever on a FIFO; ``read()`` takes whatever size it is given; ``json.loads`` recurses once per level of
nesting, so 100,000 levels raise ``RecursionError`` (a ``RuntimeError``, which callers up the stack
then misreport as something else entirely, such as "the kernel could not be started"). Hence:

- :func:`read_bytes` opens with ``O_NOFOLLOW | O_NONBLOCK`` and checks the *opened* descriptor with
  ``fstat``: a symlink, FIFO, socket or device is refused at once and never blocks, and the check is
  on what was opened, not on a path that could be swapped between a check and the open. It reads at
  most ``max_bytes`` (one more byte tells a file that is too large, even one that grows while being
  read), in chunks, against a deadline.
- :func:`parse_json` measures the nesting depth of the text *before* parsing (string contents
  skipped), so ``json.loads`` never recurses deeper than ``max_depth``; ``RecursionError`` and
  ``MemoryError`` that slip through anyway become the same named refusal.
- :func:`decode_array` checks an array entry of ``kernel_probe.to_data`` (shape, dtype, element
  count, leaf types) before numpy allocates anything.

Every refusal is a :class:`Refused` (a ``ValueError``) whose message says what was wrong in words a
student can act on; callers turn it into a student-side failure, never "the grader failed".
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
DEFAULT_TIMEOUT = 10.0

# Array entries: at most this many elements declared per array, and per decoded payload in all
# (an entry without values, ``"__array__": null``, costs nothing to send and used to be allocated
# in full by the grader). 2**24 float32 values are 64 MiB.
MAX_ARRAY_ELEMENTS = 2**24
MAX_PAYLOAD_ELEMENTS = 2**26
MAX_NDIM = 32
# What ``kernel_probe.to_data`` writes for torch and numpy arrays; anything else is refused.
_NUMERIC_DTYPES = {
    "bool": "bool",
    "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "float16": "float16", "float32": "float32", "float64": "float64",
    "bfloat16": "float32",  # numpy has no bfloat16: the values were sent as plain floats
}
_UNICODE_DTYPE = re.compile(r"^[<>|=]?U\d{1,9}$")  # numpy string arrays: the width comes from the data


class Refused(ValueError):
    """Untrusted input the grader will not read or decode; the message names why."""


# --- files ----------------------------------------------------------------------------------------


def read_bytes(path: Path, *, max_bytes: int, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """The bytes of the regular file at ``path``: at most ``max_bytes`` within ``timeout`` seconds.

    Raises ``FileNotFoundError`` when nothing is there (callers say "no result"), :class:`Refused`
    for anything that is there but must not be read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Refused("it is a symbolic link, not a regular file") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise FileNotFoundError(exc.errno, exc.strerror, str(path)) from None
        if exc.errno == errno.ENXIO:  # a FIFO with no writer, a socket
            raise Refused("it is a pipe or socket, not a regular file") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"it is a {_kind(st.st_mode)}, not a regular file")
        if st.st_size > max_bytes:
            raise Refused(f"it is {_size(st.st_size)}; more than {_size(max_bytes)} is not read")
        deadline = time.monotonic() + timeout
        parts: list[bytes] = []
        got = 0
        while True:
            if time.monotonic() > deadline:
                raise Refused(f"reading it took longer than {timeout:g} s")
            try:
                block = os.read(fd, min(CHUNK, max_bytes + 1 - got))
            except BlockingIOError:  # only special files, refused above; never spin on one
                raise Refused("it could not be read without waiting") from None
            if not block:
                break
            parts.append(block)
            got += len(block)
            if got > max_bytes:  # it grew while we read it
                raise Refused(f"it is more than {_size(max_bytes)}; it was not read")
        return b"".join(parts)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover - the loop returns


def file_size_problem(path: Path, max_bytes: int) -> str | None:
    """Why ``path`` is not a regular file of at most ``max_bytes`` (``lstat``, nothing read), or None.

    For readers that only want to skip what they must not open (a team-name scan, similarity)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return f"is a {_kind(st.st_mode) if not stat.S_ISLNK(st.st_mode) else 'symbolic link'}, not a regular file"
    if st.st_size > max_bytes:
        return f"is {_size(st.st_size)}; more than {_size(max_bytes)} is not read"
    return None


# --- JSON -----------------------------------------------------------------------------------------

# A JSON string, escapes included (the unrolled form: linear, no backtracking blow-up).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def nesting_depth(text: str | bytes, limit: int) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON ``text``, counted without recursion; stops
    early and returns ``limit + 1`` once the depth passes ``limit``.

    Brackets inside strings do not count. On malformed text the count can only come out too high
    (text after an unterminated string is counted as structure), never too low for the part that
    ``json.loads`` would parse before failing, so it is a safe bound to check before parsing.
    """
    import numpy as np

    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = 0
    deepest = 0
    for start in range(0, len(brackets), CHUNK):
        arr = np.frombuffer(brackets, dtype=np.uint8, count=min(CHUNK, len(brackets) - start), offset=start)
        steps = np.where((arr == ord("[")) | (arr == ord("{")), 1, -1).astype(np.int64)
        running = np.cumsum(steps) + depth
        deepest = max(deepest, int(running.max()))
        if deepest > limit:
            return limit + 1
        depth = int(running[-1])
    return deepest


def parse_json(text: str | bytes, *, max_depth: int, what: str = "the file") -> Any:
    """``json.loads`` with the nesting depth bounded first.

    ``json.JSONDecodeError`` passes through (callers describe syntax errors their own way); every
    other problem is a :class:`Refused` that starts with ``what``.
    """
    if nesting_depth(text, max_depth) > max_depth:
        raise Refused(f"{what} is nested too deeply (more than {max_depth} levels)")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise Refused(f"{what} is nested too deeply") from None
    except MemoryError:
        raise Refused(f"{what} is too large to parse") from None
    except (ValueError, UnicodeDecodeError) as exc:  # an integer of more digits than Python converts, bad bytes
        raise Refused(f"{what} is not usable JSON: {exc}") from None


def load_json(path: Path, *, max_bytes: int, max_depth: int, timeout: float = DEFAULT_TIMEOUT, what: str = "the file") -> Any:
    """:func:`read_bytes` then :func:`parse_json` (UTF-8, a BOM allowed)."""
    try:
        raw = read_bytes(path, max_bytes=max_bytes, timeout=timeout)
    except Refused as exc:
        raise Refused(f"{what}: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Refused(f"{what} is not UTF-8 text") from None
    return parse_json(text, max_depth=max_depth, what=what)


# --- arrays ---------------------------------------------------------------------------------------


class ElementBudget:
    """Elements that one decoded payload may still declare across all its arrays."""

    def __init__(self, total: int = MAX_PAYLOAD_ELEMENTS) -> None:
        self.left = total

    def spend(self, n: int) -> None:
        if n > self.left:
            raise Refused(f"the arrays declare more than {MAX_PAYLOAD_ELEMENTS:,} elements in all")
        self.left -= n


def array_shape(entry: dict[str, Any]) -> tuple[int, ...]:
    """The declared shape of an array entry, checked: a list of at most ``MAX_NDIM`` non-negative
    integers whose product is at most ``MAX_ARRAY_ELEMENTS``."""
    shape = entry.get("shape")
    if not isinstance(shape, list) or len(shape) > MAX_NDIM:
        raise Refused(f"an array's shape must be a list of at most {MAX_NDIM} sizes")
    if not all(type(s) is int and 0 <= s <= MAX_ARRAY_ELEMENTS for s in shape):
        raise Refused(f"an array's shape must hold sizes from 0 to {MAX_ARRAY_ELEMENTS:,}")
    if math.prod(shape) > MAX_ARRAY_ELEMENTS:
        raise Refused(f"an array of shape {tuple(shape)} has more than {MAX_ARRAY_ELEMENTS:,} elements")
    return tuple(shape)


def decode_array(entry: dict[str, Any], budget: ElementBudget | None = None) -> Any:
    """``{"__array__": values | null, "shape": [...], "dtype": ...}`` -> a numpy array, or a
    :class:`Refused` before anything large is allocated.

    ``values`` must be nested lists of exactly ``shape`` with leaves that fit the dtype. Without
    values (the kernel had more than it ships) the result is a read-only all-NaN float32 view of
    the declared shape: it occupies no memory, and a check reading its shape sees the truth.
    """
    import numpy as np

    shape = array_shape(entry)
    count = math.prod(shape)
    if budget is not None:
        budget.spend(count)
    values = entry.get("__array__")
    if values is None:
        return np.broadcast_to(np.float32(np.nan), shape)
    dtype = entry.get("dtype")
    if not isinstance(dtype, str):
        raise Refused("an array has no dtype")
    if dtype in _NUMERIC_DTYPES:
        np_dtype: Any = _NUMERIC_DTYPES[dtype]
        leaf_ok = _bool_leaf if dtype == "bool" else _number_leaf
    elif _UNICODE_DTYPE.match(dtype):
        np_dtype, leaf_ok = str, _str_leaf  # width from the data, never from the declared dtype
    else:
        raise Refused(f"an array has dtype {dtype[:40]!r}, which is not one the grader reads")
    leaves = _leaves(values, shape)
    if not all(leaf_ok(v) for v in leaves):
        raise Refused(f"an array of dtype {dtype} holds values of another type")
    if count == 0:  # nested empty lists lose the shape's trailing sizes: (0, 4) comes back as []
        return np.empty(shape, dtype=np_dtype)
    try:
        arr = np.asarray(values, dtype=np_dtype)
    except (OverflowError, TypeError, ValueError) as exc:
        raise Refused(f"an array's values do not fit its dtype {dtype}: {exc}") from None
    if arr.shape != shape:  # pragma: no cover - _leaves checked it
        raise Refused(f"an array of shape {arr.shape} was declared as {shape}")
    return arr


def _leaves(values: Any, shape: tuple[int, ...]) -> list[Any]:
    """The leaves of nested lists that have exactly ``shape``, walked level by level (no recursion)."""
    level = [values]
    for size in shape:
        below: list[Any] = []
        for item in level:
            if not isinstance(item, list) or len(item) != size:
                raise Refused(f"an array's values do not have its declared shape {shape}")
            below.extend(item)
        level = below
    return level


def _number_leaf(v: Any) -> bool:
    return type(v) in (int, float, bool)


def _bool_leaf(v: Any) -> bool:
    return type(v) in (bool, int)


def _str_leaf(v: Any) -> bool:
    return type(v) is str
