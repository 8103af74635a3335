"""``grader new-pack``'s work: a rubric pack's files, as text, from the marked cells of a solution.

One check per marked cell (``grader.pack.marks``), its subtask from the mark, its points from nbgrader's
metadata or a "(2 pts)" in the markdown just above (else 1). The probes and checks are stubs that
run: each probe reports which of its cell's names the notebook defined, and each check fails with
"not written yet", so a half-written pack can never give marks away. The result passes
``grader.pack.validate`` as written; ``docs/PACKS.md`` says how to fill it in.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from nbformat import NotebookNode

from grader.pack.marks import Mark, find_marks

NOT_WRITTEN = "not written yet"
_POINTS = re.compile(r"\(\s*(\d+(?:\.\d+)?)\s*(?:pt|pts|point|points)\b", re.IGNORECASE)


@dataclass(frozen=True)
class PlannedCheck:
    id: str
    subtask: str
    points: float
    probe: str
    cell: int  # 0-based index in the solution notebook
    names: tuple[str, ...]  # what the cell defines at its top level


@dataclass(frozen=True)
class PlannedSubtask:
    id: str
    title: str


@dataclass(frozen=True)
class Scaffold:
    name: str
    title: str
    subtasks: tuple[PlannedSubtask, ...]
    checks: tuple[PlannedCheck, ...]
    files: dict[str, str]  # file name -> text


def _text(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def defined_names(source: str) -> tuple[str, ...]:
    """The top-level functions, classes and assigned names of a cell, in order (IPython's ``!``/``%``
    lines blanked; a cell that does not parse defines nothing)."""
    text = "\n".join("" if line.lstrip().startswith(("!", "%")) else line for line in source.splitlines())
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return ()
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return tuple(dict.fromkeys(n for n in names if not n.startswith("_")))


def _markdown_above(nb: NotebookNode, index: int) -> str:
    for cell in reversed(nb.cells[:index]):
        if cell.get("cell_type") == "markdown":
            return _text(cell)
        if cell.get("cell_type") == "code" and _text(cell).strip():
            return ""
    return ""


def _points(nb: NotebookNode, mark: Mark) -> float:
    if mark.points is not None:
        return mark.points
    found = _POINTS.search(_markdown_above(nb, mark.index))
    return float(found.group(1)) if found else 1.0


def _title_from_markdown(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return re.sub(r"[#*_`]+", "", first).strip()[:100]


def _identifier(text: str) -> str:
    ident = re.sub(r"\W", "_", text).strip("_") or "part"
    return ident if not ident[0].isdigit() else f"part_{ident}"


def plan(nb: NotebookNode, name: str) -> tuple[str, tuple[PlannedSubtask, ...], tuple[PlannedCheck, ...]]:
    """The title, subtasks and checks a solution's marks call for (``ValueError`` without marks)."""
    marks = find_marks(nb)
    if not marks:
        raise ValueError("no marked cells: start each graded code cell with a tag such as '# [train]', give it the cell "
                         "tag 'grade:train', or use nbgrader's grade_id")
    heading = next((_title_from_markdown(_text(c)) for c in nb.cells if c.get("cell_type") == "markdown" and _text(c).strip()), "")
    subtasks: dict[str, PlannedSubtask] = {}
    checks: list[PlannedCheck] = []
    used_ids: set[str] = set()
    used_probes: set[str] = set()
    for mark in marks:
        if mark.subtask not in subtasks:
            title = mark.title or _title_from_markdown(_markdown_above(nb, mark.index)) or mark.subtask
            subtasks[mark.subtask] = PlannedSubtask(mark.subtask, title)
        names = defined_names(_text(nb.cells[mark.index]))
        functions = [n for n in names if _defines_function(_text(nb.cells[mark.index]), n)]
        slug = functions[0] if functions else "result"
        check_id, probe, k = f"{mark.subtask}.{slug}", _identifier(slug if functions else f"{mark.subtask}_{slug}"), 2
        while check_id in used_ids or probe in used_probes:
            check_id, probe, k = f"{mark.subtask}.{slug}{k}", _identifier(f"{mark.subtask}_{slug}{k}"), k + 1
        used_ids.add(check_id)
        used_probes.add(probe)
        checks.append(PlannedCheck(check_id, mark.subtask, _points(nb, mark), probe, mark.index, names))
    return heading or name, tuple(subtasks.values()), tuple(checks)


def _defines_function(source: str, name: str) -> bool:
    return re.search(rf"^(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", source, re.MULTILINE) is not None


def scaffold(nb: NotebookNode, name: str, solution: str = "the solution notebook") -> Scaffold:
    title, subtasks, checks = plan(nb, name)
    marks = find_marks(nb)
    files = {
        "__init__.py": f'"""The rubric pack of {title!r} (scaffolded by grader new-pack from {solution})."""\n',
        "rubric.yaml": _rubric_yaml(name, title, subtasks, checks, solution),
        "probes.py": _probes_py(subtasks, checks),
        "checks.py": _checks_py(name, checks),
    }
    if any(m.kind in ("comment", "tag") for m in marks):  # nbgrader's metadata does not reach the grader
        files["conventions.py"] = CONVENTIONS
    return Scaffold(name, title, subtasks, checks, files)


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string escapes are YAML's)."""
    return json.dumps(text, ensure_ascii=False)


