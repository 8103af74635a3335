r"""The sample submissions of Assignment 3 ("NLP with Transformers"), generated from one source.

``python -m reference.notebooks [--out DIR] [--check]`` writes into ``submissions/`` (or ``DIR``):

- ``zero__blank-template.ipynb``: the notebook as handed out (pre-filled cells, empty
  ``### your code ###`` regions, "Enter your answer here" answer cells, the red cross-feedback
  comment blocks);
- ``partial__seed-student.ipynb``: one real student's partially filled notebook, reconstructed
  from its text rendering (``/work/shared/seeds/000_826cb8ced1dd7a2d.txt``), bugs included;
- ``full-marks__solution.ipynb``: every answer filled, written as a 2023 student would (transformers
  4.36 API: ``evaluation_strategy=``, ``Trainer(tokenizer=)``, ``load_metric`` imported). Its
  self-contained definitions are the reference's own source (``reference.task2``/``task3``);
  Task 1 answers come from ``reference.task1``;
- ``loses-<subtask>__<bug>.ipynb``: the solution with exactly one bug, made by exact text
  substitution (each must apply exactly once).

The assignment text is in ``reference/sample_cells/`` (a small ``@@ <kind> <id>`` cell format),
so generating needs neither the seed file nor the network: the output is byte-for-byte
deterministic and ``tests/test_notebooks.py`` regenerates it to compare. Outputs are always empty.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
from nbformat import NotebookNode

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "submissions"
# Where the embedded texts were transcribed from (not read at generation time).
SEED_TEXT = REPO.parent / "shared" / "seeds" / "000_826cb8ced1dd7a2d.txt"

TEMPLATE_NAME = "zero__blank-template.ipynb"
SEED_NAME = "partial__seed-student.ipynb"
SOLUTION_NAME = "full-marks__solution.ipynb"
TEAM = "Ada Lovelace, Alan Turing"
# The texts in the ``@@ <kind> <id>`` cell format, read verbatim.
CELLS = Path(__file__).resolve().parent / "sample_cells"


@dataclass(frozen=True)
class Cell:
    kind: str  # "markdown" | "code"
    id: str  # nbformat 4.5 cell id, shared by all samples for the same template cell
    source: str


def parse_cells(text: str) -> list[Cell]:
    """Cells from the ``@@ <kind> <id>`` format; leading/trailing blank lines of a body are dropped."""
    cells = []
    for block in re.split(r"^(?=@@ )", text, flags=re.MULTILINE):
        if not block.strip():
            continue
        head, _, body = block.partition("\n")
        marker, kind, cell_id = head.split()
        if marker != "@@" or kind not in ("markdown", "code"):
            raise ValueError(f"bad cell header {head!r}")
        cells.append(Cell(kind, cell_id, body.strip("\n")))
    ids = [c.id for c in cells]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate cell ids")
    return cells


def apply_overrides(base: Sequence[Cell], overrides: Sequence[Cell]) -> list[Cell]:
    """Replace cells by id; a cell with a new id goes right after the override before it."""
    cells = list(base)
    index = {c.id: i for i, c in enumerate(cells)}
    last: str | None = None
    for cell in overrides:
        if cell.id in index:
            if cells[index[cell.id]].kind != cell.kind:
                raise ValueError(f"override {cell.id} changes the cell type")
            cells[index[cell.id]] = cell
        else:
            if last is None:
                raise ValueError(f"new cell {cell.id} has no cell to follow")
            cells.insert(index[last] + 1, cell)
        index = {c.id: i for i, c in enumerate(cells)}
        last = cell.id
    return cells


def insert_after(cells: Sequence[Cell], after: str, new: Sequence[Cell]) -> list[Cell]:
    out = list(cells)
    at = [c.id for c in out].index(after) + 1
    out[at:at] = new
    return out


def to_notebook(cells: Sequence[Cell]) -> NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for c in cells:
        if c.kind == "markdown":
            node = nbformat.v4.new_markdown_cell(c.source, id=c.id)
        else:
            node = nbformat.v4.new_code_cell(c.source, id=c.id)
        nb.cells.append(node)
    nbformat.validate(nb)
    return nb


def dumps(nb: NotebookNode) -> str:
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


# --- the assignment as handed out (transcribed from the seed's text rendering) ------------------

TEMPLATE = (CELLS / "template.cells").read_text(encoding="utf-8")

# --- the seed student's cells that differ from the template (same ids; new ids are inserted
# after the cell before them) -----------------------------------------------------------------

SEED_STUDENT = (CELLS / "seed_student.cells").read_text(encoding="utf-8")


# --- the solution ---------------------------------------------------------------------------------


def _md(cell_id: str, source: str) -> Cell:
    return Cell("markdown", cell_id, source.strip("\n"))


def _code(cell_id: str, source: str) -> Cell:
    return Cell("code", cell_id, textwrap.dedent(source).strip("\n"))


def _source(obj: object) -> str:
    """The source of a reference definition, as it would be pasted into a cell."""
    return textwrap.dedent(inspect.getsource(obj)).strip("\n")  # type: ignore[arg-type]


def task1_answers() -> dict[str, str]:
    """Answer cells of Task 1 (subtask -> Markdown), from ``reference.task1``."""
    from reference import task1

    cells: dict[str, list[str]] = {}
    for item in task1.ANSWERS:
        number = item.id.rsplit(".", 1)[1]
        cells.setdefault(item.subtask, []).append(f"**{number}.** {item.answer.strip()}")
    return {subtask: "\n\n".join(parts) for subtask, parts in cells.items()}


ANSWER_2_1 = """
*   `sent1`: the first sentence, the context: it describes the situation (e.g. "Members of the procession walk down the street holding small horn brass instruments.").
*   `sent2`: the beginning of the second sentence (here its subject, "A drum line"). Every ending continues it, and `startphrase` is `sent1` followed by `sent2`.
*    `ending0`, `ending1`, `ending2` and `ending3`: the four candidate endings of `sent2`. Exactly one is the real continuation of the video caption; the other three are adversarially generated distractors.
*   `label`: the index (0-3) of the correct ending (`-1` in the test split, whose labels are not public).
"""

ANSWER_2_2 = """
1. In `vocab.txt` (and `tokenizer.json`) the ids count from 0 by line: `[CLS]` is **101** and `[MASK]` is **103** (`[PAD]` 0, `[UNK]` 100, `[SEP]` 102).
2. `config.json` has `"attention_dropout": 0.1`: the attention probabilities are dropped with probability **0.1** (the other dropout, `"dropout": 0.1`, is applied to the embeddings and the feed-forward outputs; `"seq_classif_dropout": 0.2` is used by the classification heads).
"""

ANSWER_3_4 = r"""
**1. Text-to-text format.** Every task, whether translation, summarization, question answering or classification, is cast as: feed the model a text, train it to produce a text, with the same model, the same maximum-likelihood loss and the same decoding for all tasks. The task is named by a prefix of the input. For classification the input is the prefixed example, e.g. `mnli hypothesis: ... premise: ...` or `sst2 sentence: ...`, and the target is the label *as a word* (`entailment`, `neutral`, `contradiction`; `positive`/`negative`); even regression (STS-B) becomes the score rounded to 0.2 and written as a string. Complications with a predefined set of classes: the decoder is free to generate any string, so it can output a text that is none of the labels (the paper counts it as wrong, it never happened after fine-tuning); labels must be given names that the model can produce (and names of different lengths and tokenizations are not equally likely); and the output space is not restricted or calibrated as with a softmax over $k$ classes, so there is no direct probability per class.

