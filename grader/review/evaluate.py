"""How well the grouping matches groups a person labelled: the figures the tests and
``benchmarks/review_clusters.py`` report.

Answers to different questions are never grouped together by the page, so agreement is measured
within each question: the adjusted Rand index per question (averaged), and pair counts over the
pairs of answers to the same question (precision: of the pairs the page put together, how many a
person put together; recall: the other way round). A pooled Rand index over all questions would
reward the page for keeping questions apart, which it does by construction.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from grader.steps.answers import split_parts


@dataclass(frozen=True)
class Agreement:
    ari: float  # adjusted Rand index per question, averaged over the questions
    precision: float  # of the pairs the page put in one group, the share a person put together too
    recall: float  # of the pairs a person put together, the share the page put in one group
    answers: int
    questions: int

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return round(2 * self.precision * self.recall / total, 4) if total else 0.0


def agreement(truth: Mapping[str, Sequence[Hashable]], predicted: Mapping[str, Sequence[Hashable]]) -> Agreement:
    """``truth`` and ``predicted``: {question: one label per answer, in the same order}."""
    from sklearn.metrics import adjusted_rand_score

    aris: list[float] = []
    both = grouped_true = grouped_pred = answers = 0
    for q, labels in truth.items():
        pred = predicted[q]
        if len(pred) != len(labels):
            raise ValueError(f"question {q}: {len(labels)} labels but {len(pred)} predictions")
        answers += len(labels)
        aris.append(float(adjusted_rand_score(list(map(str, labels)), list(map(str, pred)))))
        for i, j in combinations(range(len(labels)), 2):
            same_true, same_pred = labels[i] == labels[j], pred[i] == pred[j]
            grouped_true += same_true
            grouped_pred += same_pred
            both += same_true and same_pred
    return Agreement(
        ari=round(sum(aris) / len(aris), 4) if aris else 0.0,
        precision=round(both / grouped_pred, 4) if grouped_pred else 1.0,
        recall=round(both / grouped_true, 4) if grouped_true else 1.0,
        answers=answers,
        questions=len(truth),
    )


def notebook_parts(notebook: Path, subtasks: Sequence[str], rubric: str | Path | None = None) -> dict[str, str]:
    """{"1.1.1": text, ...}: the numbered parts of a notebook's written answers to ``subtasks``,
    found by the notebook conventions of ``rubric``'s pack."""
    from grader.pack.contract import outline_for
    from grader.pack.rubric import load_rubric
    from grader.steps.notebook import BadInput, load_notebook

    loaded = load_notebook(notebook)
    if isinstance(loaded, BadInput):
        raise ValueError(loaded.message)
    answers = outline_for(load_rubric(rubric))(loaded.nb).answers
    out: dict[str, str] = {}
    for sub in subtasks:
        for num, body in split_parts("\n\n".join(answers.get(sub, ()))).items():
            out[f"{sub}.{num}"] = body
    return out
