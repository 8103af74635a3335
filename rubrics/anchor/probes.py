"""Probes for the anchor workload, executed (as source) inside the student's kernel.

Each probe calls what the notebook defined on inputs the grader drew for this submission
(``inputs.py``: random token ids, random logits, ragged batches) and returns plain data, or tensors
through ``SAVE_TENSORS``. Nothing here is an answer: no reference code, no expected value. What the
kernel reports is a claim that ``checks.py`` settles outside the kernel.

The part above the first ``# --- <subtask> ---`` line is sent with every section; a section is sent
only after its subtask's cells ran. Probes leave the notebook's objects as they found them (the
model's train/eval mode, torch's random state). ``SAVE_TENSORS`` is injected by the grader.
"""

SAVE_TENSORS = globals().get("SAVE_TENSORS")


def _get(ns, name):
    if name not in ns:
        raise NameError(f"name '{name}' is not defined")
    return ns[name]


# --- train ---------------------------------------------------------------------------------------


def losses(ns, inputs):
    """What the notebook recorded, as floats (a loss kept as a tensor counts as its value)."""
    return {"losses": [float(v) for v in list(_get(ns, "losses"))], "final_loss": float(_get(ns, "final_loss"))}


def model(ns, inputs):
    """The model's class, its weights (shipped as safetensors) and its logits on fresh input_ids,
    in eval mode: the grader recomputes those logits from the weights with the specified model."""
    import torch

    model = _get(ns, "model")
    ids = torch.tensor(inputs["input_ids"], dtype=torch.long)
    was_training = bool(getattr(model, "training", False))
    rng = torch.get_rng_state()
    model.eval()
    try:
        with torch.no_grad():
            out = model(input_ids=ids)
    finally:
        model.train(was_training)
        torch.set_rng_state(rng)
    logits = getattr(out, "logits", None)
    if logits is None:
        logits = out[0]
    return {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "logits": logits,
        "weights": SAVE_TENSORS("model", dict(model.state_dict())),
    }


# --- metrics -------------------------------------------------------------------------------------


def compute_metrics(ns, inputs):
    """compute_metrics((logits, labels)) on each batch, as the Trainer calls it."""
    import numpy as np

    fn = _get(ns, "compute_metrics")
    return [fn((np.asarray(c["logits"], dtype=np.float32), np.asarray(c["labels"], dtype=np.int64))) for c in inputs["cases"]]


# --- collate -------------------------------------------------------------------------------------


def _collate(ns, case):
    fn = _get(ns, "collate")
    features = [[list(seq) for seq in example] for example in case["features"]]
    value = fn(features) if case.get("pad_id") is None else fn(features, pad_id=case["pad_id"])
    return {"type": f"{type(value).__module__}.{type(value).__name__}", "dtype": str(getattr(value, "dtype", "")), "value": value}


def collate(ns, inputs):
    return _collate(ns, inputs)


def collate_with_pad_id(ns, inputs):
    return _collate(ns, inputs)