**2. Unsupervised objectives with sentinel tokens.** *Masked language modeling* (BERT-style): 15% of the tokens are corrupted (80% replaced by a mask token, 10% by a random token, 10% kept) and the target is the whole original text. The span variant used by T5 ("replace corrupted spans") replaces each run of consecutive corrupted tokens by one unique **sentinel** token (`<extra_id_0>`, `<extra_id_1>`, ...) and the target is only the dropped spans, each introduced by its sentinel, ending with a final sentinel. *Word dropout* ("drop tokens") removes the corrupted tokens from the input altogether, with no sentinel, and the target is the dropped tokens. Example: *Thank you for inviting me to your party last week.*
- MLM: input `Thank you <M> <M> me to your party apple week .`, target `Thank you for inviting me to your party last week .`
- replace spans: input `Thank you <X> me to your party <Y> week .`, target `<X> for inviting <Y> last <Z>`
- word dropout: input `Thank you me to your party week .`, target `for inviting last`

**3. Attention masks.** *Fully-visible*: every output position may attend to every input position, before and after it (the encoder, BERT). *Causal*: position $i$ may attend only to positions $j \le i$, never to the future; this is needed to generate autoregressively (the decoder, a language model). *Causal masking with a prefix* (prefix LM): the first part of the sequence (the prefix, e.g. the input text of the task) is fully visible, and the rest is causal: the model sees the whole input bidirectionally but generates the target left to right, in a single decoder-only stack.

