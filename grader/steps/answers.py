"""Written answers cut into the numbered parts a rubric scores one by one ("1.", "2." ...)."""

from __future__ import annotations

import re

_PART = re.compile(r"(?m)^[ \t]{0,3}(\d{1,2})\.(?=\s|$)")
_LIST_INDENT = re.compile(r"(?m)^ {1,4}")


def split_parts(text: str) -> dict[str, str]:
    """{"1": ..., "2": ...}: an answer cell cut at its numbered parts ("1." at a line's start).
    Text before the first number belongs to part "1"; a cell without numbers is all part "1"."""
    marks = [(m.group(1), m.start(), m.end()) for m in _PART.finditer(text)]
    if not marks:
        return {"1": text.strip()} if text.strip() else {}
    parts: dict[str, str] = {}
    for k, (num, _start, end) in enumerate(marks):
        stop = marks[k + 1][1] if k + 1 < len(marks) else len(text)
        first, _, rest = text[end:stop].partition("\n")
        # what was indented under the list item ("1. ...") is its content, as a Markdown parser
        # reads it; cut out of the list it must not turn into a code block
        body = (first.strip() + "\n" + _LIST_INDENT.sub("", rest)).strip().strip("-").strip()
        if k == 0:
            body = (text[:marks[0][1]].strip() + "\n" + body).strip()
        parts[num] = (parts.get(num, "") + "\n" + body).strip()
    return parts
