"""The rubric pack contract: what a folder under ``rubrics/`` declares so that the harness can grade
an assignment it knows nothing about.

A pack is three files joined by string ids, and a typo in one of them used to surface only when a
submission scored zero ("no check function registered for '2.1.colator'"). This module names each
part of the contract in one place, with types, and ``grader.pack.validate`` checks the joins when
the rubric loads, so a broken pack fails at once, naming the file and the id.

=====================  ====================================================================
what                   where it is declared
=====================  ====================================================================
points, checks, items  ``rubric.yaml`` (``grader.pack.rubric.Rubric``: subtasks, checks, manual)
probes (kernel side)   ``probes.py``: ``name(ns, inputs) -> data``, sent into the kernel as
                       *source*, cut into ``# --- <subtask> ---`` sections (``ProbeFn``)
checks (grader side)   ``checks.py``: ``@check("<id>")`` functions (``grader.steps.checks.CheckFn``)
inputs, references     ``checks.py``: ``make_inputs`` and ``reference`` (``ChecksModule``)
manual items           ``rubric.yaml`` (prompt, bullets, ``suggest``) + ``checks.py``:
                       ``manual_hints``, ``suggest``, ``reference_answer`` (``ManualHelpers``)
kernel environment     ``rubric.yaml`` ``kernel:`` (envs, platform, ``imports``) and the pack's
                       ``shims`` (``.py`` files of patches, ``grader.kernel.runtime``)
store                  ``rubric.yaml`` ``store_builder`` / ``store_fetcher`` ("module:function")
notebook conventions   optional ``conventions.py``: ``outline(nb) -> grader.steps.notebook.Outline``
                       (``Conventions``); without it, cells are attributed by ``# [subtask]`` marks
=====================  ====================================================================

The trust line runs through the table: ``probes.py`` runs in the untrusted kernel and returns data
only; everything else runs in the grader's process. Nothing that reveals an expected value may be
in ``probes.py`` or in what ``make_inputs`` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from grader.pack.rubric import Rubric
    from grader.steps.checks import CheckFn
    from grader.steps.notebook import Outline

# The probes of each subtask, as ``Rubric.probe_plan`` gives them: {subtask: (probe name, ...)}.
ProbePlan = Mapping[str, tuple[str, ...]]
# What ``make_inputs`` returns: {subtask: {probe name: input}}; ``""`` is "after the last cell".
ProbeInputs = Mapping[str, Mapping[str, Any]]
# The code cells of each subtask as they ran (for ``ast`` checks and for inputs that depend on them).
SubtaskSource = Mapping[str, tuple[str, ...]]
# A probe, as the kernel runs it: the notebook's globals and the grader's input in, plain data out.
ProbeFn = Callable[[dict[str, Any], Any], Any]
OutlineFn = Callable[["NotebookNode"], "Outline"]

# The files of a pack, by role (``grader new-pack`` writes these; ``docs/PACKS.md`` explains them).
RUBRIC_FILE = "rubric.yaml"
PROBES_FILE = "probes.py"
CHECKS_FILE = "checks.py"
CONVENTIONS_FILE = "conventions.py"


class ChecksModule(Protocol):
    """What every ``checks.py`` defines beside its ``@check`` functions.

    ``make_inputs`` draws fresh probe inputs for one submission (``seed`` comes from its content and
    this installation's secret): a notebook cannot know them in advance, and nothing in them may
    reveal an expected value, because they are sent into the kernel. ``reference`` computes, in the
    grader's process, what the checks compare with (the PrairieLearn idea: reference and student run
    on the same inputs)."""

    def make_inputs(self, rubric: Rubric, plan: ProbePlan, seed: int, source: SubtaskSource) -> ProbeInputs: ...

    def reference(self, rubric: Rubric, inputs: ProbeInputs) -> Any: ...


class ManualHelpers(Protocol):
    """Optional helpers for the manual items a TA scores (each may be left out on its own).

    ``manual_hints``: facts the grader could check, shown beside the answer; ``suggest``: a fraction
    of the item's points and why, for items with ``suggest: true`` (a TA confirms); and
    ``reference_answer``: the text shown as the model answer for items with ``reference:``."""

    def manual_hints(self, item_id: str, text: str) -> Iterable[str]: ...

    def suggest(self, item_id: str, text: str) -> tuple[float, str] | None: ...

    def reference_answer(self, name: str) -> str: ...


class Conventions(Protocol):
    """How this assignment's notebooks are laid out: which cell belongs to which subtask, where the
    written answers are. ``grader.pack.marks.outline_by_marks`` reads ``# [subtask]`` first-line tags."""

    def outline(self, nb: NotebookNode) -> Outline: ...


@dataclass(frozen=True)
class ProbeDef:
    """A probe as ``probes.py`` defines it, read with ``ast`` (the file is kernel code: the grader
    never executes it). ``section`` is ``""`` for the shared part before the first section line."""

    name: str
    section: str
    line: int
    signature: str  # as written, for messages: "(ns, inputs)"
    callable_as_probe: bool  # can be called as ``name(ns, inputs)``


@dataclass(frozen=True)
class Pack:
    """A loaded, validated pack: every part of the contract, resolved. ``open_pack`` makes one."""

    rubric: Rubric
    checks_module: ModuleType  # satisfies ``ChecksModule`` (checked by ``grader.pack.validate``)
    check_functions: Mapping[str, CheckFn]
    probes: Mapping[str, tuple[ProbeDef, ...]]  # by name; a name may be defined once per section
    outline: OutlineFn

    @property
    def folder(self) -> Path:
        return self.rubric.folder

    @property
    def store_builder(self) -> str:
        return self.rubric.store_builder

    @property
    def store_fetcher(self) -> str:
        return self.rubric.store_fetcher


def pack_module(rubric: Rubric, stem: str) -> ModuleType | None:
    """The pack's module ``<stem>.py`` (``conventions``, ...), imported as ``checks.py`` is: inside
    the pack's package, so it may use relative imports. ``None`` when the pack has no such file."""
    from grader.pack.rubric import _identifier, _import_file

    path = rubric.folder / f"{stem}.py"
    if not path.is_file():
        return None
    if (rubric.folder / "__init__.py").is_file():
        package = f"grader_pack_{_identifier(rubric.assignment)}"
        _import_file(package, rubric.folder / "__init__.py", package=True)
        return _import_file(f"{package}.{stem}", path)
    return _import_file(f"grader_rubric_{_identifier(rubric.assignment)}_{stem}", path)


def outline_for(rubric: Rubric) -> OutlineFn:
    """The pack's ``conventions.outline``, or, when the pack has none, the generic reading by
    ``# [subtask]`` marks (``grader.pack.marks``)."""
    module = pack_module(rubric, "conventions")
    if module is not None and callable(getattr(module, "outline", None)):
        fn: OutlineFn = module.outline
        return fn
    from grader.pack.marks import outline_by_marks

    return outline_by_marks


def open_pack(rubric: Rubric) -> Pack:
    """Resolve every part of ``rubric``'s pack, validating the joins (``RubricError`` if broken)."""
    from grader.pack.validate import read_probes, validate_pack
    from grader.steps.checks import collect

    validate_pack(rubric)
    probes_path = rubric.folder / PROBES_FILE
    probes = read_probes(probes_path.read_text(encoding="utf-8")) if probes_path.is_file() else {}
    return Pack(rubric=rubric, checks_module=rubric.checks_module, check_functions=collect(rubric.checks_module),
                probes=probes, outline=outline_for(rubric))