def _rubric_yaml(name: str, title: str, subtasks: tuple[PlannedSubtask, ...], checks: tuple[PlannedCheck, ...], solution: str) -> str:
    points = {s.id: sum(c.points for c in checks if c.subtask == s.id) for s in subtasks}
    lines = [
        f"# Scaffolded by `grader new-pack` from {solution}: one check per marked cell. Every check",
        "# fails with 'not written yet' until its function in checks.py is written (docs/PACKS.md).",
        "schema_version: 1",
        f"assignment: {_q(name)}",
        f"title: {_q(title)}",
        f"total_points: {sum(points.values()):g}",
        f"hidden_seed: {secrets.randbelow(2**31)}",
        "",
        "limits:",
        "  cell_timeout: 120",
        "  deadline: 600",
        "  probe_timeout: 120",
        "  memory_gib: 4",
        "",
        "# The grader's own libraries; declare a course environment here if the notebooks need older ones.",
        "kernel:",
        "  default_env: current",
        "  envs:",
        "    - name: current",
        "      title: \"the grader's own libraries\"",
        "",
        "subtasks:",
        *(f"  - {{id: {_q(s.id)}, title: {_q(s.title)}, points: {points[s.id]:g}}}" for s in subtasks),
        "",
        "checks:",
        *(f"  - {{id: {_q(c.id)}, subtask: {_q(c.subtask)}, points: {c.points:g}, probes: [{c.probe}],\n"
          f"     title: {_q(f'TODO: what this check verifies (cell {c.cell + 1})')}}}" for c in checks),
        "",
        "# Written answers a TA scores (grader review), with the official rubric's bullets:",
        "# manual:",
        "#   - {id: \"part.why\", subtask: \"part\", points: 1, prompt: \"Why ...?\", bullets: [\"1 point if ...\"]}",
        "",
    ]
    return "\n".join(lines)


PROBES_HEAD = '''"""Probes: code sent into the student's kernel, as source. Untrusted ground: return data only.

Each probe is ``name(ns, inputs) -> data``: ``ns`` is the notebook's globals, ``inputs`` what
``make_inputs`` drew for this submission. Call what the notebook defined on those inputs and return
what it gives back; never put an expected value or reference code here. The part above the first
``# --- <subtask> ---`` line goes with every section; a section reaches the kernel only after its
subtask's cells ran. ``SAVE_TENSORS(name, {key: tensor})`` ships tensors as safetensors.
"""

SAVE_TENSORS = globals().get("SAVE_TENSORS")


def _defined(ns, names):
    """Which of ``names`` the notebook defined, and their types (what the stubs report)."""
    return {n: type(ns[n]).__name__ for n in names if n in ns}
'''


def _probes_py(subtasks: tuple[PlannedSubtask, ...], checks: tuple[PlannedCheck, ...]) -> str:
    parts = [PROBES_HEAD]
    for s in subtasks:
        parts.append(f"\n\n# --- {s.id} " + "-" * max(3, 96 - len(s.id)) + "\n")
        for c in (c for c in checks if c.subtask == s.id):
            parts.append(
                f"\n\ndef {c.probe}(ns, inputs):\n"
                f'    """TODO: call what cell {c.cell + 1} defines on ``inputs`` and return the result as data."""\n'
                f"    return _defined(ns, {json.dumps(list(c.names))})\n"
            )
    return "".join(parts)


def _checks_py(name: str, checks: tuple[PlannedCheck, ...]) -> str:
    head = f'''"""Checks: trusted comparisons, run in the grader's process (never in the kernel).

Each ``@check`` reads its probe's result (``ctx.value(probe)``, which raises ``Missing`` -> zero
points when the probe failed), the input it got (``ctx.input(probe)``) and what ``reference``
computed, and returns ``Verdict(fraction, message)``. Stubs fail with "{NOT_WRITTEN}": a pack that is
not finished gives no points.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from grader.steps.checks import CheckContext, Verdict, check


def make_inputs(rubric: Any, plan: Mapping[str, tuple[str, ...]], seed: int, source: Any = None) -> dict[str, dict[str, Any]]:
    """{{subtask: {{probe: input}}}}, drawn afresh from ``seed`` for every submission. These go into the
    kernel: nothing here may reveal an expected value."""
    rng = np.random.default_rng(seed)
    drawn: dict[str, Any] = {{}}  # TODO: e.g. drawn["probe"] = {{"x": rng.normal(size=(3, 4)).tolist()}}
    del rng  # until the line above uses it
    return {{subtask: {{probe: drawn.get(probe, {{}}) for probe in probes}} for subtask, probes in plan.items()}}


def reference(rubric: Any, inputs: Mapping[str, Mapping[str, Any]]) -> Any:
    """What the checks compare with, computed here on the same inputs (``ctx.reference``)."""
    return None


def not_written(check_id: str) -> Verdict:
    return Verdict(0.0, f"check '{{check_id}}' is {NOT_WRITTEN} (its function in checks.py of the pack {name})")
'''
    body = [head]
    used: set[str] = {"make_inputs", "reference", "not_written", "check"}
    for c in checks:
        fn, k = _identifier(c.id.replace(".", "_")), 2
        while fn in used:
            fn, k = f"{_identifier(c.id.replace('.', '_'))}_{k}", k + 1
        used.add(fn)
        body.append(
            f"\n\n@check({_q(c.id)})\ndef {fn}(ctx: CheckContext) -> Verdict:\n"
            f'    """TODO: compare ctx.value({_q(c.probe)}) with the reference; until then, no points."""\n'
            f"    return not_written({_q(c.id)})\n"
        )
    return "".join(body)


CONVENTIONS = '''"""Which cell belongs to which subtask: a tagged cell (``# [subtask]`` on its first line, or the cell
tag ``grade:subtask``) and the cells after it, up to the next tag."""

from __future__ import annotations

from nbformat import NotebookNode

from grader.pack.marks import outline_by_marks
from grader.steps.notebook import Outline


def outline(nb: NotebookNode) -> Outline:
    return outline_by_marks(nb)
'''
