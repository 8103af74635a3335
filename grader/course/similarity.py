"""Pairs of submissions whose code or written answers are unusually similar: a flag for a person to
look at, never a verdict.

How: every notebook becomes two sets of fingerprints (hashed k-grams, as in MOSS): code tokens with
comments and whitespace gone and the names the notebook itself defines replaced by one placeholder
(renaming variables changes nothing; library calls stay), and words of the markdown answers.
Fingerprints of the template (the code and text everyone was given) are dropped, and so are those
that a large share of the class has (the one obvious way to call an API is no evidence). A pair's
score is the share of the smaller notebook's remaining fingerprints that the other has too.
"Unusual" is relative to the batch: a pair is flagged when its score is high in absolute terms and
far above the typical nearest-neighbour score of the class (robust z-score: median and MAD).
"""

from __future__ import annotations

import ast
import io
import json
import re
import statistics
import tokenize
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CODE_K = 10  # tokens per fingerprint
TEXT_K = 6  # words per fingerprint
# Bounds per notebook, so that memory grows with the class, not with one student's text: the course's
# solution has 57,000 characters of source, 2,800 code tokens and 7,000 words.
MAX_CHARS = 1_000_000  # source characters read
MAX_TOKENS = 50_000  # tokens of each kind fingerprinted
MAX_LINE_CHARS = 300  # characters of one line shown in a passage
Kind = str  # "code" or "text"


@dataclass(frozen=True)
class Line:
    text: str
    shared: bool


@dataclass(frozen=True)
class Passage:
    cell_a: int
    cell_b: int
    shared: int
    lines_a: tuple[Line, ...]
    lines_b: tuple[Line, ...]


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    kind: Kind
    score: float  # shared / size of the smaller notebook
    shared: int
    size_a: int
    size_b: int
    z: float  # how far above the class's typical nearest-neighbour score
    same_team: bool  # both notebooks name a common team member: expected, shown last
    passages: tuple[Passage, ...] = ()


@dataclass(frozen=True)
class SimilarityReport:
    pairs: tuple[Pair, ...]
    submissions: int
    baseline: dict[str, dict[str, float]] = field(default_factory=dict)  # kind -> median, mad of nearest-neighbour scores
    settings: dict[str, float] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()  # ids not compared: their notebook could not be read or was refused

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def report_from_json(data: Mapping[str, Any]) -> SimilarityReport:
    pairs = []
    for p in data.get("pairs", ()):
        passages = tuple(
            Passage(q["cell_a"], q["cell_b"], q["shared"], tuple(Line(**x) for x in q["lines_a"]), tuple(Line(**x) for x in q["lines_b"]))
            for q in p.get("passages", ())
        )
        pairs.append(Pair(**{**p, "passages": passages}))
    return SimilarityReport(tuple(pairs), int(data.get("submissions", 0)), dict(data.get("baseline", {})), dict(data.get("settings", {})),
                            tuple(data.get("skipped", ())))


# --- one notebook ------------------------------------------------------------------------------------


@dataclass
class Prints:
    """A notebook's fingerprints of one kind: hash -> where it occurs (cell, first line, last line)."""

    where: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    cells: dict[int, str] = field(default_factory=dict)  # cell index -> source, for the passages

    def add(self, h: int, cell: int, first: int, last: int) -> None:
        self.where.setdefault(h, []).append((cell, first, last))


def read_cells(path: Path) -> list[tuple[int, str, str]]:
    """(index, cell type, source) of a notebook; ``[]`` if it cannot be read or is refused.

    Refused like grading refuses it (``grader.steps.notebook``: a FIFO or link, over the size, nesting or
    cell limits), and never more than ``MAX_CHARS`` of source in all: the fingerprints of a notebook
    cost about 35 times its text, so a 50 MB answer must not reach them whole.
    """
    from grader.steps.notebook import raw_cells

    return raw_cells(path, max_chars=MAX_CHARS) or []


def defined_names(sources: list[str]) -> set[str]:
    """Names a notebook binds itself (variables, functions, classes, arguments, import aliases)."""
    names: set[str] = set()
    for src in sources:
        try:
            tree = ast.parse(_strip_magics(src))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias) and node.asname:
                names.add(node.asname)
    return names


def _strip_magics(src: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in src.splitlines())


_FALLBACK_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d+)?|\S")


def code_tokens(src: str, local: set[str]) -> list[tuple[str, int]]:
    """(normalised token, line) of a code cell: no comments or layout, own names as ``V``."""
    src = _strip_magics(src)
    out: list[tuple[str, int]] = []
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if tok.type in skip:
                continue
            text = "V" if tok.type == tokenize.NAME and tok.string in local else tok.string
            out.append((text, tok.start[0]))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        out = []
        for lineno, line in enumerate(src.splitlines(), 1):
            line = line.split("#", 1)[0]
            out.extend(("V" if t in local else t, lineno) for t in _FALLBACK_TOKEN.findall(line))
    return out


