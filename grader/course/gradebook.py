"""The gradebook: one SQLite file per course assignment holding every submission, grading run,
check result, peer comment and manual score.

Why SQLite and these rules: a batch of 300 notebooks takes an evening, and it must survive being
killed at any moment. Only the batch's main process writes; each submission's run is one
transaction, committed after its ``result.json`` is on disk (WAL, ``synchronous=FULL``). A killed
batch therefore leaves either a whole run or none, and a restart skips exactly the submissions that
have a completed run for the same content hash and rubric hash.

The rubric hash names what decides execution (probes, checks, grader version), not the points:
check results are stored, so changed points re-score (``rescore``) without running a notebook.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.steps.results import GradeResult, result_from_json, write_result
from grader.steps.score import apply_manual, manual_scored, rescore_result

GRADEBOOK_SCHEMA = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submissions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    participant_id TEXT NOT NULL DEFAULT '',
    folder_name TEXT NOT NULL DEFAULT '',
    notebook TEXT,
    files TEXT NOT NULL DEFAULT '[]',
    problems TEXT NOT NULL DEFAULT '[]',
    content_hash TEXT NOT NULL,
    team TEXT NOT NULL DEFAULT '[]',
    out_dir TEXT NOT NULL DEFAULT '',
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL REFERENCES submissions(id),
    content_hash TEXT NOT NULL,
    rubric_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    status TEXT NOT NULL,
    error_kind TEXT,
    error TEXT NOT NULL DEFAULT '',
    kernel_status TEXT NOT NULL DEFAULT 'ok',
    complete INTEGER NOT NULL,
    auto_points REAL NOT NULL,
    auto_max REAL NOT NULL,
    manual_max REAL NOT NULL,
    seconds REAL NOT NULL,
    finished TEXT NOT NULL,
    result_path TEXT NOT NULL,
    result_json TEXT NOT NULL,
    UNIQUE (batch_id, submission_id, content_hash, rubric_hash, kind)
);
CREATE INDEX IF NOT EXISTS runs_by_submission ON runs (submission_id, content_hash, rubric_hash);
CREATE TABLE IF NOT EXISTS checks (
    run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    check_id TEXT NOT NULL,
    subtask TEXT NOT NULL,
    status TEXT NOT NULL,
    points REAL NOT NULL,
    max_points REAL NOT NULL,
    hidden INTEGER NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, check_id)
);
CREATE TABLE IF NOT EXISTS comments (
    run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    subtask TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (run_id, subtask)
);
CREATE TABLE IF NOT EXISTS manual_scores (
    submission_id TEXT NOT NULL REFERENCES submissions(id),
    item_id TEXT NOT NULL,
    points REAL,
    comment TEXT NOT NULL DEFAULT '',
    max_points REAL NOT NULL,
    content_hash TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    updated TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (submission_id, item_id)
);
CREATE TABLE IF NOT EXISTS manual_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    points REAL,
    comment TEXT NOT NULL,
    source TEXT NOT NULL,
    at TEXT NOT NULL
);
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass(frozen=True)
class SubmissionRecord:
    id: str
    content_hash: str
    name: str = ""
    participant_id: str = ""
    folder_name: str = ""
    notebook: str | None = None
    files: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    team: tuple[str, ...] = ()
    out_dir: str = ""

    @property
    def display_name(self) -> str:
        """The Moodle full name, else the team written in the notebook, else the id."""
        return self.name or "; ".join(self.team) or self.id


@dataclass(frozen=True)
class ManualScore:
    points: float | None
    comment: str = ""
    max_points: float = 0.0
    content_hash: str = ""  # the submission's content when it was scored
    version: int = 0  # how many times this cell was written (0: never); see ``StaleEdit``
    source: str = ""  # who wrote it last (a sheet's path, "review", ...)


class StaleEdit(Exception):
    """An edit was made on an older version of a manual score than the gradebook holds.

    Two TAs (or a TA and a sheet import) scoring the same item must never silently overwrite each
    other: a writer that says which version it saw is refused when someone wrote in between, and
    is handed what stands now (``current``) to show.
    """

    def __init__(self, submission_id: str, item_id: str, current: ManualScore) -> None:
        super().__init__(f"{submission_id} / {item_id}: changed meanwhile (now version {current.version})")
        self.submission_id = submission_id
        self.item_id = item_id
        self.current = current


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    kind: str
    batch_id: str
    rubric_hash: str
    content_hash: str
    complete: bool
    seconds: float
    finished: str
    result_path: Path


@dataclass(frozen=True)
class Entry:
    """A submission as it stands now: its latest run's result with the manual scores laid over it."""

    submission: SubmissionRecord
    run: RunInfo
    result: GradeResult  # manual scores applied

    @property
    def total(self) -> float:
        """Automatic points plus the manual points given so far."""
        return round(self.result.auto_points + manual_scored(self.result), 4)


