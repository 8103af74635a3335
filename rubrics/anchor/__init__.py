"""The rubric pack of the anchor workload (``../shared/anchor-workload/``): a tiny DistilBERT
multiple-choice homework in three parts, 1 point each. The worked example of ``docs/PACKS.md``."""
