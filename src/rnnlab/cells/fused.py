"""Fused LSTM and GRU steps: the same arithmetic as ``lstm.py`` / ``gru.py``, one pass per step.

The readable cells run a dozen NumPy calls per step over the (B, G*H) gate block (activations,
products, sums), each a full pass through memory with its own call overhead; on small models
those passes, not the matrix products, were most of the time. Here the arithmetic of a step is
a few Numba-compiled loops (the whole backward step is one), while tanh stays one vectorised
NumPy pass over all gates at once (a scalar tanh in a compiled loop measured 20x slower than
NumPy's SIMD one); the matrix products stay NumPy (BLAS).
Caches and results have exactly the layout of the readable cells, so the two are
interchangeable and tested equal (float64 to 1e-12, float32 to rounding).

Numba is imported on first use; compiled kernels are cached on disk (``cache=True``), so only
the first run on a machine pays the compile time (``benchmarks/charlm_speed.py`` reports it).
``rnnlab.cells.use_fused(False)`` (or ``RNNLAB_FUSED=0``) keeps the readable cells everywhere.
"""

from __future__ import annotations

import numpy as np

from .gru import GRUCell
from .lstm import LSTMCell

_KERNELS = None


def kernels():
    """The compiled kernels (compiled or loaded from the cache on first call)."""
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = _compile()
    return _KERNELS


def _compile():
    import numba

    # Transcendentals stay in NumPy: its tanh is vectorised (SIMD), a scalar tanh in a compiled
    # loop measured 20x slower. The kernels do the arithmetic around them, one pass each.
    jit = numba.njit(cache=True, nogil=True)

    @jit
    def lstm_pre(a, xp):
        """a (B, 4H) += xp; the sigmoid gates halved, so one tanh pass gives every gate."""
        B, G = a.shape
        H = G // 4
        for b in range(B):
            for k in range(G):
                v = a[b, k] + xp[b, k]
                a[b, k] = v if 2 * H <= k < 3 * H else 0.5 * v      # g keeps its scale
    @jit
    def lstm_cell(a, c_prev, c):
        """tanh'd gates -> i, f, o = (1 + t) / 2 in place; c_t = f c_{t-1} + i g."""
        B, H = c.shape
        for b in range(B):
            for j in range(H):
                i = 0.5 * (1.0 + a[b, j])
                f = 0.5 * (1.0 + a[b, H + j])
                o = 0.5 * (1.0 + a[b, 3 * H + j])
                a[b, j], a[b, H + j], a[b, 3 * H + j] = i, f, o
                c[b, j] = f * c_prev[b, j] + i * a[b, 2 * H + j]

    @jit
    def lstm_backward(a, c_prev, tc, dh, dc, da, dc_prev):
        """dL/d(pre-activations) into da (B, 4H) and dL/dc_{t-1}, from dL/dh_t and dL/dc_t."""
        B, H = dh.shape
        for b in range(B):
            for j in range(H):
                i, f, g, o = a[b, j], a[b, H + j], a[b, 2 * H + j], a[b, 3 * H + j]
                t = tc[b, j]
                d = dh[b, j]
                dct = d * o * (1.0 - t * t) + dc[b, j]         # through h = o tanh(c), plus dc
                da[b, j] = dct * g * i * (1.0 - i)              # through sigmoid(a_i)
                da[b, H + j] = dct * c_prev[b, j] * f * (1.0 - f)
                da[b, 2 * H + j] = dct * i * (1.0 - g * g)      # through tanh(a_g)
                da[b, 3 * H + j] = d * t * o * (1.0 - o)        # through sigmoid(a_o)
                dc_prev[b, j] = dct * f                         # through c_t = f c_{t-1} + ...

    @jit
    def gru_pre(hh, xp, b_hn):
        """hh (B, 3H): r, z parts := (hh + xp) / 2 (one tanh pass then gives the sigmoids);
        the n part := W_hn h + b_hn."""
        B, G = hh.shape
        H = G // 3
        for b in range(B):
            for k in range(2 * H):
                hh[b, k] = 0.5 * (hh[b, k] + xp[b, k])
            for j in range(H):
                hh[b, 2 * H + j] += b_hn[j]

    @jit
    def gru_gates(hh, xp, n):
        """r, z = (1 + t) / 2 in place; n's pre-activation x_n + r (W_hn h + b_hn) into n."""
        B, H = n.shape
        for b in range(B):
            for j in range(H):
                r = 0.5 * (1.0 + hh[b, j])
                hh[b, j] = r
                hh[b, H + j] = 0.5 * (1.0 + hh[b, H + j])
                n[b, j] = xp[b, 2 * H + j] + r * hh[b, 2 * H + j]

    @jit
    def gru_mix(hh, n, h_prev, h):
        """h_t = n + z (h_{t-1} - n)."""
        B, H = h.shape
        for b in range(B):
            for j in range(H):
                h[b, j] = n[b, j] + hh[b, H + j] * (h_prev[b, j] - n[b, j])

    @jit
    def gru_backward(hh, n, h_prev, dh, da, d_hh, dh_direct):
        """dL/d(input part) into da, dL/d(h W_hh^T + b_hh) into d_hh, and the direct z h path."""
        B, H = dh.shape
        for b in range(B):
            for j in range(H):
                r, z, hn = hh[b, j], hh[b, H + j], hh[b, 2 * H + j]
                nv, d = n[b, j], dh[b, j]
                dz = (h_prev[b, j] - nv) * d * z * (1.0 - z)    # through sigmoid(a_z)
                dn = d * (1.0 - z) * (1.0 - nv * nv)             # through tanh: pre-activation of n
                dr = dn * hn * r * (1.0 - r)                     # through r (W_hn h + b_hn)
                da[b, j], da[b, H + j], da[b, 2 * H + j] = dr, dz, dn
                d_hh[b, j], d_hh[b, H + j], d_hh[b, 2 * H + j] = dr, dz, dn * r
                dh_direct[b, j] = d * z                          # through z * h_{t-1}

    return {"lstm_pre": lstm_pre, "lstm_cell": lstm_cell, "lstm_backward": lstm_backward,
            "gru_pre": gru_pre, "gru_gates": gru_gates, "gru_mix": gru_mix, "gru_backward": gru_backward}


