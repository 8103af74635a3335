"""Moodle in and out: submissions from a "Download all submissions" zip or folder, the grading
worksheet round-trip, and the zip that "Upload multiple feedback files in a zip" reads.

What Moodle writes (mod/assign, "Download all submissions"): one folder per participant named
``<Full name>_<participant id>_assignsubmission_file_`` (Moodle < 4.1; 4.1 and later drop the trailing
underscore), or, with "download as folders" off, flat files ``<Full name>_<id>_assignsubmission_file_<file>``.
Moodle replaces ``_`` in the full name by a space before it builds the prefix, and in team mode the
prefix starts with the group name. The participant id is the number the grading worksheet shows as
``Participant 1234567`` (``get_uniqueid_for_user``), so it joins the two.

Nothing here raises for a strange submission (no notebook, two notebooks, a PDF only): it is named in
``Submission.problems`` and the batch turns it into a result.
"""

from __future__ import annotations

import contextlib
import csv
import html
import io
import lzma
import os
import re
import shutil
import time
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.safety.escape import csv_row, safe_id, unique_ids
from grader.steps.notebook import MAX_NOTEBOOK_BYTES
from grader.steps.results import write_text_atomic
from grader.steps.team import team_from_text

# A path component that Moodle made: name, participant id, plugin subtype and type, and (flat
# layout) the submitted file's own name after the last underscore.
_MOODLE_PART = re.compile(
    r"^(?P<name>.*?)_(?P<pid>\d+)_(?P<subtype>assignsubmission|assignfeedback)_(?P<plugin>[a-z0-9]+)(?:_(?P<rest>.*))?$",
    re.DOTALL,
)
_SKIPPED_PARTS = {"__MACOSX", ".ipynb_checkpoints", ".git", "__pycache__", ".DS_Store"}
# A Moodle zip is untrusted input. Limits checked from the headers before anything is read: the
# whole archive (refused as a whole above them), one member (skipped, with a note to its participant:
# notebooks over MAX_NOTEBOOK_BYTES are never graded anyway), and the compression ratio of a large
# member (a zip bomb: 1 MB that unpacks to 900 MiB).
MAX_UNPACKED_BYTES = 8 * 2**30
MAX_MEMBERS = 100_000
MAX_MEMBER_BYTES = 512 * 2**20
MAX_RATIO = 200
RATIO_CHECK_BYTES = 16 * 2**20
MAX_PATH_PARTS = 32
CHUNK = 1 << 20


@dataclass(frozen=True)
class Submission:
    """One thing to grade: a participant's (or a plain file's) submission.

    ``id`` names the output folder: the participant id for Moodle input, the notebook's file name
    without extension otherwise. ``folder_name`` is the Moodle folder the feedback zip must reuse.
    """

    id: str
    notebook: Path | None
    name: str = ""
    participant_id: str = ""
    folder_name: str = ""
    files: tuple[str, ...] = ()  # everything submitted, relative to the submission
    problems: tuple[str, ...] = ()  # said in words, shown in the result and the overview


@dataclass(frozen=True)
class MoodleName:
    name: str
    participant_id: str
    subtype: str
    plugin: str
    rest: str | None  # the file name of the flat layout, None for a folder


def parse_moodle_name(part: str) -> MoodleName | None:
    """Split one path component made by Moodle; ``None`` when it is not one."""
    m = _MOODLE_PART.match(part)
    if not m:
        return None
    rest = m.group("rest")
    return MoodleName(
        name=unicodedata.normalize("NFC", m.group("name")).strip(),
        participant_id=m.group("pid"),
        subtype=m.group("subtype"),
        plugin=m.group("plugin"),
        rest=rest if rest else None,
    )


def feedback_folder_name(name: str, participant_id: str) -> str:
    """The folder name Moodle's feedback-zip importer maps back to ``participant_id``.

    The importer (assignfeedback_file_zip_importer::is_valid_filename_for_import) splits each path
    component with ``explode('_', $part, 5)`` and reads the participant id from the second piece and
    the plugin from the third and fourth. It accepts both ``assignsubmission_file`` (the download's
    own names, so a re-zipped download works) and ``assignfeedback_file``; we reuse the download's
    ``assignsubmission_file_`` names, which every Moodle since 3.1 reads. An underscore inside the
    name would shift the pieces, so it becomes a space, exactly as Moodle's download does; so do
    control characters (a participant's name is theirs to choose, escape sequences included).
    """
    clean = re.sub(r"[_/\\\x00-\x1f\x7f-\x9f]", " ", name).strip() or "Participant"  # and no control characters
    return f"{clean}_{participant_id}_assignsubmission_file_"


