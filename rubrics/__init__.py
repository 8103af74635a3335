"""The rubric packs that ship with the grader, one folder each (see docs/PACKS.md).

A package only so that ``pip install .`` carries them along; the grader loads a pack from its
folder (``grader.pack.rubric.load_rubric``), never by importing this package.
"""
