"""The whole path for one submission, top to bottom:

    load -> normalize -> execute (sandboxed kernel) -> probe -> compare -> score -> render -> write

``grade_submission`` is the one error boundary per submission: whatever happens, it returns a
``GradeResult`` and writes ``result.json`` (+ reports). A broken file is status ``error`` with
``error_kind="bad_input"``; a failure of the grader itself is ``error_kind="grader"``, never
full marks, with the traceback in ``grader.log`` for the instructor.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from grader.pack.rubric import Rubric, load_rubric
from grader.reports.longtext import clip_long_texts
from grader.reports.render import render_reports
from grader.steps.compare import compare, manual_items
from grader.steps.execute import Execution
from grader.steps.execute import run as run_execution
from grader.steps.notebook import BadInput, LoadedNotebook, load_notebook, neutralize
from grader.steps.probe import ProbeRequest
from grader.steps.results import GradeResult, Note, write_result
from grader.steps.score import score

log = logging.getLogger("grader")
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class GradeOptions:
    rubric: str | Path | None = None
    public_only: bool = False  # a student's self-check: hidden checks neither run nor named
    sandbox: bool = True
    cell_timeout: float | None = None
    deadline: float | None = None
    max_train_steps: int | None = None
    memory_gib: float | None = None
    torch_threads: int | None = None  # None: all cores (one notebook at a time); a batch passes 1
    env_overrides: Mapping[str, str] = field(default_factory=dict)
    work_root: Path | None = None
    keep_workdir: bool = False
    submission_id: str | None = None
    hide_paths: tuple[Path, ...] = ()  # more paths the kernel must not read (other submissions, gradebook)
    render_reports: bool = True
    kernel_env: str | None = None  # a kernel environment the rubric declares (None: its default)
    # False in a batch: the batch writes result.json itself, once, with the submission's own notes and
    # any manual scores, right before the gradebook records the run (``grader.course.batch._record``)
    write_result: bool = True
    gpu: bool = False  # the kernel gets the machine's GPU devices (also the rubric's ``limits: {gpu: true}``)


def submission_id(path: Path) -> str:
    """The file's name without extension, made safe as a folder name and link (``grader.safety.escape``)."""
    from grader.safety.escape import safe_id

    return safe_id(path.stem if path.suffix else path.name)


def grade_submission(notebook: Path, out_dir: Path, options: GradeOptions | None = None, rubric: Rubric | None = None) -> GradeResult:
    """Grade one notebook into ``out_dir`` (result.json unless ``options.write_result`` is off,
    report.html, report.md). Never raises for
    a bad notebook or a failing check; raises only for a broken rubric or store (harness errors)."""
    options = options or GradeOptions()
    rubric = rubric or load_rubric(options.rubric)
    sid = options.submission_id or submission_id(notebook)
    started = time.perf_counter()
    try:
        result = _grade(notebook, out_dir, options, rubric, sid)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - the per-submission error boundary
        tb = traceback.format_exc()
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "grader.log").write_text(tb, encoding="utf-8")
        log.error("grading %s failed in the grader: %s", notebook, exc)
        result = _empty(rubric, sid, notebook, status_error=f"the grader failed on this submission ({type(exc).__name__}: {exc}); see grader.log", kind="grader")
    result = replace(result, timings={**result.timings, "total": round(time.perf_counter() - started, 3)})
    return _write(result, out_dir, rubric, options)


def _empty(rubric: Rubric, sid: str, path: Path, status_error: str, kind: str) -> GradeResult:
    sc = score(rubric, (), ())
    return GradeResult(
        submission=sid, status="error", error=status_error, error_kind=kind,  # type: ignore[arg-type]
        source=str(path), assignment=rubric.assignment, auto_max=sc.auto_max, manual_max=sc.manual_max, subtasks=sc.subtasks,
    )


