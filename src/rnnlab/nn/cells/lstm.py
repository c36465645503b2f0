"""LSTM cell: one time step, forward and backward (PyTorch's ``nn.LSTM``, gate order i, f, g, o).

Equations::

    a = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh          (B, 4H), split as [i | f | g | o]
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);   g = tanh(a_g)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Shapes: x_t (B, D), h and c (B, H), W_ih (4H, D), W_hh (4H, H), biases (4H,). State is (h, c).

Example::

    >>> import numpy as np
    >>> from rnnlab.nn.cells import LSTMCell
    >>> cell, H = LSTMCell(), 2
    >>> W_hh, b = np.zeros((4 * H, H)), np.zeros(4 * H)
    >>> xp = cell.project(np.ones((1, 3)), np.ones((4 * H, 3)), b, b)
    >>> (h, c), cache = cell.forward_step(W_hh.T.copy(), b, xp, (np.zeros((1, H)),) * 2, np.empty((1, H)))
    >>> np.round(c, 4)                                   # f*0 + sigmoid(3)*tanh(3)
    array([[0.9479, 0.9479]])
"""

from __future__ import annotations

import numpy as np

from rnnlab.nn.cells.members import rows, transposed


def sigmoid_(x):
    """In-place logistic sigmoid, overflow-free: sigmoid(x) = (1 + tanh(x / 2)) / 2."""
    x *= 0.5
    np.tanh(x, out=x)
    x += 1.0
    x *= 0.5
    return x


class LSTMCell:
    gates = 4
    n_carry = 2
    h_range = (-1.0, 1.0)          # h = o * tanh(c); c itself is unbounded
    split_hh_grad = False

    def project(self, X, W_ih, b_ih, b_hh):
        XP = X @ transposed(W_ih)                         # (N, 4H)
        if b_ih is not None:
            XP += rows(b_ih + b_hh)                       # both biases sit before the gates
        return XP

    def forward_step(self, W_hhT, b_hh, xp_t, carry, out):
        h_prev, c_prev = carry
        H = h_prev.shape[-1]
        a = np.matmul(h_prev, W_hhT)                      # (B, 4H)
        a += xp_t
        sigmoid_(a[..., :2 * H])                            # i, f
        np.tanh(a[..., 2 * H:3 * H], out=a[..., 2 * H:3 * H])  # g
        sigmoid_(a[..., 3 * H:])                            # o
        i, f, g, o = a[..., :H], a[..., H:2 * H], a[..., 2 * H:3 * H], a[..., 3 * H:]
        c = f * c_prev
        c += i * g                                        # c_t = f c_{t-1} + i g
        tc = np.tanh(c)
        h = np.multiply(o, tc, out=out)                   # h_t = o tanh(c_t)
        return (h, c), (a, c_prev, tc)

    def backward_step(self, W_hh, cache, d_carry, out):
        a, c_prev, tc = cache
        dh, dc = d_carry
        H = dh.shape[-1]
        i, f, g, o = a[..., :H], a[..., H:2 * H], a[..., 2 * H:3 * H], a[..., 3 * H:]
        da_i, da_f, da_g, da_o = out[..., :H], out[..., H:2 * H], out[..., 2 * H:3 * H], out[..., 3 * H:]
        # through h_t = o tanh(c_t): dc_t gets dh * o * (1 - tanh^2)
        dc_t = 1.0 - tc * tc
        dc_t *= o
        dc_t *= dh
        dc_t += dc
        np.multiply(dh, tc, out=da_o)
        da_o *= o * (1.0 - o)                             # through sigmoid(a_o)
        # through c_t = f c_{t-1} + i g
        np.multiply(dc_t, g, out=da_i)
        da_i *= i * (1.0 - i)                             # through sigmoid(a_i)
        np.multiply(dc_t, c_prev, out=da_f)
        da_f *= f * (1.0 - f)                             # through sigmoid(a_f)
        np.multiply(dc_t, i, out=da_g)
        da_g *= 1.0 - g * g                               # through tanh(a_g)
        dc_prev = dc_t
        dc_prev *= f
        dh_prev = np.matmul(out, W_hh)                    # through h_{t-1} W_hh^T  (B, H)
        return (dh_prev, dc_prev), out, out

    def prepare_backward(self, caches, h_steps):
        return caches

    def step_jacobian(self, W_hh, cache):
        """d(h_t, c_t)/d(h_{t-1}, c_{t-1}) (B, 2H, 2H) from one forward step's cache, the state
        ordered [h, c]: the fixed-point search's Jacobian in O(H^2) a state rather than 2H
        backward passes. With k = o (1 - tanh^2 c_t)::

            dc/dh = diag(c_{t-1} f (1 - f)) W_f + diag(g i (1 - i)) W_i + diag(i (1 - g^2)) W_g
            dc/dc = diag(f)
            dh/dh = diag(tanh(c_t) o (1 - o)) W_o + diag(k) dc/dh
            dh/dc = diag(k f)
        """
        a, c_prev, tc = cache
        H = tc.shape[-1]
        i, f, g, o = a[..., :H], a[..., H:2 * H], a[..., 2 * H:3 * H], a[..., 3 * H:]
        W_i, W_f, W_g, W_o = W_hh[:H], W_hh[H:2 * H], W_hh[2 * H:3 * H], W_hh[3 * H:]
        B, d = len(tc), np.arange(H)
        J = np.zeros((B, 2 * H, 2 * H))
        dc_dh = J[:, H:, :H]
        dc_dh += (c_prev * f * (1.0 - f))[:, :, None] * W_f
        dc_dh += (g * i * (1.0 - i))[:, :, None] * W_i
        dc_dh += (i * (1.0 - g * g))[:, :, None] * W_g
        k = o * (1.0 - tc * tc)
        J[:, :H, :H] = (tc * o * (1.0 - o))[:, :, None] * W_o + k[:, :, None] * dc_dh
        J[:, H + d, H + d] = f
        J[:, d, H + d] = k * f
        return J
