"""``python -m reference run --task {1,2,3,all} --profile {tiny,course} [--out DIR]``.

Runs the reference implementation and writes one JSON artifact per task to
``<out>/<profile>/task<N>.json`` (schema ``SCHEMA_VERSION``, written atomically).

Profiles:
  tiny    every task on the CPU against the offline store (tiny models, small data), training capped
          at a few steps; the whole pipeline, including saving/reloading both Task 2 models.
  course  the assignment's settings (1800 / 1800 / 200 steps, batch 48 and 32 x 4) on a CUDA GPU with
          mixed precision (bf16 where supported, else fp16; T5 never in fp16). Refuses without CUDA.

Exit codes: 0 every task ran and its checks held, 1 a task failed or a check did not hold,
2 wrong usage (including ``course`` without a GPU or ``tiny`` without a built store).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "build" / "reference"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
TASKS = ("1", "2", "3")


class UsageError(Exception):
    """Printed without a traceback; exit code 2."""


@dataclass(frozen=True)
class Steps:
    max_steps: int
    save_steps: int
    batch_size: int
    eval_steps: int = 0
    grad_accum: int = 1
    logging_steps: int = 10


@dataclass(frozen=True)
class Profile:
    name: str
    work_dir: Path
    swag_steps: Steps
    t5_steps: Steps
    train_rows: int | None = None  # None: the whole split
    eval_rows: int | None = None
    squad_train_rows: int | None = None
    squad_eval_rows: int | None = None
    force_cpu: bool = False
    mixed: bool = False
    progress: bool = False
    num_proc: int | None = None
    store: str = ""

    def precision(self, family: str) -> dict[str, bool]:
        from reference import compat

        return compat.mixed_precision(family) if self.mixed else {}

    @property
    def device_args(self) -> dict[str, Any]:
        return {"use_cpu": True} if self.force_cpu else {}


def tiny_profile(work_dir: Path, store: str) -> Profile:
    return Profile(
        name="tiny",
        work_dir=work_dir,
        swag_steps=Steps(max_steps=4, eval_steps=2, save_steps=2, batch_size=4, logging_steps=1),
        t5_steps=Steps(max_steps=2, save_steps=2, batch_size=2, grad_accum=2, logging_steps=1),
        train_rows=32,
        eval_rows=16,
        squad_train_rows=8,
        squad_eval_rows=4,
        force_cpu=True,
        store=store,
    )


def course_profile(work_dir: Path, store: str, max_steps: int | None = None) -> Profile:
    swag = Steps(max_steps=1800, eval_steps=300, save_steps=600, batch_size=48, logging_steps=50)
    t5 = Steps(max_steps=200, save_steps=100, batch_size=32, grad_accum=4, logging_steps=10)
    if max_steps is not None:  # a short smoke run at the real batch sizes
        every = max(1, max_steps // 6)
        swag = Steps(max_steps=max_steps, eval_steps=every, save_steps=2 * every, batch_size=48,
                     logging_steps=every)
        t5 = Steps(max_steps=max_steps, save_steps=max(1, max_steps // 2), batch_size=32, grad_accum=4,
                   logging_steps=every)
    return Profile(
        name="course", work_dir=work_dir, swag_steps=swag, t5_steps=t5, mixed=True, progress=False,
        num_proc=min(8, os.cpu_count() or 1), store=store,
    )


# --- the offline store ------------------------------------------------------------------------------


def store_root(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("GRADER_STORE") or REPO / ".store").resolve()


def activate_store(root: Path, scratch: Path | None = None) -> None:
    """Point Hugging Face at the offline store (``grader.kernel.store``). Must run before transformers or
    datasets are imported: they read these settings at import time. ``scratch`` receives what the
    libraries write at run time, so that the store stays untouched."""
    from grader.kernel import store
    try:
        store.check_store(root)
    except store.StoreMissing as exc:
        raise UsageError(str(exc)) from None
    if scratch is not None and hasattr(store, "prepare_scratch"):
        store.prepare_scratch(root, scratch)
    store.activate(root, scratch)
    os.environ[store.ENV_VAR] = str(root)


# --- running -------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    return repr(value)


def run_one(task: str, profile: Profile) -> dict[str, Any]:
    """Run one task; never raises (a failure is the artifact's ``status: "error"``)."""
    start = time.perf_counter()
    artifact: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "reference-run",
        "task": task,
        "profile": profile.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings_profile": _jsonable(asdict(profile)),
    }
    try:
        if task == "1":
            from reference import task1

            demos = task1.run_demos()
            body: dict[str, Any] = {
                "metrics": demos,
                "answers": task1.answers_as_json(),
                "checks": task1.check_demos(demos),
            }
        else:
            from reference import compat

            artifact["versions"] = compat.library_versions()
            artifact["device"] = compat.device_info()
            module = __import__(f"reference.task{task}", fromlist=["run_task"])
            body = module.run_task(profile)
        artifact.update(_jsonable(body))
        failed = [name for name, ok in body.get("checks", {}).items() if not ok]
        artifact["status"] = "failed" if failed else "ok"
        artifact["failed_checks"] = failed
    except Exception as exc:  # one task's failure is reported, the others still run
        artifact["status"] = "error"
        artifact["error"] = f"{type(exc).__name__}: {exc}"
        artifact["traceback"] = traceback.format_exc()
    if "versions" not in artifact:
        from reference import compat

        artifact["versions"] = compat.library_versions() if task != "1" else {"python": sys.version.split()[0]}
    artifact.setdefault("timings", {})
    artifact["timings"]["total_s"] = round(time.perf_counter() - start, 3)
    return artifact


