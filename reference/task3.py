"""Task 3, question answering on SQuAD as text-to-text with T5.

As in ``reference.task2``, the definitions a notebook asks for (``add_eos_to_examples``,
``convert_to_features``, ``T2TDataCollator``, ``get_answer``) are pasteable into a notebook cell;
``convert_to_features`` takes the tokenizer explicitly
(``ds.map(convert_to_features, batched=True, fn_kwargs={"tokenizer": tok})``).
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union  # noqa: UP035 - the notebook's own spelling

import torch
from transformers.tokenization_utils_base import PaddingStrategy, PreTrainedTokenizerBase

from reference import compat
from reference.specs import SEQ2SEQ_SPEC
from reference.util import Laps, subset

if TYPE_CHECKING:
    from reference.run import Profile

T5_NAME = "t5-small"
QA_MODEL_NAME = "mrm8488/t5-base-finetuned-squadv2"
DATASET = ("squad",)
MAX_SOURCE_LENGTH = 512
MAX_TARGET_LENGTH = 16
COLUMNS = ["input_ids", "attention_mask", "target_ids", "target_attention_mask"]

RUNTIME_DEFAULTS: dict[str, Any] = {"report_to": "none"}

# The notebook's two inference examples and the answers it announces.
QA_EXAMPLES = (
    {
        "question": "Who is supporting Sarah?",
        "context": "Sarah has joined NLP for transformers class and is working on her research project with "
        "the support of Harry.",
        "expected": "Harry",
    },
    {
        "question": "What is better for machine learning projects?",
        "context": "TPUs are more power efficient in comparison to GPUs making them a better choice for machine "
        "learning projects.",
        "expected": "TPUs",
    },
)

NOTEBOOK_IMPORTS = {
    "add_eos_to_examples": "",
    "convert_to_features": "",
    "T2TDataCollator": (
        "from dataclasses import dataclass\n"
        "from transformers.tokenization_utils_base import PreTrainedTokenizerBase, PaddingStrategy\n"
        "from typing import Optional, Union\n"
        "import torch"
    ),
    "get_answer": "",
}


# --- definitions a notebook asks for (pasteable) -------------------------------------------------


def add_eos_to_examples(example):
    answers = example["answers"]["text"]
    example["input_text"] = f"question: {example['question']} context: {example['context']} </s>"
    example["target_text"] = f"{answers[0] if len(answers) else ''} </s>"
    return example


def convert_to_features(example_batch, tokenizer):
    input_encodings = tokenizer(
        example_batch["input_text"], max_length=512, padding="max_length", truncation=True
    )
    target_encodings = tokenizer(
        example_batch["target_text"], max_length=16, padding="max_length", truncation=True
    )
    encodings = {
        "input_ids": input_encodings["input_ids"],
        "attention_mask": input_encodings["attention_mask"],
        "target_ids": target_encodings["input_ids"],
        "target_attention_mask": target_encodings["attention_mask"],
    }
    return encodings


@dataclass
class T2TDataCollator:
    tokenizer: Optional[PreTrainedTokenizerBase] = None  # noqa: UP045 - the template's signature
    padding: Union[bool, str, PaddingStrategy] = True  # noqa: UP007
    max_length: Optional[int] = None  # noqa: UP045
    pad_to_multiple_of: Optional[int] = None  # noqa: UP045

    def __call__(self, batch):
        import torch

        pad_id = 0  # T5's <pad>
        if self.tokenizer is not None and self.tokenizer.pad_token_id is not None:
            pad_id = self.tokenizer.pad_token_id
        input_ids = torch.stack([torch.as_tensor(example["input_ids"]) for example in batch])
        attention_mask = torch.stack([torch.as_tensor(example["attention_mask"]) for example in batch])
        labels = torch.stack([torch.as_tensor(example["target_ids"]) for example in batch]).clone()
        decoder_attention_mask = torch.stack(
            [torch.as_tensor(example["target_attention_mask"]) for example in batch]
        )
        # padding in the target must not count in the loss (CrossEntropyLoss's ignore_index)
        labels[labels == pad_id] = -100
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "decoder_attention_mask": decoder_attention_mask,
        }


def get_answer(tokenizer, model, question, context):
    input_text = f"question: {question} context: {context} </s>"
    features = tokenizer([input_text], max_length=512, truncation=True, return_tensors="pt")
    output = model.generate(
        input_ids=features["input_ids"].to(model.device),
        attention_mask=features["attention_mask"].to(model.device),
        max_new_tokens=16,
    )
    return tokenizer.decode(output[0], skip_special_tokens=True).strip()


# --- the notebook's other cells, as functions ----------------------------------------------------


def load_t5_tokenizer():
    from transformers import T5Tokenizer

    return T5Tokenizer.from_pretrained(T5_NAME, max_len=MAX_SOURCE_LENGTH)


def load_squad():
    from datasets import load_dataset

    return load_dataset(*DATASET)


def encode_squad(datasets, tokenizer, num_proc=None):
    """``map(add_eos_to_examples)`` (not batched), ``map(convert_to_features, batched=True)``, then
    torch format on the four model columns."""
    encoded = datasets.map(add_eos_to_examples, num_proc=num_proc)
    encoded = encoded.map(convert_to_features, batched=True, fn_kwargs={"tokenizer": tokenizer}, num_proc=num_proc)
    encoded.set_format(type="torch", columns=COLUMNS)
    return encoded


def load_t5():
    from transformers import T5ForConditionalGeneration

    return T5ForConditionalGeneration.from_pretrained(T5_NAME)


def make_seq2seq_args(**overrides):
    from transformers import Seq2SeqTrainingArguments

    return compat.make_args(Seq2SeqTrainingArguments, **{**RUNTIME_DEFAULTS, **SEQ2SEQ_SPEC, **overrides})


def make_seq2seq_trainer(model, args, tokenizer, train_dataset):
    from transformers import Seq2SeqTrainer

    return Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        data_collator=T2TDataCollator(tokenizer),
        **compat.trainer_kwargs(Seq2SeqTrainer, tokenizer),
    )


def load_qa_model():
    """(tokenizer, model) of the fine-tuned checkpoint Subtask 3 uses for inference."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(QA_MODEL_NAME), AutoModelForSeq2SeqLM.from_pretrained(QA_MODEL_NAME)


