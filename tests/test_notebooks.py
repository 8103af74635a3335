"""The sample submissions in ``submissions/``: generated, valid, and shaped as the grader expects.

Nothing here executes a notebook. Regenerating imports ``reference.task2``/``task3`` (torch and
transformers) because the solution pastes their source: a few seconds, once per session.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from reference import notebooks as gen

SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"
SUBTASKS = [f"{t}.{s}" for t in (1, 2, 3) for s in (1, 2, 3, 4)]
EMPTY_ANSWER = "`\nEnter your answer here\n`"

_TASK = re.compile(r"^## \*\*Task (\d):")
_SUBTASK = re.compile(r"^### Subtask (\d):")


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return gen.render_all()


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.reads((SUBMISSIONS / name).read_text(encoding="utf-8"), as_version=nbformat.NO_CONVERT)


def sections(nb: nbformat.NotebookNode) -> list[str | None]:
    """The subtask ("2.3") of every cell, from the markdown headings, as the grader attributes them."""
    task = subtask = None
    out: list[str | None] = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            first = cell.source.splitlines()[0] if cell.source else ""
            if m := _TASK.match(first):
                task, subtask = m.group(1), None
            elif (m := _SUBTASK.match(first)) and task:
                subtask = f"{task}.{m.group(1)}"
        out.append(subtask)
    return out


def without_magics(source: str) -> str:
    return "\n".join("pass" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def compiles(source: str) -> bool:
    try:
        ast.parse(without_magics(source))
    except SyntaxError:
        return False
    return True


# --- generation ---------------------------------------------------------------------------------


def test_committed_samples_are_what_the_generator_writes(rendered: dict[str, str]) -> None:
    for name, text in rendered.items():
        path = SUBMISSIONS / name
        assert path.is_file(), f"{name} is not committed: run `python -m reference.notebooks`"
        assert path.read_text(encoding="utf-8") == text, f"{name} is stale: run `python -m reference.notebooks`"


def test_cli_writes_byte_identical_files(tmp_path: Path) -> None:
    assert gen.main(["--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(gen.samples())
    for name in written:
        assert (tmp_path / name).read_bytes() == (SUBMISSIONS / name).read_bytes()
    assert gen.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / gen.SOLUTION_NAME).write_text("{}", encoding="utf-8")
    assert gen.main(["--out", str(tmp_path), "--check"]) == 1


def test_rendering_twice_gives_the_same_text(rendered: dict[str, str]) -> None:
    assert gen.render_all() == rendered


def test_readme_lists_every_generated_sample() -> None:
    """(``broken__*``/``hostile__*`` samples come from elsewhere and are not checked here.)"""
    readme = (SUBMISSIONS / "README.md").read_text(encoding="utf-8")
    for name in gen.samples():
        assert f"`{name}`" in readme, f"{name} is not described in submissions/README.md"


# --- every sample ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(gen.samples()))
def test_sample_is_valid_nbformat_45_without_outputs(name: str) -> None:
    nb = read(name)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    assert nb.metadata.kernelspec.name == "python3"
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids))
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id
        assert cell.source == cell.source.strip("\n"), cell.id


@pytest.mark.parametrize("name", sorted(gen.samples()))
def test_sample_keeps_the_template_outline(name: str) -> None:
    """Same headings and comment blocks as the template, so the grader attributes cells alike."""
    template = read(gen.TEMPLATE_NAME)
    nb = read(name)

    def skeleton(book: nbformat.NotebookNode) -> list[str]:
        return [c.source for c in book.cells if c.cell_type == "markdown"
                and (c.source.startswith(("#", "${\\color{red}")) or "cross-feedback" in c.source)]

    assert skeleton(nb) == skeleton(template)


# --- the template ----------------------------------------------------------------------------------


def test_template_headings() -> None:
    nb = read(gen.TEMPLATE_NAME)
    firsts = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown"]
    tasks = [line for line in firsts if _TASK.match(line)]
    assert tasks == [
        "## **Task 1: Diving into Attention** (3 + 4 + 4 + 1 = 12 points)",
        "## **Task 2: Multiple Choice Question Answering** (4 + 3 + 5 + 2 = 14 points)",
        "## **Task 3: Encoder-Decoder Architecture** (5 + 2 + 2 + 5 = 14 points)",
    ]
    assert sorted({s for s in sections(nb) if s}) == SUBTASKS
    assert [line for line in firsts if _SUBTASK.match(line)] == [
        "### Subtask 1: Copying", "### Subtask 2: Averaging", "### Subtask 3: Drawbacks of Single-head Attention",
        "### Subtask 4: Model Size",
        "### Subtask 1: Loading and Processing the Data", "### Subtask 2: Fine-tuning a Hugging Face Model",
        "### Subtask 3: Fine-tune a Custom Model", "### Subtask 4: Evaluation and Model Comparison",
        "### Subtask 1: Data Processing", "### Subtask 2: Training", "### Subtask 3: Inference",
        "### Subtask 4: T5 Paper",
    ]


def test_template_has_one_comment_block_per_subtask() -> None:
    nb = read(gen.TEMPLATE_NAME)
    src = [c.source for c in nb.cells]
    titles = [i for i, s in enumerate(src) if s.startswith("#### ${\\color{red}{Comments\\ ")]
    assert [src[i] for i in titles] == [f"#### ${{\\color{{red}}{{Comments\\ {s}}}}}$" for s in SUBTASKS]
    for i in titles:
        assert src[i + 1] == "${\\color{red}{⚠️Comments\\ begin⚠️}}$"
        assert src[i + 2] == "```\ncross-feedback comment section\n```"
        assert src[i + 3] == "${\\color{red}{⚠️Comments\\ end⚠️}}$"
    # each block closes its subtask: it is attributed to it
    subtasks = sections(nb)
    assert [subtasks[i] for i in titles] == SUBTASKS


def test_template_answer_cells_are_empty() -> None:
    nb = read(gen.TEMPLATE_NAME)
    subtasks = sections(nb)
    empty = [subtasks[i] for i, c in enumerate(nb.cells) if c.source == EMPTY_ANSWER]
    assert empty == ["1.1", "1.2", "1.3", "1.4", "2.1", "2.2", "3.4"]
    for i, cell in enumerate(nb.cells):
        if cell.source == EMPTY_ANSWER:
            assert nb.cells[i - 1].source in ("**Answer**", "**Answer:**")


PREFILLED_CHECKS = [
    'print(len(features["input_ids"]), len(features["input_ids"][0]), [len(x) for x in features["input_ids"][0]])'
    "# output should be 2 4 [30, 25, 30, 28]",
    "batch=MultipleChoiceDataCollator(tokenizer)(features)",
    "label_ids=np.array([0,3,1,2,0,1,3,0,2,3])\ncompute_metrics((preds,label_ids))",
    'if param.requires_grad and not name.startswith("distilbert."):',
    'eval_dataloader = DataLoader(encoded_datasets["validation"], batch_size=64, collate_fn=MultipleChoiceDataCollator(tokenizer))',
    'metric_dict={"custom":evaluate.load("accuracy"),"hf":evaluate.load("accuracy")}',
    "batch=T2TDataCollator(t5_tokenizer)(features)",
    'print("Shape of the target_ids:",encoded_squad["train"][0]["target_ids"].shape)',
    'get_answer(t5_tokenizer,t5_model,question, context)###your answer should be "Harry"',
    'get_answer(t5_tokenizer,t5_model,question, context)###your answer should be "TPUs"',
    "from datasets import load_dataset, load_metric",
    "trainer.train()# should take around 30 min on Google Colab T4 GPU",
]


@pytest.mark.parametrize("snippet", PREFILLED_CHECKS)
def test_template_keeps_the_prefilled_cells(snippet: str) -> None:
    for name in (gen.TEMPLATE_NAME, gen.SEED_NAME, gen.SOLUTION_NAME):
        code = [c.source for c in read(name).cells if c.cell_type == "code"]
        assert sum(snippet in s for s in code) == 1, (name, snippet)


def test_template_skeletons_do_not_compile_and_the_rest_does() -> None:
    nb = read(gen.TEMPLATE_NAME)
    broken = {c.id for c in nb.cells if c.cell_type == "code" and not compiles(c.source)}
    assert {"t2-1-tokenizer", "t2-1-preprocess", "t2-1-collator", "t2-2-training-args", "t2-3-custom-model",
            "t3-1-tokenizer", "t3-2-model", "t3-3-load-model"} <= broken
    assert "t2-1-load-swag" not in broken and "t2-2-compute-metrics-check" not in broken
    assert not any(c.source.startswith("%pip") and c.get("outputs") for c in nb.cells)


# --- the solution and its variants ----------------------------------------------------------------


def test_solution_is_complete_and_course_era() -> None:
    nb = read(gen.SOLUTION_NAME)
    assert all(c.source != EMPTY_ANSWER for c in nb.cells)
    code = {c.id: c.source for c in nb.cells if c.cell_type == "code"}
    assert all(compiles(src) for src in code.values()), [i for i, s in code.items() if not compiles(s)]
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert f"**Team:** {gen.TEAM}" in markdown
    assert 'evaluation_strategy="steps"' in code["t2-2-training-args"]
    assert "tokenizer=tokenizer," in code["t2-2-trainer"]
    assert "max_steps=200," in code["t3-2-training-args"]
    assert '"distilbert-base-uncased-swag/final_model"' in code["t2-2-save"]
    assert '"custom_model/final_model"' in code["t2-3-save"]
    assert "mrm8488/t5-base-finetuned-squadv2" in code["t3-3-load-model"]
    assert "# noqa" not in "\n".join(code.values())


def test_solution_uses_the_reference_definitions() -> None:
    from reference import task2, task3

    code = "\n".join(c.source for c in read(gen.SOLUTION_NAME).cells if c.cell_type == "code")
    for obj in (task2.explain_example, task2.MultipleChoiceDataCollator, task2.compute_metrics,
                task2.CustomMultipleChoice, task3.add_eos_to_examples, task3.T2TDataCollator, task3.get_answer):
        body = gen._pasted(obj)
        assert body in code, obj.__name__


@pytest.mark.parametrize("bug", gen.BUGS, ids=lambda b: b.name)
def test_bug_variant_changes_exactly_one_cell_of_its_subtask(bug: gen.Bug) -> None:
    solution = read(gen.SOLUTION_NAME)
    variant = read(f"{bug.name}.ipynb")
    assert [c.id for c in variant.cells] == [c.id for c in solution.cells]
    changed = [i for i, (a, b) in enumerate(zip(solution.cells, variant.cells, strict=True)) if a.source != b.source]
    assert len(changed) == 1
    assert variant.cells[changed[0]].id == bug.cell_id
    assert compiles(variant.cells[changed[0]].source)
    subtask = bug.name.removeprefix("loses-").split("__")[0]
    assert sections(variant)[changed[0]] == subtask


def test_bug_edits_must_match_exactly_once() -> None:
    cells = gen.solution_cells()
    with pytest.raises(ValueError, match="not once"):
        gen.apply_bug(cells, gen.Bug("loses-x__y", "t2-2-compute-metrics", (("no such text", ""),), ""))
    with pytest.raises(ValueError, match="not once"):
        gen.apply_bug(cells, gen.Bug("loses-x__y", "t2-3-custom-model", (("config.dim // 4", ""),), ""))


# --- the seed student -----------------------------------------------------------------------------


def test_seed_student_is_the_template_plus_their_cells() -> None:
    template = {c.id: c.source for c in read(gen.TEMPLATE_NAME).cells}
    seed = read(gen.SEED_NAME)
    changed = {c.id for c in seed.cells if template.get(c.id) != c.source}
    assert changed == {
        "t1-1-answer", "t1-2-answer", "t1-3-answer", "t1-4-answer", "t2-1-answer", "t2-1-explain-example",
        "t3-1-tokenizer", "t3-1-add-eos", "t3-1-map-eos", "t3-1-convert-to-features", "t3-1-map-features",
        "t3-1-set-format", "t3-1-collator", "t3-2-model", "t3-2-training-args", "t3-2-trainer", "t3-3-load-model",
        "t3-3-get-answer", "t3-4-answer",
        "t3-4-answer-label-2", "t3-4-answer-2", "t3-4-answer-label-3", "t3-4-answer-3", "t3-4-answer-label-4",
        "t3-4-answer-4",
    }
    code = {c.id: c.source for c in seed.cells if c.cell_type == "code"}
    # their bugs, kept on purpose
    assert "return examples[\"ending0\"],examples[\"ending1\"]" in code["t2-1-explain-example"]
    assert code["t2-1-tokenizer"] == template["t2-1-tokenizer"]  # left blank
    assert "def add_eos_to_examples(example, tokenizer):" in code["t3-1-add-eos"]
    assert "num_train_epochs=200," in code["t3-2-training-args"] and "max_steps" not in code["t3-2-training-args"]
    assert 'from_pretrained("t5-base")' in code["t3-3-load-model"]
    assert "mrm8488" not in code["t3-3-load-model"]


@pytest.mark.skipif(not gen.SEED_TEXT.is_file(), reason="the seed's text rendering is not on this machine")
def test_seed_student_is_transcribed_from_the_rendering() -> None:
    assert gen.transcription_gaps() == []