def _write(result: GradeResult, out_dir: Path, rubric: Rubric, options: GradeOptions) -> GradeResult:
    """Render the reports, then write result.json (with the render time). A template that fails
    does not cost the student their result: it is logged and result.json is written all the same."""
    result = clip_long_texts(result, out_dir)  # a 50 MB answer is kept once, in full-text/, not in every output
    if options.render_reports:
        t0 = time.perf_counter()
        try:
            render_reports(result, out_dir, rubric)
        except Exception as exc:  # noqa: BLE001 - the JSON result matters more than the report
            log.error("rendering the report of %s failed: %s", result.submission, exc)
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "grader.log").write_text(traceback.format_exc(), encoding="utf-8")
        result = replace(result, timings={**result.timings, "render": round(time.perf_counter() - t0, 4)})
    if options.write_result:
        write_result(out_dir, result)
    return result


def _grade(notebook: Path, out_dir: Path, options: GradeOptions, rubric: Rubric, sid: str) -> GradeResult:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    loaded = load_notebook(notebook)
    if isinstance(loaded, BadInput):
        return _empty(rubric, sid, notebook, status_error=f"{loaded.path.name}: {loaded.message}", kind="bad_input")
    nb, neutral_notes = neutralize(loaded.nb, rubric.kernel.platform)
    from grader.pack.contract import outline_for

    shape = outline_for(rubric)(nb)  # the pack's notebook conventions
    timings["load"] = round(time.perf_counter() - t0, 4)

    from grader.kernel.store import activate

    activate()  # the pack reads the store here too (fresh inputs, expected values); idempotent
    _quiet_libraries()
    pack = rubric.checks_module
    public_only = options.public_only
    plan_names = rubric.probe_plan(public_only)
    cells: dict[str, list[str]] = {}
    for cell, section in zip(nb.cells, shape.sections, strict=True):
        if cell.cell_type == "code" and section.subtask:
            cells.setdefault(section.subtask, []).append(cell.source)
    # fresh inputs for every submission (seeded by its content): knowing one run's inputs answers nothing
    inputs: dict[str, Any] = pack.make_inputs(rubric, plan_names, submission_seed(rubric, loaded.sha256),
                                              source={k: tuple(v) for k, v in cells.items()})
    plan = {s: ProbeRequest(rubric.probe_source(s), names, inputs.get(s, {}), rubric.limits.probe_timeout)
            for s, names in plan_names.items()}

    execution, saved = _execute(loaded, nb, shape.sections, rubric, options, plan)
    timings.update({f"execute_{k}": v for k, v in execution.seconds.items()})

    t1 = time.perf_counter()
    results = list(compare(rubric, execution.probes, inputs, {k: tuple(v) for k, v in cells.items()}, saved, public_only))
    if execution.kernel_status in ("timeout", "deadline") and not any(o.calls for o in execution.probes.values()):
        results = [replace(r, status="timeout") if r.status == "failed" and r.points == 0 else r for r in results]
    manual = manual_items(rubric, shape.answers)
    timings["compare"] = round(time.perf_counter() - t1, 4)

    sc = score(rubric, results, manual, public_only)
    notes = _notes(loaded, neutral_notes, execution)
    return GradeResult(
        submission=sid,
        status="graded",
        source=str(notebook),
        assignment=rubric.assignment,
        auto_points=sc.auto_points,
        auto_max=sc.auto_max,
        manual_max=sc.manual_max,
        manual_points=sc.manual_points,
        kernel_status=execution.kernel_status,
        kernel_message=execution.kernel_message,
        subtasks=sc.subtasks,
        checks=tuple(results),
        cells=execution.cells,
        manual=manual,
        notes=notes,
        comments=dict(shape.comments),
        team=shape.team,
        timings=timings,
        public_only=public_only,
    )


def batch_kernel_setup(options: GradeOptions, work_root: Path) -> Any:
    """The kernel setup of a batch's submissions whose kernels work under ``work_root`` (before the
    folder of any one submission is hidden: in a batch it lies in a hidden folder already)."""
    from grader.kernel.setup import kernel_setup

    return kernel_setup(load_rubric(options.rubric), replace(options, work_root=work_root))


