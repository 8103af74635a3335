"""A grading harness for machine-learning courses taught in Jupyter notebooks."""

from typing import Any

__version__ = "0.1.0"


def selfcheck(subtask: str | None = None, **kwargs: Any) -> Any:
    """Run one subtask's public checks on this notebook's live objects (see grader.selfcheck)."""
    from grader.selfcheck import selfcheck as _selfcheck

    return _selfcheck(subtask, **kwargs)