# --- ingest -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingested:
    submissions: tuple[Submission, ...]
    # not graded: files outside any participant's folder in a Moodle download; in a plain folder,
    # files that hold no notebook
    stray: tuple[str, ...] = ()
    moodle: bool = False
    skipped: tuple[str, ...] = ()  # files not unpacked or not read that belong to no participant, and why


@dataclass(frozen=True)
class Skipped:
    """A zip member or file that was not unpacked or not considered, and why (said to its participant)."""

    name: str  # the path inside the zip or the folder, as written there
    reason: str


def ingest(source: Path, work_dir: Path) -> Ingested:
    """Submissions from a folder of notebooks, a Moodle download folder, a Moodle zip or one notebook.

    A zip is unpacked under ``work_dir`` (member names are checked: nothing escapes it). A member
    that cannot be unpacked costs only its own participant a note; only an archive that is not a
    zip at all, or that declares more files or bytes than the limits, is refused as a whole.
    """
    if source.is_file() and zipfile.is_zipfile(source):
        skipped = extract_zip(source, work_dir)
        return scan_folder(work_dir, skipped)
    if source.is_dir():
        return scan_folder(source)
    if source.is_file() and source.suffix.lower() == ".ipynb":
        sid = safe_id(unicodedata.normalize("NFC", source.stem))
        return Ingested((Submission(id=sid, notebook=source, files=(source.name,), problems=_renamed(source.name, sid)),))
    raise ValueError(f"{source}: not a folder, a zip file or a notebook")


def extract_zip(zip_path: Path, target: Path) -> tuple[Skipped, ...]:
    """Unpack a Moodle zip safely; returns the members it did not unpack, with the reason.

    No absolute paths or ``..``; every size is checked before anything is read, and each member is
    streamed once with a byte budget (its declared size, which ``zipfile`` also holds it to, and the
    archive's). A member that is broken (bad CRC, a size that lies, an unsupported or encrypted
    entry), too large, suspiciously compressed, or that clashes with another (a file where a folder
    is, the same name twice) is skipped. Names without the UTF-8 flag are decoded as CP437 by
    ``zipfile``; Moodle writes UTF-8 bytes without the flag in some versions, so such names are
    re-decoded as UTF-8 when that works. Modification times are kept (they choose between notebooks).
    """
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        raise ValueError(f"{zip_path}: not a readable zip file ({exc})") from None
    skipped: list[Skipped] = []
    with zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            raise ValueError(f"{zip_path}: {len(members):,} entries; the limit is {MAX_MEMBERS:,} (grader.course.moodle.MAX_MEMBERS)")
        total = sum(m.file_size for m in members)
        if total > MAX_UNPACKED_BYTES:
            raise ValueError(f"{zip_path}: unpacks to {total / 2**30:.1f} GiB; the limit is "
                             f"{MAX_UNPACKED_BYTES / 2**30:.0f} GiB (grader.course.moodle.MAX_UNPACKED_BYTES)")
        budget = MAX_UNPACKED_BYTES
        written: set[str] = set()
        for info in members:
            name = _member_name(info)
            parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".")]
            if not parts or parts[0] == "/" or ".." in parts or info.is_dir():
                continue
            problem = _member_problem(info, parts)
            if problem is None and "/".join(parts).casefold() in written:
                problem = "another entry of the zip has the same name; the first one was unpacked"
            if problem is not None:
                skipped.append(Skipped(name, problem))
                continue
            dest = target.joinpath(*parts)
            try:
                budget -= _unpack_member(zf, info, dest, budget)
            except _MemberError as exc:
                skipped.append(Skipped(name, str(exc)))
                continue
            written.add("/".join(parts).casefold())
            _set_mtime(dest, time.mktime((*info.date_time, 0, 0, -1)))
    return tuple(skipped)


