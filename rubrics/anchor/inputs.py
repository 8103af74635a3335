"""The inputs each probe receives, drawn afresh for every submission (``seed``), never answers.

Everything here is synthetic: random token ids, random logits and labels, ragged batches of token
ids. Knowing these inputs answers no check; the expected values are computed outside the kernel
(``refs.py``). The batch sizes are never 4: with four choices per example, a batch of four would let
a collate that swaps the batch and choice axes, or an argmax over the wrong axis, pass by shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

VOCAB = 1000
CHOICES = 4
BATCH_SIZES = (2, 3, 5, 6)


def make_inputs(rubric: Any, plan: Mapping[str, tuple[str, ...]], seed: int, source: Any = None) -> dict[str, dict[str, Any]]:
    """{subtask: {probe: input}} for the probes in ``plan``, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    makers = {
        "model": lambda: {"input_ids": rng.integers(0, VOCAB, size=(int(rng.choice(BATCH_SIZES)), CHOICES, int(rng.integers(8, 25)))).tolist()},
        "compute_metrics": lambda: {"cases": [_logits_case(rng) for _ in range(3)]},
        "collate": lambda: _ragged_case(rng, pad_id=None),
        "collate_with_pad_id": lambda: _ragged_case(rng, pad_id=int(rng.integers(VOCAB, 2 * VOCAB))),
    }
    # every maker runs, in a fixed order, whatever the plan holds: a self-check (public probes only)
    # and a grade draw the same values for the same seed
    drawn = {name: make() for name, make in makers.items()}
    return {subtask: {name: drawn.get(name, {}) for name in names} for subtask, names in plan.items()}


def _logits_case(rng: np.random.Generator) -> dict[str, Any]:
    n = int(rng.integers(5, 17))
    while True:
        logits = rng.normal(size=(n, CHOICES)).astype(np.float32)
        if all(len(set(row.tolist())) == CHOICES for row in logits):  # no ties: every argmax agrees
            break
    return {"logits": [[float(x) for x in row] for row in logits], "labels": rng.integers(0, CHOICES, size=n).tolist()}


def _ragged_case(rng: np.random.Generator, pad_id: int | None) -> dict[str, Any]:
    batch = int(rng.choice(BATCH_SIZES))
    lengths = rng.integers(1, 13, size=(batch, CHOICES))
    longest, short = rng.choice(batch * CHOICES, size=2, replace=False)
    lengths.flat[longest], lengths.flat[short] = 12, int(rng.integers(1, 4))  # padding always shows
    features = [[rng.integers(1, VOCAB, size=int(n)).tolist() for n in row] for row in lengths]
    return {"features": features, "pad_id": pad_id}
