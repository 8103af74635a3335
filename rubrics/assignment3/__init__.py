"""The rubric pack of Assignment 3 ("Transformers") of "NLP with Transformers" (see rubric.yaml)."""