class _MemberError(Exception):
    """One zip member could not be unpacked; the message says why, for its participant."""


def _member_problem(info: zipfile.ZipInfo, parts: list[str]) -> str | None:
    """Why a member must not be unpacked at all, judged from its header only (nothing read)."""
    size = info.file_size
    limit = MAX_NOTEBOOK_BYTES if parts[-1].lower().endswith(".ipynb") else MAX_MEMBER_BYTES
    what = "notebooks" if limit == MAX_NOTEBOOK_BYTES else "files"
    if size > limit:
        return f"it unpacks to {size / 2**20:.0f} MiB; {what} over {limit // 2**20} MiB are not unpacked"
    if size > RATIO_CHECK_BYTES and size > MAX_RATIO * max(1, info.compress_size):
        return (f"it would unpack {info.compress_size:,} bytes into {size / 2**20:.0f} MiB (over {MAX_RATIO}:1): "
                f"a zip bomb, not unpacked")
    if info.flag_bits & 0x1:
        return "it is encrypted"
    if any(len(p.encode("utf-8", "surrogateescape")) > 255 for p in parts):
        return "its name is longer than a file system allows"
    if len(parts) > MAX_PATH_PARTS:
        return f"it is nested more than {MAX_PATH_PARTS} folders deep"
    return None


def _unpack_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: int) -> int:
    """Stream one member to ``dest`` (read once, never more than its declared size or ``budget``);
    returns the bytes written. A partial file is removed on any failure."""
    limit = min(info.file_size, budget)
    got = 0
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(dest, "xb") as dst:
            while block := src.read(CHUNK):
                got += len(block)
                if got > limit:
                    raise _MemberError(f"it holds more than the {limit:,} bytes it declares; not unpacked")
                dst.write(block)
    except _MemberError:
        dest.unlink(missing_ok=True)
        raise
    except FileExistsError:
        raise _MemberError("a file or folder of the same name is already in the zip; not unpacked") from None
    except (NotADirectoryError, IsADirectoryError):
        raise _MemberError("a file and a folder of the zip have the same name; not unpacked") from None
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, RuntimeError, NotImplementedError, ValueError) as exc:
        with contextlib.suppress(OSError):
            if dest.is_file():
                dest.unlink()
        raise _MemberError(f"it could not be unpacked ({type(exc).__name__}: {exc})") from None
    return got


def _member_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return unicodedata.normalize("NFC", name)


def _set_mtime(path: Path, stamp: float) -> None:
    try:
        os.utime(path, (stamp, stamp))
    except (OSError, OverflowError):
        pass


def scan_folder(root: Path, skipped: Sequence[Skipped] = ()) -> Ingested:
    """Group the files under ``root`` into submissions (Moodle layout if any name says so).

    Only regular files count: a symbolic link, a FIFO or a device (an instructor's own ``unzip`` makes
    links) is skipped and named, like a zip member that was not unpacked, to its participant.
    """
    files, found_skipped = _walk_files(root)
    skipped = [*skipped, *found_skipped]
    moodle: dict[str, list[_Entry]] = {}
    others: list[Path] = []
    for path in files:
        rel = path.relative_to(root)
        found = _moodle_component(rel)
        if found is None:
            others.append(path)
        else:
            info, inner, component = found
            moodle.setdefault(info.participant_id, []).append(_Entry(path, inner, info, component))
    notes: dict[str | None, list[str]] = {}
    names: dict[str, str] = {}
    for s in skipped:
        owner = _participant_of(s.name)
        if owner is not None:
            names.setdefault(owner.participant_id, owner.name)
        notes.setdefault(owner.participant_id if owner else None, []).append(f"{s.name} was skipped: {s.reason}")
    if moodle or any(pid is not None for pid in notes):
        subs = sorted((_moodle_submission(pid, entries, tuple(notes.pop(pid, ()))) for pid, entries in moodle.items()),
                      key=lambda s: s.id)
        subs += [_unreadable_participant(pid, names.get(pid, ""), lines) for pid, lines in notes.items() if pid is not None]
        stray = tuple(str(p.relative_to(root)) for p in others)
        return Ingested(tuple(sorted(subs, key=lambda s: s.id)), stray=stray, moodle=True, skipped=tuple(notes.get(None, ())))
    # a plain folder has no participants: a notebook's own problems are said in its result
    plain, not_notebooks = _plain_submissions(root, others)
    return Ingested(tuple(plain), stray=not_notebooks, skipped=tuple(line for pid, lines in notes.items() for line in lines))