# --- the whole task, for the runner ---------------------------------------------------------------



def run_task(profile: "Profile") -> dict[str, Any]:
    from transformers import set_seed

    laps = Laps()
    lap = laps.lap
    timings = laps.timings

    work = Path(profile.work_dir)
    squad = load_squad()
    squad = type(squad)({
        "train": subset(squad["train"], profile.squad_train_rows),
        "validation": subset(squad["validation"], profile.squad_eval_rows),
    })
    tokenizer = load_t5_tokenizer()
    encoded = encode_squad(squad, tokenizer, num_proc=profile.num_proc)
    # the same rows without torch format, for the texts
    texts = squad["train"].select(range(1)).map(add_eos_to_examples)[0]
    features = [{k: v for k, v in encoded["train"][i].items() if k in COLUMNS} for i in range(2)]
    batch = T2TDataCollator(tokenizer)(features)
    pad_positions = batch["decoder_attention_mask"] == 0
    lap("data")

    steps = profile.t5_steps
    args = make_seq2seq_args(
        output_dir=str(work / SEQ2SEQ_SPEC["output_dir"]),
        max_steps=steps.max_steps, save_steps=steps.save_steps,
        per_device_train_batch_size=steps.batch_size, gradient_accumulation_steps=steps.grad_accum,
        logging_steps=steps.logging_steps, disable_tqdm=not profile.progress,
        **profile.precision("t5"), **profile.device_args,
    )
    set_seed(SEQ2SEQ_SPEC["seed"])
    t5 = load_t5()
    trainer = make_seq2seq_trainer(t5, args, tokenizer, encoded["train"])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = trainer.train()
    train = {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
    train["wall_s"] = round(time.perf_counter() - start, 3)
    train["global_step"] = int(result.global_step)
    train["log_history_tail"] = trainer.state.log_history[-3:]
    if torch.cuda.is_available():
        train["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    lap("train_t5")

    qa_tokenizer, qa_model = load_qa_model()
    if torch.cuda.is_available() and not profile.force_cpu:
        qa_model.to("cuda")
    qa_model.eval()
    answers = []
    for example in QA_EXAMPLES:
        got = get_answer(qa_tokenizer, qa_model, example["question"], example["context"])
        answers.append({**example, "answer": got, "matches": got == example["expected"]})
    lap("inference")

    special = ("<pad>", "</s>", "<extra_id")
    return {
        "metrics": {"train_t5": train},
        "shapes": {
            "input_ids": list(encoded["train"][0]["input_ids"].shape),
            "target_ids": list(encoded["train"][0]["target_ids"].shape),
            "collator": {k: list(v.shape) for k, v in batch.items()},
            "rows": {split: len(ds) for split, ds in squad.items()},
        },
        "samples": {
            "input_text_train_0": texts["input_text"],
            "target_text_train_0": texts["target_text"],
            "labels_row_0": batch["labels"][0].tolist(),
            "qa": answers,
        },
        "settings": {
            "seq2seq_spec": SEQ2SEQ_SPEC,
            "effective": {"max_steps": steps.max_steps, "save_steps": steps.save_steps,
                          "batch_size": steps.batch_size, "grad_accum": steps.grad_accum,
                          **profile.precision("t5")},
        },
        "timings": timings,
        "checks": {
            "source_512_target_16": list(batch["input_ids"].shape[1:]) == [MAX_SOURCE_LENGTH]
            and list(batch["labels"].shape[1:]) == [MAX_TARGET_LENGTH],
            "minus_100_exactly_at_padding": bool(torch.equal(batch["labels"] == -100, pad_positions)),
            "answers_plain_text": all(not any(s in a["answer"] for s in special) for a in answers),
        },
    }
