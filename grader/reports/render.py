"""Render: a ``GradeResult`` -> ``report.html`` and ``report.md`` (Jinja2, autoescape, StrictUndefined).

Reports are student-facing: hidden checks appear only as a per-subtask total, never by name or
message, and instructor-only details (tracebacks, reference answers) never appear. A rubric pack
may override either template with a file of the same name in its ``templates/`` folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from grader.pack.rubric import Rubric
from grader.steps.results import CheckResult, GradeResult

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class SubtaskView:
    id: str
    title: str
    auto_points: float
    auto_max: float
    manual_max: float
    manual_points: float | None
    checks: tuple[CheckResult, ...]  # public ones
    hidden_points: float
    hidden_max: float
    hidden_count: int


def _env(extra: Path | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(TEMPLATES))]
    if extra is not None:
        loaders.insert(0, jinja2.FileSystemLoader(str(extra)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=lambda name: name is None or not name.endswith(".md.j2"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["pts"] = lambda v: "–" if v is None else f"{float(v):g}"
    return env


def views(result: GradeResult, titles: dict[str, str]) -> list[SubtaskView]:
    out = []
    for sid, s in result.subtasks.items():
        checks = [c for c in result.checks if c.subtask == sid]
        hidden = [c for c in checks if c.hidden]
        out.append(SubtaskView(
            id=sid, title=titles.get(sid, ""), auto_points=s.auto_points, auto_max=s.auto_max,
            manual_max=s.manual_max, manual_points=s.manual_points,
            checks=tuple(c for c in checks if not c.hidden),
            hidden_points=round(sum(c.points for c in hidden), 4), hidden_max=round(sum(c.max_points for c in hidden), 4),
            hidden_count=len(hidden),
        ))
    return out


def render_reports(result: GradeResult, out_dir: Path, rubric: Rubric) -> tuple[Path, Path]:
    """Write report.html and report.md for a student, with the rubric's titles and templates."""
    return render(result, out_dir, {s.id: s.title for s in rubric.subtasks}, rubric.title, rubric.template_dir(),
                  {c.id: c.title for c in rubric.checks})


def render(result: GradeResult, out_dir: Path, titles: dict[str, str], title: str, template_dir: Path | None = None,
           check_titles: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Write report.html and report.md for a student; returns their paths."""
    env = _env(template_dir)
    student = result  # hidden checks are summarised by the templates, never listed
    ctx = {
        "r": student,
        "title": title,
        "subtasks": views(student, titles),
        "failing_cells": [c for c in student.cells if c.status in ("error", "timeout")],
        "not_run": [c for c in student.cells if c.status == "not_run"],
        "drift": [n for n in student.notes if n.kind == "drift"],
        "colab": [n for n in student.notes if n.kind == "colab"],
        "other_notes": [n for n in student.notes if n.kind not in ("drift", "colab")],
        "total_max": round(student.auto_max + student.manual_max, 4),
        "check_titles": check_titles or {},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    html = out_dir / "report.html"
    md = out_dir / "report.md"
    _write(html, env.get_template("report.html.j2").render(**ctx))
    _write(md, env.get_template("report.md.j2").render(**ctx))
    return html, md


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", errors="replace")
    tmp.replace(path)