def _walk_files(root: Path) -> tuple[list[Path], list[Skipped]]:
    """Regular files under ``root``, sorted, and what was passed over; iterative (``rglob`` and, before
    Python 3.12, ``os.walk`` recurse once per folder level) and never deeper than ``MAX_PATH_PARTS``."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    todo: list[tuple[Path, int]] = [(root, 0)]
    while todo:
        folder, depth = todo.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(Skipped(str(folder.relative_to(root)), f"the folder could not be read ({exc.strerror})"))
            continue
        for entry in entries:
            path = Path(entry.path)
            rel = path.relative_to(root)
            if _skipped(rel):
                continue
            if entry.is_symlink() or not (entry.is_dir() or entry.is_file()):
                skipped.append(Skipped(str(rel), "it is a link or special file, not a regular file; not read"))
            elif entry.is_dir():
                if depth + 1 >= MAX_PATH_PARTS:
                    skipped.append(Skipped(str(rel), f"it is nested more than {MAX_PATH_PARTS} folders deep; not read"))
                else:
                    todo.append((path, depth + 1))
            else:
                files.append(path)
    return sorted(files), skipped


@dataclass(frozen=True)
class _Entry:
    path: Path
    inner: str  # the path inside the participant's submission
    info: MoodleName
    component: str  # the Moodle-made path component (folder, or file in the flat layout)


def _skipped(rel: Path) -> bool:
    return any(part in _SKIPPED_PARTS or part.startswith("._") for part in rel.parts)


def _moodle_component(rel: Path | PurePosixPath) -> tuple[MoodleName, str, str] | None:
    """The Moodle-made component of ``rel``, the path inside that submission, and the component."""
    parts = rel.parts
    for i, part in enumerate(parts):
        info = parse_moodle_name(part)
        if info is None:
            continue
        if i == len(parts) - 1:  # flat layout: the component is the file itself
            if info.rest is None:
                return None
            return info, info.rest, part
        return info, "/".join(parts[i + 1 :]), part
    return None


def _participant_of(name: str) -> MoodleName | None:
    """The participant a path inside a Moodle download belongs to, if any component names one."""
    for part in PurePosixPath(name.replace("\\", "/")).parts:
        info = parse_moodle_name(part)
        if info is not None:
            return info
    return None


def _moodle_submission(pid: str, entries: list[_Entry], notes: tuple[str, ...] = ()) -> Submission:
    info = entries[0].info
    # Folder name for the feedback zip: the download's, cleaned of underscores in the name part.
    folder = feedback_folder_name(info.name, pid)
    # Moodle makes one folder per plugin (files, online text). Two folders of one plugin with the same
    # participant id (two downloads merged, a hand-made zip) are two people's work, or one person's
    # twice: the same inner names would be ambiguous, so every file is named with its folder.
    per_plugin: dict[str, set[str]] = {}
    for e in entries:
        per_plugin.setdefault(e.info.plugin, set()).add(e.info.name.casefold())
    clash = any(len(names) > 1 for names in per_plugin.values())
    components = sorted({e.component for e in entries if e.info.plugin == "file"} if clash else set())
    shown = {e.path: (_as_found(e) if clash else e.inner) for e in entries}
    file_entries = [(e.path, shown[e.path]) for e in entries if e.info.plugin == "file"]
    listed = tuple(sorted(shown.values()))
    notebooks = [(path, inner) for path, inner in file_entries if inner.lower().endswith(".ipynb")]
    notebook, problems = _choose_notebook(notebooks, listed)
    if clash:
        graded = shown.get(notebook, "nothing") if notebook is not None else "nothing"
        problems = (f"participant id {pid} appears in {len(components)} Moodle folders ({', '.join(components)}): "
                    f"graded {graded}; check that this is the right person's work",) + problems
    return Submission(
        id=pid,
        notebook=notebook,
        name=info.name,
        participant_id=pid,
        folder_name=folder,
        files=listed,
        problems=notes + problems if notebook is not None else problems + notes,
    )


def _as_found(e: _Entry) -> str:
    """An entry's path as it was in the download: the folder and the inner path, or the flat file."""
    return e.component if e.component.endswith(e.inner) and e.info.rest is not None else f"{e.component}/{e.inner}"


