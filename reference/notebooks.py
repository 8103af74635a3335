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

The assignment text is embedded below (``TEMPLATE``, in a small ``@@ <kind> <id>`` cell format),
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

TEMPLATE = r'''
@@ markdown header
**Heidelberg University**

**Data Science  Group**

Prof. Dr. Michael Gertz

Ashish Chouhan, Satya Almasian, John Ziegler, Jayson Salazar, Nicolas Reuter

December 4, 2023

Natural Language Processing with Transformers

Winter Semster 2023/2024
***

@@ markdown title
# **Assignment 3: “Transformers”**
**Due**: Monday, January 8, 2024, 2pm, via [Moodle](https://moodle.uni-heidelberg.de/course/view.php?id=19251)

@@ markdown guidelines
### **Submission Guidelines**

- Solutions need to be uploaded as a **single** Jupyter notebook. You will find several pre-filled code segments in the notebook, your task is to fill in the missing cells.
- For the written solution, use LaTeX in markdown inside the same notebook. Do **not** hand in a separate file for it.
- Download the .zip file containing the dataset but do **not** upload it with your solution.
- It is sufficient if one person per group uploads the solution to Moodle, but make sure that the full names of all team members are given in the notebook.

***

@@ markdown t1-intro
## **Task 1: Diving into Attention** (3 + 4 + 4 + 1 = 12 points)

In this task, you work with self-attention equations and find out why multi-head attention is preferable to single-head attention.

Recall the equation of attention on slide 5-9 to compute self-attention on a series of input tokens. We simplify the formula by focusing on a single query vector $q \in R^d$, value vectors ($\{ v_1,v_2,...,v_i \},v_i \in R^d$), and key vectors ($\{ k_1,k_2,...,k_i \},k_i \in R^d$). We then have

$$
a_i=\frac{exp(q^Tk_i)}{\Sigma^n_{j=1}exp(q^Tk_j)}
$$

$$
 o= \Sigma^n_{i=1} a_i v_i
$$

with $a_i$ being the attention weight for query $q$ with respect to key $k_i$. Then the output $o$ is the new representation for the query token as a weighted average of value vectors with weights $a=\{ a_1,a_2,...,a_i \},a_i \in R^d$.
Answer the following questions with the help of the equations and the intuition behind attention that you learned in the class:

@@ markdown t1-1-question
### Subtask 1: Copying

1.   Explain why $a$ can be interpreted as a categorical distribution.
2.   This distribution is typically diffuse, where the mass is spread out between different values of $a_i$. Describe a scenario in which the categorical distribution puts all the weight on a single element, e.g., $a_j \gg \Sigma_{j\neq i}a_i$. What are the conditions on key and/or query for this to happen?
3. In this case of a single large $a$, what would the output $c$ look like and what it means intuitively?

In attention, it is easy to **copy** a value vector $v_i$ to the output $o$.

@@ markdown t1-1-answer-label
**Answer**

@@ markdown t1-1-answer
`
Enter your answer here
`

@@ markdown t1-1-comments-title
#### ${\color{red}{Comments\ 1.1}}$

@@ markdown t1-1-comments-begin
${\color{red}{⚠️Comments\ begin⚠️}}$

@@ markdown t1-1-comments-box
```
cross-feedback comment section
```

@@ markdown t1-1-comments-end
${\color{red}{⚠️Comments\ end⚠️}}$

@@ markdown t1-2-question
### Subtask 2: Averaging


Instead of focusing on just one value vector $v_j$, the Transformer model can incorporate information from multiple inputs. Consider the situation where we want to incorporate information from two value vectors $v_b$ and $v_c$ with keys $k_b$ and $k_c$. In machine learning one of the ways to combine this information is through averaging of vectors $o= \frac{1}{2}(v_b+v_c)$.  It might seem hard to extract information about the original vectors $v_b$ and $v_c$ from the resulting average. But under certain conditions, one can do so. In this subtask, we look at the following cases:

1. Suppose we know the following:


* $v_b$ lies in a subspace $B$ formed by the $m$ basis vectors $\{b_1, b_2, .. , b_m\}$, while $v_c$ lies in a subspace $C$ formed by the $p$ basis vectors $\{c_1, c_2, . . . , c_p\}$ (This means that any $v_b$ and $v_c$ can be expressed as a linear combination of their basis vectors).
*   All basis vectors have the norm 1 and are orthogonal to each other.
*   The two subspaces $B$ and $C$ are orthogonal, meaning $b_j^Tc_k=0$ for all $j$ and $k$.
* Given that $\{b_1, b_2, .. , b_m\}$ are both orthogonal and form a basis for $v_b$, we know that there exists some $d_1, ..., d_m$ such that $v_b=d_1 b_1+d_2 b_2+...+d_m b_m$. Use these $d\text{s}$ to solve this task.

Using the basis vectors $\{b_1, b_2, .. , b_m\}$, construct a matrix $M$ such that for arbitrary vectors $v_b$ and $v_c$ with the given conditions, we can use $M$ to extract $v_b$ from the sum of the vector $s = v_b + v_c$. In other words, construct an $M$ such that  $ Ms = v_b$ holds.


2. If we assume that
* all key vectors are orthogonal, i.e., $k_i^Tk_j=0$ for all $i \neq j$, and
* all key vectors have the norm 1.

Find an expression for the query vector $q$ such that $o \approx \frac{1}{2}(v_b+v_c)$. Justify your answer.

**Hint:** Use your finding in subtask 1 to solve part 2.

**Hint:** If the norm of a vector $x$ is 1, then $x^Tx=1$

**Hint:** Start with writing $v_b$ and $v_c$ as the linear combination of the bases.

@@ markdown t1-2-answer-label
**Answer**

@@ markdown t1-2-answer
`
Enter your answer here
`

@@ markdown t1-2-comments-title
#### ${\color{red}{Comments\ 1.2}}$

@@ markdown t1-2-comments-begin
${\color{red}{⚠️Comments\ begin⚠️}}$

@@ markdown t1-2-comments-box
```
cross-feedback comment section
```

@@ markdown t1-2-comments-end
${\color{red}{⚠️Comments\ end⚠️}}$

@@ markdown t1-3-question
### Subtask 3: Drawbacks of Single-head Attention

You might have wondered why we need multi-heads for attention. In this subtask, we look at some of the drawbacks of having a single head attention. As shown in the previous subtask, it is possible for single head attention to focus equally on two values. The same can apply to any subset of values, which therefor can become problematic.

Consider a set of key vectors $\{ k_1,k_2,...,k_n \}$, randomly sampled from a normal distribution with a known mean value of $\mu_i \in R^d$ and unknown covariance $Σ_i, i \in \{1, \ldots, n\}$, where


*   $\mu_i\text{s}$ are all orthogonal $\mu_i^T\mu_j=0$ if $i \neq j$.
*   $\mu_i\text{s}$ all have unit norm $||\mu_i||=1$.

1. For a vanishingly small $\alpha$ (not to be confused with attention weights), the covariance matrices are  $Σ_i=\alpha I, \forall i  \in \{1,2,..,n\}$, design a query $q$ in terms of the $\mu_i$ such that as before, $o= \frac{1}{2}(v_b+v_c)$ and describe why it works.

2.  Large perturbations in key value might cause problems for single head attention.  Specifically, in some cases, one key vector $k_b$ may be larger or smaller in norm than the others, while still pointing in the same direction as $\mu_b$. As an example of such a case,
consider a covariance matrix for item $b$ for vanishingly small $\alpha$ as $Σ_b=\alpha I + \frac{1}{2}(\mu_b^T\mu_b)$. This causes $k_a$ to point to roughly the same direction as $\mu_b$ but with large differences in magnitude, while for other items. Further, let $Σ_i=\alpha I\  \forall_i i \neq b$. When you sample multiple keys from the distribution $\{ k_1,k_2,...,k_n \}$ and use the $q$ vector from the pervious part, what do you expect vector $o$ to look like? Explain why this shows the drawback of single-head attention.

**Hint:**
Think about how it differs from pervious part and how $o$'s variance would be affected by the change in $Σ_b$.

**Hint:** Considering that $\mu_b^T\mu_b=1$, think of what are the ranges $Σ_b$ can take and how does that effect a sampled $k_b$ value.

**Hint:** $\frac{exp(b)}{exp(b)+exp(c)}=\frac{exp(b)}{exp(b)+exp(c)}\frac{exp(-b)}{exp(-b)}= \frac{1}{1+exp(c-b)}$

@@ markdown t1-3-answer-label
**Answer:**

@@ markdown t1-3-answer
`
Enter your answer here
`

@@ markdown t1-3-comments-title
#### ${\color{red}{Comments\ 1.3}}$

@@ markdown t1-3-comments-begin
${\color{red}{⚠️Comments\ begin⚠️}}$

@@ markdown t1-3-comments-box
```
cross-feedback comment section
```

@@ markdown t1-3-comments-end
${\color{red}{⚠️Comments\ end⚠️}}$

@@ markdown t1-4-question
### Subtask 4: Model Size
1. Imagine you have an input sequence of  $l$ tokens, how much memory is required and what time complexity do we have for a single self-attention layer? (give your answer in terms of $l$)
2. If you have $N$ layers of self-attention, how  would the memory requirements and the time complexity change? (give your answer in terms of $l$ and $N$)
3. If you have $l=10,000$ and $10$ layers, with the ability to perform $10M$ operations per second, how long would it take to compute the attention output?

@@ markdown t1-4-answer-label
**Answer**

@@ markdown t1-4-answer
`
Enter your answer here
`

@@ markdown t1-4-comments-title
#### ${\color{red}{Comments\ 1.4}}$

@@ markdown t1-4-comments-begin
${\color{red}{⚠️Comments\ begin⚠️}}$

@@ markdown t1-4-comments-box
```
cross-feedback comment section
```

@@ markdown t1-4-comments-end
${\color{red}{⚠️Comments\ end⚠️}}$

@@ markdown t2-intro
## **Task 2: Multiple Choice Question Answering** (4 + 3 + 5 + 2 = 14 points)

In this task, you will fine-tune a transformer model on a multiple-choice task, which is the task of selecting the most plausible inputs in a given selection. The dataset used here is [SWAG](https://www.aclweb.org/anthology/D18-1009/), which is available via the Hugging Face [hub](https://huggingface.co/datasets/swag). Check the link for an overview of the dataset. SWAG is a dataset about commonsense reasoning, where each example describes a situation and then proposes four options that could apply for it.
Let's start by installing the necessary packages.

@@ code t2-pip-install
%pip install transformers
%pip install datasets
%pip install evaluate
%pip install accelerate -U
%pip install sentencepiece

@@ markdown t2-intro-model
In this task, you will use a BERT model with a `MultipleChoice` head from the Hugging Face library and then create your custom model.   Recall from the class that the BERT model has an auxiliary next sentence prediction task, in which two sentences are given to BERT separated by a `[SEP]` token and a classifier head decides if the second sentence logically follows the first one. Hugging Face has
 a `*ForMultipleChoice` architecture that uses the representation of the `[CLS]` token and a linear layer to classify if one sentence follows the other. We first start with this default architecture and then build a more complicated one in a later subtask.

@@ markdown t2-1-intro
### Subtask 1: Loading and Processing the Data

We use the `dataset` library to download the SWAG dataset, which already contains train, validation, and test splits.

@@ code t2-1-load-swag
import os
os.environ['CUDA_LAUNCH_BLOCKING'] = "1"
from datasets import load_dataset, load_metric
datasets = load_dataset("swag", "regular")
datasets

@@ markdown t2-1-first-item-text
Lets look at the first item to see how the data looks like:

@@ code t2-1-first-item
datasets["train"][0]

@@ markdown t2-1-fields-question
**Question:**
Look at the dataset card on the Hugging Face hub and define what each of these fields means, with respect to the task:

*   `sent1`:
*   `sent2`:
*    `ending0`, `ending1`, `ending2` and `ending3`:
*   `label`:

@@ markdown t2-1-answer-label
**Answer**

@@ markdown t2-1-answer
`
Enter your answer here
`

@@ markdown t2-1-explain-text
Write a function that displays the context and each of the four choices, following the format


```
Context:...
A-
B-
C-
D-
Ground truth: option ...
```

How you display the results is not important. You should be able to extract different parts of the data correctly and know what each field represents.

@@ code t2-1-explain-example
def explain_example(examples):
  ### your code ###

  ### your code ###

@@ code t2-1-explain-example-call
explain_example(datasets["train"][0])

@@ markdown t2-1-tokenizer-text
Before feeding the data into the model, we need to preprocess the text using `Tokenizer` to tokenize the inputs into tokens and put it in a format that the model expects. The tokenizer specific to the model we want to use for this task is `distilbert-base-uncased`. Complete the code below to load a fast tokenizer for this model. DistilBERT is similar to the BERT model, and we only use this particular architecture for faster training.

@@ code t2-1-tokenizer
from transformers import AutoTokenizer

###your code###
tokenizer =
###your code###

@@ code t2-1-tokenizer-call
tokenizer("This is the first sentence!", "And this is the second one.")

@@ markdown t2-1-preprocess-text
Write a function that preprocesses the samples.
The tricky part is to put all the possible pairs of sentences in two big lists before passing them to the tokenizer.
Each **first** sentence has to be repeated 4 times to go with different ending options.
There should be a separator token between the first and second sentence, to follow the BERT input logic.
The final output is a list of 4 elements, one for each choice, where the input is transformed by the tokenizer.
For example, with a list of 2 training examples, the output includes 2 lists, where each contains 4 elements. Each of those elements is the converted input ID of the first sentence followed by the second sentence with different endings.
When calling the `tokenizer`, we use the argument `truncation=True`. This will ensure that an input longer than what the model selected can handle will be truncated to the maximum length accepted by the model.

**Hint:** Flatten the lists (all choices are flattened into a single list) before feeding them into the tokenizer and unflatten them once again for the final output.

@@ code t2-1-preprocess
### your code ###
ending_names =
### your code ###
def preprocess_function(examples):
  ### your code ###
    # repeat each first sentence four times
    first_sentences =
    # second sentences possible are combination of header and ending
    question_headers =
    second_sentences =

    # flatten everything


    # tokenize

    # un-flatten


    return
    ### your code ###

@@ code t2-1-preprocess-check
examples = datasets["train"][:2]
features = preprocess_function(examples)
print(len(features["input_ids"]), len(features["input_ids"][0]), [len(x) for x in features["input_ids"][0]])# output should be 2 4 [30, 25, 30, 28]

@@ markdown t2-1-map-text
We can now apply our function to all the examples in the dataset. We use the `map` method to apply the function on all the elements of all the splits in the dataset (training, validation, and testing).
Note that we passed `batched=True` to leverage the fast tokenizer and use multi-threading to process the texts in batches concurrently.

@@ code t2-1-map
encoded_datasets = datasets.map(preprocess_function, batched=True)

@@ markdown t2-1-collator-text
Our dataset is still not converted to tensors and not padded. This is the job of the `data collator`. A data collator takes a list of examples and converts them to a batch.
There is no data collator in the Hugging Face default library that works on our specific problem. We thus need to write our own one. In this collator:

*  All the inputs/attention masks are flattened.
* A flattened list is passed to the `tokenizer.pad ` method to apply dynamic padding to pad inputs to the maximum length in the batch. Output will be the size of `(batch_size * 4) x seq_length`.
* Everything needs to be unflattened for the output of the data collator.
* `input_ids` and `labels` should be returned as tensors.
* The output is a dictionary called `batch` that contains features needed for training (`input_ids`, `attention_mask`, `label`).

@@ code t2-1-collator
from dataclasses import dataclass
from transformers.tokenization_utils_base import PreTrainedTokenizerBase, PaddingStrategy
from typing import Optional, Union
import torch

@dataclass
class MultipleChoiceDataCollator:
    tokenizer: PreTrainedTokenizerBase
    padding: Union[bool, str, PaddingStrategy] = True
    max_length: Optional[int] = None
    pad_to_multiple_of: Optional[int] = None

    def __call__(self, features):
        accepted_keys = ["input_ids", "attention_mask", "label"]
        if len(features[0])>len(accepted_keys):
          features=[{k: v for k, v in i.items() if k in accepted_keys} for i in features]
      ### your code ###

        labels =
        # flatten
        flattened_features =

        # use the tokenizer and attributes from the class to pad the input
        batch = self.tokenizer...


        # un-flatten


        ### your code ###
        return batch

@@ code t2-1-collator-check
accepted_keys = ["input_ids", "attention_mask", "label"]
features = [{k: v for k, v in encoded_datasets["train"][i].items() if k in accepted_keys} for i in range(2)]
batch=MultipleChoiceDataCollator(tokenizer)(features)
print(batch["input_ids"].shape)
print(batch["attention_mask"].shape)
print(batch["labels"].shape)

@@ code t2-1-collator-decode
for i in range(4):
  print(batch["input_ids"][0][i])
  print(tokenizer.decode(batch["input_ids"][0][i]))

@@ markdown t2-1-comments-title
#### ${\color{red}{Comments\ 2.1}}$

@@ markdown t2-1-comments-begin
${\color{red}{⚠️Comments\ begin⚠️}}$

@@ markdown t2-1-comments-box
```
cross-feedback comment section
```

@@ markdown t2-1-comments-end
${\color{red}{⚠️Comments\ end⚠️}}$

@@ markdown t2-2-intro
### Subtask 2: Fine-tuning a Hugging Face Model

To fine-tune our model, we first need to download the correct architecture from Hugging Face. Import the correct class for this task and download the pre-trained checkpoint for the base class from `distilbert-base-uncased`. Note that the weights in the classification head are initialized at random.

@@ code t2-2-model
### your code ###
from transformers import ...
model_hf =

### your code ###

@@ markdown t2-2-training-args-text
Next, we need to define our `Trainer` and pass in the correct `TrainingArguments` (a class that contains all the attributes to customize the training). Define a `TrainingArguments` that


* creates an output directory `distilbert-base-uncased-swag` to save the checkpoints and logs.
*   evaluates the model on the validation set after the `300` steps.
* a checkpoint should be saved after each `600` step and no more than 2 checkpoints should be saved in total.
* the random seed for training is `77`.
* batch size for training and evaluation: `48` (if you are running out of memory, feel free to change this setting but indicate it as a comment in your notebook, on a T4 GPU from google colab this takes about `13.2GB` of `15.0GB`).
* train for `1800` steps with a learning rate of `5e-5`, and add weight decay of `0.01` to the optimizer.
* the trainer should remove the columns from the data that are not used by the model.
* The final checkpoint should be the checkpoint that had the best overall validation metric not necessarily the last checkpoint.

**Note:** Please use GPU for to train your model. If on colab, you can use T4 GPU for free.

@@ code t2-2-training-args
from transformers import TrainingArguments, Trainer
training_args =
    ### your code ###


    ### your code ###

@@ markdown t2-2-metrics-text
Before we initialize the `Trainer`, we create a function that tells the trainer how to compute the metrics from the predictions. Fill the `compute_metrics` function to compute the accuracy based on the `predictions`. This object contains the prediction of the model, as well as the ground truth labels.

**Hint 1:** Keep in mind that the output of this function should be a dictionary containing the metric name and value.

**Hint 2:** Consider the shape of the example input. This is similar to the logits produced by the model.

@@ code t2-2-compute-metrics
import numpy as np
def compute_metrics(predictions):
  ### your code ###
   preds, label_ids =

   return_dict=
  ### your code ###
    return return_dict

@@ code t2-2-compute-metrics-check
preds=np.array([[0.9,0.2,0,0],
                [0.2,0.2,0.9,0.1],
                [0.2,0.9,0,0],
                [0.2,0.1,0.8,0],
                [0.9,0.1,0.8,0],
                [0.2,1,0.4,0],
                [0.2,1,0.4,0.9],
                [1,0.1,0.4,0.3],
                [0.1,0.1,0.9,0.3],
                [0.1,0.1,0.2,1]])
label_ids=np.array([0,3,1,2,0,1,3,0,2,3])
compute_metrics((preds,label_ids))

@@ markdown t2-2-trainer-text
Now it's time to pass everything to a `Trainer` object to start the training process. Initialize a `Trainer` object and pass all the necessary information, keep in mind that we also have the optional metric computation and that we tend to run an evaluation on the validation set during training. The training should take around 30 min on Google Colab T4 GPU.

@@ code t2-2-device
device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
device

@@ code t2-2-trainer
### your code ###
trainer =
### your code ###

@@ code t2-2-train
trainer.train()# should take around 30 min on Google Colab T4 GPU

@@ markdown t2-2-save-text
Save the model in `distilbert-base-uncased-swag/final_model`.

@@ code t2-2-save
### your code ###

### your code ###

@@ markdown t2-2-files-question
Look at the saved files and answer the following questions (it is possible to answer these questions by writing some code, but we want you to explore the saved files):

**Question:**


1.   What is the vocabulary id for the `[CLS]` and `[MASK]` tokens?
2.   What is the dropout probability for the attention layer?

**Dropout:** With dropout, certain nodes are set to the value zero in a training run, i.e. removed from the network. Thus, they have no influence on the prediction and also in the backpropagation. Thus, a new, slightly modified network architecture is built in each run and the network learns to produce good predictions without certain inputs. Read more [here](https://databasecamp.de/en/ml/dropout-layer-en).

@@ markdown t2-2-answer-label
**Answer**

@@ markdown t2-2-answer
`
Enter your answer here
`

@@ markdown t2-2-comments-title
#### ${\color{red}{Comments\ 2.2}}$

@@ markdown t2-2-comments-begin
${\color{red}{⚠️Comments\ begin⚠️}}$

@@ markdown t2-2-comments-box
```
cross-feedback comment section
```

@@ markdown t2-2-comments-end
${\color{red}{⚠️Comments\ end⚠️}}$

@@ markdown t2-3-intro
### Subtask 3: Fine-tune a Custom Model


In this case, we were lucky that Hugging Face had a pre-implemented architecture available for us to use. However, that is not always the case. Moreover, we might want to experiment beyond the default architectures to find a suitable one for a task. Therefore, it is important to learn to extend the Hugging Face models and train a custom model. The good news is that except for the model architecture the rest of the code can remain as it is.

Design a model for multiple choice model as follows:


1.   the config file for a feature extractor (must be a distilbert type) is  passed during initialization. The config file determines which model is used for feature extraction.
2.   From the `last_hidden_state` of the feature extractor, choose the `[CLS]` embedding (first one). This embedding is used as the compressed representation of first and second sentences. During pre-training it is used  for classifying whether these two sentences follow one another, making it a good candidate for our task.
3. `[CLS]` embedding is passed through a linear layer **that does not change the size of the embedding** and is passed through a tanh nonlinearity.
4. The output of tanh is passed through a dropout layer, where the dropout probability is the same as the dropout probability used for the `distilbert` model used as feature extractor.
5. The output of the previous stage is fed into another linear layer that shrinks the size of the embedding dimension to a quarter of the original size, e.g., if the embedding size is 12, the new embedding dimension is 3.
6. The output is followed by another dropout layer (you can use the one from stage 4).
7. Finally, a binary classifier is applied to determine the probability of sentence 1 being followed by sentence 2.
8. the cross-entropy loss is used to compute the loss.

**Hint:** Keep in mind that for a 4 choice system, you classify each of the four solutions independently. However, the final output should group the four logits together. For example, if input ids have the shape `[2, 4, 35]` (batch size=2, num choices=4, seq len=35), then the logits have the `[2, 4]` and labels have the dimension `[2, 1]`.

@@ code t2-3-custom-model
from transformers import DistilBertModel,BertConfig,DistilBertConfig,PretrainedConfig,PreTrainedModel,DistilBertPreTrainedModel
from torch import nn

class CustomMultipleChoice(DistilBertPreTrainedModel):
    def __init__(self, config: PretrainedConfig):
        super().__init__(config)
        ###your code ###
        self.distilbert =
        self.dense =
        self.activation =
        self.dropout =
        self.dense2 =
        self.classifier =
        ###your code ###


    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
    ):
        """
        input_ids: input sentences converted to ids
        attention_mask: the attention mask
        labels:  Labels for computing the multiple choice classification loss. Indices should be in `[0, ...,num_choices-1]` where `num_choices` is the size of the second dimension of the input tensors.
        """

        num_choices = input_ids.shape[1]

        ###your code ###
        input_ids =
        attention_mask =



        loss = None
        if labels is not None:

        ###your code ###
        return {"loss":loss,"logits":reshaped_logits}

@@ markdown t2-3-init-text
Initialize the feature extractor with `distilbert-base-uncased` and create your custome model.

@@ code t2-3-init
from transformers import AutoConfig
###your code ###
config=
model_custom =
###your code ###

@@ code t2-3-head-params
for name, param in model_custom.named_parameters():
    if param.requires_grad and not name.startswith("distilbert."):
        print(name, param.data.shape)

@@ markdown t2-3-training-args-text
We keep the same training arguments but change the directory in which we save the model logs, the directory in which we save the model output and the name of the run, to `custom_model`.

@@ code t2-3-training-args
###your code ###


###your code ###

@@ markdown t2-3-trainer-text
Initialize the trainer for training the custom model.The training should take around 30 min on Google Colab T4 GPU.

@@ code t2-3-trainer
trainer =
###your code ###

###your code ###

@@ code t2-3-train
trainer.train()# should take around 30 min on Colab T4 GPU

@@ markdown t2-3-save-text
Save the model in `custom_model/final_model`. Note that with the custom model, you need to save it without the help of the trainer. The trainer would save the configuration but since this model is not a registered Hugging Face model only the base model would be saved. Loading the model weights is also effected by this.

@@ code t2-3-save
###your code ###

###your code ###

@@ markdown t2-3-comments-title
#### ${\color{red}{Comments\ 2.3}}$

@@ markdown t2-3-comments-begin
${\color{red}{⚠️Comments\ begin⚠️}}$

@@ markdown t2-3-comments-box
```
cross-feedback comment section
```

@@ markdown t2-3-comments-end
${\color{red}{⚠️Comments\ end⚠️}}$

@@ markdown t2-4-intro
### Subtask 4: Evaluation and Model Comparison

Many times you do not perform the final evaluation right after training, but load the checkpoints and evaluate them on the fly. To this end, load the two models from  disk.

@@ code t2-4-load-models
from transformers import AutoModelForMultipleChoice,AutoConfig
### your code ###
model_hf =
model_custom =
### your code ###

@@ markdown t2-4-dataloader-text
To evaluate the data we load the validation split using a data loader and our previously defined data collator. Note that although we had a test split we cannot use it, since there are no labels available for this split (you can check the data to confirm this).

@@ code t2-4-dataloader
from torch.utils.data import DataLoader
import evaluate

eval_dataloader = DataLoader(encoded_datasets["validation"], batch_size=64, collate_fn=MultipleChoiceDataCollator(tokenizer))

@@ markdown t2-4-evaluate-text
To make things easier, let's use the `evaluate` library from Hugging Face to compute the accuracy metric. Here we load `accuracy` from the `evaluate` library two times, one for the custom model and one for the Hugging Face model. Further, we put the models on eval mode. Complete the code for evaluation using the capabilities of the `evaluate` library to simultaneously compute the metric for both models.

@@ code t2-4-evaluate
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

acc_hf=
acc_custom
  ### your code ###
print("Hugging Face Model :",acc_hf)
print("Custom Model :",acc_custom)

@@ markdown t2-4-comments-title
#### ${\color{red}{Comments\ 2.4}}$

@@ markdown t2-4-comments-begin
${\color{red}{⚠️Comments\ begin⚠️}}$

@@ markdown t2-4-comments-box
```
cross-feedback comment section
```

@@ markdown t2-4-comments-end
${\color{red}{⚠️Comments\ end⚠️}}$

@@ markdown t3-intro
## **Task 3: Encoder-Decoder Architecture** (5 + 2 + 2 + 5 = 14 points)

We explored an encoder-based model (BERT) in the previous exercise. In this task, we look at another family of transformer architectures, the encoder-decoder. We use the [T5](https://arxiv.org/pdf/1910.10683.pdf) model, presented by Raffel et al.  T5 is an encoder-decoder architecture pre-trained on a multi-task mixture of unsupervised and supervised tasks. In this task, we set up a fine-tuning example for question answering using the [SQUAD](https://huggingface.co/datasets/squad) dataset. Since the actual fine-tuning is time-consuming and computational intensive for inference, we use an already pre-trained model. The main goal is to introduce you to the structure of the fine-tuning and its simplicity with the Hugging Face framework.

To fine-tune the BERT-based models, we usually add a task-specific head. On the other hand, T5 converts all NLP problems into a text-to-text format.
It is trained using teacher forcing, meaning that we require an input sequence and a corresponding target sequence.


1.   The input sequence is fed to the model using `input_ids` from the tokenizer.
2.   The target sequence is shifted to the right, i.e., prepended by a start-sequence token and fed to the decoder using the `decoder_input_ids` (input_ids of the encoded target sequence). The target sequence is appended by EOS (end of the sentence) to denote the end of a generation and corresponds to the `labels`.
3. The task prefix defines what task is expected of T5. For example, we prepend the input sequence with `translate English to German: ` before encoding the input to tell the model to translate. T5 already has a set of pre-defined task prefixes, and it is best to stick to those since they were used during pre-training. With enough training data, you can also introduce your own custom task.


In contrast to the encoder model, where only a single `max_length` is required, for encoder-decoder architectures, one typically defines a `max_source_length` and `max_target_length`, which determine the maximum length of the input and output sequences, respectively. We must also ensure that the padding ID of the `labels` is not taken into account by the loss function. This can be done by replacing them with `-100`, which is the `ignore_index` of the `CrossEntropyLoss`.

@@ markdown t3-1-intro
### Subtask 1: Data Processing

We first start by loading the dataset from Hugging Face hub:

@@ code t3-1-load-squad
from datasets import load_dataset

datasets_squad = load_dataset("squad")
datasets_squad

@@ code t3-1-first-item
print("context ---->" ,datasets_squad["train"][0]["context"])
print("question ---->",datasets_squad["train"][0]["question"])
print("answers ---->",datasets_squad["train"][0]["answers"])

@@ markdown t3-1-tokenizer-text
Now let's load the needed pre-trained tokenizer for `t5-small`, which is the smallest T5 model. Set the maximum sequence length to `512`.

@@ code t3-1-tokenizer
import torch
### your code ###
t5_tokenizer =
### your code ###

@@ markdown t3-1-add-eos-text
The next step is to pre-process the dataset using the tokenizer to convert the sequences to IDs and add the special tokens.
T5 is based on the SentencePiece tokenizer, and the end of sentence token is denoted by `</s>`.
Complete the function `add_eos_to_examples` to format the input and target sequence. Your input as `input_text` should have the format `question:{question_text} context:{context_text} <EOS_Token>` and your target as `target_text` should have the format `{answer_text} <EOS_Token>`.

@@ code t3-1-add-eos
def add_eos_to_examples(example):
  ### your code ###

  ### your code ###
  return example

@@ markdown t3-1-map-eos-text
Use the `map` function to process the data, and do not set the `batched` argument.

@@ code t3-1-map-eos
### your code ###
encoded_squad =
### your code ###

@@ code t3-1-map-eos-check
print(encoded_squad["train"][0]["input_text"])
print(encoded_squad["train"][0]["target_text"])

@@ markdown t3-1-features-text
Complete the function `convert_to_features` that takes in the examples from the dataset and tokenizes them using the T5 tokenizer. However, our answers in this dataset are relatively short and do not require `512` tokens, in contrast to the input sequence which is a combination of question and context paragraphs and is usually long. To this end, we want to truncate the input sequence at `512` and the target sequence at `16`. If any input or target is smaller than the specified length, make sure you pad them. Finally, convert everything to PyTorch tensors to be easily used by the data collator and place them in the dictionary `encodings`.

@@ code t3-1-convert-to-features
def convert_to_features(example_batch):
  ### your code ###

  ### your code ###
  return encodings

@@ markdown t3-1-map-features-text
Use the `map` function to process the data.

@@ code t3-1-map-features
### your code ###
encoded_squad =
### your code ###

@@ code t3-1-map-features-check
encoded_squad #new columns are added

@@ markdown t3-1-format-text
Interestingly, although we specified PyTorch tensors as output, the type of the `input_ids` is still a list. To remedy this problem, you need to explicitly set the type of the column that contains PyTorch tensors.

@@ code t3-1-type-check
type(encoded_squad["train"][0]["input_ids"])

@@ code t3-1-set-format
### your code ###

### your code ###
type(encoded_squad["train"][0]["input_ids"])

@@ code t3-1-shape-check
print("Shape of the input_ids:",encoded_squad["train"][0]["input_ids"].shape)
print("Shape of the target_ids:",encoded_squad["train"][0]["target_ids"].shape)

@@ markdown t3-1-collator-text
The final step in the data processing is the creation of the data collator to
prepare `labels` from `target_ids` and return examples with keys as expected by the forward method of T5.
This is necessary because the trainer directly passes this dict as argument to the model so you need to check the input of T5 and rename the column based on that.
`input_ids`, `target_ids`, `attention_mask`, and `target_attention_mask` need to be stacked in a batch and the pad tokens in the target need to be set to `-100` to avoid loss computation.

@@ code t3-1-collator
from dataclasses import dataclass
from transformers import DataCollator
from transformers.tokenization_utils_base import PreTrainedTokenizerBase, PaddingStrategy
from typing import Optional, Union
@dataclass
class T2TDataCollator:
    tokenizer: PreTrainedTokenizerBase
    padding: Union[bool, str, PaddingStrategy] = True
    max_length: Optional[int] = None
    pad_to_multiple_of: Optional[int] = None

    def __call__(self, batch):
      ### your code ###

      ### your code ###

@@ code t3-1-collator-check
accepted_keys = ['input_text', 'target_text', 'input_ids', 'attention_mask', 'target_ids', 'target_attention_mask']
features = [{k: v for k, v in encoded_squad["train"][i].items() if k in accepted_keys} for i in range(2)]
batch=T2TDataCollator(t5_tokenizer)(features)
print(batch["input_ids"].shape)
print(batch["attention_mask"].shape)
print(batch["labels"].shape)

@@ markdown t3-1-comments-title
#### ${\color{red}{Comments\ 3.1}}$

@@ markdown t3-1-comments-begin
${\color{red}{⚠️Comments\ begin⚠️}}$

@@ markdown t3-1-comments-box
```
cross-feedback comment section
```

@@ markdown t3-1-comments-end
${\color{red}{⚠️Comments\ end⚠️}}$

@@ markdown t3-2-intro
### Subtask 2: Training

For training and inference, we can use `T5ForConditionalGeneration`, which includes the language modeling head on top of the decoder. Load the `t5-small` model.

@@ code t3-2-model
### your code ###
t5 =
### your code ###

@@ markdown t3-2-training-args-text
Next, similar to the previous task we initiate training arguments. Note that this time we are using a `Seq2SeqTrainingArguments` for a `Seq2SeqTrainer`. Set the parameters for training as follows:


*   T5 doesn't support GPU and TPU evaluation for now, so we only focus on training. You do not need to pass any parameters for evaluation setup.
*   The output directory should be named `t5-squad`.
* The T5 models need a slightly higher learning rate than the default one set in the `Trainer` when using the `AdamW` optimizer. Set the learning rate to `1e-4` and the regularization parameter to `0.01`.
* Random seed should be `77`, and we train for a maximum of `200` steps and save a checkpoint every `100` steps. A complete training of the T5 model requires far more than `200` steps, however, that is beyond the scope of this assignment.
* T5 models require a large batch size. The default model was trained with a batch size of `128`. However, we cannot fit that into a single GPU, therefore we use gradient accumulation. Set the batch size to `32` and choose the gradient accumulation step to reach the effective batch size of `128`.
* Make sure that your trainer does not remove unused columns during training, as this will cause a runtime error later on.


**Gradient accumulation:** is a technique that simulates a larger batch size by accumulating gradients from multiple small batches before performing a weight update.

@@ code t3-2-training-args
from transformers import Seq2SeqTrainingArguments

training_args = Seq2SeqTrainingArguments(
    ### your code ###

    ### your code ###
)

@@ markdown t3-2-trainer-text
Once again make sure that you are using GPU before running the cell below.
Initilize your `Seq2SeqTrainer` with inputs necessary for training. The training should take around 15 min on Google Colab T4 GPU.

@@ code t3-2-trainer
# Initialize our Trainer
### your code ###
trainer =
### your code ###

@@ code t3-2-train
trainer.train()

@@ markdown t3-2-comments-title
#### ${\color{red}{Comments\ 3.2}}$

@@ markdown t3-2-comments-begin
${\color{red}{⚠️Comments\ begin⚠️}}$

@@ markdown t3-2-comments-box
```
cross-feedback comment section
```

@@ markdown t3-2-comments-end
${\color{red}{⚠️Comments\ end⚠️}}$

@@ markdown t3-3-intro
### Subtask 3: Inference

Our trained model has seen far too few instances to make a coherent prediction. To this end, we load an already trained checkpoint from Hugging Face and perform inference. Load this [model](https://huggingface.co/mrm8488/t5-base-finetuned-squadv2) and the respective tokenizer. Note that we are loading a `base` model that is slightly larger than `t5-small`.

@@ code t3-3-load-model
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
### your code ###
t5_tokenizer =
t5_model =
### your code ###

@@ markdown t3-3-get-answer-text
At inference time for T5, it is recommended to use the `generate()` function. This auto-regressively generates the decoder output. Complete the code for the `get_answer` function, which gives a model, a tokenizer, and a question and context pair, and generates the answer from the context given. The output should be the answer to the given question in natural text (without the special tokens).

**Hint:** Many of the steps are similar to how you prepared your input data for the model.

@@ code t3-3-get-answer
def get_answer(tokenizer, model, question, context):
  ### your code ###

  ### your code ###
  return answer

@@ markdown t3-3-example-text
Let's try it with an example.

@@ code t3-3-example-1
context = "Sarah has joined NLP for transformers class and is working on her research project with the support of Harry."
question = "Who is supporting Sarah?"

get_answer(t5_tokenizer,t5_model,question, context)###your answer should be "Harry"

@@ code t3-3-example-2
context = "TPUs are more power efficient in comparison to GPUs making them a better choice for machine learning projects."
question = "What is better for machine learning projects?"

get_answer(t5_tokenizer,t5_model,question, context)###your answer should be "TPUs"

@@ markdown t3-3-comments-title
#### ${\color{red}{Comments\ 3.3}}$

@@ markdown t3-3-comments-begin
${\color{red}{⚠️Comments\ begin⚠️}}$

@@ markdown t3-3-comments-box
```
cross-feedback comment section
```

@@ markdown t3-3-comments-end
${\color{red}{⚠️Comments\ end⚠️}}$

@@ markdown t3-4-questions
### Subtask 4: T5 Paper

To answer questions of the final subtask you need to have a general overview of the [T5 paper](https://arxiv.org/pdf/1910.10683.pdf).



1.   Describe what a “text-to-text format" is and how T5 processes input and output for text classification tasks? What are the possible complications with a predefined set of classes?
2.   Describe the "masked language modeling" and "word dropout" unsupervised objective with sentinel tokens. Give an example of how this would look in a single sentence.
3. Explain "fully-visible", "causal" and "causal masking with prefix" masking.
4. Briefly describe "adapter layers" and "gradual unfreezing" as methods for fine-tuning on fewer parameters.

@@ markdown t3-4-answer-label
**Answer**

@@ markdown t3-4-answer
`
Enter your answer here
`

@@ markdown t3-4-comments-title
#### ${\color{red}{Comments\ 3.4}}$

@@ markdown t3-4-comments-begin
${\color{red}{⚠️Comments\ begin⚠️}}$

@@ markdown t3-4-comments-box
```
cross-feedback comment section
```

@@ markdown t3-4-comments-end
${\color{red}{⚠️Comments\ end⚠️}}$
'''

