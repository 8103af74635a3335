"""Load/normalize and the outline: subtask attribution, answers, peer comments, team, neutralized installs."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.pack.contract import outline_for
from grader.pack.rubric import load_rubric
from grader.steps.notebook import LoadedNotebook, load_notebook, neutralize

outline = outline_for(load_rubric("assignment3"))  # Assignment 3's notebook conventions

REPO = Path(__file__).resolve().parent.parent


def test_cells_are_attributed_to_subtasks_of_the_template() -> None:
    nb = nbformat.read(REPO / "submissions" / "full-marks__solution.ipynb", as_version=4)
    shape = outline(nb)
    seen = {s.subtask for s in shape.sections if s.subtask}
    assert seen == {"1.1", "1.2", "1.3", "1.4", "2.1", "2.2", "2.3", "2.4", "3.1", "3.2", "3.3", "3.4"}
    code_subtasks = [s.subtask for c, s in zip(nb.cells, shape.sections, strict=True) if c.cell_type == "code" and "class CustomMultipleChoice" in c.source]
    assert code_subtasks == ["2.3"]
    assert shape.team == ("Ada Lovelace", "Alan Turing")
    assert set(shape.answers) >= {"1.1", "1.2", "1.3", "1.4", "2.1", "2.2", "3.4"}
    assert not any("Write a function that displays" in a for a in shape.answers["2.1"])  # an instruction is no answer


def test_peer_comments_are_extracted_and_the_template_text_ignored() -> None:
    nb = new_notebook(cells=[
        new_markdown_cell("## **Task 2: MC** (4 points)"), new_markdown_cell("### Subtask 1: Data"),
        new_markdown_cell("#### ${\\color{red}{Comments\\ 2.1}}$"),
        new_markdown_cell("${\\color{red}{⚠️Comments\\ begin⚠️}}$"),
        new_markdown_cell("```\nNice collator, but the labels are missing.\n```"),
        new_markdown_cell("${\\color{red}{⚠️Comments\\ end⚠️}}$"),
        new_markdown_cell("#### ${\\color{red}{Comments\\ 2.2}}$"), new_markdown_cell("${\\color{red}{⚠️Comments\\ begin⚠️}}$"),
        new_markdown_cell("```\ncross-feedback comment section\n```"), new_markdown_cell("${\\color{red}{⚠️Comments\\ end⚠️}}$"),
    ])
    assert outline(nb).comments == {"2.1": "Nice collator, but the labels are missing."}


def test_installs_and_drive_mounts_are_neutralized() -> None:
    nb = new_notebook(cells=[new_code_cell("%pip install transformers\n!pip install -U accelerate\nx = 1\ndrive.mount('/content/drive')")])
    out, notes = neutralize(nb)
    src = out.cells[0].source
    assert "pass  # grader: skipped: %pip install transformers" in src and "x = 1" in src
    assert "pass  # grader: skipped: drive.mount" in src
    assert nb.cells[0].source.startswith("%pip")  # the original is untouched
    assert len(notes) == 2


def test_nbformat3_is_upgraded_with_a_note(tmp_path: Path) -> None:
    from nbformat.v3 import new_code_cell as v3_code
    from nbformat.v3 import new_notebook as v3_nb
    from nbformat.v3 import new_worksheet

    path = tmp_path / "old.ipynb"
    path.write_text(nbformat.writes(v3_nb(worksheets=[new_worksheet(cells=[v3_code(input="x = 1")])]), version=3))
    loaded = load_notebook(path)
    assert isinstance(loaded, LoadedNotebook)
    assert loaded.nb.cells[0].source == "x = 1" and any("nbformat 3" in r for r in loaded.repairs)
