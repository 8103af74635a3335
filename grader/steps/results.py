"""The result of grading one submission, and its JSON form (``result.json``, schema version 1).

Every step of the pipeline hands frozen dataclasses to the next; this module holds the ones that
leave the grader (the JSON that instructors' scripts read) and the atomic writer.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = 1

CheckStatus = Literal["passed", "failed", "error", "timeout", "skipped"]
SubmissionStatus = Literal["graded", "error"]
# Why a submission could not be graded (status "error"): the file (bad_input) or the harness (grader).
ErrorKind = Literal["bad_input", "grader"]
CellStatus = Literal["ok", "error", "timeout", "not_run"]
# How the kernel ended. Anything but "ok" is named in the report. "disk": the sandbox stopped the
# kernel because its working folder grew past the disk quota (grader.kernel.diskquota).
KernelStatus = Literal["ok", "timeout", "memory", "died", "output_limit", "cuda", "deadline", "disk"]


@dataclass(frozen=True)
class CheckResult:
    """One automatic check's outcome.

    ``message`` is for the student; ``detail`` (tracebacks, internals) only reaches the instructor's
    JSON and never a student-facing report.
    """

    id: str
    subtask: str
    status: CheckStatus
    points: float
    max_points: float
    hidden: bool = False
    message: str = ""
    detail: str = ""


@dataclass(frozen=True)
class CellOutcome:
    index: int
    status: CellStatus
    subtask: str | None = None
    error: str = ""  # the last traceback line ("ValueError: ..."), for the student
    seconds: float = 0.0


@dataclass(frozen=True)
class ManualItem:
    """An item a person scores. ``answer`` is what the student wrote; ``hints`` are automatic
    observations (facts the grader could check) shown to the TA."""

    id: str
    subtask: str
    max_points: float
    prompt: str
    answer: str = ""
    hints: tuple[str, ...] = ()
    points: float | None = None  # filled in by a TA (manual import)
    comment: str = ""
    reference: str = ""  # the reference answer, for TAs only: never in a student-facing report
    suggested: float | None = None  # points the grader suggests (a TA confirms or changes them); never counted by itself
    suggestion: str = ""  # why, for the TA


@dataclass(frozen=True)
class SubtaskScore:
    auto_points: float = 0.0
    auto_max: float = 0.0
    manual_max: float = 0.0
    manual_points: float | None = None


@dataclass(frozen=True)
class Note:
    """Something the report tells without deducting: API drift, sandbox layers that were off, repairs."""

    kind: Literal["drift", "colab", "sandbox", "repair", "kernel", "info"]
    message: str
    subtask: str | None = None


@dataclass(frozen=True)
class GradeResult:
    submission: str
    status: SubmissionStatus
    error: str = ""
    error_kind: ErrorKind | None = None
    source: str = ""  # the notebook's path as given
    assignment: str = ""
    auto_points: float = 0.0
    auto_max: float = 0.0
    manual_max: float = 0.0
    manual_points: float | None = None
    kernel_status: KernelStatus = "ok"
    kernel_message: str = ""
    subtasks: dict[str, SubtaskScore] = field(default_factory=dict)
    checks: tuple[CheckResult, ...] = ()
    cells: tuple[CellOutcome, ...] = ()
    manual: tuple[ManualItem, ...] = ()
    notes: tuple[Note, ...] = ()
    comments: dict[str, str] = field(default_factory=dict)  # peer "cross-feedback" blocks by subtask
    team: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    public_only: bool = False  # a student's self-check: hidden checks neither run nor named
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data = {"schema_version": self.schema_version, **{k: v for k, v in data.items() if k != "schema_version"}}
        return data

    def student_view(self) -> GradeResult:
        """The same result with every hidden check and every instructor-only detail removed."""
        from dataclasses import replace

        checks = tuple(replace(c, detail="") for c in self.checks if not c.hidden)
        manual = tuple(replace(m, reference="", hints=(), suggested=None, suggestion="") for m in self.manual)
        return replace(self, checks=checks, manual=manual, public_only=True)


def result_from_json(data: dict[str, Any]) -> GradeResult:
    """Rebuild a ``GradeResult`` from its JSON form (the gradebook and re-rendering use this)."""
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"result.json schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    d = dict(data)
    d["subtasks"] = {k: SubtaskScore(**v) for k, v in d.get("subtasks", {}).items()}
    d["checks"] = tuple(CheckResult(**c) for c in d.get("checks", ()))
    d["cells"] = tuple(CellOutcome(**c) for c in d.get("cells", ()))
    d["manual"] = tuple(ManualItem(**{**m, "hints": tuple(m.get("hints", ()))}) for m in d.get("manual", ()))
    d["notes"] = tuple(Note(**n) for n in d.get("notes", ()))
    d["team"] = tuple(d.get("team", ()))
    return GradeResult(**d)


def write_text_atomic(path: Path, text: str) -> None:
    """Write text so that a reader (or a batch killed mid-write) never sees half a file: a temp file
    beside it, fsync, rename. Line endings are written as given (a Moodle CSV keeps its CRLF).
    errors="replace": a lone surrogate (a non-UTF-8 file name from a student's zip) must not cost
    the file; it is written as U+FFFD."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_result(out_dir: Path, result: GradeResult) -> Path:
    path = out_dir / "result.json"
    write_json_atomic(path, result.to_json())
    return path
