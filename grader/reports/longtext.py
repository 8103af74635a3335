"""Long student text, kept once: a 50 MB answer must not be copied into every output.

A written answer or a peer-comment block is copied into ``result.json``, ``report.html``,
``report.md``, the gradebook and the TA sheet; unbounded, one 50 MB answer made about 200 MB of
output, and every later step (rendering, the overview, a TA's spreadsheet) paid for it again.
:func:`clip_long_texts` keeps the first ``MAX_ANSWER_CHARS`` characters in the result, writes the
whole text once to ``<out>/full-text/<name>.txt`` and says so at the cut. Other texts the grader
writes from student data (check messages, kernel messages, notes, team names) are cut without a
side file: they are short when honest, and the notebook itself still holds the original.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from grader.safety.escape import safe_id
from grader.steps.results import GradeResult, write_text_atomic

MAX_ANSWER_CHARS = 20_000  # about ten times the longest answer of the course's solution
MAX_MESSAGE_CHARS = 4_000  # a check or kernel message, a note, the error of a submission
MAX_DETAIL_CHARS = 20_000  # instructor-only details (tracebacks)
MAX_TEAM_NAMES = 12
MAX_NAME_CHARS = 200
FULL_TEXT_DIR = "full-text"


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut said in words."""
    if len(text) <= limit:
        return text
    return text[:limit] + f" [… cut: {len(text):,} characters in all]"


def keep_once(text: str, out_dir: Path, name: str, limit: int = MAX_ANSWER_CHARS) -> str:
    """``text`` if short; else its start, after the whole of it is written to ``full-text/<name>.txt``."""
    if len(text) <= limit:
        return text
    file_name = f"{safe_id(name)}.txt"
    write_text_atomic(out_dir / FULL_TEXT_DIR / file_name, text)
    return text[:limit] + f"\n\n[… cut: {len(text):,} characters in all; the full text is in {FULL_TEXT_DIR}/{file_name}]"


def clip_long_texts(result: GradeResult, out_dir: Path) -> GradeResult:
    """The result with every long student text bounded (see the module docstring)."""
    manual = tuple(replace(m, answer=keep_once(m.answer, out_dir, f"answer-{m.id}")) for m in result.manual)
    comments = {k: keep_once(v, out_dir, f"comments-{k}") for k, v in result.comments.items()}
    checks = tuple(replace(c, message=cut(c.message, MAX_MESSAGE_CHARS), detail=cut(c.detail, MAX_DETAIL_CHARS)) for c in result.checks)
    notes = tuple(replace(n, message=cut(n.message, MAX_MESSAGE_CHARS)) for n in result.notes)
    cells = tuple(replace(c, error=cut(c.error, MAX_MESSAGE_CHARS)) for c in result.cells)
    team = tuple(cut(name, MAX_NAME_CHARS) for name in result.team[:MAX_TEAM_NAMES])
    return replace(
        result, manual=manual, comments=comments, checks=checks, notes=notes, cells=cells, team=team,
        error=cut(result.error, MAX_MESSAGE_CHARS), kernel_message=cut(result.kernel_message, MAX_MESSAGE_CHARS),
    )
