"""One submission's result as the batch records it: what the batch knows and the pipeline does not
(the id, team names, the submission's problems), results for submissions that could not run, and
the real grade function (``grade_with_pipeline``, ``PipelineGrader``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grader.course.moodle import Submission, read_team
from grader.steps.results import GradeResult, Note


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
    """The real grade function: ``grader.steps.pipeline.grade_submission`` under the batch's id (the folder name).

    Module-level so that ``functools.partial(grade_with_pipeline, options=...)`` pickles into a worker.
    """
    from grader.steps.pipeline import grade_submission

    return grade_submission(notebook, out_dir, replace(options, submission_id=out_dir.name))


@dataclass(frozen=True)
class PipelineGrader:
    """The real grade function as a batch's pool uses it: ``grade_with_pipeline`` under ``options``,
    and what a batch's prototype does once for all its workers (``grader.course.prototype``):
    the kernel setup their zygote is started for, and the pack's warm-up."""

    options: Any  # grader.steps.pipeline.GradeOptions

    def __call__(self, notebook: Path, out_dir: Path) -> GradeResult:
        return grade_with_pipeline(notebook, out_dir, options=self.options)

    def kernel_setup(self, work_root: Path) -> Any:
        """The setup of the batch's kernels, working under ``work_root`` (``grader.kernel.setup``)."""
        from grader.steps.pipeline import batch_kernel_setup

        return batch_kernel_setup(self.options, work_root)

    def warm_up(self) -> None:
        from grader.steps.pipeline import warm_up

        warm_up(self.options)


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
