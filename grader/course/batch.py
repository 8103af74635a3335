"""Grade a batch: skip what the gradebook already holds for the same content and rubric, grade the
rest on the local pool (``grader.course.pool``) or on Dask (``grader.cluster``), and record each run
(result.json written once, then one gradebook transaction).
"""

from __future__ import annotations

import io
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader.course.finish import content_hash, missing_notebook_result
from grader.course.gradebook import Gradebook, SubmissionRecord
from grader.course.moodle import Submission
from grader.course.pool import BatchOptions, GradeFn, Outcome, check_picklable, default_workers, grade_all
from grader.course.progress import Progress
from grader.steps.results import GradeResult, write_result
from grader.steps.score import apply_manual

if TYPE_CHECKING:
    from grader.cluster.run import ClusterBatch


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


def run_batch(
    submissions: Sequence[Submission],
    out_dir: Path,
    grade_fn: GradeFn,
    gradebook: Gradebook,
    *,
    rubric_hash: str,
    options: BatchOptions | None = None,
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
    options = options or BatchOptions()
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
                id=sub.id,
                content_hash=digest,
                name=sub.name,
                participant_id=sub.participant_id,
                folder_name=sub.folder_name,
                notebook=str(sub.notebook) if sub.notebook else None,
                files=sub.files,
                problems=sub.problems,
                out_dir=str(out_dir / sub.id),
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

    workers = max(
        1,
        min(
            options.workers or default_workers(options.threads_per_kernel, options.memory_per_kernel_gib),
            len(todo),
        ),
    )
    summary.workers = workers if todo else 0
    if todo:
        check_picklable(grade_fn)
        if cluster is not None:
            outcomes = cluster.grade_all(todo, out_dir, grade_fn, options, progress)
        else:
            progress.set_workers(workers)
            outcomes = grade_all(todo, out_dir, grade_fn, workers, options, progress)
        for outcome in outcomes:
            _record(
                gradebook,
                outcome.submission,
                hashes[outcome.submission.id],
                rubric_hash,
                outcome.result,
                out_dir,
                outcome.seconds,
                batch_id,
            )
            summary.outcomes.append(outcome)
            progress.finished(outcome.submission.id, outcome.submission.name, outcome.result, outcome.seconds)
        if cluster is not None:
            summary.workers = cluster.workers
    progress.close()
    summary.wall_s = time.monotonic() - t_start
    return summary


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
    gradebook: Gradebook,
    sub: Submission,
    digest: str,
    rubric_hash: str,
    result: GradeResult,
    out_dir: Path,
    seconds: float,
    batch_id: str,
) -> None:
    """result.json first (with any manual scores already given), then one gradebook transaction."""
    target = out_dir / sub.id
    path = write_result(target, apply_manual(result, gradebook.manual_scores(sub.id)))
    gradebook.record_run(sub.id, digest, rubric_hash, result, path, seconds=seconds, batch_id=batch_id)