def write_artifact(out_dir: Path, artifact: dict[str, Any]) -> Path:
    from grader.steps.results import write_json_atomic

    path = out_dir / artifact["profile"] / f"task{artifact['task']}.json"
    write_json_atomic(path, artifact)
    return path


def _summary(artifact: dict[str, Any]) -> str:
    lines = [f"task {artifact['task']} [{artifact['profile']}]: {artifact['status']} "
             f"in {artifact['timings']['total_s']:.1f} s"]
    if artifact["status"] == "error":
        lines.append(f"  {artifact['error']}")
    for name in artifact.get("failed_checks", []):
        lines.append(f"  check failed: {name}")
    metrics = artifact.get("metrics", {})
    for key in ("train_hf", "train_custom", "train_t5"):
        m = metrics.get(key)
        if m:
            peak = f", peak GPU memory {m['peak_gpu_memory_gib']} GiB" if "peak_gpu_memory_gib" in m else ""
            lines.append(f"  {key}: {m.get('global_step')} steps in {m.get('wall_s')} s, "
                         f"{m.get('train_steps_per_second', 0):.2f} steps/s, "
                         f"{m.get('train_samples_per_second', 0):.1f} samples/s{peak}")
    if "eval_accuracy" in metrics:
        lines.append(f"  validation accuracy: {metrics['eval_accuracy']}")
    return "\n".join(lines)


def run(tasks: Sequence[str], profile_name: str, out: Path, store: str | None = None,
        max_steps: int | None = None, keep_work: bool = False) -> int:
    needs_models = any(t != "1" for t in tasks)
    work_dir = out / profile_name / "work"
    root = store_root(store)
    if profile_name == "course":
        if needs_models:
            import torch

            if not torch.cuda.is_available():
                raise UsageError("the course profile trains at the assignment's scale and needs a CUDA GPU; "
                                 "torch.cuda.is_available() is False here (use --profile tiny on a CPU)")
        if store:
            activate_store(root, work_dir / "hf-scratch")
        profile = course_profile(work_dir, str(root) if store else "", max_steps)
    else:
        if max_steps is not None:
            raise UsageError("--max-steps only applies to the course profile")
        if needs_models:
            activate_store(root, work_dir / "hf-scratch")
        profile = tiny_profile(work_dir, str(root))
    status = EXIT_OK
    try:
        for task in tasks:
            artifact = run_one(task, profile)
            path = write_artifact(out, artifact)
            print(_summary(artifact))
            print(f"  -> {path}")
            if artifact["status"] != "ok":
                status = EXIT_FAILED
    finally:
        if profile_name == "tiny" and not keep_work:
            shutil.rmtree(work_dir, ignore_errors=True)
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reference", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("run", help="run the reference implementation and write JSON artifacts")
    p.add_argument("--task", choices=(*TASKS, "all"), default="all")
    p.add_argument("--profile", choices=("tiny", "course"), default="tiny")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"artifact folder (default {DEFAULT_OUT})")
    p.add_argument("--store", default=None,
                   help="offline store (default $GRADER_STORE or <repo>/.store; tiny always uses one, "
                        "course only when given)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="course only: cap every training at N steps (smoke run at the real batch sizes)")
    p.add_argument("--keep-work", action="store_true", help="tiny: keep checkpoints under <out>/tiny/work")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "run":
        parser.print_help()
        return EXIT_USAGE
    tasks = TASKS if args.task == "all" else (args.task,)
    try:
        return run(tasks, args.profile, args.out.resolve(), args.store, args.max_steps, args.keep_work)
    except UsageError as exc:
        print(f"reference: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
