"""Reference implementation of Assignment 3 ("Transformers", NLP with Transformers).

- ``reference.task1``: written answers to Task 1 (attention theory) as data, and numbers that check them.
- ``reference.task2``: SWAG multiple choice with ``distilbert-base-uncased`` and a custom head.
- ``reference.task3``: SQuAD as text-to-text with ``t5-small`` and ``mrm8488/t5-base-finetuned-squadv2``.
- ``reference.compat``: the switches between transformers 4.4x and 5.x.
- ``reference.run``: ``python -m reference run --task {1,2,3,all} --profile {tiny,course}``.

Nothing is imported here: ``task2``/``task3`` import transformers, which must only happen after the
offline store has been activated (``reference.run.activate_store``).
"""
