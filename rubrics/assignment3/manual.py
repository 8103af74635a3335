"""The manual items: facts shown beside a written answer (``manual_hints``), points the grader
suggests for items a TA confirms (``suggest``), and the model answers (``reference_answer``)."""

from __future__ import annotations

import re

from .checks_common import (  # noqa: F401
    reference,
)

# --- manual items ----------------------------------------------------------------------------------


def _mentions(text: str, pattern: str) -> bool:
    return bool(re.search(pattern, text.lower()))


def manual_hints(item_id: str, text: str) -> list[str]:
    """Facts a TA can rely on, checked automatically in the student's written answer."""
    low = text.lower()
    if not text.strip():
        return ["no answer written"]
    hints: list[str] = []
    if item_id == "2.2.ids":
        hints.append(("mentions" if _mentions(low, r"\b101\b") else "does not mention") + " [CLS] id 101")
        hints.append(("mentions" if _mentions(low, r"\b103\b") else "does not mention") + " [MASK] id 103")
    if item_id == "2.2.dropout":
        hints.append(
            ("mentions" if _mentions(low, r"(?<![\d.])0?\.1\b") else "does not mention")
            + " attention dropout 0.1"
        )
    if item_id == "2.1.fields":
        for f in ("sent1", "sent2", "ending", "label"):
            hints.append(("explains" if f in low else "does not name") + f" `{f}`")
    if item_id.startswith("1.4"):
        hints.append(
            ("mentions" if any(x in low for x in ("l^2", "l²", "n^2", "l^{2}")) else "does not mention")
            + " quadratic cost in l"
        )
    return hints


def suggest(item_id: str, text: str) -> tuple[float, str] | None:
    """Points the grader suggests for a confirm item (a TA confirms or changes them)."""
    low = text.lower()
    if not low.strip() or "enter your answer here" in low:
        return 0.0, "no answer written"
    if item_id == "2.2.ids":
        ok = _mentions(low, r"\b101\b") and _mentions(low, r"\b103\b")
        return (
            (1.0, "names [CLS] 101 and [MASK] 103") if ok else (0.0, "does not name [CLS] 101 and [MASK] 103")
        )
    if item_id == "2.2.dropout":
        ok = _mentions(low, r"(?<![\d.])0?\.1\b")
        return (
            (1.0, "names the attention dropout 0.1")
            if ok
            else (0.0, "does not name the attention dropout 0.1")
        )
    if item_id == "2.1.fields":
        named = [f for f in ("sent1", "sent2", "ending", "label") if re.search(rf"{f}\w*`?\s*:?\s*\w+", low)]
        ok = len(named) == 4
        return (
            (1.0, "explains sent1, sent2, the endings and label")
            if ok
            else (0.0, f"explains only {', '.join(named) or 'none'} of sent1, sent2, ending0-3, label")
        )
    return None


def reference_answer(name: str) -> str:
    return _answers_text().get(name, "")


def _answers_text() -> dict[str, str]:
    from reference import t5_paper, task1, task2

    out = {
        "2.1.fields": "\n".join(f"- `{k}`: {v}" for k, v in task2.FIELD_MEANINGS.items()),
        "2.2.questions": "[CLS] has id 101 and [MASK] id 103 (vocab.txt); the attention dropout is 0.1 (config.json: attention_dropout).",
        "3.4": t5_paper.reference_text(),
    }
    for sub in ("1.1", "1.2", "1.3", "1.4"):
        out[sub] = "\n\n".join(
            f"**{a.id}** {a.answer}\n\nKey points: " + "; ".join(a.key_points)
            for a in task1.ANSWERS
            if a.subtask == sub
        )
    return out
