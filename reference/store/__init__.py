"""The offline store for Assignment 3: tiny models and data sets under the real hub ids.

Call ``build``/``fetch`` only after ``grader.kernel.store.activate()``: they import transformers and datasets,
which read their cache and offline settings once, at import.
"""

from .build import BUILDER, REQUIRED_IDS, build
from .fetch import FetchError, fetch

__all__ = ["BUILDER", "REQUIRED_IDS", "FetchError", "build", "fetch"]
