"""A grading harness for machine-learning courses taught in Jupyter notebooks."""

__version__ = "0.1.0"


def selfcheck(subtask: str | None = None, **kwargs):  # type: ignore[no-untyped-def]
    """Run one subtask's public checks on this notebook's live objects (see grader.selfcheck)."""
    from grader.selfcheck import selfcheck as _selfcheck

    return _selfcheck(subtask, **kwargs)
