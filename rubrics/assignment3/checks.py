"""Trusted checks for Assignment 3, run in the grader's process, one per item of the official
point distribution (``rubric.yaml``).

Every verdict rests on something the kernel could not fake more cheaply than by solving the task:
outputs on inputs it first saw at probe time (``inputs.py``), compared with values computed here
(``refs.py``); a model's outputs recomputed here from its exported weights; accuracies recomputed
here from exported predictions and the store's labels; files read here after the kernel stopped;
and, for items about how code is written, the notebook's source read with ``ast``
(``grader.steps.source``). A check accepts what the official rubric accepts (any dropout field of the
feature model's config, targets equal by token ids, a float32 accuracy, a pretrained or random
feature model, rows of shape [1, 512] that the student's own collator handles) and says what it did.
"""

from __future__ import annotations

# The pack's entry points (``grader.pack.contract.ChecksModule``): fresh inputs, the reference, the ``@check``
# functions of each task (collected by their ``check_id``) and the manual-item helpers.
from .checks_common import reference
from .checks_task2_custom import *  # noqa: F403
from .checks_task2_data import *  # noqa: F403
from .checks_task3 import *  # noqa: F403
from .inputs import make_inputs
from .manual import manual_hints, reference_answer, suggest

__all__ = ["make_inputs", "manual_hints", "reference", "reference_answer", "suggest"]
