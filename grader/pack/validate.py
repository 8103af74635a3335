"""Validate a rubric pack when it loads: the joins between ``rubric.yaml``, ``probes.py`` and
``checks.py`` (``grader.pack.contract`` describes the contract).

Each broken join is one line naming the file, the id and, where a near name exists, what was
probably meant; all of a pack's problems are reported at once (``PackError.problems``), so a pack
writer fixes them in one pass instead of one per load. ``probes.py`` is read with ``ast`` and never
executed here: it is code for the student's kernel, and its top level may import what only the
kernel has.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from grader.pack.contract import (
    CHECKS_FILE,
    CONVENTIONS_FILE,
    PROBES_FILE,
    RUBRIC_FILE,
    ProbeDef,
    pack_module,
)
from grader.pack.rubric import _SECTION, RubricError

if TYPE_CHECKING:
    from grader.pack.rubric import Rubric

_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_PROBE_SIGNATURE = "(ns, inputs)"


class PackError(RubricError):
    """A pack whose files do not fit together; ``problems`` holds one line per broken join."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} problems in the rubric pack:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


def validate_pack(rubric: Rubric) -> None:
    """Raise ``PackError`` naming every broken join of ``rubric``'s pack; return if there is none."""
    problems = [*_store_problems(rubric), *_probe_problems(rubric)]
    module, import_problem = _checks_module(rubric)
    if import_problem:
        problems.append(import_problem)
    if module is not None:
        problems += [*_check_problems(rubric, module), *_entry_problems(rubric, module)]
    problems += _convention_problems(rubric)
    if problems:
        raise PackError(problems)


