"""Student-controlled text on its way out: folder names, links, terminals and spreadsheets.

A submission's file name, a Moodle full name, an error line from the student's code: each reaches
places that interpret characters. Small pure functions, one per place:

- :func:`safe_id` turns a name into an id that is safe as a folder name under ``--out`` and as a
  relative link in ``index.html``: no ``.``/``..``, no path separators, no control or format
  characters, no leading dot or dash, bounded length. Whenever it changes a name it appends a short
  hash of the original, so two different names never share an id (``a:b`` and ``a;b``); the
  original is kept for display (escaped where it is shown). :func:`unique_ids` settles the rest
  (the same name twice; names that differ only in case, which collide on macOS and Windows disks).
- :func:`terminal_safe` removes escape sequences and control characters, so a file name cannot
  retitle the instructor's terminal window, erase a line or print a fake result line.
- :func:`csv_cell` neutralises spreadsheet formulas (OWASP "CSV injection"): a cell that starts with
  ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading single quote, which every
  spreadsheet shows as text. A cell that is a plain number (``-0.5``, ``+3``, ``1e-3``) is left
  alone, so scores stay numbers a spreadsheet can sum: no formula can be written as a plain number.
  :func:`csv_uncell` undoes it for a sheet read back in (the TA sheet).
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import unicodedata
from collections.abc import Iterable

MAX_ID_LENGTH = 80
FALLBACK_ID = "submission"
# Device names Windows will not create as files, whatever the extension.
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
_ID_CHARS = re.compile(r"[^\w\-.()+, ]")  # \w is Unicode: letters and digits of any script, and "_"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def safe_id(name: str, max_length: int = MAX_ID_LENGTH) -> str:
    """A folder name and URL path segment made from ``name``: see the module docstring.

    Unchanged for the names courses use (``alice_smith``, ``full-marks__solution``, ``1234567``,
    ``Übung 3 (Kopie)``); ``..`` becomes ``submission-<hash>``, ``javascript:alert(1);0`` becomes
    ``javascript_alert(1)_0-<hash>`` (a relative path: no scheme survives without its colon).
    """
    text = unicodedata.normalize("NFKC", name)
    text = _ID_CHARS.sub("_", text)
    text = text.lstrip("._-+,() ")  # no hidden files, no option-like names, no "." or ".."
    text = text.rstrip(". ")  # Windows drops trailing dots and spaces
    head, dot, tail = text.partition(".")
    if head.casefold() in _WINDOWS_RESERVED:
        # a suffix, not a prefix: a leading "_" would be stripped when the id is read back
        text = head + "_" + dot + tail
    if text == name and 0 < len(text) <= max_length:
        return text
    suffix = "-" + _digest(name)
    room = max_length - len(suffix)
    base = text[:room].rstrip(". ") or FALLBACK_ID
    return base + suffix


def unique_ids(ids: Iterable[str]) -> list[str]:
    """``ids`` with later duplicates renamed ``<id>-2``, ``<id>-3`` ...; two ids that differ only in
    case count as duplicates (they would share a folder on a case-insensitive disk)."""
    seen: set[str] = set()
    out: list[str] = []
    for sid in ids:
        candidate, n = sid, 1
        while candidate.casefold() in seen:
            n += 1
            candidate = f"{sid}-{n}"
        seen.add(candidate.casefold())
        out.append(candidate)
    return out


# --- terminals ------------------------------------------------------------------------------------

# ESC-introduced sequences: CSI (ESC [ ... final), OSC/DCS/APC/PM/SOS (ESC ] ... BEL or ST), and
# two-character escapes; plus their 8-bit C1 forms (U+009B CSI, U+009D OSC ...).
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# Bidirectional overrides and isolates reorder what is displayed (a name can look like a score).
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def terminal_safe(text: str, *, single_line: bool = True, limit: int | None = None) -> str:
    """``text`` with escape sequences removed and every other control or bidi character replaced.

    ``single_line``: line breaks and tabs become spaces, so one value cannot start a line of its own
    (a fake ``[27/27] alice: 40/40`` under the real one). Otherwise newlines stay and each line is
    cleaned. ``limit`` cuts the result to that many characters with an ellipsis.
    """
    text = _ESCAPES.sub("", text)
    out = []
    for ch in text:
        if ch in "\n\t\r" and single_line:
            out.append(" ")
        elif ch == "\n":
            out.append(ch)
        elif ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs") or ch in ("\u2028", "\u2029"):
            out.append("?")
        else:
            out.append(ch)
    result = "".join(out)
    if limit is not None and len(result) > limit:
        result = result[: max(0, limit - 1)] + "…"
    return result


class _SafeStderrHandler(logging.StreamHandler):
    """Log records on whatever ``sys.stderr`` is when they are written, without escape sequences.

    Log messages quote file names and exception texts (``grading <path> failed: ...``) that a student
    chose; Python's own last-resort handler prints them to the terminal as they are."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setLevel(logging.WARNING)  # what the last-resort handler shows, and no more

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record), single_line=False)


def install_safe_logging(name: str = "grader") -> None:
    """Make the ``name`` logger's warnings and errors terminal-safe (once per process); the CLI and
    every batch worker call it."""
    logger = logging.getLogger(name)
    if not any(isinstance(h, _SafeStderrHandler) for h in logger.handlers):
        logger.addHandler(_SafeStderrHandler())


# --- spreadsheets ---------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")  # + fullwidth forms
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def is_plain_number(text: str) -> bool:
    return bool(_PLAIN_NUMBER.fullmatch(text))


def csv_cell(value: object) -> str:
    """One CSV cell, safe to open in a spreadsheet: see the module docstring.

    Leading whitespace does not hide a formula (``" =1+1"`` is neutralised too: some spreadsheets
    trim before they look). A cell that is only ``-`` (Moodle's "nothing here") is no formula.
    """
    text = "" if value is None else str(value)
    if not text or is_plain_number(text) or text == "-":
        return text
    if text.startswith(_FORMULA_START) or text.lstrip().startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_row(values: Iterable[object]) -> list[str]:
    return [csv_cell(v) for v in values]


def csv_uncell(text: str) -> str:
    """The value :func:`csv_cell` neutralised, for a sheet read back in."""
    if text.startswith("'") and csv_cell(text[1:]) == text:
        return text[1:]
    return text
