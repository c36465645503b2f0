"""Elman (vanilla) RNN cell: one time step, forward and backward.

Equation (PyTorch's ``nn.RNN``)::

    h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)        act = tanh or relu

Shapes: x_t (B, D), h_t (B, H), W_ih (H, D), W_hh (H, H), b_ih and b_hh (H,).

Example::

    >>> import numpy as np
    >>> from rnnlab.nn.cells import ElmanCell
    >>> cell = ElmanCell("tanh")
    >>> W_ih, W_hh, b = np.eye(2), 0.5 * np.eye(2), np.zeros(2)
    >>> xp = cell.project(np.ones((1, 2)), W_ih, b, b)        # (N, H) input part
    >>> out = np.empty((1, 2))                                 # where h_t is written
    >>> (h,), cache = cell.forward_step(W_hh.T.copy(), b, xp, (np.zeros((1, 2)),), out)
    >>> np.round(h, 4)
    array([[0.7616, 0.7616]])
"""

from __future__ import annotations

import numpy as np

from rnnlab.nn.cells.members import rows, transposed


class ElmanCell:
    gates = 1
    n_carry = 1
    split_hh_grad = False          # dL/d(recurrent part) == dL/d(input part)

    def __init__(self, nonlinearity: str = "tanh"):
        self.nonlinearity = nonlinearity
        self._relu = nonlinearity == "relu"
        self.h_range = (0.0, np.inf) if self._relu else (-1.0, 1.0)

    def project(self, X, W_ih, b_ih, b_hh):
        XP = X @ transposed(W_ih)                         # (N, H); a contiguous copy multiplies 2x faster
        if b_ih is not None:
            XP += rows(b_ih + b_hh)                       # both biases sit before act: fold them once
        return XP

    def forward_step(self, W_hhT, b_hh, xp_t, carry, out):
        (h_prev,) = carry
        z = np.matmul(h_prev, W_hhT, out=out)             # (B, H), written in the layer's buffer
        z += xp_t
        h = np.maximum(z, 0, out=z) if self._relu else np.tanh(z, out=z)
        return (h,), h                                    # cache: h_t is enough for act'

    def prepare_backward(self, caches, h_steps):
        """act'(z_t) for every step in one vectorized operation over h_steps (T, B, H)."""
        if self._relu:
            return (h_steps > 0).astype(h_steps.dtype)    # relu' = 1 where h > 0
        d_act = np.multiply(h_steps, h_steps)
        return np.subtract(1.0, d_act, out=d_act)         # tanh' = 1 - tanh^2

    def step_jacobian(self, W_hh, cache):
        """dh_t/dh_{t-1} = diag(act'(z_t)) W_hh (B, H, H) from one forward step's cache (h_t)."""
        return self.prepare_backward(None, cache[None])[0][:, :, None] * W_hh

    def backward_step(self, W_hh, cache, d_carry, out):
        d_act = cache                                     # act'(z_t) from prepare_backward
        (dh,) = d_carry
        dz = np.multiply(dh, d_act, out=out)              # through act
        dh_prev = np.matmul(dz, W_hh)                     # through h_{t-1} W_hh^T  (B, H)
        return (dh_prev,), dz, dz
