"""Losses: each returns (mean loss, dL/d(input)) so heads can start the backward pass."""

from __future__ import annotations

import numpy as np

from rnnlab.errors import InputError


def softmax_cross_entropy(logits, targets, mask=None, class_weights=None):
    """Mean cross-entropy of integer ``targets`` (...,) under ``logits`` (..., C).

    ``mask`` (...,) of 0/1 weights excludes positions (padding) from the mean. ``class_weights``
    (C,) weighs each position by its target's class, the mean taken over the weights (PyTorch's
    ``CrossEntropyLoss(weight=...)``).
    """
    C = logits.shape[-1]
    flat = logits.reshape(-1, C)                                 # (N, C)
    if not np.issubdtype(flat.dtype, np.floating):
        flat = flat.astype(np.float64)                           # integer logits: computed in float64
    t = np.asarray(targets).reshape(-1)
    if t.shape[0] != flat.shape[0]:
        raise InputError(f"cross-entropy: {flat.shape[0]} predictions but {t.shape[0]} targets; "
                         "targets must have the logits' shape without the class axis")
    if t.size and (t.min() < 0 or t.max() >= C):
        raise InputError(f"cross-entropy: targets must lie in [0, {C - 1}], "
                         f"got values from {t.min()} to {t.max()}")
    # Five passes over the (N, C) block (max, shift, exp, sum, scale) instead of the nine of
    # log_softmax + exp + scale: for a char-LM's readout this is most of the loss's time.
    rows = np.arange(flat.shape[0])
    d = flat - flat.max(axis=-1, keepdims=True)                  # z, shifted: exp(z) <= 1
    z_t = d[rows, t]
    np.exp(d, out=d)
    total = d.sum(axis=-1)                                       # (N,)
    nll = np.log(total) - z_t                                    # -log softmax(z)_t
    if mask is None and class_weights is None:
        loss = float(nll.mean())
        w = np.full(flat.shape[0], 1.0 / flat.shape[0], flat.dtype)
    else:
        w = np.ones(flat.shape[0], flat.dtype) if mask is None else np.asarray(mask, dtype=flat.dtype).reshape(-1)
        if class_weights is not None:
            w = w * np.asarray(class_weights, dtype=flat.dtype)[t]
        denom = max(float(w.sum()), 1.0)
        loss = float((nll * w).sum() / denom)
        w = w / flat.dtype.type(denom)
    d *= (w / total)[:, None]                                    # softmax, weighted
    d[rows, t] -= w                                              # d(-log p_t)/d logits = p - onehot
    return loss, d.reshape(logits.shape)


def class_weighted_cross_entropy(class_weights):
    """``softmax_cross_entropy`` with one weight per target class, as a loss(outputs, targets, mask)."""
    weights = np.asarray(class_weights, dtype=np.float64)

    def weighted_cross_entropy(logits, targets, mask=None):
        return softmax_cross_entropy(logits, targets, mask, class_weights=weights)
    weighted_cross_entropy.class_weights = tuple(float(w) for w in weights)
    return weighted_cross_entropy


def mse(pred, target, mask=None):
    """Mean squared error and its gradient: pred and target (..., K).

    ``mask`` (...,) of 0/1 weights over positions (``pred.shape[:-1]``, e.g. (B, T)) excludes
    positions (padding) as ``softmax_cross_entropy`` does: a masked position's K outputs add
    nothing to the loss, get zero gradient, and the mean is over the K * sum(mask) valid elements.
    """
    if pred.shape != np.shape(target):
        raise InputError(f"MSE: predictions have shape {pred.shape} but targets {np.shape(target)}; "
                         "they must match")
    diff = pred - np.asarray(target, dtype=pred.dtype)
    if mask is None:
        return float(np.mean(diff * diff)), diff * pred.dtype.type(2.0 / diff.size)
    w = np.asarray(mask, dtype=pred.dtype)
    if w.shape != pred.shape[:-1]:
        raise InputError(f"MSE: mask has shape {w.shape} but must cover the positions "
                         f"{pred.shape[:-1]} (the predictions' shape without the last axis); "
                         "pass one 0/1 weight per position")
    w = w[..., None]                                             # (..., 1): all K outputs alike
    diff = np.where(w != 0, diff, 0)                             # padded targets may be anything
    denom = float(w.sum()) * pred.shape[-1] or 1.0
    wd = diff * w
    return float((wd * diff).sum() / denom), wd * pred.dtype.type(2.0 / denom)


def weight_penalty(params: dict, grads: dict, l1: float = 0.0, l2: float = 0.0) -> dict:
    """L1 and L2 penalties on every weight matrix (parameters named ``*weight*``, biases left
    alone): adds l1 * sign(w) + 2 l2 w to their gradients and returns the two terms' values,
    l1 * sum |w| and l2 * sum w^2, to be logged apart from the task loss."""
    out = {}
    if not (l1 or l2):
        return out
    total1 = total2 = 0.0
    for name, w in params.items():
        if "weight" not in name.rsplit(".", 1)[-1]:
            continue
        if l1:
            total1 += float(np.abs(w).sum(dtype=np.float64))
            grads[name] += w.dtype.type(l1) * np.sign(w)
        if l2:
            total2 += float(np.square(w, dtype=np.float64).sum())
            grads[name] += w.dtype.type(2 * l2) * w
    if l1:
        out["weight_l1"] = l1 * total1
    if l2:
        out["weight_l2"] = l2 * total2
    return out
