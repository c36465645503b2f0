"""Fused LSTM and GRU steps: the same arithmetic as ``lstm.py`` / ``gru.py``, one pass per step.

The readable cells run a dozen NumPy calls per step over the (B, G*H) gate block (activations,
products, sums), each a full pass through memory with its own call overhead; on small models
those passes, not the matrix products, were most of the time. Here each step is one matrix
product (NumPy, BLAS) and one Numba-compiled pass over the gate block: the forward pass reads
h_{t-1} W_hh^T and the input part and writes gates, c_t and h_t; the backward pass reads the
cache and writes every gradient of the step.

In float32 the forward pass computes tanh itself, as ``rational_tanh`` (a ratio of two
polynomials, within 8 ulp of the true value against ~1.4 for libm's tanhf): a call to a scalar
tanh cannot be vectorised, and that pass alone would then take longer than the NumPy passes it
replaces. In float64 (gradient checks, reference runs) the forward step is the readable cell's,
with NumPy's vectorised tanh (libm's scalar tanh inside the pass measured 35% slower end to
end). Sigmoids are (1 + tanh(x/2)) / 2, as in the readable cells. Caches and results have exactly the layout of the
readable cells, so the two are interchangeable and tested equal (float64 to 1e-12, float32 to
a few ulp per tanh).

The Transformer's GELU (``nn/transformer_fused.py``) uses the same float32 tanh, so its forward
kernel is compiled here too: Numba's disk cache checks only the file a kernel is defined in, so a
kernel elsewhere that called this tanh would keep an edited tanh's old code.

Numba is imported on first use; compiled kernels are cached on disk (``cache=True``), so only
the first run on a machine pays the compile time (``benchmarks/charlm_speed.py`` reports it).
``rnnlab.nn.cells.use_fused(False)`` (or ``RNNLAB_FUSED=0``) keeps the readable cells everywhere.
"""

from __future__ import annotations

import functools

import numpy as np

from rnnlab.nn.cells.gru import GRUCell
from rnnlab.nn.cells.lstm import LSTMCell

gate_tanh = None            # scalar_tanh32 compiled for the kernels, made by _compile()

# The kernels' constants, as float32: exact in both precisions, so a float32 gate block stays in
# float32 (SIMD lanes twice as wide) and a float64 one loses nothing. Written as 1.0 / 0.5, Numba
# types them float64 and promotes every float32 product: 2-3x slower kernels (measured).
ONE, HALF = np.float32(1.0), np.float32(0.5)

# Every rnnlab kernel's Numba options. Contraction to FMA and reciprocals may change the last bit;
# no 'nnan'/'ninf', so a NaN or an inf still reaches the loss and the guards. error_model="numpy":
# a division is a vector division, not a check for zero (that check alone kept the loops scalar,
# 6x slower). cache=True: compiled once per machine.
JIT_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": {"contract", "arcp"}}
NEG_ZERO = np.float32(-0.0)      # adding it changes nothing, not even the sign of a zero (+0.0 would)

# tanh(x) ~ x P(x^2) / Q(x^2) for |x| <= TANH_CLIP (beyond it float32's tanh is +-1). Coefficients
# fitted for rnnlab by iteratively reweighted least squares on the relative error over [0, 9]
# (fit error 2e-8; the float32 evaluation's own rounding brings the worst case to ~6 ulp).
TANH_CLIP = np.float32(9.0)
TANH_P = tuple(np.float32(v) for v in (0.999999979543186, 0.13381059602470888, 0.0034956277822169577,
                                       2.060970171248043e-05, 1.3355439083978635e-08))
TANH_Q = tuple(np.float32(v) for v in (1.0, 0.46714375226509675, 0.025877134866961783,
                                       0.0003285698336519304, 7.776894725659493e-07))
P0, P1, P2, P3, P4 = TANH_P
GELU_C = np.float32(np.sqrt(2.0 / np.pi))    # GELU's constants (tanh form), float32 as above
GELU_A = np.float32(0.044715)
Q0, Q1, Q2, Q3, Q4 = TANH_Q