**4. Fine-tuning fewer parameters.** *Adapter layers*: small new blocks, dense ($d_{model} \to d$), ReLU, dense ($d \to d_{model}$), added after each feed-forward block of every Transformer layer, with a residual connection; only the adapters (and the layer norms) are trained while the pre-trained weights stay frozen, and $d$ sets the number of new parameters. *Gradual unfreezing*: fine-tuning starts with only the last layer trainable, and more layers are unfrozen over time, from the top down, until the whole model is trained (in T5, encoder and decoder blocks unfrozen in parallel every $2^{18}/12$ steps); it protects the pre-trained lower layers early in fine-tuning.
"""

def _pasted(obj: object, *, imports: str = "", edits: Sequence[tuple[str, str]] = ()) -> str:
    """A reference definition as a student would paste it under the cell's pre-filled imports.

    ``# noqa`` remarks (for the reference's linter) are dropped; each edit must apply exactly once.
    """
    text = re.sub(r"[ \t]+# noqa\b[^\n]*", "", _source(obj))
    for old, new in edits:
        if text.count(old) != 1:
            raise ValueError(f"{getattr(obj, '__name__', obj)}: {old!r} occurs {text.count(old)} times, not once")
        text = text.replace(old, new)
    return f"{imports.strip()}\n\n{text}" if imports.strip() else text


def _float(value: float) -> str:
    if value and abs(value) < 1e-3:
        mantissa, exponent = f"{value:e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    return repr(value)


def _arguments(spec: dict[str, object], indent: str = "    ") -> str:
    """Keyword arguments, one a line, in the names of transformers 4.36 (``evaluation_strategy``)."""
    lines = []
    for key, value in spec.items():
        key = "evaluation_strategy" if key == "eval_strategy" else key
        shown = _float(value) if isinstance(value, float) else repr(value).replace("'", '"')
        lines.append(f"{indent}{key}={shown},")
    return "\n".join(lines)


def solution_overrides() -> list[Cell]:
    """The cells a full-marks submission changes, in notebook order, in the course-era API
    (transformers 4.36: ``evaluation_strategy=``, ``Trainer(tokenizer=)``) that the grader's kernel
    shims translate. Definitions are the reference's source; the rest is glue a student writes."""
    from reference import task2, task3

    t1 = task1_answers()
    args = {**task2.TRAINING_SPEC, **task2.TRAINING_IMPLIED}
    custom = {"output_dir": task2.CUSTOM_OUTPUT_DIR, "logging_dir": f"{task2.CUSTOM_OUTPUT_DIR}/logs",
              "run_name": task2.CUSTOM_OUTPUT_DIR}
    custom_args = {**custom, **{k: v for k, v in args.items() if k not in custom}}
    return [
        _md("t1-1-answer", t1["1.1"]),
        _md("t1-2-answer", t1["1.2"]),
        _md("t1-3-answer", t1["1.3"]),
        _md("t1-4-answer", t1["1.4"]),
        _md("t2-1-answer", ANSWER_2_1),
        _code("t2-1-explain-example", _pasted(task2.explain_example)),
        _code("t2-1-tokenizer", """
            from transformers import AutoTokenizer

            ###your code###
            tokenizer = AutoTokenizer.from_pretrained("distilbert-base-uncased", use_fast=True)
            ###your code###
        """),
        # the reference passes the tokenizer explicitly; the notebook's function reads the global one
        _code("t2-1-preprocess", _pasted(
            task2.preprocess_function,
            imports='### your code ###\nending_names = ["ending0", "ending1", "ending2", "ending3"]\n### your code ###',
            edits=[("def preprocess_function(examples, tokenizer):", "def preprocess_function(examples):"),
                   ('    ending_names = ["ending0", "ending1", "ending2", "ending3"]\n', "")],
        )),
        _code("t2-1-collator", _pasted(task2.MultipleChoiceDataCollator, imports=task2.NOTEBOOK_IMPORTS["MultipleChoiceDataCollator"])),
        _code("t2-2-model", """
            ### your code ###
            from transformers import AutoModelForMultipleChoice
            model_hf = AutoModelForMultipleChoice.from_pretrained("distilbert-base-uncased")
            ### your code ###
        """),
        _code("t2-2-training-args", "from transformers import TrainingArguments, Trainer\n"
              f"training_args = TrainingArguments(\n{_arguments(args)}\n)"),
        _code("t2-2-compute-metrics", _pasted(task2.compute_metrics, imports="import numpy as np")),
        _code("t2-2-trainer", """
            ### your code ###
            trainer = Trainer(
                model=model_hf,
                args=training_args,
                train_dataset=encoded_datasets["train"],
                eval_dataset=encoded_datasets["validation"],
                tokenizer=tokenizer,
                data_collator=MultipleChoiceDataCollator(tokenizer),
                compute_metrics=compute_metrics,
            )
            ### your code ###
        """),
        _code("t2-2-save", f"""
            ### your code ###
            trainer.save_model("{task2.TRAINING_SPEC['output_dir']}/final_model")
            ### your code ###
        """),
        _md("t2-2-answer", ANSWER_2_2),
        _code("t2-3-custom-model", _pasted(
            task2.CustomMultipleChoice,
            imports="from transformers import DistilBertModel,BertConfig,DistilBertConfig,PretrainedConfig,"
            "PreTrainedModel,DistilBertPreTrainedModel\nfrom torch import nn",
        )),
        _code("t2-3-init", """
            from transformers import AutoConfig
            ###your code ###
            config=AutoConfig.from_pretrained("distilbert-base-uncased")
            model_custom = CustomMultipleChoice(config)
            # the feature extractor starts from the pre-trained weights, the new head at random
            model_custom.distilbert.load_state_dict(DistilBertModel.from_pretrained("distilbert-base-uncased").state_dict())
            ###your code ###
        """),
        _code("t2-3-training-args", "###your code ###\n"
              f"training_args_custom = TrainingArguments(\n{_arguments(custom_args)}\n)\n###your code ###"),
        _code("t2-3-trainer", """
            trainer = Trainer(
            ###your code ###
                model=model_custom,
                args=training_args_custom,
                train_dataset=encoded_datasets["train"],
                eval_dataset=encoded_datasets["validation"],
                tokenizer=tokenizer,
                data_collator=MultipleChoiceDataCollator(tokenizer),
                compute_metrics=compute_metrics,
            ###your code ###
            )
        """),
        _code("t2-3-save", f"""
            ###your code ###
            # the configuration and the full state dict (encoder and head): the Trainer would save only
            # what a registered architecture has
            os.makedirs("{task2.CUSTOM_OUTPUT_DIR}/final_model", exist_ok=True)
            model_custom.config.save_pretrained("{task2.CUSTOM_OUTPUT_DIR}/final_model")
            torch.save(model_custom.state_dict(), "{task2.CUSTOM_OUTPUT_DIR}/final_model/{task2.CUSTOM_WEIGHTS}")
            ###your code ###
        """),
        _code("t2-4-load-models", f"""
            from transformers import AutoModelForMultipleChoice,AutoConfig
            ### your code ###
            model_hf = AutoModelForMultipleChoice.from_pretrained("{task2.TRAINING_SPEC['output_dir']}/final_model")
            model_custom = CustomMultipleChoice(AutoConfig.from_pretrained("{task2.CUSTOM_OUTPUT_DIR}/final_model"))
            model_custom.load_state_dict(torch.load("{task2.CUSTOM_OUTPUT_DIR}/final_model/{task2.CUSTOM_WEIGHTS}", map_location="cpu"))
            ### your code ###
        """),
        _code("t2-4-evaluate", """
            from tqdm import tqdm
            device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
            metric_dict={"custom":evaluate.load("accuracy"),"hf":evaluate.load("accuracy")} #use to compute accuracy
            models_dict= {"custom":model_custom,"hf":model_hf}# use to access models

            for name, model in models_dict.items():
              model.to(device)
              model.eval()

            for i,batch in tqdm(enumerate(eval_dataloader), total=len(eval_dataloader)):
              ### your code ###
              #evaluate on both model on each batch
              batch = {k: v.to(device) for k, v in batch.items()}
              for name, model in models_dict.items():
                with torch.no_grad():
                  outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                metric_dict[name].add_batch(predictions=outputs["logits"].argmax(dim=-1), references=batch["labels"])

            acc_hf=metric_dict["hf"].compute()
            acc_custom=metric_dict["custom"].compute()
              ### your code ###
            print("Hugging Face Model :",acc_hf)
            print("Custom Model :",acc_custom)
        """),
        _code("t3-1-tokenizer", f"""
            import torch
            ### your code ###
            from transformers import T5Tokenizer
            t5_tokenizer = T5Tokenizer.from_pretrained("{task3.T5_NAME}", max_len={task3.MAX_SOURCE_LENGTH})
            ### your code ###
        """),
        _code("t3-1-add-eos", _pasted(task3.add_eos_to_examples)),
        _code("t3-1-map-eos", """
            ### your code ###
            encoded_squad = datasets_squad.map(add_eos_to_examples)
            ### your code ###
        """),
        # the reference passes the tokenizer explicitly; the notebook's function reads t5_tokenizer
        _code("t3-1-convert-to-features", _pasted(
            task3.convert_to_features,
            edits=[("def convert_to_features(example_batch, tokenizer):", "def convert_to_features(example_batch):"),
                   ('input_encodings = tokenizer(', 'input_encodings = t5_tokenizer('),
                   ('target_encodings = tokenizer(', 'target_encodings = t5_tokenizer(')],
        )),
        _code("t3-1-map-features", """
            ### your code ###
            encoded_squad = encoded_squad.map(convert_to_features, batched=True)
            ### your code ###
        """),
        _code("t3-1-set-format", f"""
            ### your code ###
            encoded_squad.set_format(type="torch", columns={task3.COLUMNS!r})
            ### your code ###
            type(encoded_squad["train"][0]["input_ids"])
        """.replace("'", '"')),
        _code("t3-1-collator", _pasted(
            task3.T2TDataCollator,
            imports="from dataclasses import dataclass\nfrom transformers import DataCollator\n"
            "from transformers.tokenization_utils_base import PreTrainedTokenizerBase, PaddingStrategy\n"
            "from typing import Optional, Union",
        )),
        _code("t3-2-model", f"""
            ### your code ###
            from transformers import T5ForConditionalGeneration
            t5 = T5ForConditionalGeneration.from_pretrained("{task3.T5_NAME}")
            ### your code ###
        """),
        _code("t3-2-training-args", "from transformers import Seq2SeqTrainingArguments\n\n"
              f"training_args = Seq2SeqTrainingArguments(\n{_arguments(task3.SEQ2SEQ_SPEC)}\n)"),
        _code("t3-2-trainer", """
            # Initialize our Trainer
            ### your code ###
            from transformers import Seq2SeqTrainer
            trainer = Seq2SeqTrainer(
                model=t5,
                args=training_args,
                train_dataset=encoded_squad["train"],
                data_collator=T2TDataCollator(t5_tokenizer),
            )
            ### your code ###
        """),
        _code("t3-3-load-model", f"""
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
            ### your code ###
            t5_tokenizer = AutoTokenizer.from_pretrained("{task3.QA_MODEL_NAME}")
            t5_model = AutoModelForSeq2SeqLM.from_pretrained("{task3.QA_MODEL_NAME}")
            ### your code ###
        """),
        _code("t3-3-get-answer", _pasted(task3.get_answer)),
        _md("t3-4-answer", ANSWER_3_4),
    ]


