"""Rubric packs: the YAML (``rubric``), the typed contract (``contract``) and its validation at
load, ``# [subtask]`` marks, and ``grader new-pack`` (``scaffold``)."""