def scalar_tanh32(x):
    """tanh of one float32 as the forward kernels compute it (compiled there as ``gate_tanh``):
    NaN stays NaN, beyond +-TANH_CLIP (and at +-inf) exactly +-1, never past +-1."""
    v = TANH_CLIP if x > TANH_CLIP else x                       # comparisons, not min/max: NaN passes
    v = -TANH_CLIP if v < -TANH_CLIP else v
    s = v * v
    t = v * ((((P4 * s + P3) * s + P2) * s + P1) * s + P0) / ((((Q4 * s + Q3) * s + Q2) * s + Q1) * s + Q0)
    t = ONE if t > ONE else t                                   # the fit overshoots 1 by an ulp near 8-9
    t = -ONE if t < -ONE else t
    t = ONE if x > TANH_CLIP else t                             # saturated: exactly +-1
    return -ONE if x < -TANH_CLIP else t


def rational_tanh(x):
    """``scalar_tanh32`` over an array, in plain Python (for tests and for reading)."""
    return np.vectorize(scalar_tanh32, otypes=[np.float32])(np.asarray(x, np.float32))


@functools.cache
def kernels() -> dict:
    """The compiled kernels (compiled or loaded from the cache on first call)."""
    return _compile()


def _compile():
    import numba  # start-up time: 0.3 s, paid by the first fused cell only

    jit = numba.njit(**JIT_OPTIONS)
    _ready_tanh(jit)

    # Each kernel works one batch row at a time (a row of the gate block is 2-4 KB, so its
    # several loops stay in L1 and memory is crossed once per step), and each loop writes one
    # array and reads few: LLVM vectorises a loop only if its runtime aliasing checks stay
    # under its limit (the LSTM backward as one loop over seven arrays: 7.5 us for batch 32,
    # hidden 128; as six such loops: 4.1 us). Indexing a[b, j], not a row view a[b]: a view
    # costs a reference count up and down (~0.1 us a row, measured).
    @jit
    def lstm_forward(a, xp, c_prev, c, tc, h):
        """a (B, 4H) holds h_{t-1} W_hh^T; adds the input part xp (B or 1 rows), writes the gates
        i, f, g, o back into a, and c_t, tanh(c_t), h_t = o tanh(c_t)."""
        B, H = c.shape
        for b in range(B):
            r = b if xp.shape[0] > 1 else 0
            # One loop and one call site for the four gates: written as three loops (i f, g, o),
            # LLVM inlined and vectorised gate_tanh in only some of them, and the forward pass
            # took 2.5x as long (31 against 12 us for batch 32, hidden 128; the same bits)
            for k in range(4 * H):                                  # i, f, o = sigmoid, g = tanh
                g = 2 * H <= k < 3 * H
                s = ONE if g else HALF                              # sigmoid(x) = 1/2 + tanh(x/2)/2
                a[b, k] = (NEG_ZERO if g else HALF) + s * gate_tanh(s * (a[b, k] + xp[r, k]))
            for j in range(H):                                      # c_t = f c_{t-1} + i g
                c[b, j] = a[b, H + j] * c_prev[b, j] + a[b, j] * a[b, 2 * H + j]
            for j in range(H):
                tc[b, j] = gate_tanh(c[b, j])
            for j in range(H):                                      # h_t = o tanh(c_t)
                h[b, j] = a[b, 3 * H + j] * tc[b, j]

    @jit
    def lstm_backward(a, c_prev, tc, dh, dc, da, dc_prev):
        """dL/d(pre-activations) into da (B, 4H) and dL/dc_{t-1}, from dL/dh_t and dL/dc_t."""
        B, H = dh.shape
        for b in range(B):
            for j in range(H):                                      # dL/dc_t: through h = o tanh(c), plus dc
                t = tc[b, j]
                dc_prev[b, j] = dh[b, j] * a[b, 3 * H + j] * (ONE - t * t) + dc[b, j]
            for j in range(H):                                      # through sigmoid(a_o)
                o = a[b, 3 * H + j]
                da[b, 3 * H + j] = dh[b, j] * tc[b, j] * o * (ONE - o)
            for j in range(H):                                      # through c_t = f c_{t-1} + i g: i
                i = a[b, j]
                da[b, j] = dc_prev[b, j] * a[b, 2 * H + j] * i * (ONE - i)
            for j in range(H):                                      # f
                f = a[b, H + j]
                da[b, H + j] = dc_prev[b, j] * c_prev[b, j] * f * (ONE - f)
            for j in range(H):                                      # g
                g = a[b, 2 * H + j]
                da[b, 2 * H + j] = dc_prev[b, j] * a[b, j] * (ONE - g * g)
            for j in range(H):                                      # c_{t-1}
                dc_prev[b, j] *= a[b, H + j]

    @jit
    def gru_forward(hh, xp, b_hn, h_prev, n, h):
        """hh (B, 3H) holds h_{t-1} W_hh^T; writes r, z and W_hn h + b_hn back into it, n, and
        h_t = n + z (h_{t-1} - n), with n = tanh(x_n + r (W_hn h + b_hn))."""
        B, H = h.shape
        for b in range(B):
            q = b if xp.shape[0] > 1 else 0
            for k in range(2 * H):                                  # r, z = sigmoid
                hh[b, k] = HALF + HALF * gate_tanh(HALF * (hh[b, k] + xp[q, k]))
            for j in range(H):
                hh[b, 2 * H + j] += b_hn[j]                        # W_hn h + b_hn
            for j in range(H):                                      # n = tanh(x_n + r (W_hn h + b_hn))
                n[b, j] = gate_tanh(xp[q, 2 * H + j] + hh[b, j] * hh[b, 2 * H + j])
            for j in range(H):                                      # h_t = n + z (h_{t-1} - n)
                h[b, j] = n[b, j] + hh[b, H + j] * (h_prev[b, j] - n[b, j])

    @jit
    def gru_backward(hh, n, h_prev, dh, da, d_hh, dh_direct):
        """dL/d(input part) into da, dL/d(h W_hh^T + b_hh) into d_hh, and the direct z h path."""
        B, H = dh.shape
        for b in range(B):
            for j in range(H):                                      # through sigmoid(a_z)
                z = hh[b, H + j]
                da[b, H + j] = (h_prev[b, j] - n[b, j]) * dh[b, j] * z * (ONE - z)
            for j in range(H):                                      # through z * h_{t-1}
                dh_direct[b, j] = dh[b, j] * hh[b, H + j]
            for j in range(H):                                      # through tanh: pre-activation of n
                z, nv = hh[b, H + j], n[b, j]
                da[b, 2 * H + j] = dh[b, j] * (ONE - z) * (ONE - nv * nv)
            for j in range(H):                                      # through r (W_hn h + b_hn)
                r = hh[b, j]
                da[b, j] = da[b, 2 * H + j] * hh[b, 2 * H + j] * r * (ONE - r)
            for j in range(2 * H):                                  # (three stores per j in one loop: 1.5x slower)
                d_hh[b, j] = da[b, j]
            for j in range(H):                                      # the recurrent n part is scaled by r
                d_hh[b, 2 * H + j] = da[b, 2 * H + j] * hh[b, j]

    return {"lstm_forward": lstm_forward, "lstm_backward": lstm_backward,
            "gru_forward": gru_forward, "gru_backward": gru_backward}


