"""Load and normalize: a file on disk -> a clean nbformat-4 notebook, or a named reason why not.

Every way a file can be broken (not JSON, truncated, empty, nbformat 3, wrong extension, cells
without ids or with duplicated ids, wrong field types) ends here as either a repair (recorded as a
note the report shows) or a ``BadInput`` with a message naming the file and the problem. Nothing
here raises for a bad file.

Normalizing for execution also neutralizes lines that must not run while grading (package
installs, Colab drive mounts): the grading environment is fixed and offline.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

MAX_NOTEBOOK_BYTES = 64 * 2**20
# Nesting of the notebook's JSON, checked before parsing (json.loads recurses once per level):
# nbformat itself needs five levels; rich outputs and widget metadata go a few dozen deep.
MAX_JSON_DEPTH = 200
# Cells of one notebook. The course's notebooks have about 150. Every cell costs the grader its own
# time whatever it holds (measured on 2 busy cores: 0.5 ms to load, 1-1.6 ms to execute an empty
# cell), so 100,000 empty cells took 8 minutes and a 14 MB result.json; 5,000 take about 10 s.
MAX_CELLS = 5_000


@dataclass(frozen=True)
class BadInput:
    path: Path
    message: str


@dataclass(frozen=True)
class LoadedNotebook:
    path: Path
    nb: NotebookNode
    repairs: tuple[str, ...] = ()
    sha256: str = ""


@dataclass(frozen=True)
class Section:
    """Where a cell sits in the assignment: the task and subtask headings above it."""

    task: str | None
    subtask: str | None


@dataclass(frozen=True)
class Outline:
    sections: tuple[Section, ...]  # one per cell
    answers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # subtask -> answer cells' text
    comments: dict[str, str] = field(default_factory=dict)  # subtask -> peer comment text
    team: tuple[str, ...] = ()


def raw_cells(path: Path, max_chars: int | None = None) -> list[tuple[int, str, str]] | None:
    """(index, cell type, source) of a notebook file, read as grading reads it (a regular file under
    the size, nesting and cell limits), without repairs; ``None`` if it is refused or unreadable.

    The one reader of notebook JSON for the course workflow (team names for Moodle, fingerprints for
    similarity); grading itself uses ``load_notebook``. ``max_chars`` bounds the source kept in all."""
    from grader.safety.untrusted import load_json

    try:
        data = load_json(path, max_bytes=MAX_NOTEBOOK_BYTES, max_depth=MAX_JSON_DEPTH, what="the notebook")
    except (OSError, ValueError, RecursionError, MemoryError):
        return None
    cells = data.get("cells", []) if isinstance(data, dict) else []
    if not isinstance(cells, list) or len(cells) > MAX_CELLS:
        return None
    out = []
    budget = max_chars if max_chars is not None else -1
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or budget == 0:
            continue
        src = cell.get("source", "")
        text = "".join(x for x in src if isinstance(x, str)) if isinstance(src, list) else str(src)
        if budget > 0:
            text = text[:budget]
            budget -= len(text)
        out.append((i, str(cell.get("cell_type", "")), text))
    return out


def load_notebook(path: Path) -> LoadedNotebook | BadInput:
    """Read ``path`` into a valid nbformat-4 notebook, repairing what can be repaired.

    The file is untrusted: it is read only if it is a regular file (a FIFO would block for ever) of at
    most ``MAX_NOTEBOOK_BYTES``, and parsed only if its nesting stays within ``MAX_JSON_DEPTH``; a
    notebook of more than ``MAX_CELLS`` cells is refused before any cell is looked at.
    """
    import hashlib

    from grader.safety.untrusted import Refused, parse_json, read_bytes

    try:
        raw = read_bytes(path, max_bytes=MAX_NOTEBOOK_BYTES)
    except Refused as exc:
        return BadInput(path, f"the file was not read: {exc}")
    except OSError as exc:
        return BadInput(path, f"cannot read the file: {exc.strerror or exc}")
    if not raw.strip():
        return BadInput(path, "the file is empty")
    digest = hashlib.sha256(raw).hexdigest()
    repairs: list[str] = []
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        repairs.append("the file is not UTF-8; it was read as Latin-1")
    try:
        data = parse_json(text, max_depth=MAX_JSON_DEPTH, what="the file")
    except json.JSONDecodeError as exc:
        return BadInput(path, f"the file {_json_problem(text, exc)}: {exc.msg} at line {exc.lineno}, column {exc.colno}")
    except Refused as exc:
        return BadInput(path, f"{exc}; it is not a usable notebook")
    if not isinstance(data, dict):
        return BadInput(path, f"the file is JSON but not a notebook (top level is a {type(data).__name__}, expected an object)")
    cells = data.get("cells")
    if isinstance(cells, list) and len(cells) > MAX_CELLS:
        return BadInput(path, f"the notebook has {len(cells):,} cells; notebooks of more than {MAX_CELLS:,} cells are not graded")
    if path.suffix.lower() != ".ipynb":
        repairs.append(f"the file is named '{path.name}' but holds a notebook; it was graded as one")
    nb_or_error = _to_v4(data, repairs)
    if isinstance(nb_or_error, str):
        return BadInput(path, nb_or_error)
    if len(nb_or_error.cells) > MAX_CELLS:  # an nbformat 3 notebook, counted after the upgrade
        return BadInput(path, f"the notebook has {len(nb_or_error.cells):,} cells; notebooks of more than {MAX_CELLS:,} cells are not graded")
    return LoadedNotebook(path=path, nb=nb_or_error, repairs=tuple(repairs), sha256=digest)


def _json_problem(text: str, exc: json.JSONDecodeError) -> str:
    """'truncated' when the text stops before its JSON is complete (a cut download), else 'not JSON'."""
    body = text.rstrip()
    opened = body.count("{") + body.count("[")
    closed = body.count("}") + body.count("]")
    if exc.pos >= len(body) - 1 or exc.msg.startswith("Unterminated string") or (body.lstrip().startswith("{") and opened > closed):
        return "is truncated (the JSON ends before the notebook does)"
    return "is not valid JSON"


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return None


def _to_v4(data: dict[str, Any], repairs: list[str]) -> NotebookNode | str:
    major = data.get("nbformat")
    if major == 3 or ("worksheets" in data and "cells" not in data):
        try:
            v3 = nbformat.reads(json.dumps(data), as_version=3)
            data = dict(nbformat.convert(v3, 4))
            repairs.append("the notebook was in nbformat 3; it was upgraded to nbformat 4")
        except Exception as exc:  # nbformat raises many types on odd input
            return f"the notebook is in nbformat 3 and could not be upgraded: {exc}"
    elif major is not None and major != 4:
        return f"nbformat {major!r} is not supported (expected 4, or 3 to upgrade)"
    cells = data.get("cells")
    if not isinstance(cells, list):
        return "the file is JSON but not a notebook: it has no list of cells"
    if major is None:
        repairs.append("the notebook had no 'nbformat' version; it was read as nbformat 4")

    minor = data.get("nbformat_minor")
    ids_required = major == 4 and isinstance(minor, int) and minor >= 5  # nbformat 4.5 made cell ids required
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    seen_ids: set[str] = set()
    renamed_ids = dropped = fixed_source = 0
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict):
            dropped += 1
            continue
        source = _as_text(cell.get("source", ""))
        if source is None:
            source = str(cell.get("source"))
            fixed_source += 1
        kind = cell.get("cell_type")
        if kind == "code":
            new = new_code_cell(source)
        elif kind == "markdown":
            new = new_markdown_cell(source)
        elif kind == "raw":
            new = new_raw_cell(source)
        elif kind == "heading":  # nbformat 3 leftovers
            level = cell.get("level", 1)
            level = level if isinstance(level, int) and 1 <= level <= 6 else 1
            new = new_markdown_cell("#" * level + " " + source)
        else:
            dropped += 1
            continue
        cell_id = cell.get("id")
        if isinstance(cell_id, str) and re.fullmatch(r"[a-zA-Z0-9-_]{1,64}", cell_id) and cell_id not in seen_ids:
            new["id"] = cell_id
        else:
            if cell_id is not None or ids_required:
                renamed_ids += 1
            new["id"] = f"cell-{i}"
            while new["id"] in seen_ids:
                new["id"] += "x"
        seen_ids.add(new["id"])
        metadata = cell.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("tags"), list):
            new.metadata["tags"] = [t for t in metadata["tags"] if isinstance(t, str)]
        nb.cells.append(new)
    if dropped:
        repairs.append(f"{dropped} cell(s) of unknown type or shape were left out")
    if renamed_ids:
        repairs.append(f"{renamed_ids} cell id(s) were missing, invalid or duplicated and were renumbered")
    if fixed_source:
        repairs.append(f"{fixed_source} cell source(s) were not text and were converted")
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:  # pragma: no cover - we built it ourselves
        return f"the notebook could not be repaired into a valid notebook: {exc.message}"
    return nb


# --- normalization for execution ----------------------------------------------------------------

_INSTALL = re.compile(r"^(\s*)([%!]\s*(?:pip|pip3|conda|mamba|apt|apt-get|uv)\b.*)$", re.MULTILINE)
# Shell lines that would reach the network: skipped, named. Harmless ones (ls, cp, mv, zip, unzip,
# mkdir, nvidia-smi ...) run in the sandbox as they are.
_NETWORK = re.compile(r"^(\s*)([%!]\s*(?:wget|curl|git)\b.*)$", re.MULTILINE)
_COLAB = re.compile(r"^(\s*)(.*\bdrive\.mount\(.*)$", re.MULTILINE)
# "/content" as a path of its own (not ".../content/..."): Colab's working folder
_CONTENT = re.compile(r"(?<![\w./~-])/content(?=/|[\"'\s)]|$)", re.MULTILINE)


def neutralize(nb: NotebookNode, platform: str = "") -> tuple[NotebookNode, tuple[str, ...]]:
    """A copy of ``nb`` made runnable offline, and what was done (notes for the report).

    Package installs and network shell lines (``!wget``, ``!git``) are commented out. With
    ``platform="colab"`` Colab is emulated instead of cut away: ``/content`` paths become the
    working folder (the kernel's cwd) and ``drive.mount`` runs against ``google.colab``'s stand-in;
    otherwise Drive mounts are commented out too."""
    out = nbformat.from_dict(json.loads(json.dumps(nb)))
    installs = network = mounts = content = 0
    for cell in out.cells:
        if cell.cell_type != "code":
            continue
        src, n = _INSTALL.subn(r"\1pass  # grader: skipped: \2", cell.source)
        installs += n
        src, n = _NETWORK.subn(r"\1pass  # grader: skipped: \2", src)
        network += n
        if platform == "colab":
            src, n = _CONTENT.subn(".", src)
            content += n
        else:
            src, m = _COLAB.subn(r"\1pass  # grader: skipped: \2", src)
            mounts += m
        cell.source = src
    notes = []
    if installs:
        notes.append(f"{installs} package-install line(s) (%pip / !pip) were skipped: grading uses a fixed, offline environment")
    if network:
        notes.append(f"{network} shell line(s) that download (!wget / !curl / !git) were skipped: the grading machine is offline")
    if mounts:
        notes.append(f"{mounts} Google Drive mount(s) were skipped")
    if content:
        notes.append(f"Colab: {content} `/content` path(s) were read as the notebook's working folder, as on Colab")
    return out, tuple(notes)