def solution_cells() -> list[Cell]:
    cells = apply_overrides(parse_cells(TEMPLATE), solution_overrides())
    return insert_after(cells, "guidelines", [_md("team", f"**Team:** {TEAM}")])


# --- single-bug variants --------------------------------------------------------------------------


@dataclass(frozen=True)
class Bug:
    name: str  # file name without .ipynb: loses-<subtask>__<bug>
    cell_id: str  # the one cell that changes
    edits: tuple[tuple[str, str], ...]  # (old, new): each old text must occur exactly once in the cell
    why: str


BUGS: tuple[Bug, ...] = (
    Bug(
        "loses-2.1__collator-not-unflattened",
        "t2-1-collator",
        (("        batch = {k: v.view(batch_size, num_choices, -1) for k, v in batch.items()}\n", ""),),
        "the collator never un-flattens: input_ids/attention_mask come out as [B*4, L] instead of [B, 4, L]",
    ),
    Bug(
        "loses-2.2__argmin-in-compute-metrics",
        "t2-2-compute-metrics",
        (("np.argmax(", "np.argmin("),),
        "compute_metrics picks the least likely choice (0.0 instead of 0.8 on the check cell)",
    ),
    Bug(
        "loses-2.3__wrong-head-size",
        "t2-3-custom-model",
        (("nn.Linear(config.dim, config.dim // 4)", "nn.Linear(config.dim, config.dim // 2)"),
         ("nn.Linear(config.dim // 4, 1)", "nn.Linear(config.dim // 2, 1)")),
        "dense2 shrinks the embedding to dim/2 instead of dim/4 (the classifier follows, so it still runs)",
    ),
    Bug(
        "loses-2.3__missing-tanh",
        "t2-3-custom-model",
        (("self.dropout(self.activation(self.dense(pooled)))", "self.dropout(self.dense(pooled))"),),
        "the tanh is defined but never applied in forward",
    ),
    Bug(
        "loses-3.1__no-minus-100",
        "t3-1-collator",
        (("        # padding in the target must not count in the loss (CrossEntropyLoss's ignore_index)\n", ""),
         ("        labels[labels == pad_id] = -100\n", "")),
        "the label padding stays 0 (the pad id) instead of -100, so padding counts in the loss",
    ),
    Bug(
        "loses-3.2__epochs-instead-of-steps",
        "t3-2-training-args",
        (("max_steps=200,", "num_train_epochs=200,"),),
        "trains for 200 epochs instead of at most 200 steps",
    ),
    Bug(
        "loses-3.3__special-tokens-in-answer",
        "t3-3-get-answer",
        ((", skip_special_tokens=True)", ")"),),
        "get_answer keeps the special tokens in the decoded answer ('<pad> Harry</s>')",
    ),
)


