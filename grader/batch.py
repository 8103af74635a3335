"""Grade a batch of submissions in parallel, record every run in the gradebook, show progress.

The pool is a few long-lived worker processes (``spawn``), each grading one submission at a time
with ``grade_fn(notebook, out_dir)``. Long-lived, because starting a Python process that imports
the grading stack costs about as much as a small notebook's own run. Each worker leads its own
process group, so a worker that hangs past the hard timeout is killed together with its kernel, and
a worker that dies (segfault, OOM killer) only costs the submission it held: that submission gets an
error result, a fresh worker takes its place, and the batch goes on. Workers also die with the batch:
``kill -9`` of the batch leaves no orphan kernels.

Kernels in parallel only pay off when each one is held to its share of the cores (the field notes
measured 2 kernels on 2 cores gaining nothing until ``OMP_NUM_THREADS=1``), hence ``kernel_env``.
Each worker boots the kernel of its next submission while it grades the current one, and cleans up
after a kernel in the background (``grader.warm``; ``BatchOptions.warm_kernels``).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import shutil
import signal
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from grader.gradebook import Entry, Gradebook, SubmissionRecord, subtask_order
from grader.moodle import Submission, read_team
from grader.results import GradeResult, Note, result_from_json, write_result, write_text_atomic
from grader.safe import csv_row, install_safe_logging, terminal_safe
from grader.score import apply_manual, manual_scored

if TYPE_CHECKING:
    from grader.cluster.run import ClusterBatch

GradeFn = Callable[[Path, Path], GradeResult]

# Environment variables that bound the threads of the numeric libraries a kernel loads.
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS")


@dataclass(frozen=True)
class BatchOptions:
    workers: int = 0  # 0: sized to the machine (see default_workers)
    threads_per_kernel: int = 1
    force: bool = False  # re-grade submissions that have a completed run for the same content and rubric
    hard_timeout_s: float | None = 3600.0  # backstop per submission, beyond the pipeline's own limits
    memory_per_kernel_gib: float = 3.0  # field notes: a tiny Trainer run needs 2 GiB; allow 3
    warm_kernels: bool = True  # each worker boots its next kernel while grading (grader.warm)


@dataclass(frozen=True)
class Outcome:
    submission: Submission
    result: GradeResult
    seconds: float
    skipped: bool = False


@dataclass
class BatchSummary:
    outcomes: list[Outcome] = field(default_factory=list)
    workers: int = 0
    wall_s: float = 0.0

    @property
    def graded(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.skipped]

    @property
    def harness_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result.status == "error" and o.result.error_kind == "grader"]


# --- sizing -----------------------------------------------------------------------------------------


def available_cpus() -> int:
    """CPUs this process may use: affinity mask, then a cgroup v2 CPU quota if one is set."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def available_memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_workers(threads_per_kernel: int = 1, memory_per_kernel_gib: float = 3.0) -> int:
    """One kernel per ``threads_per_kernel`` cores, fewer if memory would not hold them."""
    workers = max(1, available_cpus() // max(1, threads_per_kernel))
    mem = available_memory_gib()
    if mem is not None and memory_per_kernel_gib > 0:
        workers = min(workers, max(1, int(mem // memory_per_kernel_gib)))
    return workers


def kernel_env(threads_per_kernel: int) -> dict[str, str]:
    """Environment for every kernel of the batch: numeric libraries limited to their share of cores.

    torch sizes its intra-op pool from ``OMP_NUM_THREADS``; tokenizers' Rust pool from ``RAYON_NUM_THREADS``.
    """
    n = str(max(1, threads_per_kernel))
    env = dict.fromkeys(_THREAD_VARS, n)
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


# --- one submission -----------------------------------------------------------------------------------


def content_hash(sub: Submission) -> str:
    """What decides whether a submission changed: the graded notebook's bytes (or, without one, what was submitted)."""
    h = hashlib.sha256()
    if sub.notebook is not None:
        with open(sub.notebook, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    else:
        h.update(("\0".join(sub.files) + "\0\0" + "\0".join(sub.problems)).encode())
    return h.hexdigest()


def finish_result(result: GradeResult, sub: Submission) -> GradeResult:
    """Add what the batch knows and the pipeline does not: the id, team names, submission problems."""
    team = result.team
    if not team and sub.notebook is not None:
        team = read_team(sub.notebook)
    have = {n.message for n in result.notes}
    notes = result.notes + tuple(Note(kind="info", message=p) for p in sub.problems if p not in have)
    return replace(result, submission=sub.id, team=team, notes=notes)


def missing_notebook_result(sub: Submission) -> GradeResult:
    message = sub.problems[0] if sub.problems else "no notebook in this submission"
    return finish_result(
        GradeResult(submission=sub.id, status="error", error=message, error_kind="bad_input", source=""), sub
    )


def grade_with_pipeline(notebook: Path, out_dir: Path, *, options: Any) -> GradeResult:
    """The real grade function: ``grader.pipeline.grade_submission`` under the batch's id (the folder name).

    Module-level so that ``functools.partial(grade_with_pipeline, options=...)`` pickles into a worker.
    """
    from grader.pipeline import grade_submission

    return grade_submission(notebook, out_dir, replace(options, submission_id=out_dir.name))


@functools.lru_cache(maxsize=4)
def _rubric_for(assignment: str) -> Any:
    from grader.rubric import load_rubric

    return load_rubric(assignment or None)


def rerender_reports(result: GradeResult, folder: Path) -> str | None:
    """Render report.html/report.md again for a changed result; ``None`` if done, else why not.

    Only where the pipeline rendered reports before (a submission without a notebook has none).
    """
    if not (folder / "report.html").exists():
        return "no report.html to update"
    try:
        from grader.render import render_reports

        rubric = _rubric_for(result.assignment)
        render_reports(result, folder, rubric)
    except Exception as exc:  # the result.json is right; say why the report is not
        return f"{type(exc).__name__}: {exc}"
    return None


def rewrite_outputs(gradebook: Gradebook, submission_ids: Sequence[str]) -> list[str]:
    """Bring result.json and the reports of these submissions up to date with the gradebook (after
    manual scores or a re-score). Returns warnings: a report that could not be re-rendered is said."""
    warnings: list[str] = []
    wanted = set(submission_ids)
    for e in gradebook.entries():
        if e.submission.id in wanted:
            folder = e.run.result_path.parent
            write_result(folder, e.result)
            problem = rerender_reports(e.result, folder)
            if problem:
                warnings.append(f"{e.submission.id}: result.json updated, reports not: {problem}")
    return warnings


def harness_error_result(sub: Submission, message: str, *, kernel_status: str = "ok") -> GradeResult:
    result = GradeResult(
        submission=sub.id,
        status="error",
        error=message,
        error_kind="grader",
        source=str(sub.notebook or ""),
        kernel_status=kernel_status,  # type: ignore[arg-type]
    )
    return finish_result(result, sub)


# --- the worker process -----------------------------------------------------------------------------


def _worker_main(conn: multiprocessing.connection.Connection, grade_fn: GradeFn, env: dict[str, str],
                 warm_kernels: bool = False) -> None:
    os.setpgrp()  # our own process group: the batch can kill us together with our kernel
    install_safe_logging()  # the worker's log lines reach the instructor's terminal too
    os.environ.update(env)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the batch decides what an interrupt means
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_die_with_parent, args=(parent.sentinel,), daemon=True).start()
    if warm_kernels:
        from grader import warm

        warm.enable()  # one submission at a time here: the next one's kernel boots while this one runs
    try:
        _serve(conn, grade_fn)
    finally:
        if warm_kernels:
            warm.shutdown()  # the kernel booted for a submission that never came, and every clean-up


def _serve(conn: multiprocessing.connection.Connection, grade_fn: GradeFn) -> None:
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        sub, out_dir, more = job
        if more is not None:
            from grader import warm

            warm.expect_more(more)  # no kernel is booted ahead for a next submission that will not come
        t0 = time.monotonic()
        try:
            assert sub.notebook is not None
            raw = grade_fn(sub.notebook, out_dir)
            result = finish_result(raw, sub)  # result.json: written once, by the parent (``_record``)
            if result.notes != raw.notes or result.team != raw.team:
                rerender_reports(result, out_dir)  # the report names the submission's problems too
            conn.send(("ok", result.to_json(), time.monotonic() - t0))
        except BaseException as exc:  # a harness bug: report it, keep the worker
            detail = "".join(traceback.format_exception(exc))
            conn.send(("raised", f"{type(exc).__name__}: {exc}", detail, time.monotonic() - t0))


def _die_with_parent(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os.killpg(os.getpgrp(), signal.SIGKILL)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    job: Submission | None = None
    out_dir: Path | None = None
    started: float = 0.0


class _Pool:
    def __init__(self, size: int, grade_fn: GradeFn, env: dict[str, str], warm_kernels: bool = False) -> None:
        self.ctx = multiprocessing.get_context("spawn")
        self.grade_fn = grade_fn
        self.env = env
        self.warm_kernels = warm_kernels
        self.workers = [self._start() for _ in range(size)]

    def _start(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, args=(child, self.grade_fn, self.env, self.warm_kernels), daemon=True)
        proc.start()
        child.close()
        return _Worker(process=proc, conn=parent)

    def replace(self, w: _Worker) -> None:
        self.kill(w)
        self.workers[self.workers.index(w)] = self._start()

    @staticmethod
    def kill(w: _Worker) -> None:
        """Kill the worker's process group: the worker and any kernel it left behind, even if it died."""
        if w.process.pid is not None:
            try:
                os.killpg(w.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                if w.process.exitcode is None:
                    w.process.kill()
        w.process.join(timeout=5)
        w.conn.close()

    def shutdown(self) -> None:
        for w in self.workers:
            if w.job is None and w.process.exitcode is None:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for w in self.workers:
            w.process.join(timeout=max(0.1, deadline - time.monotonic()))
            self.kill(w)  # also whatever a finished worker left in its process group


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# --- the batch -----------------------------------------------------------------------------------------


def run_batch(
    submissions: Sequence[Submission],
    out_dir: Path,
    grade_fn: GradeFn,
    gradebook: Gradebook,
    *,
    rubric_hash: str,
    options: BatchOptions = BatchOptions(),
    progress: Progress | None = None,
    batch_id: str | None = None,
    cluster: ClusterBatch | None = None,
) -> BatchSummary:
    """Grade ``submissions`` into ``out_dir/<id>/`` and record each run in ``gradebook``.

    A submission with a completed run for the same content hash and rubric hash is skipped (unless
    ``options.force``); its ``result.json`` is restored from the gradebook if it went missing.
    With ``cluster`` the submissions are graded on Dask workers (``grader.cluster``) instead of the
    local pool; outcomes are recorded here all the same, by this process only.
    """
    t_start = time.monotonic()
    batch_id = batch_id or f"batch-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = progress or Progress(len(submissions), stream=io.StringIO())
    summary = BatchSummary()
    hashes: dict[str, str] = {}
    todo: list[Submission] = []
    for sub in submissions:
        digest = content_hash(sub)
        hashes[sub.id] = digest
        gradebook.upsert_submission(
            SubmissionRecord(
                id=sub.id, content_hash=digest, name=sub.name, participant_id=sub.participant_id,
                folder_name=sub.folder_name, notebook=str(sub.notebook) if sub.notebook else None,
                files=sub.files, problems=sub.problems, out_dir=str(out_dir / sub.id),
            )
        )
        done = None if options.force else gradebook.completed_run(sub.id, digest, rubric_hash)
        if done is not None and _restore(done.result_path, out_dir / sub.id):
            latest = gradebook.latest_run(sub.id)
            result = latest[1] if latest else GradeResult(submission=sub.id, status="error")
            summary.outcomes.append(Outcome(sub, result, 0.0, skipped=True))
            progress.skipped(sub.id)
            continue
        if sub.notebook is None:
            result = missing_notebook_result(sub)
            _record(gradebook, sub, digest, rubric_hash, result, out_dir, 0.0, batch_id)
            summary.outcomes.append(Outcome(sub, result, 0.0))
            progress.finished(sub.id, sub.name, result, 0.0)
            continue
        todo.append(sub)

    workers = max(1, min(options.workers or default_workers(options.threads_per_kernel, options.memory_per_kernel_gib), len(todo)))
    summary.workers = workers if todo else 0
    if todo:
        _check_picklable(grade_fn)
        if cluster is not None:
            outcomes = cluster.grade_all(todo, out_dir, grade_fn, options, progress)
        else:
            progress.set_workers(workers)
            outcomes = _grade_all(todo, out_dir, grade_fn, workers, options, progress)
        for outcome in outcomes:
            _record(gradebook, outcome.submission, hashes[outcome.submission.id], rubric_hash, outcome.result,
                    out_dir, outcome.seconds, batch_id)
            summary.outcomes.append(outcome)
            progress.finished(outcome.submission.id, outcome.submission.name, outcome.result, outcome.seconds)
        if cluster is not None:
            summary.workers = cluster.workers
    progress.close()
    summary.wall_s = time.monotonic() - t_start
    return summary


def _check_picklable(grade_fn: GradeFn) -> None:
    try:
        pickle.dumps(grade_fn)
    except Exception as exc:
        raise TypeError(f"the grade function must be picklable (a module-level function or a partial of one): {exc}") from exc


def _restore(old: Path, target_dir: Path) -> bool:
    """Make ``target_dir`` hold the completed run's outputs; False if there is nothing to restore from."""
    target = target_dir / "result.json"
    if target.exists():
        return True
    if old.exists() and old.parent != target_dir:
        shutil.copytree(old.parent, target_dir, dirs_exist_ok=True)
        return True
    return False  # the reports cannot be rebuilt from the gradebook alone: grade again


def _record(
    gradebook: Gradebook, sub: Submission, digest: str, rubric_hash: str, result: GradeResult,
    out_dir: Path, seconds: float, batch_id: str,
) -> None:
    """result.json first (with any manual scores already given), then one gradebook transaction."""
    target = out_dir / sub.id
    path = write_result(target, apply_manual(result, gradebook.manual_scores(sub.id)))
    gradebook.record_run(sub.id, digest, rubric_hash, result, path, seconds=seconds, batch_id=batch_id)


def _grade_all(
    todo: list[Submission], out_dir: Path, grade_fn: GradeFn, workers: int, options: BatchOptions, progress: Progress,
) -> Any:
    """Yield an ``Outcome`` per submission as each finishes (in the order they finish)."""
    pending: deque[Submission] = deque(todo)
    pool = _Pool(workers, grade_fn, kernel_env(options.threads_per_kernel), options.warm_kernels)
    try:
        while pending or any(w.job is not None for w in pool.workers):
            for w in pool.workers:
                if w.job is None and pending and w.process.exitcode is None:
                    sub = pending.popleft()
                    w.job, w.out_dir, w.started = sub, out_dir / sub.id, time.monotonic()
                    w.out_dir.mkdir(parents=True, exist_ok=True)
                    w.conn.send((sub, w.out_dir, bool(pending) if options.warm_kernels else None))
                    progress.started(sub.id)
            busy = [w for w in pool.workers if w.job is not None]
            waitables: list[Any] = [w.conn for w in busy if not w.conn.closed] + [w.process.sentinel for w in busy]
            multiprocessing.connection.wait(waitables, timeout=0.5)
            now = time.monotonic()
            for w in list(pool.workers):
                outcome = _collect(w, now, options)
                if outcome is not None:
                    yield outcome
                if w.job is None and pending and (w.process.exitcode is not None or w.conn.closed):
                    pool.replace(w)  # it died (or was killed) with a submission: a fresh one takes over
            progress.tick()
    finally:
        pool.shutdown()


def _collect(w: _Worker, now: float, options: BatchOptions) -> Outcome | None:
    """The outcome ``w`` has for us now, if any: a message, a death, or a timeout."""
    sub = w.job
    if sub is None:
        return None
    seconds = now - w.started
    message: Any = None
    if not w.conn.closed and w.conn.poll():
        try:
            message = w.conn.recv()
        except (EOFError, OSError):
            message = None
    if message is not None:
        w.job = None
        if message[0] == "ok":
            return Outcome(sub, result_from_json(message[1]), float(message[2]))
        result = harness_error_result(sub, f"the grader raised {message[1]}")
        result = replace(result, notes=result.notes + (Note(kind="info", message=message[2][-4000:]),))
        return Outcome(sub, result, float(message[3]))
    if w.process.exitcode is not None:
        w.job = None
        w.process.join(timeout=1)
        why = _describe_exit(w.process.exitcode)
        hint = " (out of memory?)" if w.process.exitcode == -signal.SIGKILL else ""
        return Outcome(sub, harness_error_result(sub, f"the grading process died: {why}{hint}", kernel_status="died"), seconds)
    if options.hard_timeout_s is not None and seconds > options.hard_timeout_s:
        w.job = None
        _Pool.kill(w)
        message_text = f"grading took longer than the batch limit of {options.hard_timeout_s:.0f} s and was stopped"
        return Outcome(sub, harness_error_result(sub, message_text, kernel_status="deadline"), seconds)
    return None


# --- progress ------------------------------------------------------------------------------------------


def _fmt_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _fmt_points(value: float | None) -> str:
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

    def __init__(self, total: int, *, stream: TextIO | None = None, tty: bool | None = None, interval: float = 15.0) -> None:
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
        self._emit(f"grading {self.total - self.skipped_n - self.done} submission(s) with {workers} worker(s)")

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
            points = f"{_fmt_points(result.auto_points)}/{_fmt_points(result.auto_max)} auto"
            tail = f" [{result.kernel_status}]" if result.kernel_status != "ok" else ""
            text = f"{points}{tail}"
        else:
            text = f"{status_word(result)}: {result.error.splitlines()[0] if result.error else ''}"
        self._emit(f"[{self.done + self.skipped_n:>{len(str(self.total))}}/{self.total}] {label}: {text} ({seconds:.1f}s)")

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


# --- outputs ---------------------------------------------------------------------------------------------


GRADES_FIXED = ("id", "name")
GRADES_TOTALS = ("auto_points", "manual_points", "total")


def grades_rows(entries: Sequence[Entry]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of grades.csv: id, name, one column per subtask, auto, manual, total.

    A subtask's cell is its automatic points plus the manual points given so far (an item nobody
    scored yet counts zero; the overview says how many are open); a submission that could not be
    graded has empty subtask cells and zero totals.
    """
    subtasks = subtask_order({s for e in entries for s in e.result.subtasks})
    header = [*GRADES_FIXED, *subtasks, *GRADES_TOTALS]
    rows = []
    for e in sorted(entries, key=lambda e: e.submission.id):
        r = e.result
        cells = [e.submission.id, e.submission.display_name]
        for s in subtasks:
            score = r.subtasks.get(s)
            cells.append("" if score is None else _fmt_points(score.auto_points + manual_scored(r, s)))
        cells += [_fmt_points(r.auto_points), _fmt_points(manual_scored(r)), _fmt_points(e.total)]
        rows.append(cells)
    return header, rows


def write_grades_csv(entries: Sequence[Entry], path: Path) -> None:
    header, rows = grades_rows(entries)
    buf = io.StringIO()
    # CRLF, as RFC 4180 and spreadsheets write it: csv quotes a cell holding a line terminator's
    # characters only, and a name with a lone CR must not split a row
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(csv_row(header))
    writer.writerows(csv_row(row) for row in rows)  # a name like "=HYPERLINK(...)" stays text
    write_text_atomic(path, buf.getvalue())


def summary_table(summary: BatchSummary, entries: Sequence[Entry]) -> str:
    """The final table: problems first (errors, then kernel trouble), then by id."""
    by_id = {e.submission.id: e for e in entries}
    rows: list[tuple[int, str, list[str]]] = []
    for o in summary.outcomes:
        e = by_id.get(o.submission.id)
        r = e.result if e else o.result
        word = status_word(r) + (" (unchanged)" if o.skipped else "")
        rank = 0 if r.status == "error" else 1 if r.kernel_status != "ok" else 2
        total = e.total if e else r.auto_points
        rows.append((rank, o.submission.id, [
            terminal_safe(o.submission.id), terminal_safe(e.submission.display_name if e else o.submission.name, limit=28), word,
            _fmt_points(r.auto_points), _fmt_points(manual_scored(r)), _fmt_points(total), f"{o.seconds:.1f}",
        ]))
    rows.sort(key=lambda t: (t[0], t[1]))
    header = ["id", "name", "status", "auto", "manual", "total", "seconds"]
    table = [header] + [r for _, _, r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 3 else cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