# --- the seed student's cells that differ from the template (same ids; new ids are inserted
# after the cell before them) -----------------------------------------------------------------

SEED_STUDENT = r'''
@@ markdown t1-1-answer
1. $a$ can be interpreted as a categorical distribution because it is a probability distribution over the set of keys $\{k_1, k_2, ..., k_i\}$, where each $a_i$ is the probability of selecting the corresponding key $k_i$ for the given query $q$.

2. A scenario in which the categorical distribution puts all the weight on a single element $a_j \gg \Sigma_{j\neq i}a_i$ is when the query $q$ is very similar to the key $k_j$ and dissimilar to all other keys. In other words, when the dot product $q^Tk_j$ is much larger than the dot products between $q$ and all other keys $k_i$ for $i \neq j$. This means that the query is highly correlated with a specific key and not with others.

3. In the case of a single large $a$, the output $c$ would be equal to the value vector $v_j$ corresponding to the key $k_j$ with the highest attention weight $a_j$. This means that the query $q$ is highly correlated with the key $k_j$ and the output $c$ is a copy of the corresponding value vector $v_j$. Intuitively, this means that the query is focused on a specific aspect of the input sequence represented by the key $k_j$.

It is easy to copy a value vector $v_i$ to the output $o$ by setting the corresponding attention weight $a_i$ to 1 and all other weights to 0. This is because the output $o$ is a weighted sum of the value vectors $v_i$ with weights $a_i$, and setting $a_i$ to 1 and all other weights to 0 results in a copy of the corresponding value vector $v_i$.

@@ markdown t1-2-answer
1. To construct the matrix $M$, we can use the fact that the dot product of any basis vector in $B$ with any vector in $C$ is zero, due to the orthogonality of the subspaces. This means that for any $i$ and $j$, we have $b_i^T(v_b + v_c) = b_i^Tv_b + b_i^Tv_c = b_i^Tv_b$. Therefore, if we stack the basis vectors of $B$ as rows of a matrix, we get $M = \begin{bmatrix} b_1^T \\ b_2^T \\ \vdots \\ b_m^T \end{bmatrix}$, and we can verify that $Ms = v_b$, since $Ms = \begin{bmatrix} b_1^T \\ b_2^T \\ \vdots \\ b_m^T \end{bmatrix} (v_b + v_c) = \begin{bmatrix} b_1^Tv_b \\ b_2^Tv_b \\ \vdots \\ b_m^Tv_b \end{bmatrix} = \begin{bmatrix} d_1 \\ d_2 \\ \vdots \\ d_m \end{bmatrix} \begin{bmatrix} b_1 \\ b_2 \\ \vdots \\ b_m \end{bmatrix} = v_b$.

2. To find the query vector $q$, we can use the fact that the attention mechanism computes the weighted average of the value vectors, where the weights are given by the softmax of the dot products of the query vector with the key vectors. In other words, $o = \frac{\exp(q^Tk_b)v_b + \exp(q^Tk_c)v_c}{\exp(q^Tk_b) + \exp(q^Tk_c)}$. To make this expression close to $\frac{1}{2}(v_b + v_c)$, we want the weights to be close to $\frac{1}{2}$. This means that we want the dot products of $q$ with $k_b$ and $k_c$ to be close to each other. One possible way to achieve this is to choose $q$ such that it is orthogonal to both $k_b$ and $k_c$. This way, $q^Tk_b = q^Tk_c = 0$, and the weights are equal to $\frac{1}{2}$. Therefore, one possible expression for $q$ is $q = k_b \times k_c$, where $\times$ denotes the cross product. This vector is orthogonal to both $k_b$ and $k_c$, and has norm 1, since the key vectors have norm 1 and are orthogonal. Thus, $q = k_b \times k_c$ satisfies the conditions and gives $o \approx \frac{1}{2}(v_b + v_c)$.

@@ markdown t1-3-answer
1. To design the query $q$, we can use the same idea as in the previous subtask, where we chose $q$ to be orthogonal to both $k_b$ and $k_c$. This way, the dot products of $q$ with $k_b$ and $k_c$ are both zero, and the weights are both $\frac{1}{2}$. Since the key vectors are randomly sampled from a normal distribution with mean $\mu_i$, we can approximate the dot products of $q$ with $k_i$ by the dot products of $q$ with $\mu_i$. Therefore, we can choose $q$ to be orthogonal to both $\mu_b$ and $\mu_c$. One possible way to do this is to choose $q = \mu_b \times \mu_c$, where $\times$ denotes the cross product. This vector is orthogonal to both $\mu_b$ and $\mu_c$, and has norm 1, since the mean vectors have norm 1 and are orthogonal. Thus, $q = \mu_b \times \mu_c$ satisfies the conditions and gives $o \approx \frac{1}{2}(v_b + v_c)$.

2. If one key vector $k_b$ has a larger or smaller norm than the others, while still pointing in the same direction as $\mu_b$, then the dot product of $q$ with $k_b$ will not be zero anymore. Instead, it will be proportional to the norm of $k_b$. This means that the weight for $v_b$ will be larger or smaller than $\frac{1}{2}$, depending on the sign of the dot product. This will affect the output vector $o$, making it closer or farther from $v_b$. For example, if $k_b$ has a larger norm than the others, then $q^Tk_b > 0$, and the weight for $v_b$ will be larger than $\frac{1}{2}$. This will make $o$ closer to $v_b$ than to $v_c$. This shows the drawback of single-head attention, because it cannot handle the variability in the key vectors' norms. It will either over- or under-attend to some values, depending on the random sampling. Multi-head attention can overcome this problem by learning different query vectors for different attention heads, and combining them in a more robust way.

```

@@ markdown t1-4-answer
1. A single self-attention layer requires $O(l^2d)$ memory and time complexity, where $d$ is the dimension of the vector representations. This is because the self-attention layer computes the query, key, and value matrices, each of which has shape $(l,d)$, and then computes the dot product of the query and key matrices, which has shape $(l,l)$.
2. If you have $N$ layers of self-attention, the memory and time complexity will be multiplied by $N$, since each layer performs the same computation. Therefore, the memory and time complexity will be $O(Nl^2d)$ for $N$ layers of self-attention.
3. If you have $l=10,000$ and $10$ layers, the number of operations required to compute the attention output will be $10 \times 10,000^2 \times d$, where $d$ is the dimension of the vector representations. Assuming $d=512$, which is a common choice for transformer models, the number of operations will be $512 \times 10^{11}$. If you can perform $10M$ operations per second, it will take $\frac{512 \times 10^{11}}{10 \times 10^6} = 5.12 \times 10^5$ seconds, which is about $5.9$ days, to compute the attention output. This shows that the self-attention mechanism is very expensive for long sequences, and motivates the need for more efficient alternatives.

@@ markdown t2-1-answer
`
*   `sent1`: these fields show how a sentence starts, and if you put the two together, you get the startphrase field.
*   `sent2`:these fields show how a sentence starts, and if you put the two together, you get the startphrase field.
*    `ending0`, `ending1`, `ending2` and `ending3`: suggests a possible ending for how a sentence can end, but only one of them is correct.
*   `label`: identifies the correct sentence ending.
`

@@ code t2-1-explain-example
def explain_example(examples):
  ### your code ###
    startphrase = examples["startphrase"]
    ground_truth = "ending" + str(examples["label"])

    return examples["ending0"],examples["ending1"],examples["ending2"],examples["ending3"], examples[ground_truth]
  ### your code ###

@@ code t3-1-tokenizer
import torch
### your code ###
from transformers import T5Tokenizer
t5_tokenizer = T5Tokenizer.from_pretrained("t5-small", max_len=512)
### your code ###

@@ code t3-1-add-eos
def add_eos_to_examples(example, tokenizer):
    # Format input sequence
    example['input_text'] = f"question:{example['question']} context:{example['context']} </s>"

    # Format target sequence
    example['target_text'] = f"{example['answers']['text'][0]} </s>"

    # Tokenize input and target sequences
    example['input_ids'] = tokenizer.encode(example['input_text'], return_tensors="pt")
    example['target_ids'] = tokenizer.encode(example['target_text'], return_tensors="pt")

    return example

@@ code t3-1-map-eos
### your code ###
encoded_squad = datasets_squad.map(lambda example: add_eos_to_examples(example, t5_tokenizer))
### your code ###

@@ code t3-1-convert-to-features
import torch

def convert_to_features(examples):
    # Concatenate question and context, and truncate to 512 tokens
    input_text = f"question: {examples['question']} context: {examples['context']}"
    input_encodings = t5_tokenizer(
        input_text,
        truncation=True,
        padding='max_length',
        max_length=512,
        return_tensors='pt'
    )

    # Extract answer text and truncate to 16 tokens
    target_text = examples['answers']['text'][0]
    target_encodings = t5_tokenizer(
        target_text,
        truncation=True,
        padding='max_length',
        max_length=16,
        return_tensors='pt'
    )

    # Create the 'encodings' dictionary
    encodings = {
        'input_ids': input_encodings['input_ids'].squeeze(),  # Remove batch dimension
        'attention_mask': input_encodings['attention_mask'].squeeze(),
        'target_ids': target_encodings['input_ids'].squeeze(),  # Remove batch dimension
    }

    return encodings

@@ code t3-1-map-features
### your code ###
encoded_squad = datasets_squad.map(convert_to_features)
### your code ###

@@ code t3-1-set-format
### your code ###
encoded_squad.set_format(type='torch', columns=['input_ids', 'attention_mask', 'target_ids'])
### your code ###
type(encoded_squad["train"][0]["input_ids"])

@@ code t3-1-collator
from dataclasses import dataclass
from transformers import DataCollator
from transformers.tokenization_utils_base import PreTrainedTokenizerBase, PaddingStrategy
from typing import Optional, Union
@dataclass
class T2TDataCollator:
    tokenizer: PreTrainedTokenizerBase
    padding: Union[bool, str, PaddingStrategy] = True
    max_length: Optional[int] = None
    pad_to_multiple_of: Optional[int] = None

    def __call__(self, batch):
        # Pad sequences to the specified max length
        batch = self.tokenizer.pad(
            batch,
            padding=self.padding,
            max_length=self.max_length,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_tensors="pt",
        )

        # Set pad tokens in target to -100
        batch["labels"] = batch["target_ids"].clone()
        batch["labels"][batch["labels"] == self.tokenizer.pad_token_id] = -100

        # Prepare feature dictionary for the forward method of T5
        feature_dict = {
            "input_ids": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
            "labels": batch["labels"],
        }

        return feature_dict

@@ code t3-2-model
### your code ###
from transformers import T5ForConditionalGeneration, T5Tokenizer
t5 = T5ForConditionalGeneration.from_pretrained("t5-small")
### your code ###

@@ code t3-2-training-args
from transformers import Seq2SeqTrainingArguments

training_args = Seq2SeqTrainingArguments(
    output_dir="t5-squad",
    per_device_train_batch_size=32,
    gradient_accumulation_steps=4,  # Effective batch size = per_device_train_batch_size * gradient_accumulation_steps
    save_total_limit=2,
    save_steps=100,
    num_train_epochs=200,
    learning_rate=1e-4,
    weight_decay=0.01,
    seed=77,
    logging_steps=10,
    logging_dir="logs",
    push_to_hub=False,
    remove_unused_columns=False,
)

@@ code t3-2-trainer
# Initialize our Trainer
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, T5ForConditionalGeneration


# Initialize the Seq2SeqTrainer
trainer = Seq2SeqTrainer(
    model=t5,
    args=training_args,
    data_collator=T2TDataCollator(tokenizer=t5_tokenizer),
    train_dataset=encoded_squad["train"],
)

@@ code t3-3-load-model
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
### your code ###
t5_tokenizer = AutoTokenizer.from_pretrained("t5-base")
t5_model = AutoModelForSeq2SeqLM.from_pretrained("t5-base")
### your code ###

@@ code t3-3-get-answer
def get_answer(tokenizer, model, question, context):
    # Format input text
    input_text = f"question: {question} context: {context}"

    # Tokenize the input
    inputs = tokenizer(input_text, return_tensors="pt", max_length=512, truncation=True)

    # Generate the answer using the model
    outputs = model.generate(**inputs, max_length=32, num_beams=1, length_penalty=1.0, no_repeat_ngram_size=2)
    answer = tokenizer.decode(outputs[0], skip_special_tokens=True)

    return answer

@@ markdown t3-4-answer
`
Text-to-Text Format:
In the context of T5, the "text-to-text format" refers to the approach of framing all natural language processing tasks as a text generation problem. Both input and output are treated as text sequences. For text classification tasks, the input is a textual description or prompt, and the output is the class label or category.

Processing Input and Output for Text Classification in T5:
In text classification tasks, T5 takes a textual input, which is a prompt describing the content to be classified. The model then generates a textual output representing the predicted class or label. During training, the model is fine-tuned using labeled examples, where the input is a description of the text, and the output is the corresponding class label. This way, T5 can be used for a range of classification tasks by providing task-specific prompts during fine-tuning.

Complications with a Predefined Set of Classes:
A challenge with a predefined set of classes is that the model needs to be trained on a representative dataset that includes all possible classes. If new classes emerge or if the classification task requires a more dynamic set of categories, the model might struggle to generalize effectively.
`

@@ markdown t3-4-answer-label-2
**Answer**

@@ markdown t3-4-answer-2
`
Masked Language Modeling (MLM):
In MLM, random tokens in the input sequence are masked, and the model is trained to predict these masked tokens based on the surrounding context. T5 uses MLM as part of its unsupervised pretraining to learn contextualized representations.

Word Dropout with Sentinel Tokens:
Word dropout involves randomly dropping out words from the input sequence during training. T5 introduces the concept of sentinel tokens to handle word dropout. Sentinel tokens are used to indicate when a word has been dropped during training.

Example Sentence:
Original: "The quick brown fox jumps over the lazy dog."
With Word Dropout: "[SENT] quick brown [DROP] jumps over [SENT] lazy [DROP]."
`

@@ markdown t3-4-answer-label-3
**Answer**

@@ markdown t3-4-answer-3
`
Fully-Visible Masking:
All positions in the input sequence are visible to the model during training. No tokens are masked, and the model can attend to the entire input.

Causal Masking:
In causal masking, tokens are masked based on their position in the sequence, preventing the model from attending to future positions during training.

Causal Masking with Prefix:
This masking technique involves masking the future tokens and also a specified prefix length. It allows the model to attend to some future context while still providing some limitation.
`

@@ markdown t3-4-answer-label-4
**Answer**

@@ markdown t3-4-answer-4
`
Adapter Layers:
Adapter layers are additional small neural network modules added to the pre-trained model. They allow for task-specific modifications without changing the entire architecture, facilitating easier transfer learning.

Gradual Unfreezing:
Gradual unfreezing involves training the model in a layer-wise manner. Initially, only the task-specific layers are trained, and then gradually, lower layers are unfrozen and fine-tuned. This helps preserve knowledge from pretraining.

These techniques in fine-tuning make it possible to adapt T5 to specific tasks efficiently while leveraging the knowledge gained during pretraining.
`
'''


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