def text_tokens(src: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for lineno, line in enumerate(src.splitlines(), 1):
        out.extend((w, lineno) for w in re.findall(r"[^\W_]+", line.casefold()))
    return out


def fingerprints(path: Path) -> dict[Kind, Prints] | None:
    """A notebook's fingerprints; ``None`` when it cannot be read or is refused: it is then left out
    of the batch (it would only pull the class's typical score down)."""
    cells = read_cells(path)
    if not cells:
        return None
    local = defined_names([s for _, t, s in cells if t == "code"])
    prints = {"code": Prints(), "text": Prints()}
    used = {"code": 0, "text": 0}
    for index, cell_type, src in cells:
        if cell_type == "code":
            kind, toks, k = "code", code_tokens(src, local), CODE_K
        elif cell_type == "markdown":
            kind, toks, k = "text", text_tokens(src), TEXT_K
        else:
            continue
        p = prints[kind]
        toks = toks[: max(0, MAX_TOKENS - used[kind])]
        used[kind] += len(toks)
        p.cells[index] = src
        for i in range(len(toks) - k + 1):
            gram = toks[i : i + k]
            p.add(hash(tuple(t for t, _ in gram)), index, gram[0][1], gram[-1][1])
    return prints


# --- the batch -------------------------------------------------------------------------------------------


def find_similar(
    notebooks: Mapping[str, Path],
    *,
    template: Path | None = None,
    teams: Mapping[str, tuple[str, ...]] | None = None,
    common_fraction: float = 0.3,
    min_score: float = 0.5,
    min_z: float = 3.0,
    min_shared: int = 8,
    max_pairs: int = 50,
) -> SimilarityReport:
    """Flag pairs of ``notebooks`` ({id: path}) that are unusually similar; see the module docstring."""
    teams = teams or {}
    read = {sid: fingerprints(path) for sid, path in sorted(notebooks.items())}
    prints = {sid: fp for sid, fp in read.items() if fp is not None}
    skipped = tuple(sid for sid, fp in read.items() if fp is None)
    given = fingerprints(template) if template is not None and template.is_file() else None
    n = len(prints)
    pairs: list[Pair] = []
    baseline: dict[str, dict[str, float]] = {}
    for kind in ("code", "text"):
        drop = set(given[kind].where) if given else set()
        df = Counter(h for p in prints.values() for h in p[kind].where)
        limit = max(2, int(common_fraction * n))
        drop |= {h for h, c in df.items() if c > limit}
        kept = {sid: set(p[kind].where) - drop for sid, p in prints.items()}
        postings: dict[int, list[str]] = {}
        for sid, hs in kept.items():
            for h in hs:
                postings.setdefault(h, []).append(sid)
        shared: Counter[tuple[str, str]] = Counter()
        for ids in postings.values():
            if len(ids) > 1:
                for i, a in enumerate(ids):
                    for b in ids[i + 1 :]:
                        shared[(a, b) if a < b else (b, a)] += 1
        scores: dict[tuple[str, str], float] = {}
        for (a, b), count in shared.items():
            smaller = min(len(kept[a]), len(kept[b]))
            if smaller and count >= min_shared:
                scores[(a, b)] = count / smaller
        nearest = dict.fromkeys(kept, 0.0)
        for (a, b), s in scores.items():
            nearest[a] = max(nearest[a], s)
            nearest[b] = max(nearest[b], s)
        values = list(nearest.values()) or [0.0]
        median = statistics.median(values)
        mad = statistics.median([abs(v - median) for v in values])
        spread = max(1.4826 * mad, 0.05)
        baseline[kind] = {"median": round(median, 4), "mad": round(mad, 4)}
        for (a, b), s in scores.items():
            z = (s - median) / spread
            if s >= min_score and z >= min_z:
                same = bool({_person(x) for x in teams.get(a, ())} & {_person(x) for x in teams.get(b, ())})
                common = kept[a] & kept[b]
                passages = _passages(prints[a][kind], prints[b][kind], common)
                pairs.append(Pair(a, b, kind, round(s, 4), shared[(a, b)], len(kept[a]), len(kept[b]), round(z, 2), same, passages))
    pairs.sort(key=lambda p: (p.same_team, -p.score, p.a, p.b))
    settings = {"common_fraction": common_fraction, "min_score": min_score, "min_z": min_z, "min_shared": float(min_shared)}
    return SimilarityReport(tuple(pairs[:max_pairs]), len(notebooks), baseline, settings, skipped)


def _person(name: str) -> str:
    from grader.course.moodle import normalise_person

    return normalise_person(name)


def _passages(pa: Prints, pb: Prints, common: set[int], top: int = 3) -> tuple[Passage, ...]:
    """The cell pairs sharing the most fingerprints, with the shared lines marked on both sides."""
    cell_pairs: Counter[tuple[int, int]] = Counter()
    lines_a: dict[int, set[int]] = {}
    lines_b: dict[int, set[int]] = {}
    for h in common:
        for ca, a0, a1 in pa.where[h]:
            for cb, b0, b1 in pb.where[h]:
                cell_pairs[(ca, cb)] += 1
                lines_a.setdefault(ca, set()).update(range(a0, a1 + 1))
                lines_b.setdefault(cb, set()).update(range(b0, b1 + 1))
    out = []
    for (ca, cb), count in cell_pairs.most_common(top):
        out.append(Passage(ca, cb, count, _mark(pa.cells.get(ca, ""), lines_a.get(ca, set())),
                           _mark(pb.cells.get(cb, ""), lines_b.get(cb, set()))))
    return tuple(out)


def _mark(src: str, shared: set[int], limit: int = 60) -> tuple[Line, ...]:
    lines = src.splitlines()
    marked = tuple(Line(text[:MAX_LINE_CHARS], i in shared) for i, text in enumerate(lines[:limit], 1))
    return marked[:limit]


def write_report(report: SimilarityReport, path: Path) -> None:
    from grader.steps.results import write_json_atomic

    write_json_atomic(path, report.to_json())


def load_report(path: Path) -> SimilarityReport | None:
    try:
        return report_from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        return None
