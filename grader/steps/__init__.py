"""The per-submission pipeline, one module per step: load and normalize (``notebook``), execute,
probe, compare, score, and the typed result they hand on (``results``)."""