def _unreadable_participant(pid: str, name: str, notes: list[str]) -> Submission:
    """A participant none of whose files could be unpacked: a result that says why, not silence."""
    return Submission(id=pid, notebook=None, name=name, participant_id=pid, folder_name=feedback_folder_name(name, pid),
                      problems=tuple(notes))


_COPY_NAME = re.compile(r"(checkpoint|copy\d*|kopie|\(\d+\))", re.IGNORECASE)


def _choose_notebook(notebooks: list[tuple[Path, str]], listed: Sequence[str]) -> tuple[Path | None, tuple[str, ...]]:
    """Pick the notebook to grade and say what was not graded.

    Rule (written in the result so a person can overrule it): names that look like copies
    ("-checkpoint", "Copy1", "(2)") lose to other names; then the most recently modified; then the
    largest. Everything else submitted is listed.
    """
    problems: list[str] = []
    if not notebooks:
        what = _some(listed) if listed else "nothing"
        return None, (f"no notebook (.ipynb) in this submission; submitted: {what}",)

    def rank(item: tuple[Path, str]) -> tuple[bool, float, int, str]:
        path, inner = item
        st = path.stat()
        return (not _COPY_NAME.search(PurePosixPath(inner).name), st.st_mtime, st.st_size, inner)

    chosen = max(notebooks, key=rank)
    if len(notebooks) > 1:
        rest = sorted(inner for path, inner in notebooks if path != chosen[0])
        problems.append(
            f"{len(notebooks)} notebooks submitted: graded {chosen[1]} (not a copy, most recent, largest); "
            f"not graded: {_some(rest)}"
        )
    extra = sorted(x for x in listed if not x.lower().endswith(".ipynb"))
    if extra:
        problems.append(f"other files submitted beside the notebook (not graded): {_some(extra)}")
    return chosen[0], tuple(problems)