def run_is_complete(result: GradeResult) -> bool:
    """A run counts as done unless the harness itself failed (then the next batch retries it)."""
    return result.status == "graded" or result.error_kind == "bad_input"


class Gradebook:
    """A gradebook file. Use as a context manager; every write method is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(_SCHEMA)
        self._add_missing_columns()
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(GRADEBOOK_SCHEMA))
        elif int(version) != GRADEBOOK_SCHEMA:
            raise ValueError(f"{path}: gradebook schema {version}, this grader reads {GRADEBOOK_SCHEMA}")

    def _add_missing_columns(self) -> None:
        """Columns added after a gradebook file was made (additive, so the schema number stays)."""
        have = {r["name"] for r in self.conn.execute("PRAGMA table_info(manual_scores)")}
        if "version" not in have:
            self.conn.execute("ALTER TABLE manual_scores ADD COLUMN version INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- meta ---------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    # --- submissions and runs ---------------------------------------------------------------------

    def upsert_submission(self, rec: SubmissionRecord) -> None:
        now = _now()
        with self._tx() as c:
            c.execute(
                """INSERT INTO submissions (id, name, participant_id, folder_name, notebook, files, problems,
                       content_hash, team, out_dir, first_seen, last_seen)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET name = excluded.name, participant_id = excluded.participant_id,
                       folder_name = excluded.folder_name, notebook = excluded.notebook, files = excluded.files,
                       problems = excluded.problems, content_hash = excluded.content_hash,
                       team = CASE WHEN excluded.team = '[]' THEN submissions.team ELSE excluded.team END,
                       out_dir = excluded.out_dir, last_seen = excluded.last_seen""",
                (rec.id, rec.name, rec.participant_id, rec.folder_name, rec.notebook, json.dumps(list(rec.files)),
                 json.dumps(list(rec.problems)), rec.content_hash, json.dumps(list(rec.team)), rec.out_dir, now, now),
            )

    def submission(self, submission_id: str) -> SubmissionRecord | None:
        row = self.conn.execute("SELECT * FROM submissions WHERE id = ?", (submission_id,)).fetchone()
        return None if row is None else _submission(row)

    def submissions(self) -> list[SubmissionRecord]:
        return [_submission(r) for r in self.conn.execute("SELECT * FROM submissions ORDER BY id")]

    def completed_run(self, submission_id: str, content_hash: str, rubric_hash: str) -> RunInfo | None:
        row = self.conn.execute(
            """SELECT * FROM runs WHERE submission_id = ? AND content_hash = ? AND rubric_hash = ? AND complete = 1
               ORDER BY run_id DESC LIMIT 1""",
            (submission_id, content_hash, rubric_hash),
        ).fetchone()
        return None if row is None else _run(row)

    def record_run(
        self,
        submission_id: str,
        content_hash: str,
        rubric_hash: str,
        result: GradeResult,
        result_path: Path,
        *,
        seconds: float,
        batch_id: str,
        kind: str = "grade",
    ) -> int:
        """Store one run with its checks and peer comments, in one transaction; returns its id.

        Idempotent per (batch, submission, content, rubric, kind): recording the same run twice
        replaces it instead of adding a second one.
        """
        with self._tx() as c:
            old = c.execute(
                "SELECT run_id FROM runs WHERE batch_id = ? AND submission_id = ? AND content_hash = ? AND rubric_hash = ? AND kind = ?",
                (batch_id, submission_id, content_hash, rubric_hash, kind),
            ).fetchone()
            if old is not None:
                c.execute("DELETE FROM runs WHERE run_id = ?", (old["run_id"],))
            cur = c.execute(
                """INSERT INTO runs (submission_id, content_hash, rubric_hash, kind, batch_id, status, error_kind, error,
                       kernel_status, complete, auto_points, auto_max, manual_max, seconds, finished, result_path, result_json)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (submission_id, content_hash, rubric_hash, kind, batch_id, result.status, result.error_kind, result.error,
                 result.kernel_status, int(run_is_complete(result)), result.auto_points, result.auto_max, result.manual_max,
                 seconds, _now(), str(result_path), json.dumps(result.to_json(), ensure_ascii=False)),
            )
            run_id = int(cur.lastrowid or 0)
            c.executemany(
                """INSERT INTO checks (run_id, check_id, subtask, status, points, max_points, hidden, message)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                [(run_id, ch.id, ch.subtask, ch.status, ch.points, ch.max_points, int(ch.hidden), ch.message) for ch in result.checks],
            )
            c.executemany(
                "INSERT INTO comments (run_id, subtask, text) VALUES (?, ?, ?)",
                [(run_id, sub, text) for sub, text in result.comments.items()],
            )
            if result.team:
                c.execute("UPDATE submissions SET team = ? WHERE id = ?", (json.dumps(list(result.team)), submission_id))
        return run_id

    def run_count(self, submission_id: str | None = None) -> int:
        if submission_id is None:
            return int(self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
        return int(self.conn.execute("SELECT COUNT(*) FROM runs WHERE submission_id = ?", (submission_id,)).fetchone()[0])

    def latest_run(self, submission_id: str) -> tuple[RunInfo, GradeResult] | None:
        row = self.conn.execute(
            "SELECT * FROM runs WHERE submission_id = ? ORDER BY run_id DESC LIMIT 1", (submission_id,)
        ).fetchone()
        if row is None:
            return None
        return _run(row), result_from_json(json.loads(row["result_json"]))

    def check_rows(self) -> list[sqlite3.Row]:
        """Check results of every submission's latest run (for pass rates)."""
        return list(
            self.conn.execute(
                """SELECT c.* FROM checks c JOIN runs r ON r.run_id = c.run_id
                   WHERE r.run_id = (SELECT MAX(run_id) FROM runs WHERE submission_id = r.submission_id)"""
            )
        )

    # --- manual scores ------------------------------------------------------------------------------

    def set_manual(
        self,
        submission_id: str,
        item_id: str,
        score: ManualScore,
        *,
        source: str,
        expected_version: int | None = None,
    ) -> int:
        """Store one manual score and log it; returns the cell's new version.

        With ``expected_version`` (the version the writer last saw; 0 for a cell never written)
        the write is refused with ``StaleEdit`` if anyone wrote the cell since: the check and the
        write are one transaction, so of two TAs saving at once exactly one wins.
        """
        now = _now()
        with self._tx() as c:
            row = c.execute("SELECT * FROM manual_scores WHERE submission_id = ? AND item_id = ?", (submission_id, item_id)).fetchone()
            current = 0 if row is None else int(row["version"])
            if expected_version is not None and expected_version != current:
                raise StaleEdit(submission_id, item_id, ManualScore(None, max_points=score.max_points) if row is None else _manual_score(row))
            c.execute(
                """INSERT INTO manual_scores (submission_id, item_id, points, comment, max_points, content_hash, source, updated, version)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(submission_id, item_id) DO UPDATE SET points = excluded.points, comment = excluded.comment,
                       max_points = excluded.max_points, content_hash = excluded.content_hash, source = excluded.source,
                       updated = excluded.updated, version = excluded.version""",
                (submission_id, item_id, score.points, score.comment, score.max_points, score.content_hash, source, now, current + 1),
            )
            c.execute(
                "INSERT INTO manual_log (submission_id, item_id, points, comment, source, at) VALUES (?, ?, ?, ?, ?, ?)",
                (submission_id, item_id, score.points, score.comment, source, now),
            )
        return current + 1

    def manual_scores(self, submission_id: str) -> dict[str, ManualScore]:
        rows = self.conn.execute("SELECT * FROM manual_scores WHERE submission_id = ?", (submission_id,))
        return {r["item_id"]: _manual_score(r) for r in rows}

    # --- what stands now ----------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every submission that has a run, with its latest run and manual scores applied."""
        out: list[Entry] = []
        for rec in self.submissions():
            latest = self.latest_run(rec.id)
            if latest is None:
                continue
            run, result = latest
            out.append(Entry(submission=rec, run=run, result=apply_manual(result, self.manual_scores(rec.id))))
        return out


def _submission(row: sqlite3.Row) -> SubmissionRecord:
    return SubmissionRecord(
        id=row["id"],
        content_hash=row["content_hash"],
        name=row["name"],
        participant_id=row["participant_id"],
        folder_name=row["folder_name"],
        notebook=row["notebook"],
        files=tuple(json.loads(row["files"])),
        problems=tuple(json.loads(row["problems"])),
        team=tuple(json.loads(row["team"])),
        out_dir=row["out_dir"],
    )


def _manual_score(row: sqlite3.Row) -> ManualScore:
    return ManualScore(points=row["points"], comment=row["comment"], max_points=row["max_points"],
                       content_hash=row["content_hash"], version=int(row["version"]), source=row["source"])


def _run(row: sqlite3.Row) -> RunInfo:
    return RunInfo(
        run_id=int(row["run_id"]),
        kind=row["kind"],
        batch_id=row["batch_id"],
        rubric_hash=row["rubric_hash"],
        content_hash=row["content_hash"],
        complete=bool(row["complete"]),
        seconds=float(row["seconds"]),
        finished=row["finished"],
        result_path=Path(row["result_path"]),
    )


# --- scores -----------------------------------------------------------------------------------------


def needs_rescore(result: GradeResult, points: Mapping[str, float], manual_max: Mapping[str, float] | None = None) -> bool:
    manual_max = manual_max or {}
    return any(ch.id in points and abs(points[ch.id] - ch.max_points) > 1e-9 for ch in result.checks) or any(
        m.id in manual_max and abs(manual_max[m.id] - m.max_points) > 1e-9 for m in result.manual
    )


def rescore(
    gradebook: Gradebook,
    points: Mapping[str, float],
    manual_max: Mapping[str, float] | None = None,
    *,
    batch_id: str | None = None,
) -> list[str]:
    """Re-score every submission whose checks' (or manual items') maxima differ from the rubric's.

    ``points`` is {check id: max points}, ``manual_max`` {manual item id: max points}. Each
    re-scored submission gets a new run of kind ``rescore`` built from the stored check results;
    its ``result.json`` is rewritten (manual scores applied) before the run is committed. Returns
    the ids re-scored.
    """
    batch_id = batch_id or f"rescore-{uuid.uuid4().hex}"
    changed: list[str] = []
    for rec in gradebook.submissions():
        latest = gradebook.latest_run(rec.id)
        if latest is None:
            continue
        run, result = latest
        if result.status != "graded" or not needs_rescore(result, points, manual_max):
            continue
        new = rescore_result(result, points, manual_max)
        write_result(run.result_path.parent, apply_manual(new, gradebook.manual_scores(rec.id)))
        gradebook.record_run(rec.id, run.content_hash, run.rubric_hash, new, run.result_path, seconds=0.0, batch_id=batch_id, kind="rescore")
        changed.append(rec.id)
    return changed


def subtask_order(keys: Sequence[str] | set[str]) -> list[str]:
    """"1.1" < "1.2" < "1.10" < "2.1": numeric where the parts are numbers."""

    def key(s: str) -> tuple[Any, ...]:
        return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in s.split("."))

    return sorted(keys, key=key)


def find_gradebook(given: Path | None) -> Path:
    """The gradebook a command works on: ``given`` (a file, or a batch's output folder), else
    ``./gradebook.sqlite``. Raises FileNotFoundError naming what was tried."""
    candidates = [given] if given is not None else [Path("gradebook.sqlite")]
    for c in candidates:
        path = c / "gradebook.sqlite" if c.is_dir() else c
        if path.is_file():
            return path
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"no gradebook at {tried}; pass --gradebook FILE (grader batch writes DIR/gradebook.sqlite)")
