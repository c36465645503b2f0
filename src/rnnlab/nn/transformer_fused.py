"""Fused float32 passes for the Transformer: GELU, LayerNorm and the masked softmax, one pass each.

The readable functions in ``transformer.py`` run each of these as several NumPy calls, each a full
pass through memory (GELU forward is eight, its backward eleven). At the char model's d 128 x 2
those passes, not the matrix products, made rnnlab 0.64x PyTorch's training speed: GELU alone took
as long as the four linear layers' forward products. Here each is one Numba-compiled pass (the
softmax: two, around NumPy's vectorised exp), as ``nn/cells/fused.py`` does for the gated cells,
whose float32 tanh (``scalar_tanh32``, within a few ulp) GELU uses too: GELU's forward kernel is
compiled there, beside that tanh (Numba's cache tracks only a kernel's own file).

float32 only: float64 models (gradient checks, the PyTorch parity tests) keep the readable path,
which stays the reference; the two are tested equal to float32 rounding
(``tests/nn/test_transformer_fused.py``). The row sums are reassociated so that they vectorise,
so a sum can differ from NumPy's pairwise sum in its last bits. The same switch as the cells
(``rnnlab.nn.cells.use_fused``, ``RNNLAB_FUSED=0``) turns these off for models built afterwards.
"""

from __future__ import annotations

import functools

import numpy as np

from rnnlab.nn.cells import fused as cell_kernels
from rnnlab.nn.cells.fused import GELU_C, HALF, JIT_OPTIONS, ONE

GELU_3A = np.float32(3 * 0.044715)           # float32 constants keep the kernels in float32
NEG_INF = np.float32(-np.inf)


@functools.cache
def kernels() -> dict:
    """The compiled kernels (compiled, or loaded from Numba's cache, on first call)."""
    return _compile()


def _compile():
    import numba  # start-up time: Numba loads only for a model with fused passes

    jit = numba.njit(**JIT_OPTIONS)
    # sums along a row vectorise only when they may be reassociated ('nsz': a -0.0 sum may be +0.0)
    jit_sums = numba.njit(**{**JIT_OPTIONS, "fastmath": JIT_OPTIONS["fastmath"] | {"reassoc", "nsz"}})

    @jit
    def gelu_backward(dy, x, t):
        """dL/dx into dy (in place), from dL/dy, x and the forward's t."""
        for i in range(x.size):
            v, tt = x[i], t[i]
            dy[i] *= HALF * (ONE + tt) + HALF * v * (ONE - tt * tt) * GELU_C * (ONE + GELU_3A * (v * v))

    @jit_sums
    def layer_norm_forward(x, w, b, eps, xhat, rstd, y):
        """Per row of x (N, d): mean, biased variance (two passes), xhat, rstd and y = xhat w + b."""
        N, d = x.shape
        inv_d = ONE / np.float32(d)
        for r in range(N):
            s = np.float32(0.0)
            for j in range(d):
                s += x[r, j]
            mu = s * inv_d
            q = np.float32(0.0)
            for j in range(d):
                c = x[r, j] - mu
                xhat[r, j] = c
                q += c * c
            rs = ONE / np.sqrt(q * inv_d + eps)
            rstd[r] = rs
            for j in range(d):
                xhat[r, j] *= rs
            for j in range(d):
                y[r, j] = xhat[r, j] * w[j] + b[j]

    @jit_sums
    def layer_norm_backward(dy, xhat, rstd, w, dw, db, dx):
        """dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy w; adds into dw and db."""
        N, d = dy.shape
        inv_d = ONE / np.float32(d)
        for r in range(N):
            s1 = np.float32(0.0)
            s2 = np.float32(0.0)
            for j in range(d):
                g = dy[r, j] * w[j]                                  # through * weight
                dx[r, j] = g
                s1 += g
                s2 += g * xhat[r, j]
            s1 *= inv_d
            s2 *= inv_d
            rs = rstd[r]
            for j in range(d):                                       # through the normalisation
                dx[r, j] = rs * (dx[r, j] - s1 - xhat[r, j] * s2)
            for j in range(d):
                dw[j] += dy[r, j] * xhat[r, j]
            for j in range(d):
                db[j] += dy[r, j]

    @jit_sums
    def softmax_shift(s, allowed, scale):
        """s (B, h, Tq, Tk) in place: scale s - (its row's largest allowed value), -inf where not
        ``allowed`` (the same shape; a broadcast view); np.exp then gives the unnormalised weights."""
        B, H, Tq, Tk = s.shape
        for b in range(B):
            for h in range(H):
                for i in range(Tq):
                    m = NEG_INF
                    for j in range(Tk):
                        v = s[b, h, i, j] * scale
                        s[b, h, i, j] = v
                        if allowed[b, h, i, j] and v > m:
                            m = v
                    for j in range(Tk):
                        s[b, h, i, j] = s[b, h, i, j] - m if allowed[b, h, i, j] else NEG_INF

    @jit_sums
    def softmax_normalise(p):
        """Each row of p (B, h, Tq, Tk) divided by its sum, in place."""
        B, H, Tq, Tk = p.shape
        for b in range(B):
            for h in range(H):
                for i in range(Tq):
                    s = np.float32(0.0)
                    for j in range(Tk):
                        s += p[b, h, i, j]
                    r = ONE / s
                    for j in range(Tk):
                        p[b, h, i, j] *= r

    @jit_sums
    def softmax_backward(dp, p, scale):
        """dL/d(raw scores) into dp, in place: scale p (dp - sum(dp p)) per row."""
        B, H, Tq, Tk = dp.shape
        for b in range(B):
            for h in range(H):
                for i in range(Tq):
                    s = np.float32(0.0)
                    for j in range(Tk):
                        s += dp[b, h, i, j] * p[b, h, i, j]
                    for j in range(Tk):
                        dp[b, h, i, j] = scale * p[b, h, i, j] * (dp[b, h, i, j] - s)

    return {"gelu_forward": cell_kernels.gelu_kernel(), "gelu_backward": gelu_backward,
            "layer_norm_forward": layer_norm_forward, "layer_norm_backward": layer_norm_backward,
            "softmax_shift": softmax_shift, "softmax_normalise": softmax_normalise,
            "softmax_backward": softmax_backward}