def show(path: Path) -> str:
    """A path as the pack writer typed it: relative to the working folder when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- store ----------------------------------------------------------------------------------------


def _store_problems(rubric: Rubric) -> Iterator[str]:
    yaml_file = show(rubric.folder / RUBRIC_FILE)
    for key, value in (("store_builder", rubric.store_builder), ("store_fetcher", rubric.store_fetcher)):
        if value and not _ENTRY.match(value):
            yield f"{yaml_file}: {key} '{value}' must name a function as 'package.module:function'"


# --- probes.py --------------------------------------------------------------------------------------


def read_probes(text: str) -> dict[str, tuple[ProbeDef, ...]]:
    """The probes ``text`` defines, by name, as the probe runner will find them: a literal
    ``PROBES = {"name": fn, ...}`` if there is one, else every top-level function (or class, or
    ``name = lambda``) whose name has no leading underscore. Raises ``SyntaxError``."""
    tree = ast.parse(text)
    starts = [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _SECTION.finditer(text)]

    def section(line: int) -> str:
        found = ""
        for start, name in starts:
            if start <= line:
                found = name
        return found

    defs: dict[str, ProbeDef] = {}
    literal: list[tuple[str, int]] | None = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            defs[f"{node.name}@{section(node.lineno)}"] = _probe_def(node.name, section(node.lineno), node.lineno, node.args)
        elif isinstance(node, ast.ClassDef):
            defs[f"{node.name}@{section(node.lineno)}"] = ProbeDef(node.name, section(node.lineno), node.lineno, "(class)", True)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            if isinstance(node.value, ast.Lambda):
                defs[f"{target}@{section(node.lineno)}"] = _probe_def(target, section(node.lineno), node.lineno, node.value.args)
            elif target == "PROBES" and isinstance(node.value, ast.Dict):
                keys = [k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
                if len(keys) == len(node.value.keys):
                    literal = [(k, node.lineno) for k in keys]
    by_name: dict[str, list[ProbeDef]] = {}
    if literal is not None:
        for name, line in literal:
            known = [d for d in defs.values() if d.name == name]
            by_name.setdefault(name, []).extend(known or [ProbeDef(name, section(line), line, "(PROBES entry)", True)])
    else:
        for d in defs.values():
            if not d.name.startswith("_"):
                by_name.setdefault(d.name, []).append(d)
    return {k: tuple(v) for k, v in by_name.items()}


def _probe_def(name: str, section: str, line: int, args: ast.arguments) -> ProbeDef:
    positional = [*args.posonlyargs, *args.args]
    required = len(positional) - len(args.defaults)
    kw_required = sum(1 for d in args.kw_defaults if d is None)
    ok = (len(positional) >= 2 or args.vararg is not None) and required <= 2 and kw_required == 0
    shown = [a.arg for a in positional] + ([f"*{args.vararg.arg}"] if args.vararg else [])
    return ProbeDef(name, section, line, f"({', '.join(shown)})", ok)


def _probe_problems(rubric: Rubric) -> Iterator[str]:
    yaml_file = show(rubric.folder / RUBRIC_FILE)
    path = rubric.folder / PROBES_FILE
    named = [(c, p) for c in rubric.checks for p in c.probes]
    if not path.is_file():
        if named:
            yield f"{yaml_file}: check '{named[0][0].id}' names probe '{named[0][1]}' but the pack has no {PROBES_FILE}"
        return
    probes_file = show(path)
    text = path.read_text(encoding="utf-8")
    try:
        probes = read_probes(text)
    except SyntaxError as exc:
        yield f"{probes_file}: line {exc.lineno}: not valid Python: {exc.msg}"
        return
    subtasks = rubric.subtask_ids
    for m in _SECTION.finditer(text):
        if m.group(1) not in subtasks:
            line = text.count("\n", 0, m.start()) + 1
            yield (f"{probes_file}: line {line}: section '{m.group(1)}' is not a subtask of {yaml_file}"
                   f"{_did_you_mean(m.group(1), subtasks)}")
    sections = {m.group(1) for m in _SECTION.finditer(text)}
    reported: set[str] = set()
    for check, name in named:
        defs = probes.get(name, ())
        if not defs:
            yield f"{yaml_file}: check '{check.id}' names probe '{name}', which {probes_file} does not define{_did_you_mean(name, probes)}"
            continue
        # only the shared part and the check's own section reach the kernel after its subtask
        sent = [d for d in defs if d.section in ("", check.subtask) or check.subtask not in sections]
        if not sent:
            where = ", ".join(sorted({d.section for d in defs}))
            yield (f"{yaml_file}: check '{check.id}' (subtask {check.subtask}) names probe '{name}', which {probes_file} "
                   f"defines only in section(s) {where}: after subtask {check.subtask} the kernel gets the shared part "
                   f"and section {check.subtask} only")
        for d in sent:
            if not d.callable_as_probe and f"{d.name}@{d.line}" not in reported:
                reported.add(f"{d.name}@{d.line}")
                yield f"{probes_file}: line {d.line}: probe '{d.name}{d.signature}' must take {_PROBE_SIGNATURE}"


# --- checks.py ----------------------------------------------------------------------------------------


def _checks_module(rubric: Rubric) -> tuple[ModuleType | None, str]:
    path = rubric.folder / CHECKS_FILE
    if not path.is_file():
        # a pack of manual items only still loads (grader review reads its bullets); one with checks cannot grade
        if rubric.checks:
            return None, f"{show(rubric.folder)}: the pack has no {CHECKS_FILE} (its @check functions, make_inputs and reference)"
        return None, ""
    try:
        return rubric.checks_module, ""
    except RubricError as exc:
        return None, str(exc)


def _check_functions(module: ModuleType) -> dict[str, list[tuple[str, Callable[..., Any]]]]:
    """Every ``@check`` function of ``module`` by id (an id may wrongly be on several)."""
    found: dict[str, list[tuple[str, Callable[..., Any]]]] = {}
    seen: set[int] = set()
    for name, obj in vars(module).items():
        cid = getattr(obj, "check_id", None)
        if callable(obj) and isinstance(cid, str) and id(obj) not in seen:
            seen.add(id(obj))
            found.setdefault(cid, []).append((getattr(obj, "__name__", name), obj))
    return found


def _check_problems(rubric: Rubric, module: ModuleType) -> Iterator[str]:
    yaml_file, checks_file = show(rubric.folder / RUBRIC_FILE), show(rubric.folder / CHECKS_FILE)
    found = _check_functions(module)
    yaml_ids = [c.id for c in rubric.checks]
    manual_ids = {m.id for m in rubric.manual}
    unclaimed = [cid for cid in found if cid not in yaml_ids]
    for spec in rubric.checks:
        if spec.id not in found:
            yield f"{yaml_file}: check '{spec.id}' has no function in {checks_file}{_did_you_mean(spec.id, unclaimed)}"
    for cid, fns in found.items():
        names = ", ".join(n for n, _ in fns)
        if len(fns) > 1:
            yield f"{checks_file}: @check('{cid}') is on {len(fns)} functions ({names}); the grader would run only one"
        if cid in manual_ids:
            yield f"{checks_file}: @check('{cid}') ({names}) is a manual item of {yaml_file}, scored by a person, not a check"
        elif cid not in yaml_ids:
            missing = [i for i in yaml_ids if i not in found]
            yield f"{checks_file}: @check('{cid}') ({names}) is not a check of {yaml_file}{_did_you_mean(cid, missing)}"
        for name, fn in fns:
            if not _binds(fn, object()):
                yield f"{checks_file}: check '{cid}' ({name}{_signature(fn)}) must take one argument, the CheckContext"


def _entry_problems(rubric: Rubric, module: ModuleType) -> Iterator[str]:
    yaml_file, checks_file = show(rubric.folder / RUBRIC_FILE), show(rubric.folder / CHECKS_FILE)
    required: Mapping[str, tuple[tuple[Any, ...], dict[str, Any], str]] = {
        "make_inputs": ((None, {}, 0), {"source": {}}, "(rubric, plan, seed, source)"),
        "reference": ((None, {}), {}, "(rubric, inputs)"),
    }
    optional: Mapping[str, tuple[tuple[Any, ...], dict[str, Any], str]] = {
        "manual_hints": (("id", "text"), {}, "(item_id, text)"),
        "suggest": (("id", "text"), {}, "(item_id, text)"),
        "reference_answer": (("name",), {}, "(name)"),
    }
    for name, (args, kwargs, wanted) in {**required, **optional}.items():
        fn = getattr(module, name, None)
        if fn is None:
            if name in required:
                yield f"{checks_file}: no {name}{wanted}, which the grader calls for every submission"
            continue
        if not callable(fn) or not _binds(fn, *args, **kwargs):
            yield f"{checks_file}: {name}{_signature(fn)} must take {wanted}"
    for item in rubric.manual:
        if item.suggest and getattr(module, "suggest", None) is None:
            yield f"{yaml_file}: manual item '{item.id}' has suggest: true but {checks_file} has no suggest(item_id, text)"
        if item.reference and getattr(module, "reference_answer", None) is None:
            yield (f"{yaml_file}: manual item '{item.id}' names reference '{item.reference}' but {checks_file} "
                   f"has no reference_answer(name)")


def _binds(fn: Any, *args: Any, **kwargs: Any) -> bool:
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): trust it
        return True
    return True


def _signature(fn: Any) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)" if callable(fn) else f" (not a function: {type(fn).__name__})"


# --- conventions.py -------------------------------------------------------------------------------


def _convention_problems(rubric: Rubric) -> Iterator[str]:
    path = rubric.folder / CONVENTIONS_FILE
    if not path.is_file():
        return
    try:
        module = pack_module(rubric, "conventions")
    except RubricError as exc:
        yield str(exc)
        return
    fn = getattr(module, "outline", None)
    if fn is None:
        yield f"{show(path)}: no outline(nb), which says which cell belongs to which subtask"
    elif not callable(fn) or not _binds(fn, None):
        yield f"{show(path)}: outline{_signature(fn)} must take (nb)"
