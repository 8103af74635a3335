"""Team members' names as students write them in a notebook ("**Team:** Ada Lovelace, Alan
Turing", "Names:" with a bullet list, "Name 1: ...", German labels). Used by the outline step (one
notebook) and by Moodle ingest (group submissions)."""

from __future__ import annotations

import re
import unicodedata

_LABEL = re.compile(
    r"^[\s>#*_\-|]*"
    r"(?P<label>team(?:\s*members?)?|group(?:\s*members?)?|members?|names?|authors?|students?|submitted\s+by|"
    r"team\s*mitglieder|gruppen?(?:\s*mitglieder)?|mitglieder|namen?|autor(?:en|in)?)"
    r"\s*\d*\s*[*_]*\s*[:：]\s*[*_]*\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
_SUFFIX = re.compile(r"^(jr|sr|ii|iii|iv|phd|md)\.?$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+(?P<item>.+)$")
_HTML_TAG = re.compile(r"<[^>]+>")
_EMAIL = re.compile(r"\S+@\S+")
_ID_NUMBER = re.compile(r"(?<![\w])\d{4,}(?![\w])")
_PAREN = re.compile(r"[(\[][^)\]]*[)\]]")
MAX_TEAM = 12


def team_from_text(text: str) -> tuple[str, ...]:
    """Names after the first team label in one cell's text (see ``read_team``)."""
    lines = [_HTML_TAG.sub(" ", line) for line in text.replace("\r", "").split("\n")]
    lines = [line.replace("&nbsp;", " ") for line in lines]
    names: list[str] = []
    i = 0
    while i < len(lines) and len(names) < MAX_TEAM:
        m = _LABEL.match(lines[i])
        i += 1
        if not m:
            continue
        rest = m.group("rest").strip()
        if rest:
            names.extend(_split_names(rest))
            continue
        # Label alone on its line: the names follow, one per line or as a list, up to a blank line.
        while i < len(lines) and lines[i].strip() and not lines[i].lstrip().startswith("#") and not _LABEL.match(lines[i]):
            bullet = _BULLET.match(lines[i])
            names.extend(_split_names(bullet.group("item") if bullet else lines[i]))
            i += 1
    unique: list[str] = []
    for name in names:
        if name.casefold() not in {u.casefold() for u in unique}:
            unique.append(name)
    return tuple(unique[:MAX_TEAM])


def _split_names(text: str) -> list[str]:
    text = _EMAIL.sub(" ", text)
    text = _PAREN.sub(" ", text)
    text = _ID_NUMBER.sub(" ", text)
    text = re.sub(r"[*_`$]|\\\\|<br\s*/?>", " ", text)
    sep = ";" if ";" in text else ","
    pieces: list[str] = []
    for chunk in text.split(sep):
        pieces.extend(re.split(r"\s+(?:and|und|&)\s+|\s*[/|]\s*|\s+-\s+", chunk))
    names: list[str] = []
    for piece in pieces:
        piece = re.sub(r"\s+", " ", piece).strip(" :-–\t")
        if not piece or not re.search(r"[^\W\d_]", piece):
            continue
        if _SUFFIX.match(piece) and names:
            names[-1] = f"{names[-1]}, {piece if piece.endswith('.') or len(piece) > 3 else piece + '.'}"
            continue
        if len(piece) <= 80 and len(piece.split()) <= 6:
            names.append(unicodedata.normalize("NFC", piece))
    return names