def warm_up(options: GradeOptions) -> None:
    """What grading any submission does first, done once: load the rubric, activate the store, and
    draw one set of probe inputs (thrown away), which imports and loads what the pack's inputs and
    expected values are made with. A batch's template process does it for all its workers."""
    from grader.kernel.store import activate

    rubric = load_rubric(options.rubric)
    activate()
    _quiet_libraries()
    pack = rubric.checks_module
    pack.make_inputs(rubric, rubric.probe_plan(options.public_only), 0, source={})
    _quiet_libraries()  # the libraries the inputs imported


def _quiet_libraries() -> None:
    """The libraries the pack uses in the grader's process say what they load ("Using the latest
    cached version of the dataset ..."): noise in an instructor's terminal, so errors only."""
    for var in ("DATASETS_VERBOSITY", "TRANSFORMERS_VERBOSITY", "HF_HUB_VERBOSITY"):
        os.environ.setdefault(var, "error")
    for name in ("datasets", "transformers"):
        module = sys.modules.get(name)
        logging_api = getattr(module, "logging", None) if module is not None else None
        if logging_api is not None and hasattr(logging_api, "set_verbosity_error"):
            logging_api.set_verbosity_error()


def submission_seed(rubric: Rubric, content_sha256: str) -> int:
    """The seed of a submission's fresh probe inputs: its content, the rubric's hidden seed and this
    installation's secret (``grader.steps.secret``), so that neither a student nor another course's
    grader can predict them, and re-grading the same notebook draws the same ones."""
    import hashlib

    from grader.steps.secret import grader_secret

    text = f"{rubric.hidden_seed}:{grader_secret()}:{content_sha256}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _execute(loaded: LoadedNotebook, nb: Any, sections: Any, rubric: Rubric, options: GradeOptions,
             plan: dict[str, ProbeRequest]) -> tuple[Execution, dict[str, Any]]:
    from grader.kernel import warm
    from grader.kernel.setup import kernel_setup
    from grader.steps.artifacts import read_all_saved

    # the kernel is decided by the rubric and the options alone, plus hiding this submission's folder
    setup = kernel_setup(rubric, options).hiding(loaded.path.resolve().parent)
    warmer = warm.current()  # a pool worker: the kernel was booted while the previous submission ran
    kernel = warmer.take(setup) if warmer is not None else None
    workdir = kernel.workdir if kernel is not None else setup.new_workdir()
    try:
        execution = run_execution(nb, workdir, setup.config_for(workdir), plan, [s.subtask for s in sections],
                                  kernel=kernel, runner=warmer)
        if kernel is not None:
            kernel.check_zygote(execution.kernel_status)  # a forked kernel its zygote's death ended: the grader's fault
        return execution, read_all_saved(workdir, rubric.saved_files)  # after the kernel stopped
    finally:
        if options.keep_workdir:
            pass
        elif warmer is not None:
            warmer.remove_later(workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _notes(loaded: LoadedNotebook, neutral: tuple[str, ...], execution: Execution) -> tuple[Note, ...]:
    notes: list[Note] = [Note("repair", r) for r in loaded.repairs]
    notes += [Note("info", n) for n in neutral]
    for api, msg in execution.drift.items():
        # "colab:" and "env:" notes: what Colab and its GPU/Hub gave the notebook, emulated here
        notes.append(Note("colab" if api.startswith(("colab:", "env:")) else "drift", msg))
    if execution.restarts:
        notes.append(Note("kernel", f"the kernel was restarted {execution.restarts} time(s); cells that killed it were skipped"))
    notes += [Note("sandbox", f"sandbox: {m}") for m in execution.sandbox_missing]
    for subtask, outcome in sorted(execution.probes.items()):
        if outcome.error:
            notes.append(Note("kernel", f"probes{' of ' + subtask if subtask else ''}: {outcome.error}", subtask or None))
    return tuple(notes)
