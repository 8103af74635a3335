"""Task 2, multiple-choice QA on SWAG with ``distilbert-base-uncased`` and a custom head.

The definitions the notebook asks for (``explain_example``, ``preprocess_function``,
``MultipleChoiceDataCollator``, ``compute_metrics``, ``CustomMultipleChoice``) are written to be
pasted into a notebook cell (``inspect.getsource``): each uses only the names the template's own cell
imports (``NOTEBOOK_IMPORTS``) and imports anything else inside its body. They keep the notebook's
signatures, except that ``preprocess_function`` takes the tokenizer explicitly instead of reading a
global (``datasets.map(preprocess_function, batched=True, fn_kwargs={"tokenizer": tok})``).

The builders below them (``load_*``, ``make_*``, ``evaluate_models``) are the rest of the notebook's
cells as functions, for the runner and the tests.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union  # noqa: UP035 - the notebook's own spelling

import torch
from torch import nn
from transformers import DistilBertModel, DistilBertPreTrainedModel, PretrainedConfig
from transformers.tokenization_utils_base import PaddingStrategy, PreTrainedTokenizerBase

from reference import compat
from reference.specs import TRAINING_SPEC
from reference.util import Laps, subset

if TYPE_CHECKING:
    from reference.run import Profile

MODEL_NAME = "distilbert-base-uncased"
DATASET = ("swag", "regular")
ENDING_NAMES = ["ending0", "ending1", "ending2", "ending3"]

# "The final checkpoint should be the checkpoint that had the best overall validation metric": with
# ``compute_metrics`` returning accuracy, the reference selects on it. The default (eval loss) is also
# a validation metric, so this is kept out of TRAINING_SPEC: a submission should not lose points for it.
TRAINING_IMPLIED: dict[str, Any] = {"metric_for_best_model": "accuracy"}
CUSTOM_OUTPUT_DIR = "custom_model"
# Not prescribed, only quieter: no tensorboard/wandb reporters (the seed notebook crashed in one).
RUNTIME_DEFAULTS: dict[str, Any] = {"report_to": "none"}

# The names each pasted definition needs from the template's cells.
NOTEBOOK_IMPORTS = {
    "explain_example": "",
    "preprocess_function": "",
    "compute_metrics": "import numpy as np",
    "MultipleChoiceDataCollator": (
        "from dataclasses import dataclass\n"
        "from transformers.tokenization_utils_base import PreTrainedTokenizerBase, PaddingStrategy\n"
        "from typing import Optional, Union\n"
        "import torch"
    ),
    "CustomMultipleChoice": (
        "from transformers import DistilBertModel,BertConfig,DistilBertConfig,PretrainedConfig,"
        "PreTrainedModel,DistilBertPreTrainedModel\n"
        "from torch import nn\n"
        "from typing import Optional\n"
        "import torch"
    ),
}

TOY_PREDICTIONS = [
    [0.9, 0.2, 0, 0],
    [0.2, 0.2, 0.9, 0.1],
    [0.2, 0.9, 0, 0],
    [0.2, 0.1, 0.8, 0],
    [0.9, 0.1, 0.8, 0],
    [0.2, 1, 0.4, 0],
    [0.2, 1, 0.4, 0.9],
    [1, 0.1, 0.4, 0.3],
    [0.1, 0.1, 0.9, 0.3],
    [0.1, 0.1, 0.2, 1],
]
TOY_LABELS = [0, 3, 1, 2, 0, 1, 3, 0, 2, 3]
TOY_ACCURACY = 0.8
EXPECTED_LENGTHS_TRAIN_0 = [30, 25, 30, 28]  # "output should be 2 4 [30, 25, 30, 28]"

FIELD_MEANINGS = {
    "sent1": "the first sentence of the situation (the context), as given",
    "sent2": "the beginning of the second sentence, whose continuation is to be chosen "
    "(sent1 + ' ' + sent2 = startphrase)",
    "ending0..ending3": "the four candidate endings of sent2; exactly one is the true continuation",
    "label": "the index (0-3) of the correct ending (-1 in the unlabelled test split)",
}


# --- definitions a notebook asks for (pasteable) -------------------------------------------------


def explain_example(examples):
    letters = ["A", "B", "C", "D"]
    print(f"Context: {examples['sent1']}")
    for i, letter in enumerate(letters):
        print(f"{letter}- {examples['sent2']} {examples[f'ending{i}']}")
    label = examples["label"]
    answer = letters[label] if 0 <= label < 4 else "(no label)"
    print(f"Ground truth: option {answer}")


def preprocess_function(examples, tokenizer):
    ending_names = ["ending0", "ending1", "ending2", "ending3"]
    # repeat each first sentence four times
    first_sentences = [[context] * 4 for context in examples["sent1"]]
    # second sentences possible are combination of header and ending
    question_headers = examples["sent2"]
    second_sentences = [
        [f"{header} {examples[end][i]}" for end in ending_names] for i, header in enumerate(question_headers)
    ]
    # flatten everything
    first_sentences = [s for group in first_sentences for s in group]
    second_sentences = [s for group in second_sentences for s in group]
    # tokenize
    tokenized_examples = tokenizer(first_sentences, second_sentences, truncation=True)
    # un-flatten
    return {k: [v[i : i + 4] for i in range(0, len(v), 4)] for k, v in tokenized_examples.items()}


@dataclass
class MultipleChoiceDataCollator:
    tokenizer: PreTrainedTokenizerBase
    padding: Union[bool, str, PaddingStrategy] = True  # noqa: UP007 - the template's signature
    max_length: Optional[int] = None  # noqa: UP045
    pad_to_multiple_of: Optional[int] = None  # noqa: UP045

    def __call__(self, features):
        accepted_keys = ["input_ids", "attention_mask", "label"]
        if len(features[0]) > len(accepted_keys):
            features = [{k: v for k, v in i.items() if k in accepted_keys} for i in features]
        import torch

        label_name = "label" if "label" in features[0] else "labels"
        labels = [feature[label_name] for feature in features] if label_name in features[0] else None
        batch_size = len(features)
        num_choices = len(features[0]["input_ids"])
        # flatten: one dict per (example, choice), without the label
        flattened_features = [
            {k: v[i] for k, v in feature.items() if k != label_name}
            for feature in features
            for i in range(num_choices)
        ]
        # use the tokenizer and attributes from the class to pad the input
        batch = self.tokenizer.pad(
            flattened_features,
            padding=self.padding,
            max_length=self.max_length,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_tensors="pt",
        )
        # un-flatten
        batch = {k: v.view(batch_size, num_choices, -1) for k, v in batch.items()}
        if labels is not None:
            batch["labels"] = torch.tensor([int(x) for x in labels], dtype=torch.int64)
        return batch


def compute_metrics(predictions):
    import numpy as np

    preds, label_ids = predictions
    if isinstance(preds, tuple):
        preds = preds[0]  # (logits, other outputs...)
    preds = np.argmax(np.asarray(preds), axis=1)
    return_dict = {"accuracy": float((preds == np.asarray(label_ids)).mean())}
    return return_dict


class CustomMultipleChoice(DistilBertPreTrainedModel):
    def __init__(self, config: PretrainedConfig):
        super().__init__(config)
        # 1. the feature extractor, chosen by the (distilbert) config
        self.distilbert = DistilBertModel(config)
        # 3. a linear layer that keeps the size, then tanh
        self.dense = nn.Linear(config.dim, config.dim)
        self.activation = nn.Tanh()
        # 4./6. dropout with the feature extractor's probability
        self.dropout = nn.Dropout(config.dropout)
        # 5. shrink to a quarter of the size
        self.dense2 = nn.Linear(config.dim, config.dim // 4)
        # 7. one score per (context, ending) pair
        self.classifier = nn.Linear(config.dim // 4, 1)
        self.post_init()

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,  # noqa: UP045 - the template's signature
        attention_mask: Optional[torch.Tensor] = None,  # noqa: UP045
        labels: Optional[torch.Tensor] = None,  # noqa: UP045
    ):
        """
        input_ids: input sentences converted to ids
        attention_mask: the attention mask
        labels:  Labels for computing the multiple choice classification loss. Indices should be in `[0, ...,num_choices-1]` where `num_choices` is the size of the second dimension of the input tensors.
        """

        num_choices = input_ids.shape[1]

        # every choice is scored on its own: [batch, choices, len] -> [batch * choices, len]
        input_ids = input_ids.view(-1, input_ids.size(-1))
        attention_mask = attention_mask.view(-1, attention_mask.size(-1)) if attention_mask is not None else None

        outputs = self.distilbert(input_ids=input_ids, attention_mask=attention_mask)
        # 2. the [CLS] embedding of the last hidden state
        pooled = outputs[0][:, 0]
        pooled = self.dropout(self.activation(self.dense(pooled)))
        pooled = self.dropout(self.dense2(pooled))
        logits = self.classifier(pooled)  # [batch * choices, 1]
        reshaped_logits = logits.view(-1, num_choices)

        loss = None
        if labels is not None:
            # 8. cross-entropy over the choices
            loss_fct = nn.CrossEntropyLoss()
            loss = loss_fct(reshaped_logits, labels.view(-1))
        return {"loss": loss, "logits": reshaped_logits}


# --- the notebook's other cells, as functions ----------------------------------------------------


def load_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(MODEL_NAME, use_fast=True)


def load_datasets():
    from datasets import load_dataset

    return load_dataset(*DATASET)


def encode_datasets(datasets, tokenizer):
    """``datasets.map(preprocess_function, batched=True)`` with the tokenizer passed explicitly."""
    return datasets.map(preprocess_function, batched=True, fn_kwargs={"tokenizer": tokenizer})


def load_model_hf():
    from transformers import AutoModelForMultipleChoice

    return AutoModelForMultipleChoice.from_pretrained(MODEL_NAME)


def make_training_args(**overrides):
    """TrainingArguments of Subtask 2: ``TRAINING_SPEC`` + ``TRAINING_IMPLIED``, then ``overrides``."""
    from transformers import TrainingArguments

    return compat.make_args(TrainingArguments, **{**RUNTIME_DEFAULTS, **TRAINING_SPEC, **TRAINING_IMPLIED,
                                                  **overrides})


def make_custom_training_args(**overrides):
    """The same arguments with the output dir, logging dir and run name set to ``custom_model``."""
    out = str(overrides.pop("output_dir", CUSTOM_OUTPUT_DIR))
    custom = {"output_dir": out, "run_name": CUSTOM_OUTPUT_DIR, "logging_dir": str(Path(out) / "logs")}
    return make_training_args(**{**custom, **overrides})


def make_trainer(model, args, tokenizer, encoded_datasets, train_split="train", eval_split="validation"):
    from transformers import Trainer

    return Trainer(
        model=model,
        args=args,
        train_dataset=encoded_datasets[train_split],
        eval_dataset=encoded_datasets[eval_split],
        data_collator=MultipleChoiceDataCollator(tokenizer),
        compute_metrics=compute_metrics,
        **compat.trainer_kwargs(Trainer, tokenizer),
    )


def load_custom_model():
    """``CustomMultipleChoice`` on the distilbert config, with the pretrained encoder's weights."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(MODEL_NAME)
    model = CustomMultipleChoice(config)
    pretrained = DistilBertModel.from_pretrained(MODEL_NAME)
    model.distilbert.load_state_dict(pretrained.state_dict())
    return model


