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

# The kernels' constants, as float32: exact in both precisions, so a float32 gate block stays in
# float32 (SIMD lanes twice as wide) and a float64 one loses nothing. Written as 1.0 / 0.5, Numba
# types them float64 and promotes every float32 product: 2-3x slower kernels (measured).
ONE, HALF = np.float32(1.0), np.float32(0.5)


def kernels():
    """The compiled kernels (compiled or loaded from the cache on first call)."""
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = _compile()
    return _KERNELS


def _compile():
    import numba

    # Transcendentals stay in NumPy: its tanh is vectorised (SIMD), a scalar tanh in a compiled
    # loop measured 20x slower. The kernels do the arithmetic around them, one pass each, over
    # one batch row's gate slices at a time (contiguous, so the inner loops vectorise).
    jit = numba.njit(cache=True, nogil=True)

    @jit
    def lstm_pre(a, xp):
        """a (B, 4H) += xp; the sigmoid gates halved, so one tanh pass gives every gate."""
        B, G = a.shape
        H = G // 4
        for b in range(B):
            ab, xb = a[b], xp[b]
            for k in range(2 * H):                                  # i, f
                ab[k] = HALF * (ab[k] + xb[k])
            for k in range(2 * H, 3 * H):                           # g keeps its scale
                ab[k] = ab[k] + xb[k]
            for k in range(3 * H, G):                               # o
                ab[k] = HALF * (ab[k] + xb[k])

    @jit
    def lstm_cell(a, c_prev, c):
        """tanh'd gates -> i, f, o = (1 + t) / 2 in place; c_t = f c_{t-1} + i g."""
        B, H = c.shape
        for b in range(B):
            ai, af, ag, ao = a[b, :H], a[b, H:2 * H], a[b, 2 * H:3 * H], a[b, 3 * H:]
            cp, cb = c_prev[b], c[b]
            for j in range(H):
                i = HALF * (ONE + ai[j])
                f = HALF * (ONE + af[j])
                ai[j], af[j] = i, f
                ao[j] = HALF * (ONE + ao[j])
                cb[j] = f * cp[j] + i * ag[j]

    @jit
    def lstm_backward(a, c_prev, tc, dh, dc, da, dc_prev):
        """dL/d(pre-activations) into da (B, 4H) and dL/dc_{t-1}, from dL/dh_t and dL/dc_t."""
        B, H = dh.shape
        for b in range(B):
            ai, af, ag, ao = a[b, :H], a[b, H:2 * H], a[b, 2 * H:3 * H], a[b, 3 * H:]
            di, df, dg, do = da[b, :H], da[b, H:2 * H], da[b, 2 * H:3 * H], da[b, 3 * H:]
            cp, tcb, dhb, dcb, dcp = c_prev[b], tc[b], dh[b], dc[b], dc_prev[b]
            for j in range(H):
                i, f, g, o = ai[j], af[j], ag[j], ao[j]
                t, d = tcb[j], dhb[j]
                dct = d * o * (ONE - t * t) + dcb[j]                # through h = o tanh(c), plus dc
                di[j] = dct * g * i * (ONE - i)                     # through sigmoid(a_i)
                df[j] = dct * cp[j] * f * (ONE - f)
                dg[j] = dct * i * (ONE - g * g)                     # through tanh(a_g)
                do[j] = d * t * o * (ONE - o)                       # through sigmoid(a_o)
                dcp[j] = dct * f                                    # through c_t = f c_{t-1} + ...

    @jit
    def gru_pre(hh, xp, b_hn):
        """hh (B, 3H): r, z parts := (hh + xp) / 2 (one tanh pass then gives the sigmoids);
        the n part := W_hn h + b_hn."""
        B, G = hh.shape
        H = G // 3
        for b in range(B):
            hb, xb = hh[b], xp[b]
            for k in range(2 * H):
                hb[k] = HALF * (hb[k] + xb[k])
            for j in range(H):
                hb[2 * H + j] += b_hn[j]

    @jit
    def gru_gates(hh, xp, n):
        """r, z = (1 + t) / 2 in place; n's pre-activation x_n + r (W_hn h + b_hn) into n."""
        B, H = n.shape
        for b in range(B):
            hr, hz, hn, xn, nb = hh[b, :H], hh[b, H:2 * H], hh[b, 2 * H:], xp[b, 2 * H:], n[b]
            for j in range(H):
                r = HALF * (ONE + hr[j])
                hr[j] = r
                hz[j] = HALF * (ONE + hz[j])
                nb[j] = xn[j] + r * hn[j]

    @jit
    def gru_mix(hh, n, h_prev, h):
        """h_t = n + z (h_{t-1} - n)."""
        B, H = h.shape
        for b in range(B):
            hz, nb, hp, hb = hh[b, H:2 * H], n[b], h_prev[b], h[b]
            for j in range(H):
                hb[j] = nb[j] + hz[j] * (hp[j] - nb[j])

    @jit
    def gru_backward(hh, n, h_prev, dh, da, d_hh, dh_direct):
        """dL/d(input part) into da, dL/d(h W_hh^T + b_hh) into d_hh, and the direct z h path."""
        B, H = dh.shape
        for b in range(B):
            hr, hz, hn = hh[b, :H], hh[b, H:2 * H], hh[b, 2 * H:]
            dar, daz, dan = da[b, :H], da[b, H:2 * H], da[b, 2 * H:]
            dhr, dhz, dhn = d_hh[b, :H], d_hh[b, H:2 * H], d_hh[b, 2 * H:]
            nb, hp, dhb, direct = n[b], h_prev[b], dh[b], dh_direct[b]
            for j in range(H):
                r, z, nv, d = hr[j], hz[j], nb[j], dhb[j]
                dz = (hp[j] - nv) * d * z * (ONE - z)               # through sigmoid(a_z)
                dn = d * (ONE - z) * (ONE - nv * nv)                # through tanh: pre-activation of n
                dr = dn * hn[j] * r * (ONE - r)                     # through r (W_hn h + b_hn)
                dar[j], daz[j], dan[j] = dr, dz, dn
                dhr[j], dhz[j], dhn[j] = dr, dz, dn * r
                direct[j] = d * z                                   # through z * h_{t-1}

    return {"lstm_pre": lstm_pre, "lstm_cell": lstm_cell, "lstm_backward": lstm_backward,
            "gru_pre": gru_pre, "gru_gates": gru_gates, "gru_mix": gru_mix, "gru_backward": gru_backward}


def _as_rows(xp_t, shape):
    """The input part as one row per sequence (a fixed-point search passes one row for all);
    np.broadcast_to costs ~10 us a call, so only when needed."""
    return xp_t if xp_t.shape == shape else np.broadcast_to(xp_t, shape)


class FusedLSTMCell(LSTMCell):
    """``LSTMCell`` in six passes per step instead of about sixteen."""

    def forward_step(self, W_hhT, b_hh, xp_t, carry, out):
        h_prev, c_prev = carry
        k = kernels()
        a = np.dot(h_prev, W_hhT)                             # (B, 4H)
        k["lstm_pre"](a, _as_rows(xp_t, a.shape))             # + input part; sigmoid gates halved
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
        xp = _as_rows(xp_t, hh.shape)
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