class FusedLSTMCell(LSTMCell):
    """``LSTMCell`` in six passes per step instead of about sixteen."""

    def forward_step(self, W_hhT, b_hh, xp_t, carry, out):
        h_prev, c_prev = carry
        k = kernels()
        a = np.dot(h_prev, W_hhT)                             # (B, 4H)
        k["lstm_pre"](a, np.broadcast_to(xp_t, a.shape))      # + input part; sigmoid gates halved
        np.tanh(a, out=a)                                     # every gate in one vectorised pass
        c = np.empty_like(c_prev)
        k["lstm_cell"](a, c_prev, c)                          # i, f, o; c_t = f c_{t-1} + i g
        tc = np.tanh(c)
        H = c.shape[1]
        h = np.multiply(a[:, 3 * H:], tc, out=out)            # h_t = o tanh(c_t)
        return (h, c), (a, c_prev, tc)

    def backward_step(self, W_hh, cache, d_carry, out):
        a, c_prev, tc = cache
        dh, dc = d_carry
        dc_prev = np.empty_like(dh)
        kernels()["lstm_backward"](a, c_prev, tc, dh, dc, out, dc_prev)
        dh_prev = np.dot(out, W_hh)                           # through h_{t-1} W_hh^T  (B, H)
        return (dh_prev, dc_prev), out, out


class FusedGRUCell(GRUCell):
    """``GRUCell`` in six passes per step instead of about twelve."""

    def forward_step(self, W_hhT, b_hh, xp_t, carry, out):
        (h_prev,) = carry
        k = kernels()
        H = h_prev.shape[1]
        hh = np.dot(h_prev, W_hhT)                            # (B, 3H): h W_hh^T
        xp = np.broadcast_to(xp_t, hh.shape)
        b_hn = b_hh[2 * H:] if b_hh is not None else np.zeros(H, hh.dtype)
        k["gru_pre"](hh, xp, b_hn)
        rz = hh[:, :2 * H]
        np.tanh(rz, out=rz)                                   # r and z in one vectorised pass
        n = np.empty_like(h_prev)
        k["gru_gates"](hh, xp, n)                             # r, z; x_n + r (W_hn h + b_hn)
        np.tanh(n, out=n)
        k["gru_mix"](hh, n, h_prev, out)                      # h_t = n + z (h_{t-1} - n)
        return (out,), (hh, n, h_prev)

    def backward_step(self, W_hh, cache, d_carry, out):
        hh, n, h_prev = cache
        (dh,) = d_carry
        d_hh = np.empty_like(out)
        direct = np.empty_like(dh)
        kernels()["gru_backward"](hh, n, h_prev, dh, out, d_hh, direct)
        dh_prev = np.dot(d_hh, W_hh)                          # through h W_hh^T
        dh_prev += direct
        return (dh_prev,), out, d_hh
