"""A grading harness for machine-learning courses taught in Jupyter notebooks."""

__version__ = "0.1.0"