def _ready_tanh(jit) -> None:
    """Compile ``gate_tanh`` once. A module global, not a local: a kernel that calls a function
    from its enclosing scope is compiled again in every process (Numba keys its cache on the
    closure), 3.5 s a run."""
    global gate_tanh
    if gate_tanh is None:
        gate_tanh = jit(scalar_tanh32)


@functools.cache
def gelu_kernel():
    """The Transformer's GELU forward kernel, compiled (or loaded) on its own: here for the tanh
    it calls (module docstring), apart from the cells' kernels so that a Transformer loads only it."""
    import numba  # start-up time: Numba loads only for a model with fused kernels

    jit = numba.njit(**JIT_OPTIONS)
    _ready_tanh(jit)

    @jit
    def gelu_forward(x, y, t):
        """y = x (1 + t) / 2 with t = tanh(c (x + a x^3)) over flat arrays, t kept for backward
        (``transformer_fused.gelu``)."""
        for i in range(x.size):
            v = x[i]
            tt = gate_tanh(GELU_C * (v + GELU_A * (v * v * v)))
            t[i] = tt
            y[i] = HALF * v * (ONE + tt)

    return gelu_forward


def _kernel_fits(h_prev, xp_t, G: int) -> bool:
    """The forward kernels take float32 and an input part of B rows or one row for all (they
    do not check bounds); anything else goes through the readable step, which broadcasts or
    says what is wrong. float64 goes there too (module docstring). Stacked members (K, B, ...)
    fit when every array is contiguous: the kernels then run over K*B rows."""
    B, H = int(np.prod(h_prev.shape[:-1])), h_prev.shape[-1]
    return (h_prev.dtype == np.float32 and xp_t.dtype == np.float32 and h_prev.flags.c_contiguous
            and xp_t.flags.c_contiguous and xp_t.ndim == h_prev.ndim and xp_t.shape[-1] == G * H
            and (xp_t.shape[:-1] == h_prev.shape[:-1] or (xp_t.ndim == 2 and xp_t.shape[0] in (1, B))))


