"""Checks of Task 3.1 (preparing SQuAD for t5-small), 3.2 (the Seq2Seq model and trainer) and
3.3 (answering questions with mrm8488/t5-base-finetuned-squadv2)."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from grader.steps import source as src
from grader.steps.checks import CheckContext, Missing, Verdict, check

from . import refs
from .checks_common import (  # noqa: F401
    QA_MODEL,
    SEQ2SEQ_SPEC,
    SPECIAL_TOKENS,
    _args_from_source,
    _arr,
    _compare_args,
    _error,
    _norm_ws,
    _squeeze_rows,
    _tiered,
    squad_normalize,
)

# --- 3.1 -------------------------------------------------------------------------------------------


@check("3.1.tokenizer")
def t5_tokenizer(ctx: CheckContext) -> Verdict:
    got = ctx.value("t5_tokenizer")
    ids_ok = [list(map(int, x)) for x in got.get("ids", [])] == refs.t5_ids(
        ctx.input("t5_tokenizer")["texts"]
    )
    parts = [
        (
            "T5" in str(got.get("class"))
            and str(got.get("name_or_path", "")).rstrip("/").endswith("t5-small"),
            f"t5_tokenizer is a {got.get('class')} from '{got.get('name_or_path')}', expected t5-small's",
        ),
        (
            ids_ok and got.get("model_max_length") == 512,
            f"its ids or maximum length ({got.get('model_max_length')}) differ from t5-small's (512)",
        ),
    ]
    return Verdict.of(parts, "t5-small's tokenizer, 512 tokens")


def _canon_input(text: str) -> str:
    t = _norm_ws(text)
    t = re.sub(r"question:\s*", "question: ", t)
    t = re.sub(r"\s*context:\s*", " context: ", t)
    return re.sub(r"\s*</s>$", " </s>", t)


@check("3.1.add_eos")
def add_eos(ctx: CheckContext) -> Verdict:
    got = ctx.value("add_eos")
    rows = ctx.input("add_eos")["rows"]
    parts: list[tuple[bool, str]] = []
    for g, r in zip(got, rows, strict=False):
        want_in = _canon_input(f"question: {r['question']} context: {r['context']} </s>")
        want_out = _norm_ws(f"{r['answers']['text'][0]} </s>")
        parts.append(
            (
                _canon_input(g.get("input_text") or "") == want_in,
                f"input_text is {str(g.get('input_text'))[:70]!r}..., expected 'question: ... context: ... </s>'",
            )
        )
        parts.append(
            (
                _norm_ws(g.get("target_text")) == want_out,
                f"target_text is {str(g.get('target_text'))[:70]!r}, expected {want_out!r}",
            )
        )
    verdict = Verdict.of(
        parts or [(False, "add_eos_to_examples gave no rows")], "prefixes and </s> as specified"
    )
    return Verdict(verdict.fraction, "; ".join(dict.fromkeys(verdict.message.split("; "))))


def _maps_of(ctx: CheckContext, function: str) -> list[Any]:
    trees = src.parse_cells(ctx.code())
    return [
        c
        for c in src.calls(trees, "map")
        if any(function in src.names_in(a) for a in [*c.args, *(k.value for k in c.keywords)])
    ]


@check("3.1.map_add_eos")
def map_add_eos(ctx: CheckContext) -> Verdict:
    maps = _maps_of(ctx, "add_eos_to_examples")
    if not maps:
        return Verdict(0.0, "add_eos_to_examples is not applied with the data set's map")
    batched = any(isinstance(v := src.keyword(c, "batched"), ast.Constant) and v.value for c in maps)
    return Verdict(
        0.5 if batched else 1.0,
        "map is given batched=True, which the assignment says not to set" if batched else "map, not batched",
    )


def _t5_canon(ids: Sequence[int]) -> list[int]:
    """T5 ids as every tokenizer release agrees on them: "answer </s>" is [.., 1] for 4.35's slow
    tokenizer, [.., 3, 1, 1] for its fast one and [.., 1, 1] for 5.x's. Padding off, a lone "▁" (3)
    before </s> (1) dropped, repeated </s> collapsed: "Harry</s>" and "Harry </s>" are the same target."""
    out: list[int] = []
    body = list(ids)
    while body and body[-1] == 0:
        body.pop()
    for i, t in enumerate(body):
        if t == 3 and i + 1 < len(body) and body[i + 1] == 1:
            continue
        if t == 1 and out and out[-1] == 1:
            continue
        out.append(t)
    return out


@check("3.1.convert")
def convert(ctx: CheckContext) -> Verdict:
    got = ctx.value("convert")
    rows = ctx.input("convert")["rows"]
    results = got.get("rows", [])
    texts = got.get("texts", [])
    if len(results) != len(rows) or len(texts) != len(rows):
        return Verdict(0.0, f"convert_to_features gave {len(results)} rows for {len(rows)} examples")
    # convert_to_features tokenizes what add_eos_to_examples made of each row (the student's own
    # texts: a wrong format is add_eos's item, not charged twice). The texts the kernel names must
    # be made of that row: its question, context and answer.
    for t, r in zip(texts, rows, strict=True):
        have = _norm_ws(f"{t.get('input_text')} {t.get('target_text')}").lower()
        if not all(
            _norm_ws(x).lower() in have for x in (r["question"], r["context"], r["answers"]["text"][0])
        ):
            return Verdict(
                0.0, "convert_to_features was not given the examples' own question, context and answer"
            )
    want = [refs.t5_features(str(t.get("input_text") or ""), str(t.get("target_text") or "")) for t in texts]
    in_ok = tgt_ok = True
    nested = False
    for g, w in zip(results, want, strict=True):
        for key, flag in (("input_ids", "in"), ("target_ids", "tgt")):
            a = _arr(g.get(key))
            if a is not None and a.ndim == 2 and a.shape[0] == 1:
                nested, a = True, a[0]
            same = (
                a is not None
                and a.ndim == 1
                and len(a) == len(w[key])
                and _t5_canon(list(map(int, a))) == _t5_canon(w[key])
            )
            if flag == "in":
                in_ok = in_ok and same
            else:
                tgt_ok = tgt_ok and same
    trees = src.parse_cells(ctx.code())
    fns = src.defs(trees, "convert_to_features")
    uses_texts = bool(fns) and {"input_text", "target_text"} & src.subscripts(fns[-1]) == {
        "input_text",
        "target_text",
    }
    parts = [
        (in_ok, "the input ids differ from tokenizing input_text to 512 tokens (truncated and padded)"),
        (tgt_ok, "the target ids differ from tokenizing target_text to 16 tokens (truncated and padded)"),
        (
            not nested,
            "each row is [1, N]: return one row per example (the map was not batched but the tokenizer returned a batch)",
        ),
        (uses_texts, "convert_to_features does not tokenize add_eos_to_examples' input_text and target_text"),
    ]
    weights = (0.375, 0.375, 0.125, 0.125)
    frac = sum(w for (ok, _), w in zip(parts, weights, strict=True) if ok)
    note = got.get("note") or ""
    msg = "; ".join(m for ok, m in parts if not ok)
    return Verdict(
        frac, "; ".join(x for x in (msg, note) if x) or "input and target tokenized, truncated and padded"
    )


@check("3.1.map_convert")
def map_convert(ctx: CheckContext) -> Verdict:
    got = ctx.value("squad_data")
    cols = set(got.get("column_names", []))
    parts = [
        (
            bool(_maps_of(ctx, "convert_to_features")),
            "convert_to_features is not applied with the data set's map",
        ),
        (
            {"input_ids", "attention_mask", "target_ids"} <= cols,
            f"encoded_squad lacks input_ids / attention_mask / target_ids (it has {sorted(cols)[:8]})",
        ),
    ]
    return Verdict.of(parts, "map of convert_to_features")


@check("3.1.torch_format")
def torch_format(ctx: CheckContext) -> Verdict:
    got = ctx.value("squad_data")
    row = got.get("row", {})
    ids, tgt = row.get("input_ids", {}), row.get("target_ids", {})
    tensors = (
        got.get("format_type") == "torch" and ids.get("type") == "Tensor" and tgt.get("type") == "Tensor"
    )
    if not tensors:
        return Verdict(
            0.0, f"encoded_squad's rows are {ids.get('type')}, expected torch tensors (set_format)"
        )
    if ids.get("shape") == [512] and tgt.get("shape") == [16]:
        return Verdict(1.0, "torch tensors, [512] and [16]")
    return Verdict(
        0.5, f"rows are tensors of shape {ids.get('shape')} and {tgt.get('shape')}, expected [512] and [16]"
    )


def _t2t(ctx: CheckContext) -> dict[str, Any]:
    got = ctx.value("t2t_collator")
    if all(_error(got.get(k)) for k in ("own", "fresh")):
        raise Missing(f"T2TDataCollator failed: {_error(got.get('own'))}")
    return got


def _stacked(rows: Sequence[Mapping[str, Any]], key: str, dims: int = 2) -> np.ndarray | None:
    try:
        return _squeeze_rows(np.stack([np.asarray(r[key]) for r in rows]), dims)
    except (KeyError, ValueError, TypeError):
        return None


@check("3.1.collator_stack")
def collator_stack(ctx: CheckContext) -> Verdict:
    got = _t2t(ctx)
    parts: list[tuple[bool, str]] = []
    for key in ("own", "fresh"):
        entry = got.get(key, {})
        err = _error(entry)
        if err:
            parts.append(
                (
                    False,
                    f"on {'your own rows' if key == 'own' else 'other rows'} the collator fails: {err[:120]}",
                )
            )
            continue
        vals = entry.get("values", {})
        ok = True
        for name in ("input_ids", "attention_mask"):
            want = _stacked(entry.get("inputs", []), name)
            have = _arr(vals.get(name))
            ok = (
                ok
                and want is not None
                and have is not None
                and _squeeze_rows(have, 2).shape == want.shape
                and np.array_equal(_squeeze_rows(have, 2), want)
            )
        parts.append(
            (
                ok,
                f"input_ids / attention_mask are not the rows stacked ({'your own rows' if key == 'own' else 'other rows'})",
            )
        )
    return Verdict.of(parts, "the rows stacked into [batch, 512]")


@check("3.1.collator_keys")
def collator_keys(ctx: CheckContext) -> Verdict:
    got = _t2t(ctx)
    allowed = {"input_ids", "attention_mask", "labels", "decoder_attention_mask", "decoder_input_ids"}
    for key in ("own", "fresh"):
        entry = got.get(key, {})
        if _error(entry):
            continue
        keys = set(entry.get("keys", []))
        if not {"input_ids", "attention_mask", "labels"} <= keys:
            return Verdict(
                0.0, f"the batch's keys are {sorted(keys)}: T5 needs input_ids, attention_mask and labels"
            )
        if keys - allowed:
            return Verdict(0.0, f"the batch has keys T5's forward does not take: {sorted(keys - allowed)}")
        return Verdict(1.0, f"keys {sorted(keys)}")
    return Verdict(0.0, "the collator gave no batch")


@check("3.1.collator_labels")
def collator_labels(ctx: CheckContext) -> Verdict:
    got = _t2t(ctx)
    parts: list[tuple[bool, str]] = []
    for key in ("own", "fresh"):
        entry = got.get(key, {})
        if _error(entry):
            parts.append(
                (False, f"the collator fails on {'your own rows' if key == 'own' else 'other rows'}")
            )
            continue
        target = _stacked(entry.get("inputs", []), "target_ids")
        lab = _arr(entry.get("values", {}).get("labels"))
        if target is None or lab is None or _squeeze_rows(lab, 2).shape != target.shape:
            parts.append((False, "labels are missing or not [batch, 16]"))
            continue
        lab = _squeeze_rows(lab, 2)
        pad = target == 0
        parts.append(
            (
                bool(np.all(lab[pad] == -100)) and bool(np.array_equal(lab[~pad], target[~pad])),
                "labels are not target_ids with -100 on the padding",
            )
        )
    return Verdict.of(parts, "labels: target_ids, -100 on the padding")


# --- 3.2 -------------------------------------------------------------------------------------------


@check("3.2.model")
def t5_model(ctx: CheckContext) -> Verdict:
    got = ctx.value("t5_model")
    want = refs.store_config("t5-small")
    cfg = got.get("config", {})
    same = all(
        cfg.get(k) == want.get(k) for k in ("d_model", "num_layers", "num_heads", "vocab_size", "d_ff")
    )
    parts = [
        (
            got.get("class") == "T5ForConditionalGeneration",
            f"t5 is a {got.get('class')}, expected T5ForConditionalGeneration",
        ),
        (
            same and str(got.get("name_or_path", "")).rstrip("/").endswith("t5-small"),
            f"t5 is not t5-small (loaded from '{got.get('name_or_path')}')",
        ),
    ]
    return Verdict.of(parts, "T5ForConditionalGeneration from t5-small")


@check("3.2.training_args")
def seq2seq_args(ctx: CheckContext) -> Verdict:
    got = _args_from_source(ctx.value("seq2seq_args"), ctx.code())
    wrong, _ = _compare_args(got, SEQ2SEQ_SPEC)
    if got.get("__class__") != "Seq2SeqTrainingArguments":
        wrong.append(f"the arguments are a {got.get('__class__')}, expected Seq2SeqTrainingArguments")
    # "all training parameters: 1": the course's graders gave this item whole or not at all
    return Verdict(0.0 if wrong else 1.0, "; ".join(wrong) or "every setting as specified")


@check("3.2.trainer")
def seq2seq_trainer(ctx: CheckContext) -> Verdict:
    got = ctx.value("seq2seq_trainer")
    wrong = []
    if "Seq2SeqTrainer" not in got.get("mro", [got.get("class")]):
        wrong.append(f"the trainer is a {got.get('class')}, expected Seq2SeqTrainer")
    if not (got.get("model_is_student_model") or got.get("model_class") == "T5ForConditionalGeneration"):
        wrong.append(f"the trainer trains a {got.get('model_class')}, not t5")
    if got.get("collator_class") != "T2TDataCollator":
        wrong.append(f"the data collator is {got.get('collator_class')}, expected T2TDataCollator")
    if not (got.get("train_dataset") or {}).get("rows"):
        wrong.append("no train_dataset")
    return _tiered(wrong, "Seq2SeqTrainer with t5, the data and T2TDataCollator")


# --- 3.3 -------------------------------------------------------------------------------------------


@check("3.3.model")
def qa_model(ctx: CheckContext) -> Verdict:
    got = ctx.value("qa_model")
    rows = got.get("embedding_rows")
    weights = rows is not None and np.allclose(
        np.asarray(rows, dtype=np.float32), refs.store_embedding_rows(QA_MODEL), atol=1e-5
    )
    parts = [
        (
            got.get("t5_model") == QA_MODEL and weights,
            f"t5_model is not {QA_MODEL} (loaded from '{got.get('t5_model')}')",
        ),
        (
            got.get("t5_tokenizer") == QA_MODEL,
            f"t5_tokenizer was loaded from '{got.get('t5_tokenizer')}', expected '{QA_MODEL}'",
        ),
    ]
    return Verdict.of(parts, f"{QA_MODEL}'s model and tokenizer")


def _answers(ctx: CheckContext) -> list[tuple[dict[str, Any], dict[str, str]]]:
    got = ctx.value("get_answer")
    examples = ctx.input("get_answer")["examples"]
    if not isinstance(got, list) or len(got) != len(examples):
        raise Missing("get_answer gave no answers")
    return list(zip(got, examples, strict=True))


@check("3.3.input")
def qa_input(ctx: CheckContext) -> Verdict:
    parts = []
    for g, ex in _answers(ctx):
        text = _norm_ws(refs.t5_text(g.get("encoder_input_ids") or [])).lower()
        q, c = _norm_ws(ex["question"]).lower(), _norm_ws(ex["context"]).lower()
        ok = q in text and c[:120] in text and -1 < text.find("question") < text.find(q) and "context" in text
        parts.append(
            (
                ok,
                f"the model's input should be 'question: {ex['question'][:30]}... context: ...'; it was {text[:80]!r}",
            )
        )
    v = Verdict.of(parts, "'question: ... context: ...'")
    return Verdict(v.fraction, "; ".join(list(dict.fromkeys(v.message.split("; ")))[:2]))


def _same_generation(a: list[int], b: list[int]) -> bool:
    """Greedy generations agree, allowing for a different default length limit (20 tokens in 4.35,
    21 in 5.x): one is the other cut short, and the shorter one never reached </s>."""
    if a == b:
        return True
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return long_[: len(short)] == short and 1 not in short[1:]


@check("3.3.generate")
def qa_generate(ctx: CheckContext) -> Verdict:
    parts = []
    for g, _ex in _answers(ctx):
        call = g.get("generate")
        if not call:
            parts.append((False, "get_answer does not call model.generate"))
            continue
        again = refs.regenerate(call)
        parts.append(
            (
                again is None or _same_generation(again, [int(x) for x in call.get("output_ids", [])]),
                "what model.generate returned could not be reproduced from its inputs",
            )
        )
    return Verdict.of(parts, "model.generate")


@check("3.3.decode")
def qa_decode(ctx: CheckContext) -> Verdict:
    parts = []
    for g, _ex in _answers(ctx):
        call = g.get("generate") or {}
        answer = str(g.get("answer", ""))
        decoded = _norm_ws(refs.t5_decode(call.get("output_ids", []))) if call else None
        plain = g.get("type") == "str" and not any(t in answer for t in SPECIAL_TOKENS)
        same = decoded is not None and squad_normalize(_norm_ws(answer)) == squad_normalize(decoded)
        parts.append(
            (
                plain and same,
                f"get_answer returned {answer[:60]!r}; the generated text without special tokens is {decoded!r} (decode with skip_special_tokens=True)",
            )
        )
    v = Verdict.of(parts, "the generated text, without special tokens")
    return Verdict(v.fraction, "; ".join(list(dict.fromkeys(v.message.split("; ")))[:2]))
