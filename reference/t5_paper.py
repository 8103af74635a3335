"""Reference answers to Subtask 3.4 (the T5 paper, Raffel et al. 2020), shown to TAs beside the
student's answer. Points are given by a person; these are what to look for."""

from __future__ import annotations

ANSWERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "3.4.1",
        "Every task is cast as feeding the model text and training it to generate text (a task prefix "
        "such as `sst2 sentence:` selects the task). For classification the model outputs the *label "
        "word* (e.g. `positive` / `negative`, `entailment`); the same maximum-likelihood loss and "
        "decoding are used for all tasks. Complication: the decoder may generate a string that is none "
        "of the classes; the paper counts it as wrong (it never happened with the trained models).",
        ("task prefix", "label as target text", "output outside the class set counted as wrong"),
    ),
    (
        "3.4.2",
        "Denoising objectives: tokens of the input are corrupted and the model predicts them. In the "
        "BERT-style MLM variant 15% of tokens are corrupted (mostly replaced by a mask token) and the "
        "target is the whole original text; T5's chosen objective replaces each *span* of dropped "
        "tokens by a unique sentinel (`<extra_id_0>`, `<extra_id_1>`, ...) and the target is the "
        "dropped spans, each introduced by its sentinel. Word dropout ('drop corrupted tokens') simply "
        "removes the tokens from the input and the target is the dropped tokens. Example: `Thank you "
        "for inviting me to your party last week.` -> input `Thank you <X> me to your party <Y> week.` "
        "target `<X> for inviting <Y> last <Z>`.",
        ("corrupt 15% of tokens", "sentinel tokens mark spans", "target holds only the dropped spans"),
    ),
    (
        "3.4.3",
        "Fully-visible: every output position attends to every input position (encoder). Causal: "
        "position i attends only to positions j <= i (decoder / language model). Causal with prefix: "
        "fully-visible over a prefix (the input), causal over the rest (the target) - the prefix LM.",
        ("fully-visible: all positions", "causal: j <= i", "prefix: full over prefix, causal after"),
    ),
    (
        "3.4.4",
        "Adapter layers: small dense-ReLU-dense blocks inserted after each feed-forward block; only "
        "they (and layer norms) are trained, the rest is frozen; the inner size d trades parameters "
        "for quality. Gradual unfreezing: start fine-tuning with only the top layer trainable and "
        "unfreeze one more layer (from the top down) every few steps until the whole model trains.",
        ("adapters: new small layers, rest frozen", "gradual unfreezing: top layers first, then deeper"),
    ),
)


def reference_text() -> str:
    return "\n\n".join(f"**{aid}** {text}\n\nKey points: " + "; ".join(points) for aid, text, points in ANSWERS)