def _flat(a):
    """(K, B, X) as (K*B, X), a view (the arrays the kernels see are contiguous)."""
    return a.reshape(-1, a.shape[-1])


def warm_up(cell_types=None, dtypes=(np.float32, np.float64)) -> None:
    """Compile (or load from the cache) the kernels of ``cell_types`` (default: both fused cells)
    for ``dtypes``, by running each cell once in each precision."""
    for cell, G in ((FusedLSTMCell(), 4), (FusedGRUCell(), 3)):
        if cell_types is not None and type(cell) not in cell_types:
            continue
        for dt in dtypes:
            z = np.zeros((2, 3), dt)
            carry = (z, z) if G == 4 else (z,)
            W = np.zeros((G * 3, 3), dt)
            _, cache = cell.forward_step(W.T.copy(), np.zeros(G * 3, dt), np.zeros((2, G * 3), dt), carry,
                                         np.empty((2, 3), dt))
            cell.backward_step(W, cache, tuple(np.ones((2, 3), dt) for _ in carry), np.empty((2, G * 3), dt))


class FusedLSTMCell(LSTMCell):
    """``LSTMCell`` as one matrix product and one compiled pass per step, each way (forward:
    float32 only)."""

    def forward_step(self, W_hhT, b_hh, xp_t, carry, out):
        h_prev, c_prev = carry
        if not _kernel_fits(h_prev, xp_t, 4):                 # float64, or an input part to broadcast
            return super().forward_step(W_hhT, b_hh, xp_t, carry, out)
        a = np.matmul(h_prev, W_hhT)                          # (B, 4H)
        c, tc = np.empty_like(c_prev), np.empty_like(c_prev)
        kernels()["lstm_forward"](_flat(a), _flat(xp_t), _flat(c_prev), _flat(c), _flat(tc), _flat(out))
        return (out, c), (a, c_prev, tc)

    def backward_step(self, W_hh, cache, d_carry, out):
        a, c_prev, tc = cache
        dh, dc = d_carry
        if not all(x.flags.c_contiguous for x in (a, c_prev, tc, dh, dc, out)):
            return super().backward_step(W_hh, cache, d_carry, out)
        dc_prev = np.empty_like(dh)
        kernels()["lstm_backward"](*map(_flat, (a, c_prev, tc, dh, dc, out, dc_prev)))
        dh_prev = np.matmul(out, W_hh)                        # through h_{t-1} W_hh^T  (B, H)
        return (dh_prev, dc_prev), out, out


class FusedGRUCell(GRUCell):
    """``GRUCell`` as one matrix product and one compiled pass per step, each way (forward:
    float32 only)."""

    def forward_step(self, W_hhT, b_hh, xp_t, carry, out):
        (h_prev,) = carry
        if not _kernel_fits(h_prev, xp_t, 3):                 # float64, or an input part to broadcast
            return super().forward_step(W_hhT, b_hh, xp_t, carry, out)
        H = h_prev.shape[-1]
        hh = np.matmul(h_prev, W_hhT)                         # (B, 3H): h W_hh^T
        if b_hh is not None and b_hh.ndim > 1:                # members' own b_hn, added here: the
            hh[..., 2 * H:] += b_hh[..., None, 2 * H:]        # kernel's + 0 then changes no bit
            b_hh = None
        b_hn = b_hh[2 * H:] if b_hh is not None else np.zeros(H, hh.dtype)
        n = np.empty_like(h_prev)
        kernels()["gru_forward"](_flat(hh), _flat(xp_t), b_hn, _flat(h_prev), _flat(n), _flat(out))
        return (out,), (hh, n, h_prev)

    def backward_step(self, W_hh, cache, d_carry, out):
        hh, n, h_prev = cache
        (dh,) = d_carry
        if not all(x.flags.c_contiguous for x in (hh, n, h_prev, dh, out)):
            return super().backward_step(W_hh, cache, d_carry, out)
        d_hh = np.empty_like(out)
        direct = np.empty_like(dh)
        kernels()["gru_backward"](*map(_flat, (hh, n, h_prev, dh, out, d_hh, direct)))
        dh_prev = np.matmul(d_hh, W_hh)                       # through h W_hh^T
        dh_prev += direct
        return (dh_prev,), out, d_hh
