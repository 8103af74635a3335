"""Tiny models under the real configs' names: a DistilBERT and T5s small enough to train on two cores.

Sizes are chosen for speed, not quality; what must match the real checkpoints is what the assignment
asks students to read off or rely on: the vocabulary, the special token ids, the dropout values in
``config.json``, ``decoder_start_token_id`` 0 for T5, and a QA model whose ``generate`` stops early.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SEED = 77


def seed_everything(seed: int = SEED) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _save(model: Any, dest: Path) -> None:
    model.save_pretrained(str(dest), safe_serialization=True)
    # transformers 5.x writes model.safetensors with mode 0600; kernels may run as another user.
    for path in dest.iterdir():
        os.chmod(path, 0o644)


def write_distilbert(dest: Path) -> None:
    """DistilBERT, dim 32, 2 layers, 2 heads, with the real vocabulary size and dropout values."""
    import torch
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    config = DistilBertConfig(
        vocab_size=30522,
        max_position_embeddings=512,
        sinusoidal_pos_embds=False,
        n_layers=2,
        n_heads=2,
        dim=32,
        hidden_dim=64,
        dropout=0.1,
        attention_dropout=0.1,
        activation="gelu",
        initializer_range=0.02,
        qa_dropout=0.1,
        seq_classif_dropout=0.2,
        pad_token_id=0,
        tie_word_embeddings=True,
        architectures=["DistilBertForMaskedLM"],
    )
    seed_everything()
    with torch.no_grad():
        model = DistilBertForMaskedLM(config)
    _save(model, dest)


def write_bert(dest: Path) -> None:
    """BERT uncased, dim 32, 2 layers, 2 heads, with the real vocabulary: a model id students use in
    place of DistilBERT (a real notebook of this course loads ``bert-base-uncased`` in 2.2). With it
    in the store their notebook runs as it did on Colab, and the checks judge the choice."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        type_vocab_size=2,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        pad_token_id=0,
        architectures=["BertForMaskedLM"],
    )
    seed_everything()
    with torch.no_grad():
        model = BertForMaskedLM(config)
    _save(model, dest)


T5_SIZES = {
    # name: (d_model, d_ff, d_kv, heads, layers)
    "small": (32, 64, 16, 2, 2),
    "base": (48, 96, 24, 2, 2),
}


def t5_config(size: str, vocab_size: int) -> Any:
    from transformers import T5Config

    d_model, d_ff, d_kv, heads, layers = T5_SIZES[size]
    return T5Config(  # type: ignore[call-arg]  # T5Config takes PretrainedConfig's keywords too
        vocab_size=vocab_size,
        d_model=d_model,
        d_ff=d_ff,
        d_kv=d_kv,
        num_heads=heads,
        num_layers=layers,
        num_decoder_layers=layers,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        dropout_rate=0.1,
        feed_forward_proj="relu",
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        tie_word_embeddings=True,
        architectures=["T5ForConditionalGeneration"],
    )


def new_t5(size: str, vocab_size: int, seed: int = SEED) -> Any:
    from transformers import T5ForConditionalGeneration

    seed_everything(seed)
    return T5ForConditionalGeneration(t5_config(size, vocab_size))


def write_t5(dest: Path, model: Any) -> None:
    _save(model, dest)


def finetune_qa(
    model: Any,
    tokenizer: Any,
    rows: Sequence[dict[str, Any]],
    steps: int = 250,
    batch_size: int = 32,
    lr: float = 5e-3,
    max_source_length: int = 48,
) -> list[float]:
    """Teach a tiny T5 the ``question: .. context: ..`` -> short answer + EOS format, in seconds.

    Sources are cut to 48 tokens: a model this small learns the shape of an answer (a few tokens,
    then EOS), not how to find it, and short inputs keep it to ~10 s on one core. Without this,
    ``generate`` emits 20 arbitrary tokens and the result depends on every generation setting.
    One thread and a seeded order make the weights the same every build. Returns the losses.
    """
    import torch

    seed_everything()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sources = [f"question: {r['question']} context: {r['context']}" for r in rows]
        targets = [r["answers"]["text"][0] for r in rows]
        enc = tokenizer(
            sources, max_length=max_source_length, truncation=True, padding=True, return_tensors="pt"
        )
        lab = tokenizer(targets, max_length=16, truncation=True, padding=True, return_tensors="pt").input_ids
        lab[lab == tokenizer.pad_token_id] = -100
        optim = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        gen = torch.Generator().manual_seed(SEED)
        model.train()
        losses = []
        for _ in range(steps):
            idx = torch.randint(0, len(sources), (batch_size,), generator=gen)
            out = model(input_ids=enc.input_ids[idx], attention_mask=enc.attention_mask[idx], labels=lab[idx])
            out.loss.backward()
            optim.step()
            optim.zero_grad()
            losses.append(out.loss.item())
        model.eval()
        return losses
    finally:
        torch.set_num_threads(threads)
