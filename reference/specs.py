"""What the assignment prescribes for the two sets of training arguments, as plain data.

Read by the reference (``reference.task2``/``task3``) and by the pack's checks
(``rubrics/assignment3/checks_common.py``), which must not import torch to know them.
"""

from __future__ import annotations

from typing import Any

# What the assignment prescribes for TrainingArguments (Subtask 2), in the names of transformers 5.x
# (``reference.compat`` renames ``eval_strategy`` for releases before 4.41).
TRAINING_SPEC: dict[str, Any] = {
    "output_dir": "distilbert-base-uncased-swag",
    "eval_strategy": "steps",
    "eval_steps": 300,
    "save_steps": 600,
    "save_total_limit": 2,
    "seed": 77,
    "per_device_train_batch_size": 48,
    "per_device_eval_batch_size": 48,
    "max_steps": 1800,
    "learning_rate": 5e-5,
    "weight_decay": 0.01,
    "remove_unused_columns": True,
    "load_best_model_at_end": True,
}

SEQ2SEQ_SPEC: dict[str, Any] = {
    "output_dir": "t5-squad",
    "learning_rate": 1e-4,
    "weight_decay": 0.01,
    "seed": 77,
    "max_steps": 200,
    "save_steps": 100,
    "per_device_train_batch_size": 32,
    "gradient_accumulation_steps": 4,  # 32 x 4 = 128, T5's batch size
    "remove_unused_columns": False,
}
