"""Shape helpers that let one cell serve one network or K stacked members.

A member axis, when present, leads every parameter -- weights (K, G*H, D), biases (K, G*H) -- and
sits just before the batch axis in the step arrays (K, B, ...). The cells write every product as
``np.matmul`` and every gate slice on the last axis, so the same code runs K members' steps as
batched products, and without the axis exactly the two-dimensional products it always ran.
"""

from __future__ import annotations

import numpy as np


def transposed(W):
    """W's last two axes swapped, contiguous: (G*H, D) -> (D, G*H), per member if stacked."""
    return np.ascontiguousarray(np.swapaxes(W, -1, -2))


def rows(b):
    """A bias (G*H,) or per member (K, G*H), shaped to add to every row of (B, G*H) or (K, B, G*H)."""
    return b if b.ndim == 1 else b[..., None, :]