CUSTOM_WEIGHTS = "custom_model.pt"


def save_custom_model(model, directory):
    """Config + state dict: the Trainer cannot be trusted to save an unregistered architecture."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(directory)
    torch.save(model.state_dict(), directory / CUSTOM_WEIGHTS)
    return directory


def load_saved_custom_model(directory):
    from transformers import AutoConfig

    directory = Path(directory)
    model = CustomMultipleChoice(AutoConfig.from_pretrained(directory))
    state = torch.load(directory / CUSTOM_WEIGHTS, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model


class _LocalAccuracy:
    """Stand-in with evaluate's ``add_batch``/``compute`` when ``evaluate.load("accuracy")`` cannot be
    loaded (offline, no local metric). The runner records which one was used."""

    def __init__(self) -> None:
        self.correct = 0
        self.total = 0

    def add_batch(self, predictions, references):
        p, r = torch.as_tensor(predictions).cpu(), torch.as_tensor(references).cpu()
        self.correct += int((p == r).sum())
        self.total += int(r.numel())

    def compute(self):
        return {"accuracy": self.correct / self.total if self.total else 0.0}


def load_accuracy():
    """``evaluate.load("accuracy")`` (the offline store caches the module), or the metric folder named
    by ``$REFERENCE_ACCURACY_METRIC``; ``_LocalAccuracy`` only if neither loads."""
    import os

    import evaluate

    try:
        return evaluate.load(os.environ.get("REFERENCE_ACCURACY_METRIC") or "accuracy")
    except Exception:  # offline without a cached metric
        return _LocalAccuracy()


def evaluate_models(models, dataloader, device):
    """Subtask 4: one accuracy metric per model, fed batch by batch; returns ``{name: accuracy}``."""
    metrics = {name: load_accuracy() for name in models}
    for model in models.values():
        model.to(device)
        model.eval()
    with torch.no_grad():
        for batch in dataloader:
            batch = {k: v.to(device) for k, v in batch.items()}
            for name, model in models.items():
                outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                logits = outputs["logits"]
                metrics[name].add_batch(predictions=logits.argmax(dim=-1), references=batch["labels"])
    return {name: float(metric.compute()["accuracy"]) for name, metric in metrics.items()}


def saved_model_facts(directory):
    """Subtask 2's questions on the saved files: the ids of [CLS] and [MASK] (``vocab.txt``, or
    ``tokenizer.json``, which is all that transformers 5.x saves) and the attention dropout
    (``config.json``)."""
    import json

    directory = Path(directory)
    facts: dict[str, Any] = {"files": sorted(p.name for p in directory.iterdir())}
    ids: dict[str, int] = {}
    vocab, tokenizer_json = directory / "vocab.txt", directory / "tokenizer.json"
    if vocab.is_file():
        ids = {tok: i for i, tok in enumerate(vocab.read_text(encoding="utf-8").splitlines())}
        facts["vocab_source"] = "vocab.txt"
    elif tokenizer_json.is_file():
        data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
        ids = dict(data.get("model", {}).get("vocab", {}))
        ids.update({t["content"]: t["id"] for t in data.get("added_tokens", [])})
        facts["vocab_source"] = "tokenizer.json"
    facts["cls_id"] = ids.get("[CLS]")
    facts["mask_id"] = ids.get("[MASK]")
    config = directory / "config.json"
    if config.is_file():
        facts["attention_dropout"] = json.loads(config.read_text(encoding="utf-8")).get("attention_dropout")
    return facts


# --- the whole task, for the runner ---------------------------------------------------------------



def _train(trainer, profile: "Profile") -> dict[str, Any]:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    out: dict[str, Any] = {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
    out["wall_s"] = round(seconds, 3)
    out["global_step"] = int(result.global_step)
    if torch.cuda.is_available():
        out["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    best = trainer.state.best_metric
    out["best_metric"] = None if best is None else float(best)
    out["log_history_tail"] = trainer.state.log_history[-3:]
    return out


def run_task(profile: "Profile") -> dict[str, Any]:
    """Every cell of Task 2 in order, on ``profile``'s scale; returns the artifact's sections."""
    import io
    from contextlib import redirect_stdout

    from torch.utils.data import DataLoader
    from transformers import AutoModelForMultipleChoice, set_seed

    laps = Laps()
    lap = laps.lap
    timings = laps.timings

    work = Path(profile.work_dir)
    datasets = load_datasets()
    datasets = type(datasets)({
        "train": subset(datasets["train"], profile.train_rows),
        "validation": subset(datasets["validation"], profile.eval_rows),
    })
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        explain_example(datasets["train"][0])
    tokenizer = load_tokenizer()
    features = preprocess_function(datasets["train"][:2], tokenizer)
    lengths = [len(x) for x in features["input_ids"][0]]
    encoded = encode_datasets(datasets, tokenizer)
    accepted = ["input_ids", "attention_mask", "label"]
    sample = [{k: v for k, v in encoded["train"][i].items() if k in accepted} for i in range(2)]
    batch = MultipleChoiceDataCollator(tokenizer)(sample)
    lap("data")

    steps = profile.swag_steps
    common = dict(
        max_steps=steps.max_steps, eval_steps=steps.eval_steps, save_steps=steps.save_steps,
        per_device_train_batch_size=steps.batch_size, per_device_eval_batch_size=steps.batch_size,
        gradient_accumulation_steps=steps.grad_accum, logging_steps=steps.logging_steps,
        disable_tqdm=not profile.progress, **profile.precision("distilbert"), **profile.device_args,
    )
    args_hf = make_training_args(output_dir=str(work / TRAINING_SPEC["output_dir"]), **common)
    set_seed(TRAINING_SPEC["seed"])  # the heads are initialised before the Trainer seeds: reproducible artifacts
    model_hf = load_model_hf()
    trainer = make_trainer(model_hf, args_hf, tokenizer, encoded)
    train_hf = _train(trainer, profile)
    hf_dir = work / TRAINING_SPEC["output_dir"] / "final_model"
    trainer.save_model(str(hf_dir))
    facts = saved_model_facts(hf_dir)
    lap("train_hf")

    args_custom = make_custom_training_args(output_dir=str(work / CUSTOM_OUTPUT_DIR), **common)
    set_seed(TRAINING_SPEC["seed"])
    model_custom = load_custom_model()
    head = {n: list(p.shape) for n, p in model_custom.named_parameters() if not n.startswith("distilbert.")}
    trainer = make_trainer(model_custom, args_custom, tokenizer, encoded)
    train_custom = _train(trainer, profile)
    custom_dir = save_custom_model(model_custom, work / CUSTOM_OUTPUT_DIR / "final_model")
    lap("train_custom")

    loaded = {
        "custom": load_saved_custom_model(custom_dir),
        "hf": AutoModelForMultipleChoice.from_pretrained(str(hf_dir)),
    }
    with torch.no_grad():
        same = torch.allclose(
            model_custom.to("cpu").eval()(**{k: v for k, v in batch.items()})["logits"],
            loaded["custom"].eval()(**batch)["logits"],
            atol=1e-5,
        )
    device = torch.device("cuda") if torch.cuda.is_available() and not profile.force_cpu else torch.device("cpu")
    eval_dataloader = DataLoader(encoded["validation"], batch_size=64, collate_fn=MultipleChoiceDataCollator(tokenizer))
    metric_kind = type(load_accuracy()).__name__
    accuracy = evaluate_models(loaded, eval_dataloader, device)
    lap("evaluate")

    return {
        "metrics": {
            "toy_compute_metrics": compute_metrics((TOY_PREDICTIONS, TOY_LABELS)),
            "eval_accuracy": accuracy,
            "metric_implementation": metric_kind,
            "train_hf": train_hf,
            "train_custom": train_custom,
            "custom_reload_identical_logits": bool(same),
        },
        "shapes": {
            "preprocess_train_0_1": [len(features["input_ids"]), len(features["input_ids"][0]), lengths],
            "collator": {k: list(v.shape) for k, v in batch.items()},
            "custom_head": head,
            "rows": {split: len(ds) for split, ds in datasets.items()},
        },
        "samples": {
            "explain_example_train_0": buffer.getvalue(),
            "collator_row_0_choice_0": tokenizer.decode(batch["input_ids"][0][0]),
            "input_ids_train_0_choice_0_head": features["input_ids"][0][0][:8],
        },
        "answers": {"field_meanings": FIELD_MEANINGS, "saved_model": facts},
        "settings": {
            "training_spec": TRAINING_SPEC,
            "training_implied": TRAINING_IMPLIED,
            "effective": {"max_steps": steps.max_steps, "eval_steps": steps.eval_steps,
                          "save_steps": steps.save_steps, "batch_size": steps.batch_size,
                          "eval_strategy": compat.eval_strategy_of(args_hf),
                          **profile.precision("distilbert")},
        },
        "timings": timings,
        "checks": {
            "lengths_train_0": lengths == EXPECTED_LENGTHS_TRAIN_0,
            "toy_accuracy": compute_metrics((TOY_PREDICTIONS, TOY_LABELS))["accuracy"] == TOY_ACCURACY,
            "collator_shape": list(batch["input_ids"].shape[:2]) == [2, 4] and list(batch["labels"].shape) == [2],
            "custom_reload_identical_logits": bool(same),
            "saved_cls_101_mask_103": (facts.get("cls_id"), facts.get("mask_id")) == (101, 103),
        },
    }
