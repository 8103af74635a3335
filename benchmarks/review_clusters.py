"""How well `grader review` groups answers by meaning, against groups labelled by hand.

Two sets: the synthetic paraphrases in tests/data/review_paraphrases.yaml (right and wrong
answers written for this purpose, 6 questions), and the Task 1 answers of the four real notebooks
in ../shared/real/ (10 questions = numbered parts of 1.1-1.4, 4 answers each; labels in
tests/data/review_real_task1_groups.yaml; skipped when that folder is absent).

For each distance threshold it prints the adjusted Rand index (per question, averaged) and the
pair precision / recall / F1 within questions, beside two baselines that need no model: one group
per question, and every answer alone. It also says how often the first group shown (the one
closest to the reference answer) is the right answers' group.

    .venv/bin/python benchmarks/review_clusters.py [--real ../shared/real] [--thresholds 0.3,0.4,...]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"


def synthetic() -> list[tuple[str, str, list[str], list[str]]]:
    """(question id, reference, texts, labels) per question."""
    doc = yaml.safe_load((DATA / "review_paraphrases.yaml").read_text(encoding="utf-8"))
    out = []
    for q in doc["questions"]:
        texts: list[str] = []
        labels: list[str] = []
        for group, paraphrases in q["groups"].items():
            texts += paraphrases
            labels += [group] * len(paraphrases)
        out.append((q["id"], q["reference"], texts, labels))
    return out


def real(folder: Path) -> list[tuple[str, str, list[str], list[str]]]:
    from grader.review.evaluate import notebook_parts

    labels = yaml.safe_load((DATA / "review_real_task1_groups.yaml").read_text(encoding="utf-8"))["questions"]
    notebooks = sorted({nb for by_nb in labels.values() for nb in by_nb})
    parts = {nb: notebook_parts(folder / nb, ["1.1", "1.2", "1.3", "1.4"], "assignment3") for nb in notebooks}
    # The sample solution is both the reference answer and one of the four answers (as in a course
    # where it is graded too); "first group = right group" is then trivially true and not printed.
    reference_nb = "official-sample-solution.ipynb"
    return [(q, parts[reference_nb].get(q, ""), [parts[nb].get(q, "") for nb in notebooks], [by_nb[nb] for nb in notebooks])
            for q, by_nb in labels.items()]


def measure(sets: list[tuple[str, str, list[str], list[str]]], thresholds: list[float], embed: object, *, first_is_right: bool) -> None:
    """Print the table. ``first_is_right``: each question's first label names the right answers
    (true of the synthetic set), so "the first group shown is theirs" can be counted."""
    from grader.review.clustering import group_answers
    from grader.review.evaluate import agreement

    truth = {q: labels for q, _, _, labels in sets}
    one = agreement(truth, {q: [0] * len(labels) for q, labels in truth.items()})
    alone = agreement(truth, {q: list(range(len(labels))) for q, labels in truth.items()})
    print(f"  {'grouping':<22} {'ARI':>6} {'prec':>6} {'recall':>6} {'F1':>6}" + ("  first group shown = right answers" if first_is_right else ""))
    print(f"  {'one group per question':<22} {one.ari:6.3f} {one.precision:6.3f} {one.recall:6.3f} {one.f1:6.3f}")
    print(f"  {'every answer alone':<22} {alone.ari:6.3f} {alone.precision:6.3f} {alone.recall:6.3f} {alone.f1:6.3f}")
    for t in thresholds:
        pred: dict[str, list[int]] = {}
        first_right = 0
        for q, reference, texts, labels in sets:
            grouping = group_answers(texts, reference, embed, threshold=t)  # type: ignore[arg-type]
            lab = [0] * len(texts)
            for g, group in enumerate(grouping.groups):
                for i in group.members:
                    lab[i] = g
            pred[q] = lab
            top = Counter(labels[i] for i in grouping.groups[0].members).most_common(1)[0][0]
            first_right += top == labels[0]
        a = agreement(truth, pred)
        tail = f"  {first_right}/{len(sets)}" if first_is_right else ""
        print(f"  {'threshold ' + format(t, '.2f'):<22} {a.ari:6.3f} {a.precision:6.3f} {a.recall:6.3f} {a.f1:6.3f}{tail}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, default=REPO.parent / "shared" / "real")
    ap.add_argument("--thresholds", default="0.2,0.3,0.35,0.4,0.45,0.5,0.55,0.6,0.7")
    args = ap.parse_args()
    from grader.review.clustering import DEFAULT_THRESHOLD, MiniLM

    thresholds = [float(x) for x in args.thresholds.split(",")]
    embed = MiniLM()
    syn = synthetic()
    print(f"synthetic paraphrases: {sum(len(s[2]) for s in syn)} answers, {len(syn)} questions (default threshold {DEFAULT_THRESHOLD})")
    measure(syn, thresholds, embed, first_is_right=True)
    if args.real.is_dir():
        rs = real(args.real)
        print(f"real Task 1 answers ({args.real}): {sum(len(s[2]) for s in rs)} answers, {len(rs)} questions")
        measure(rs, thresholds, embed, first_is_right=False)
    else:
        print(f"real notebooks: {args.real} not found, skipped")


if __name__ == "__main__":
    main()