def gelu(x):
    """``transformer.gelu`` in one pass: returns (y, tanh term)."""
    x = np.ascontiguousarray(x)
    y, t = np.empty_like(x), np.empty_like(x)
    kernels()["gelu_forward"](x.reshape(-1), y.reshape(-1), t.reshape(-1))
    return y, t


def gelu_backward(dy, x, t):
    """``transformer.gelu_backward`` in one pass (writes into a copy of dy unless dy is writable
    and contiguous, then into dy itself: callers pass a gradient no one else holds)."""
    dy = np.require(dy, requirements=("C", "W"))
    kernels()["gelu_backward"](dy.reshape(-1), np.ascontiguousarray(x).reshape(-1), t.reshape(-1))
    return dy


def layer_norm(x, weight, bias, eps):
    """LayerNorm over the last axis -> (y, xhat, rstd (..., 1)), the readable cache's layout."""
    x = np.ascontiguousarray(x)
    d = x.shape[-1]
    y, xhat = np.empty_like(x), np.empty_like(x)
    rstd = np.empty(x.shape[:-1] + (1,), x.dtype)
    kernels()["layer_norm_forward"](x.reshape(-1, d), weight, bias, x.dtype.type(eps), xhat.reshape(-1, d),
                                    rstd.reshape(-1), y.reshape(-1, d))
    return y, xhat, rstd


def layer_norm_backward(dy, xhat, rstd, weight, d_weight, d_bias):
    """dL/dx of ``layer_norm``; adds the weight and bias gradients into ``d_weight``, ``d_bias``."""
    dy = np.ascontiguousarray(dy)
    d = dy.shape[-1]
    dx = np.empty_like(dy)
    kernels()["layer_norm_backward"](dy.reshape(-1, d), xhat.reshape(-1, d), rstd.reshape(-1), weight,
                                     d_weight, d_bias, dx.reshape(-1, d))
    return dx


def masked_softmax(s, allowed, scale: float):
    """softmax(scale s) over the last axis where ``allowed`` (any shape that broadcasts to s's, as
    for ``np.where``), 0 elsewhere, computed in s itself."""
    s = np.require(s, requirements=("C", "W"))
    kernels()["softmax_shift"](s, np.broadcast_to(np.asarray(allowed, bool), s.shape), s.dtype.type(scale))
    np.exp(s, out=s)
    kernels()["softmax_normalise"](s)
    return s


def masked_softmax_backward(dp, p, scale: float):
    """dL/d(raw scores) of ``masked_softmax`` from dL/dp, computed in dp itself."""
    dp = np.require(dp, requirements=("C", "W"))
    kernels()["softmax_backward"](dp, np.ascontiguousarray(p), dp.dtype.type(scale))
    return dp


def fits(*arrays) -> bool:
    """Whether the fused passes apply: every array float32 (float64 keeps the readable path)."""
    return all(a.dtype == np.float32 for a in arrays)


def warm_up() -> None:
    """Compile (or load from the cache) every kernel by running each once on a tiny input."""
    x = np.ones((1, 2, 2, 2), np.float32)
    y, t = gelu(x)
    gelu_backward(np.ones_like(x), x, t)
    w, z = np.ones(2, np.float32), np.zeros(2, np.float32)
    _, xhat, rstd = layer_norm(x, w, z, 1e-5)
    layer_norm_backward(x, xhat, rstd, w, np.zeros_like(w), np.zeros_like(w))
    p = masked_softmax(x.copy(), np.ones((1, 1, 2, 2), bool), 1.0)
    masked_softmax_backward(x.copy(), p, 1.0)