def _some(names: Sequence[str], limit: int = 20) -> str:
    """Names for a message: all of a few, the first ``limit`` of many (a zip may hold 100,000)."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit:,} more"


def _renamed(original: str, sid: str) -> tuple[str, ...]:
    stem = original[: -len(".ipynb")] if original.lower().endswith(".ipynb") else original
    if unicodedata.normalize("NFC", stem) == sid:
        return ()
    return (f"graded as {sid}: the file name {original!r} is not safe as a folder name or link",)


def holds_notebook(path: Path, sniff: int = 64 * 1024) -> bool:
    """A file not named ``.ipynb`` that holds a notebook (saved as ``.txt``/``.json`` by a browser
    or an upload form): JSON text that starts with ``{`` and names ``cells`` or ``nbformat`` early."""
    try:
        with path.open("rb") as fh:
            head = fh.read(sniff)
    except OSError:
        return False
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"{") and (b'"cells"' in text or b'"nbformat"' in text or b'"worksheets"' in text)


def _plain_submissions(root: Path, files: list[Path]) -> tuple[list[Submission], tuple[str, ...]]:
    """The notebooks of a plain folder, and the files that are not graded (named, never dropped
    silently). A file that holds a notebook under another name is graded; its result says so."""
    notebooks = [p for p in files if p.suffix.lower() == ".ipynb" or holds_notebook(p)]
    others = tuple(str(p.relative_to(root)) for p in files if p not in notebooks)
    subs: list[Submission] = []
    wanted = [safe_id(unicodedata.normalize("NFC", p.stem)) for p in notebooks]
    for path, base, sid in zip(notebooks, wanted, unique_ids(wanted), strict=True):
        problems = _renamed(path.name, base)
        if sid != base:
            problems += (f"another notebook is also named {path.name}; this one ({path.relative_to(root)}) is {sid}",)
        subs.append(Submission(id=sid, notebook=path, files=(str(path.relative_to(root)),), problems=problems))
    return subs, others


# --- team names -----------------------------------------------------------------------------------

def read_team(notebook: Path) -> tuple[str, ...]:
    """Team members' names written in the notebook, or ``()``.

    Lenient on purpose: ``**Team:** Ada Lovelace, Alan Turing``, ``Names: ...``, ``Team members:``
    followed by a bullet list, ``Name 1: ...`` lines, German labels, matriculation numbers and
    e-mail addresses beside the names (dropped). Markdown cells are read first, then comment lines
    of code cells. Never raises: an unreadable notebook has no team, and so has one the grader
    refuses to read (over the size, nesting or cell limits of ``grader.steps.notebook``; a FIFO).
    """
    from grader.steps.notebook import raw_cells  # the one reader of notebook JSON outside grading

    markdown: list[str] = []
    comments: list[str] = []
    for _index, kind, text in raw_cells(notebook) or []:
        if kind == "markdown":
            markdown.append(text)
        elif kind == "code":
            comments.append("\n".join(line.lstrip("# ") for line in text.splitlines() if line.lstrip().startswith("#")))
    for text in (*markdown, *comments):
        names = team_from_text(text)
        if names:
            return names
    return ()


def normalise_person(name: str) -> str:
    """A key for matching a person's name: accents, case, punctuation and order ignored."""
    plain = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    words = re.findall(r"[^\W_]+", plain)
    return " ".join(sorted(words))


# --- grading worksheet ----------------------------------------------------------------------------

_ID_COLUMNS = ("Identifier", "ID", "Kennung")
_NAME_COLUMNS = ("Full name", "Vollständiger Name", "Name")
_GRADE_COLUMNS = ("Grade", "Bewertung", "Note")
_FEEDBACK_COLUMNS = ("Feedback comments", "Feedback als Kommentar", "Feedback-Kommentare")
_MAX_COLUMNS = ("Maximum Grade", "Bestmögliche Bewertung", "Maximale Bewertung")


@dataclass
class Worksheet:
    """A grading worksheet as read: the header, the rows as lists of cells, and how it was written
    (delimiter, BOM, line ending) so that writing it back changes only the cells we fill."""

    header: list[str]
    rows: list[list[str]]
    delimiter: str = ","
    bom: bool = False
    newline: str = "\n"

    def column(self, candidates: Sequence[str], what: str) -> int:
        folded = [h.strip().casefold() for h in self.header]
        for cand in candidates:
            if cand.casefold() in folded:
                return folded.index(cand.casefold())
        raise ValueError(
            f"the worksheet has no {what} column (looked for {', '.join(repr(c) for c in candidates)}; "
            f"it has {', '.join(repr(h) for h in self.header)})"
        )


@dataclass(frozen=True)
class WorksheetGrade:
    grade: float
    feedback: str  # HTML: Moodle's feedback comments are editor HTML
    team: tuple[str, ...] = ()


@dataclass
class FillReport:
    matched: list[str] = field(default_factory=list)  # participant ids written
    matched_by_team: list[tuple[str, str]] = field(default_factory=list)  # (worksheet id, graded submission id)
    unmatched_rows: list[str] = field(default_factory=list)  # worksheet rows without a graded submission
    unmatched_grades: list[str] = field(default_factory=list)  # graded submissions without a worksheet row
    over_maximum: list[str] = field(default_factory=list)


def read_worksheet(path: Path) -> Worksheet:
    raw = path.read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    newline = "\r\n" if "\r\n" in text[:4096] else "\n"
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not rows:
        raise ValueError(f"{path}: the worksheet is empty")
    header, body = rows[0], [r for r in rows[1:] if any(c.strip() for c in r)]
    return Worksheet(header=header, rows=body, delimiter=delimiter, bom=bom, newline=newline)


def worksheet_participant(cell: str) -> str | None:
    """``Participant 1234567`` (or a translation of it) -> ``1234567``."""
    m = re.search(r"(\d+)\s*$", cell.strip())
    return m.group(1) if m else None


def fill_worksheet(ws: Worksheet, grades: Mapping[str, WorksheetGrade]) -> FillReport:
    """Fill Grade and Feedback comments for each row whose participant has a grade.

    Rows are matched by participant id; a row left over is then matched by its full name against
    the team names read from group notebooks (one unique match only). Every other cell is kept.
    """
    id_col = ws.column(_ID_COLUMNS, "Identifier")
    grade_col = ws.column(_GRADE_COLUMNS, "Grade")
    fb_col = ws.column(_FEEDBACK_COLUMNS, "Feedback comments")
    try:
        name_col: int | None = ws.column(_NAME_COLUMNS, "Full name")
    except ValueError:
        name_col = None
    try:
        max_col: int | None = ws.column(_MAX_COLUMNS, "Maximum Grade")
    except ValueError:
        max_col = None
    team_index: dict[str, list[str]] = {}
    for graded_id, g in grades.items():
        for person in g.team:
            team_index.setdefault(normalise_person(person), []).append(graded_id)
    report = FillReport()
    used: set[str] = set()
    for row in ws.rows:
        width = max(id_col, grade_col, fb_col) + 1
        if len(row) < width:
            row.extend([""] * (width - len(row)))
        pid = worksheet_participant(row[id_col]) or ""
        sid: str | None = pid if pid in grades else None
        if sid is None and name_col is not None and name_col < len(row):
            candidates = set(team_index.get(normalise_person(row[name_col]), ()))
            if len(candidates) == 1:
                sid = candidates.pop()
                report.matched_by_team.append((pid, sid))
        if sid is None:
            report.unmatched_rows.append(row[id_col])
            continue
        g = grades[sid]
        row[grade_col] = format_grade(g.grade)
        row[fb_col] = g.feedback
        used.add(sid)
        report.matched.append(pid)
        if max_col is not None and max_col < len(row):
            try:
                maximum = float(row[max_col].replace(",", "."))
            except ValueError:
                maximum = None
            if maximum is not None and g.grade > maximum + 1e-9:
                report.over_maximum.append(pid)
    report.unmatched_grades = sorted(set(grades) - used)
    return report


def format_grade(value: float) -> str:
    return f"{value:.2f}"


def write_worksheet(ws: Worksheet, path: Path) -> None:
    """Write the worksheet back with its own delimiter, BOM and line ending.

    Quoting follows PHP's ``fputcsv`` (which Moodle uses): a cell is quoted when it holds the
    delimiter, a quote, a space, a tab or a line break. Cells we did not fill come out as Moodle wrote
    them, except that a cell a spreadsheet would run as a formula (a participant's full name such as
    ``=HYPERLINK(...)``) gets a leading quote (``grader.safety.escape.csv_cell``); numbers and Moodle's ``-``
    stay as they are, and Moodle matches rows by the Identifier column, which is never touched.
    """
    lines = [_php_csv_line(csv_row(ws.header), ws.delimiter)]
    lines.extend(_php_csv_line(csv_row(row), ws.delimiter) for row in ws.rows)
    data = ws.newline.join(lines) + ws.newline
    write_text_atomic(path, ("\ufeff" if ws.bom else "") + data)


def _php_csv_line(cells: Iterable[str], delimiter: str) -> str:
    out = []
    for cell in cells:
        if any(ch in cell for ch in (delimiter, '"', " ", "\t", "\n", "\r", "\\")):
            out.append('"' + cell.replace('"', '""') + '"')
        else:
            out.append(cell)
    return delimiter.join(out)


def feedback_html(lines: Sequence[str]) -> str:
    """Plain lines -> the small HTML Moodle's feedback comments editor holds (escaped)."""
    return "<p>" + "<br>".join(html.escape(line) for line in lines) + "</p>"


# --- feedback zip ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackEntry:
    folder_name: str  # see feedback_folder_name
    files: tuple[tuple[str, Path], ...]  # (name inside the folder, file on disk)


def write_feedback_zip(entries: Sequence[FeedbackEntry], out: Path) -> int:
    """Write the zip for "Upload multiple feedback files in a zip"; returns the number of files.

    Written to a temporary name and renamed, so a half-written zip is never left under ``out``.
    """
    import os
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    count = 0
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for entry in entries:
                for inner, path in entry.files:
                    if path.is_file():
                        zf.write(path, f"{entry.folder_name}/{inner}")
                        count += 1
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
