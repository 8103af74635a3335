"""The kernel a submission gets, decided before the submission is known.

Everything that shapes a grading kernel (the offline store and its environment, the kernel
environment's interpreter, the sandbox policy, the limits, the Colab stand-ins, the modules imported
before the first cell) follows from the rubric and the run's options, not from the notebook.
``KernelSetup`` holds exactly that, so a kernel can be started, sandboxed and booted before the next
submission is handed out (``grader.kernel.warm``); two setups compare equal exactly when their kernels
would be launched alike.

The one per-submission part is hiding the submission's own folder from the kernel (``hiding``). In a
batch that folder lies under one that is hidden already (the batch's source or output folder), so
the setup stays the same and a kernel warmed ahead fits. Each kernel still gets its own working
folder (``new_workdir``), made before any submission is known and holding nothing of one.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from grader.steps.execute import ExecConfig

if TYPE_CHECKING:
    from grader.pack.rubric import Rubric
    from grader.steps.pipeline import GradeOptions

log = logging.getLogger("grader")
REPO_ROOT = Path(__file__).resolve().parents[2]



@dataclass(frozen=True)
class KernelSetup:
    store: Path
    work_root: Path
    platform: str  # the rubric's: "colab" emulates Colab in the working folder and the environment
    store_models: str  # the model ids the store holds, named to a notebook that asks for another
    env_overrides: Mapping[str, str] = field(default_factory=dict)
    needed: tuple[Path, ...] = ()  # what hiding must never cover (the store, the kernel's Python, the work root)
    config: ExecConfig = field(default_factory=ExecConfig)  # all but the environment of one working folder

    def hiding(self, folder: Path) -> KernelSetup:
        """This setup with ``folder`` (a submission's own) hidden from the kernel too; the same setup
        when the sandbox is off or the folder is hidden already."""
        policy = self.config.sandbox
        if policy is None:
            return self
        hidden = hideable((*policy.hide_paths, folder), self.needed)
        if hidden == policy.hide_paths:
            return self
        return replace(self, config=replace(self.config, sandbox=replace(policy, hide_paths=hidden)))

    def forks_from(self, other: KernelSetup) -> bool:
        """Whether a kernel of this setup can be forked from the zygote of ``other``: the same setup
        but for the work root, which lies within ``other``'s (a batch's workers each have a work
        root of their own inside the batch's, which every kernel of the zygote covers whole)."""
        root = other.work_root
        if self.work_root != root and root not in self.work_root.parents:
            return False
        needed = tuple(root if p == self.work_root else p for p in self.needed)
        return replace(self, work_root=root, needed=needed) == other

    def new_workdir(self) -> Path:
        """A fresh, private working folder: the datasets scratch cache linked into the store and,
        for Colab, an empty ``drive/MyDrive``. Nothing of any submission is in it."""
        from grader.kernel.store import prepare_scratch

        self.work_root.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="grader-work-", dir=self.work_root))
        # what the libraries write at run time (datasets' lock files, metric caches) goes to a scratch
        # folder inside the kernel's private working folder, so the store itself stays read-only
        prepare_scratch(self.store, workdir / ".hf-scratch")
        if self.platform == "colab":
            from grader.kernel.platforms import colab

            colab.prepare_workdir(workdir)
        return workdir

    def config_for(self, workdir: Path) -> ExecConfig:
        """The execution config of a kernel whose working folder is ``workdir``."""
        from grader.kernel.store import store_env

        kernel_vars = {**store_env(self.store, (workdir / ".hf-scratch").resolve()),
                       "GRADER_STORE_MODELS": self.store_models, **self.env_overrides}
        if self.platform == "colab":
            from grader.kernel.platforms import colab

            kernel_vars = colab.kernel_env(kernel_vars)
        return replace(self.config, env=kernel_vars)


def kernel_setup(rubric: Rubric, options: GradeOptions) -> KernelSetup:
    """The setup of every kernel for ``rubric`` under ``options`` (no submission involved)."""
    from grader.kernel.envs import interpreter
    from grader.kernel.envs import prefix as env_prefix
    from grader.kernel.store import check_store, store_root

    root = store_root()
    if rubric.store_builder:  # a pack without a store builder needs no store
        check_store(root)
    limits = rubric.limits
    work_root = (options.work_root or Path(tempfile.gettempdir())).resolve()
    env_spec = rubric.kernel.env(options.kernel_env)
    python = None if env_spec.is_grader_env else str(interpreter(env_spec))
    needed = (root, work_root, *((env_prefix(env_spec),) if python else ()))
    policy = None
    if options.sandbox:
        from grader.kernel.sandbox import SandboxPolicy, gpu_devices

        memory = options.memory_gib or limits.memory_gib
        policy = SandboxPolicy(
            memory_bytes=int(memory * 2**30),
            gpus=gpu_devices() if (limits.gpu or options.gpu) else (),
            cpu_seconds=int(limits.cpu_seconds),
            max_processes=limits.max_processes,
            hide_paths=hideable((*private_paths(rubric), *options.hide_paths), needed),
            expose_paths=(REPO_ROOT / "grader", *((env_prefix(env_spec),) if python else ())),
        )
    config = ExecConfig(
        cell_timeout=options.cell_timeout or limits.cell_timeout,
        deadline=options.deadline or limits.deadline,
        max_train_steps=options.max_train_steps or limits.max_train_steps,
        torch_threads=options.torch_threads or (os.cpu_count() or 1),
        max_output_bytes=int(limits.max_output_mib * 2**20),
        sandbox=policy,
        python=python,
        imports=rubric.kernel.imports,
        preamble=rubric.kernel_preamble,
    )
    return KernelSetup(store=root, work_root=work_root, platform=rubric.kernel.platform,
                       store_models=",".join(store_models(root)), env_overrides=dict(options.env_overrides),
                       needed=needed, config=config)


def store_models(root: Path) -> list[str]:
    """The model ids the store holds (named to the student when a notebook asks for another)."""
    from grader.kernel.store import StoreMissing, read_manifest

    try:
        return [e.id for e in read_manifest(root).entries if e.kind == "model"]
    except StoreMissing:
        return []


def hideable(paths: tuple[Path, ...], needed_too: tuple[Path, ...] = ()) -> tuple[Path, ...]:
    """The paths to hide, outermost only, and never one the kernel needs (the grader package, the
    Python installation, the store, its working folder): hiding a folder that holds them would
    break every kernel."""
    needed = [REPO_ROOT / "grader", Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), *(p.resolve() for p in needed_too)]
    keep: list[Path] = []
    # sorted by depth, then name: the same paths give the same tuple (setups compare equal)
    for p in sorted({p.resolve() for p in paths if p.exists()}, key=lambda q: (len(q.parts), str(q))):
        if any(n == p or p in n.parents for n in needed):
            log.info("not hiding %s from the kernel: it holds what the kernel needs", p)
            continue
        if any(k == p or k in p.parents for k in keep):
            continue
        keep.append(p)
    return tuple(keep)


def private_paths(rubric: Rubric) -> tuple[Path, ...]:
    """What the student's kernel must never read: the rubric pack, and everything in the project
    folder (reference code and artifacts, samples, tests, its .git history) but the grader package
    and what the kernel runs on (``hideable`` keeps the Python installation and the store)."""
    project = sorted(p for p in REPO_ROOT.iterdir() if p.name != "grader")
    return (rubric.folder.resolve(), rubric.folder.parent.resolve(), *project)
