"""Platforms notebooks were written for, emulated while grading (``kernel.platform`` in a rubric)."""
