"""GRU cell: one time step, forward and backward (PyTorch's ``nn.GRU``, gate order r, z, n).

Equations (PyTorch's form: the reset gate multiplies W_hn h + b_hn, *after* the product)::

    r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
    z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
    n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
    h_t = (1 - z) * n + z * h_{t-1}

Shapes: x_t (B, D), h (B, H), W_ih (3H, D), W_hh (3H, H), biases (3H,).

Example::

    >>> import numpy as np
    >>> from rnnlab.nn.cells import GRUCell
    >>> cell, H = GRUCell(), 2
    >>> W_hh, b = np.zeros((3 * H, H)), np.zeros(3 * H)
    >>> xp = cell.project(np.ones((1, 3)), np.ones((3 * H, 3)), b, b)
    >>> (h,), cache = cell.forward_step(W_hh.T.copy(), b, xp, (np.zeros((1, H)),), np.empty((1, H)))
    >>> np.round(h, 4)                                   # (1 - sigmoid(3)) * tanh(3)
    array([[0.0472, 0.0472]])
"""

from __future__ import annotations

import numpy as np

from rnnlab.nn.cells.lstm import sigmoid_
from rnnlab.nn.cells.members import rows, transposed


class GRUCell:
    gates = 3
    n_carry = 1
    h_range = (-1.0, 1.0)          # h = (1 - z) n + z h_prev stays in tanh's range
    split_hh_grad = True            # dL/d(h W_hh^T + b_hh) differs from dL/d(x part) in the n gate

    def project(self, X, W_ih, b_ih, b_hh):
        XP = X @ transposed(W_ih)                         # (N, 3H)
        if b_ih is not None:
            H = b_hh.shape[-1] // 3
            XP += rows(b_ih)
            XP[..., :2 * H] += rows(b_hh[..., :2 * H])    # b_hr, b_hz sit before the gates; b_hn stays inside
        return XP

    def forward_step(self, W_hhT, b_hh, xp_t, carry, out):
        (h_prev,) = carry
        H = h_prev.shape[-1]
        hh = np.matmul(h_prev, W_hhT)                     # (B, 3H): h W_hh^T
        hn = hh[..., 2 * H:]
        if b_hh is not None:
            hn += rows(b_hh[..., 2 * H:])                 # W_hn h + b_hn
        rz = hh[..., :2 * H]
        rz += xp_t[..., :2 * H]
        sigmoid_(rz)
        r, z = rz[..., :H], rz[..., H:]
        n = r * hn
        n += xp_t[..., 2 * H:]
        np.tanh(n, out=n)                                 # n = tanh(x_n + r (W_hn h + b_hn))
        h = np.subtract(h_prev, n, out=out)
        h *= z
        h += n                                            # h_t = n + z (h_{t-1} - n)
        return (h,), (hh, n, h_prev)

    def backward_step(self, W_hh, cache, d_carry, out):
        hh, n, h_prev = cache
        (dh,) = d_carry
        H = dh.shape[-1]
        r, z, hn = hh[..., :H], hh[..., H:2 * H], hh[..., 2 * H:]
        da_r, da_z, da_n = out[..., :H], out[..., H:2 * H], out[..., 2 * H:]
        d_hh = np.empty_like(out)                         # dL/d(h W_hh^T + b_hh)
        # through h_t = n + z (h_{t-1} - n)
        np.subtract(h_prev, n, out=da_z)
        da_z *= dh
        da_z *= z * (1.0 - z)                             # through sigmoid(a_z)
        np.multiply(dh, 1.0 - z, out=da_n)
        da_n *= 1.0 - n * n                               # through tanh: dL/d(pre-activation of n)
        np.multiply(da_n, hn, out=da_r)
        da_r *= r * (1.0 - r)                             # through r * (W_hn h + b_hn), sigmoid(a_r)
        d_hh[..., :2 * H] = out[..., :2 * H]
        np.multiply(da_n, r, out=d_hh[..., 2 * H:])         # the recurrent n part is scaled by r
        dh_prev = np.matmul(d_hh, W_hh)                   # through h W_hh^T
        dh_prev += dh * z                                 # through z * h_{t-1}
        return (dh_prev,), out, d_hh

    def prepare_backward(self, caches, h_steps):
        return caches

    def step_jacobian(self, W_hh, cache):
        """dh_t/dh_{t-1} (B, H, H) from one forward step's cache: the fixed-point search's
        Jacobian in O(H^2) a state, where H backward passes cost O(H^3) (a GRU-64 flip-flop's
        whole search: 2.7x faster). Differentiating the equations above::

            J = diag(z) + diag((h_{t-1} - n) z (1 - z)) W_hz
                + diag((1 - z)(1 - n^2)) [diag((W_hn h + b_hn) r (1 - r)) W_hr + diag(r) W_hn]
        """
        hh, n, h_prev = cache
        H = n.shape[-1]
        r, z, hn = hh[..., :H], hh[..., H:2 * H], hh[..., 2 * H:]
        W_hr, W_hz, W_hn = W_hh[:H], W_hh[H:2 * H], W_hh[2 * H:]
        dn = (1.0 - z) * (1.0 - n * n)                    # dh_t / d(pre-activation of n)
        J = ((h_prev - n) * z * (1.0 - z))[:, :, None] * W_hz
        J += (dn * hn * r * (1.0 - r))[:, :, None] * W_hr
        J += (dn * r)[:, :, None] * W_hn
        J[:, np.arange(H), np.arange(H)] += z
        return J