def apply_bug(cells: Sequence[Cell], bug: Bug) -> list[Cell]:
    out = list(cells)
    (at,) = [i for i, c in enumerate(out) if c.id == bug.cell_id]
    source = out[at].source
    for old, new in bug.edits:
        count = source.count(old)
        if count != 1:
            raise ValueError(f"{bug.name}: {old!r} occurs {count} times in cell {bug.cell_id}, not once")
        source = source.replace(old, new)
    out[at] = replace(out[at], source=source)
    return out


# --- all samples ----------------------------------------------------------------------------------


def template_cells() -> list[Cell]:
    return parse_cells(TEMPLATE)


def seed_student_cells() -> list[Cell]:
    return apply_overrides(parse_cells(TEMPLATE), parse_cells(SEED_STUDENT))


def transcription_gaps(seed_text: Path = SEED_TEXT) -> list[str]:
    """Lines of the seed student's notebook that its text rendering does not contain (should be none).

    A check of the transcription, for when the seed file is at hand; generating never reads it.
    """
    rendered = {line.rstrip() for line in seed_text.read_text(encoding="utf-8").splitlines()}
    return [f"{cell.id}: {line}" for cell in seed_student_cells() for line in cell.source.splitlines()
            if line.strip() and line.rstrip() not in rendered]


def samples() -> dict[str, Callable[[], list[Cell]]]:
    """File name -> cells, for every generated sample."""
    out: dict[str, Callable[[], list[Cell]]] = {
        TEMPLATE_NAME: template_cells,
        SEED_NAME: seed_student_cells,
        SOLUTION_NAME: solution_cells,
    }
    for bug in BUGS:
        out[f"{bug.name}.ipynb"] = lambda bug=bug: apply_bug(solution_cells(), bug)  # type: ignore[misc]
    return out


def render_all() -> dict[str, str]:
    return {name: dumps(to_notebook(make())) for name, make in samples().items()}


def write_all(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference.notebooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: submissions/)")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        stale = [name for name, text in render_all().items()
                 if not (args.out / name).is_file() or (args.out / name).read_text(encoding="utf-8") != text]
        for name in stale:
            print(f"stale: {args.out / name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_all(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
