"""The course overview page (``DIR/index.html``): how the class did, what it failed most, who needs
a look first, with a link to every report. One self-contained HTML file: the plots are inline SVG
drawn by the template from numbers computed here, so it opens from a USB stick with no network.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from grader.course.gradebook import Entry, Gradebook, subtask_order
from grader.course.progress import status_word
from grader.safety.escape import safe_id
from grader.steps.results import write_text_atomic
from grader.steps.score import manual_scored

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str


@dataclass(frozen=True)
class Rate:
    id: str
    subtask: str
    n: int
    passed: int
    failed: int
    other: int  # error, timeout, skipped
    rate: float  # passed / n


@dataclass(frozen=True)
class SubtaskRow:
    id: str
    mean: float
    maximum: float
    fraction: float
    manual_open: int  # manual items of this subtask nobody has scored yet (counted as zero above)


@dataclass(frozen=True)
class Row:
    id: str
    name: str
    team: str
    status: str
    rank: int  # 0 error, 1 kernel trouble, 2 fine: the table shows problems first
    error: str
    auto: str
    manual: str
    total: str
    href: str
    problems: tuple[str, ...]
    manual_open: int  # manual items not scored yet


# Plot area of the histogram, in SVG user units.
HIST_W, HIST_H, HIST_PAD = 640.0, 220.0, 30.0


def histogram(values: Sequence[float], maximum: float, bins: int = 10) -> list[Bar]:
    if maximum <= 0:
        maximum = max(values, default=1.0) or 1.0
    width = maximum / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(v / width)))] += 1
    top = max(counts, default=0) or 1
    bar_w = (HIST_W - 2 * HIST_PAD) / bins
    bars = []
    for i, c in enumerate(counts):
        h = (HIST_H - 2 * HIST_PAD) * c / top
        bars.append(Bar(
            x=HIST_PAD + i * bar_w, y=HIST_H - HIST_PAD - h, width=bar_w - 2, height=h, count=c,
            label=f"{_num(i * width)}–{_num((i + 1) * width)}",
        ))
    return bars


def check_rates(entries: Sequence[Entry]) -> list[Rate]:
    """Per check over graded submissions, the ones the class failed most first."""
    tally: dict[str, Counter[str]] = {}
    subtask: dict[str, str] = {}
    for e in entries:
        if e.result.status != "graded":
            continue
        for ch in e.result.checks:
            tally.setdefault(ch.id, Counter())[ch.status] += 1
            subtask[ch.id] = ch.subtask
    rates = []
    for cid, c in tally.items():
        n = sum(c.values())
        rates.append(Rate(cid, subtask[cid], n, c["passed"], c["failed"], n - c["passed"] - c["failed"], c["passed"] / n if n else 0.0))
    return sorted(rates, key=lambda r: (r.rate, r.id))


def subtask_rows(entries: Sequence[Entry]) -> list[SubtaskRow]:
    graded = [e for e in entries if e.result.status == "graded"]
    keys = subtask_order({s for e in graded for s in e.result.subtasks})
    rows = []
    for key in keys:
        got = [e.result.subtasks[key] for e in graded if key in e.result.subtasks]
        maximum = max((s.auto_max + s.manual_max for s in got), default=0.0)
        mean = statistics.fmean([e.result.subtasks[key].auto_points + manual_scored(e.result, key) for e in graded if key in e.result.subtasks]) if got else 0.0
        open_items = sum(1 for e in graded for m in e.result.manual if m.subtask == key and m.points is None)
        rows.append(SubtaskRow(key, mean, maximum, mean / maximum if maximum else 0.0, open_items))
    return rows


def submission_rows(entries: Sequence[Entry], page_dir: Path) -> list[Row]:
    rows = []
    for e in entries:
        r = e.result
        rank = 0 if r.status == "error" else 1 if r.kernel_status != "ok" else 2
        href = report_href(e.submission.id, page_dir)
        open_items = sum(1 for m in r.manual if m.points is None)
        rows.append(Row(
            id=e.submission.id, name=e.submission.name, team=", ".join(r.team), status=status_word(r), rank=rank,
            error=r.error or r.kernel_message, auto=_num(r.auto_points), manual=_num(manual_scored(r)), total=_num(e.total),
            href=href, problems=e.submission.problems, manual_open=open_items,
        ))
    return sorted(rows, key=lambda row: (row.rank, row.id))


def report_href(sid: str, page_dir: Path) -> str:
    """The link from ``index.html`` to a submission's report: built only from the id, and only when
    the id is what ``grader.safety.escape.safe_id`` makes (no scheme, no ``..``, no separator); the id is
    percent-encoded as one path segment. ``""`` (no link) for anything else, such as an id a gradebook
    from before ids were normalised holds, or a submission whose folder has no report."""
    if safe_id(sid) != sid:
        return ""
    for name in ("report.html", "result.json"):
        if (page_dir / sid / name).is_file():
            return f"{quote(sid, safe='')}/{name}"
    return ""


def overview_context(entries: Sequence[Entry], page_dir: Path, similarity: Any = None) -> dict[str, Any]:
    graded = [e for e in entries if e.result.status == "graded"]
    totals = [e.total for e in graded]
    maximum = max((e.result.auto_max + e.result.manual_max for e in graded), default=0.0)
    manual_items = sum(len(e.result.manual) for e in entries)
    manual_done = sum(1 for e in entries for m in e.result.manual if m.points is not None)
    assignment = next((e.result.assignment for e in entries if e.result.assignment), "")
    return {
        "assignment": assignment,
        "generated": time.strftime("%Y-%m-%d %H:%M"),
        "n": len(entries),
        "n_graded": len(graded),
        "n_errors": sum(1 for e in entries if e.result.status == "error"),
        "n_kernel": sum(1 for e in graded if e.result.kernel_status != "ok"),
        "mean": _num(statistics.fmean(totals)) if totals else "-",
        "median": _num(statistics.median(totals)) if totals else "-",
        "maximum": _num(maximum),
        "manual_items": manual_items,
        "manual_done": manual_done,
        "hist": histogram(totals, maximum),
        "hist_w": HIST_W,
        "hist_h": HIST_H,
        "hist_pad": HIST_PAD,
        "subtasks": subtask_rows(entries),
        "checks": check_rates(entries),
        "rows": submission_rows(entries, page_dir),
        "similarity": similarity,
    }


def render_overview(context: dict[str, Any]) -> str:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pct"] = lambda x: f"{100 * x:.0f}%"
    return env.get_template("overview.html.j2").render(**context)


def write_overview(gradebook: Gradebook, out_dir: Path, similarity: Any = None) -> Path:
    """Write ``out_dir/index.html`` from what the gradebook holds now (and ``similarity.json`` beside it)."""
    if similarity is None:
        from grader.course.similarity import load_report

        similarity = load_report(out_dir / "similarity.json")
    path = out_dir / "index.html"
    write_text_atomic(path, render_overview(overview_context(gradebook.entries(), out_dir, similarity)))
    return path


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{round(value, 2):g}"
