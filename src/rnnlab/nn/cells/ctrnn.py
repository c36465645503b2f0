"""Continuous-time rate cell (CTRNN): one Euler step of tau dx/dt = -x + W_rec r + W_in u + b.

Equations (Song, Yang & Wang 2016; PsychRNN; nn4n), a = dt / tau::

    x_t = (1 - a) x_{t-1} + a (r_{t-1} W_hh^T + u_t W_ih^T + b_ih + b_hh) [+ noise]
    r_t = f(x_t)                                               f = relu, tanh or softplus

x is the unit's input current (its state), r its rate: what the readout and the next layer see.
The carry is (r, x), so ``carry[0]`` is the rate, as h is for the other cells. Noise enters through
the drive the loop hands the cell (``Recurrent`` adds it to the input part, see ``CTRNN``), so the
step itself is deterministic.

Shapes: u_t (B, D), r and x (B, H), W_ih (H, D), W_hh (H, H), b_ih and b_hh (H,).

Example::

    >>> import numpy as np
    >>> from rnnlab.nn.cells.ctrnn import CTRNNCell
    >>> cell = CTRNNCell(alpha=0.2, nonlinearity="relu")
    >>> W_ih, W_hh, b = np.eye(2), np.zeros((2, 2)), np.zeros(2)
    >>> xp = cell.project(np.ones((1, 2)), W_ih, b, b)        # (N, H) drive from the input
    >>> zero = np.zeros((1, 2))
    >>> (r, x), cache = cell.forward_step(W_hh.T.copy(), b, xp, (zero, zero), np.empty((1, 2)))
    >>> r                                                      # x = 0.8 * 0 + 0.2 * 1
    array([[0.2, 0.2]])
"""

from __future__ import annotations

import numpy as np

from rnnlab.nn.cells.members import rows, transposed

RATE_FUNCTIONS = ("relu", "tanh", "softplus")


def rate(x, nonlinearity: str, out=None):
    """r = f(x) for the cell's f; softplus written so that large x neither overflows nor loses r = x."""
    if nonlinearity == "relu":
        return np.maximum(x, 0, out=out)
    if nonlinearity == "tanh":
        return np.tanh(x, out=out)
    return np.logaddexp(0, x, out=out)                     # log(1 + e^x)


class CTRNNCell:
    gates = 1
    n_carry = 2                    # (r, x): the rate, and the current it is a function of
    split_hh_grad = False          # dL/d(recurrent part) == dL/d(input part): both are the drive

    def __init__(self, alpha: float, nonlinearity: str = "relu"):
        self.alpha = float(alpha)
        self.nonlinearity = nonlinearity
        # the values a rate can take: relu [0, inf), softplus (0, inf), tanh (-1, 1)
        self.h_range = (-1.0, 1.0) if nonlinearity == "tanh" else (0.0, np.inf)

    def project(self, X, W_ih, b_ih, b_hh):
        XP = X @ transposed(W_ih)                         # (N, H) the input's drive, every step at once
        if b_ih is not None:
            XP += rows(b_ih + b_hh)                       # both biases sit in the drive: fold them once
        return XP

    def forward_step(self, W_hhT, b_hh, xp_t, carry, out):
        r_prev, x_prev = carry
        z = np.matmul(r_prev, W_hhT, out=out)             # (B, H): r_{t-1} W_hh^T, in the layer's buffer
        z += xp_t                                         # the whole drive
        z -= x_prev
        z *= self.alpha
        x = z + x_prev                                    # x_t = x_{t-1} + a (drive - x_{t-1})
        r = rate(x, self.nonlinearity, out=out)           # r_t = f(x_t), where h_t goes
        return (r, x), None                               # f'(x_t) is read from r_t in prepare_backward

    def prepare_backward(self, caches, h_steps):
        """f'(x_t) for every step at once, from the rates h_steps = r_t (T, B, H):
        relu' = [r > 0], tanh' = 1 - r^2, softplus' = sigmoid(x) = 1 - exp(-r) (as -expm1(-r): exact
        where r is tiny)."""
        if self.nonlinearity == "relu":
            return (h_steps > 0).astype(h_steps.dtype)
        if self.nonlinearity == "tanh":
            d = np.multiply(h_steps, h_steps)
            return np.subtract(1.0, d, out=d)
        d = np.negative(h_steps)
        np.expm1(d, out=d)
        return np.negative(d, out=d)

    def backward_step(self, W_hh, cache, d_carry, out):
        d_rate = cache                                    # f'(x_t), one step of prepare_backward's array
        dr, dx = d_carry
        dx = dx + dr * d_rate                             # through r_t = f(x_t): dL/dx_t in total
        dz = np.multiply(dx, self.alpha, out=out)         # through a * drive: dL/d(drive_t)
        dr_prev = np.matmul(dz, W_hh)                     # through r_{t-1} W_hh^T  (B, H)
        dx *= 1.0 - self.alpha                            # through (1 - a) x_{t-1}
        return (dr_prev, dx), dz, dz
