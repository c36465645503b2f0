"""A decoder-only (causal) Transformer with hand-written backward, behind the recurrent heads' API.

Pre-LN blocks (GPT-2 style)::

    e_t = x_t W_in^T + b_in  (or E[id_t])  +  P[t]                    (B, T, d)
    h   = h + attn(ln1(h));   h = h + mlp(ln2(h))                      num_layers times
    out = fc(ln_f(h))                                                  (B, T, K)

``attn`` is multi-head causal self-attention: position t attends to positions <= t only, so
output t never depends on inputs after t. ``mlp`` is Linear(d, 4d) -> GELU (tanh form) ->
Linear(4d, d). ``kind`` is the task's kind (``Task.kind``, ``rnnlab.checks.KINDS``) and picks the
readout: ``"classify"``/``"regress"`` (many-to-one, (B, K) read at each sequence's last valid
position), ``"tag"``/``"regress-steps"`` ((B, T, K) at every step) or ``"lm"`` (token ids (B, T) ->
logits (B, T, V), with ``step``/``generate``).

Letters: B batch, T positions, D input features, d = d_model, h heads of width d/h, K outputs,
V vocabulary. Parameter names map to a reference built from ``torch.nn`` modules through
``to_torch_state_dict`` (see there); the tests check outputs and gradients against it.
"""

from __future__ import annotations

import math

import numpy as np

from rnnlab.checks import KINDS, PER_STEP_KINDS, check_array, check_choice, check_int, check_lengths, setting
from rnnlab.errors import InputError
from rnnlab.nn import transformer_fused
from rnnlab.nn.cells import fused_in_effect
from rnnlab.nn.heads import check_generate, encode_text, sample_next
from rnnlab.nn.modules import Dropout, Embedding, Linear, Module

_GELU_C = math.sqrt(2.0 / math.pi)        # Python floats keep float32 arrays float32 (NEP 50)


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis (d,), as
    ``torch.nn.LayerNorm`` (biased variance, eps 1e-5): keeps the residual stream's scale fixed.
    In float32, one fused pass each way (``transformer_fused``) unless built with the fused kernels off."""

    def __init__(self, d: int, eps: float = 1e-5, dtype=np.float32):
        super().__init__(dtype)
        self.eps = eps
        self._register("weight", np.ones(d))
        self._register("bias", np.zeros(d))
        self.fused = fused_in_effect()
        self._cache = None

    def forward(self, x):
        if self.fused and transformer_fused.fits(x):
            y, *self._cache = transformer_fused.layer_norm(x, self.params["weight"], self.params["bias"], self.eps)
            return y
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        rstd = 1.0 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + self.eps)   # (..., 1)
        xhat = xc * rstd
        self._cache = (xhat, rstd)
        return xhat * self.params["weight"] + self.params["bias"]

    def backward(self, dy):
        xhat, rstd = self._cache
        if self.fused and transformer_fused.fits(dy, xhat):
            return transformer_fused.layer_norm_backward(dy, xhat, rstd, self.params["weight"],
                                                         self.grads["weight"], self.grads["bias"])
        d = xhat.shape[-1]
        self.grads["weight"] += (dy * xhat).reshape(-1, d).sum(axis=0)      # through * weight
        self.grads["bias"] += dy.reshape(-1, d).sum(axis=0)                 # through + bias
        dxhat = dy * self.params["weight"]
        # through the normalisation: dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))
        return rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                       - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))


def gelu(x):
    """GELU, tanh approximation (torch's approximate='tanh'): 0.5 x (1 + tanh(c (x + 0.044715 x^3))).

    Returns (y, tanh term); ``gelu_backward`` reuses the tanh. x*x*x, not x**3: NumPy's power
    made GELU 90% of a training step."""
    t = np.tanh(_GELU_C * (x + 0.044715 * (x * x * x)))
    return 0.5 * x * (1.0 + t), t


def gelu_backward(dy, x, t):
    """dL/dx of ``gelu`` at x (t its tanh term), given dL/dy."""
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * (x * x)))


def attend(q, k, v, allowed, fused=False):
    """The one attention: softmax(q k^T / sqrt(hd), masked) v for every head at once.

    q (B, h, Tq, hd), k and v (B, h, Tk, hd), ``allowed`` (B or 1, 1, Tq, Tk) boolean (causal
    and padding masks together; every row keeps at least one key). Returns the output
    (B, h, Tq, hd) and the attention weights (B, h, Tq, Tk) that ``attend_backward`` needs.
    Stable softmax: the row max is subtracted before exp; masked scores are -inf, weight 0.
    ``fused``: the softmax as ``transformer_fused.masked_softmax`` (float32).
    """
    if fused and transformer_fused.fits(q):
        p = transformer_fused.masked_softmax(q @ k.swapaxes(-1, -2), allowed, 1.0 / math.sqrt(q.shape[-1]))
        return p @ v, p
    s = (q @ k.swapaxes(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    s = np.where(allowed, s, -np.inf)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return p @ v, p


def attend_backward(d_o, q, k, v, p, fused=False):
    """dL/dq, dL/dk, dL/dv of ``attend`` from dL/d(output) (B, h, Tq, hd)."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    dv = p.swapaxes(-1, -2) @ d_o                                # through p v
    dp = d_o @ v.swapaxes(-1, -2)                                # (B, h, Tq, Tk)
    if fused and transformer_fused.fits(dp, p):                  # ds, scaled, in one pass
        ds = transformer_fused.masked_softmax_backward(dp, p, scale)
        return ds @ k, ds.swapaxes(-1, -2) @ q, dv
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))          # through the softmax (masked: p=0)
    dq = (ds @ k) * scale                                        # through q k^T / sqrt(hd)
    dk = (ds.swapaxes(-1, -2) @ q) * scale
    return dq, dk, dv


class CausalSelfAttention(Module):
    """Multi-head self-attention with a causal mask, laid out as ``torch.nn.MultiheadAttention``.

    ``in_proj_weight`` (3d, d) stacks W_q, W_k, W_v (rows [0:d], [d:2d], [2d:3d]) and
    ``in_proj_bias`` (3d,) their biases; head i uses columns i*hd:(i+1)*hd of q, k, v;
    ``out_proj`` is Linear(d, d). So the names and values copy straight into torch's module.

    forward(x (B, T, d), allowed, past=None) -> (B, T, d). ``past`` = (k, v) (B, h, P, hd)
    of earlier positions (the key/value cache); the new keys and values joined to it are left
    in ``self.present``.
    """

    def __init__(self, d: int, heads: int, *, rng: np.random.Generator, dtype=np.float32):
        super().__init__(dtype)
        if d % heads:
            raise InputError(f"CausalSelfAttention: d_model {d} is not divisible by heads {heads}; "
                             "choose d_model as a multiple of heads")
        self.d, self.heads = d, heads
        a = math.sqrt(6.0 / (d + 3 * d))                         # torch's xavier_uniform_ on (3d, d)
        self._register("in_proj_weight", rng.uniform(-a, a, (3 * d, d)))
        self._register("in_proj_bias", np.zeros(3 * d))
        self.out_proj = self._adopt("out_proj", Linear(d, d, rng=rng, init="pytorch", dtype=dtype))
        self.out_proj.params["bias"][...] = 0                    # torch zeroes out_proj.bias too
        self.fused = fused_in_effect()
        self.present = None
        self._cache = None

    def _split(self, z):
        B, T, _ = z.shape                                        # (B, T, d) -> (B, h, T, hd)
        return z.reshape(B, T, self.heads, -1).transpose(0, 2, 1, 3)

    def forward(self, x, allowed, past=None):
        B, T, d = x.shape
        # one (B*T, d) product: on (B, T, d) NumPy runs B small ones, 5x slower at d 128
        qkv = (x.reshape(-1, d) @ self.params["in_proj_weight"].T).reshape(B, T, 3 * d)
        qkv += self.params["in_proj_bias"]                       # (B, T, 3d)
        q, k, v = (self._split(qkv[..., i * d:(i + 1) * d]) for i in range(3))
        if past is not None:
            k, v = np.concatenate([past[0], k], axis=2), np.concatenate([past[1], v], axis=2)
        self.present = (k, v)
        o, p = attend(q, k, v, allowed, self.fused)
        o = o.transpose(0, 2, 1, 3).reshape(B, T, d)             # heads side by side
        self._cache = (x, q, k, v, p)
        return self.out_proj.forward(o)

    def backward(self, dy):
        """Backward of a forward without ``past`` (training); returns dL/dx (B, T, d)."""
        x, q, k, v, p = self._cache
        B, T, d = x.shape
        d_o = self._split(self.out_proj.backward(dy))            # through out_proj, into heads
        dq, dk, dv = attend_backward(d_o, q, k, v, p, self.fused)   # through the attention
        d_qkv = np.concatenate([z.transpose(0, 2, 1, 3).reshape(B, T, d) for z in (dq, dk, dv)],
                               axis=-1)                          # (B, T, 3d)
        d2 = d_qkv.reshape(-1, 3 * d)
        self.grads["in_proj_weight"] += d2.T @ x.reshape(-1, d)  # through x W_in^T
        self.grads["in_proj_bias"] += d2.sum(axis=0)             # through + b_in
        return (d2 @ self.params["in_proj_weight"]).reshape(B, T, d)   # one (B*T, 3d) product


class MLP(Module):
    """Position-wise feed-forward: fc2(gelu(fc1(x))), d -> 4d -> d (GELU fused in float32)."""

    def __init__(self, d: int, hidden: int, *, rng: np.random.Generator, dtype=np.float32):
        super().__init__(dtype)
        self.fc1 = self._adopt("fc1", Linear(d, hidden, rng=rng, init="pytorch", dtype=dtype))
        self.fc2 = self._adopt("fc2", Linear(hidden, d, rng=rng, init="pytorch", dtype=dtype))
        self.fused = fused_in_effect()
        self._cache = None

    def forward(self, x):
        a = self.fc1.forward(x)                                  # (B, T, 4d) pre-activation
        g, t = (transformer_fused.gelu if self.fused and transformer_fused.fits(a) else gelu)(a)
        self._cache = (a, t)
        return self.fc2.forward(g)

    def backward(self, dy):
        d_g = self.fc2.backward(dy)                              # through fc2 (a fresh array: the fused
        fused = self.fused and transformer_fused.fits(d_g)       # GELU writes its result into it)
        return self.fc1.backward((transformer_fused.gelu_backward if fused else gelu_backward)(d_g, *self._cache))


class Block(Module):
    """The one Transformer block, pre-LN: h = x + attn(ln1(x)); y = h + mlp(ln2(h)).

    Dropout (p = ``dropout``) on each branch before it joins the residual stream.
    """

    def __init__(self, d: int, heads: int, *, dropout: float = 0.0, rng: np.random.Generator,
                 dtype=np.float32):
        super().__init__(dtype)
        self.ln1 = self._adopt("ln1", LayerNorm(d, dtype=dtype))
        self.attn = self._adopt("attn", CausalSelfAttention(d, heads, rng=rng, dtype=dtype))
        self.ln2 = self._adopt("ln2", LayerNorm(d, dtype=dtype))
        self.mlp = self._adopt("mlp", MLP(d, 4 * d, rng=rng, dtype=dtype))
        self.drop1 = self._adopt("drop1", Dropout(dropout, rng=np.random.default_rng(rng.integers(2**31)),
                                                  dtype=dtype))
        self.drop2 = self._adopt("drop2", Dropout(dropout, rng=np.random.default_rng(rng.integers(2**31)),
                                                  dtype=dtype))

    def forward(self, x, allowed, past=None):
        h = x + self.drop1.forward(self.attn.forward(self.ln1.forward(x), allowed, past))
        return h + self.drop2.forward(self.mlp.forward(self.ln2.forward(h)))

    def backward(self, dy):
        # through the MLP branch (the residual passes dy on unchanged)
        dh = dy + self.ln2.backward(self.mlp.backward(self.drop2.backward(dy)))
        # through the attention branch
        return dh + self.ln1.backward(self.attn.backward(self.drop1.backward(dh)))


def causal_allowed(P: int, T: int, lengths=None):
    """Which keys each query may see: (B or 1, 1, T, P+T) boolean for queries at positions
    P..P+T-1 over keys 0..P+T-1: key j <= query position, and (with ``lengths``) j < len_b.

    With right padding the key mask changes nothing at valid positions (a valid query t < len_b
    only sees keys j <= t < len_b already); it keeps padded queries off padded keys."""
    allowed = np.arange(P + T)[None, :] <= np.arange(P, P + T)[:, None]     # (T, P+T)
    if lengths is None:
        return allowed[None, None]
    return allowed[None, None] & (np.arange(P + T)[None, :] < lengths[:, None])[:, None, None, :]


class Transformer(Module):
    """Decoder-only causal Transformer with the recurrent heads' API (see the module docstring).

    Transformer(input_size, d_model, output_size, num_layers=2, heads=4, context=512, *,
    kind="classify", vocab=(), dropout=0.0, dtype=np.float32, seed=0)

    - ``kind="classify"`` or ``"regress"``: forward(x (B, T, D), lengths=None) -> (B, K), read at
      position lengths-1 (T-1 without lengths).
    - ``kind="tag"`` or ``"regress-steps"``: forward(x (B, T, D), lengths=None) -> (B, T, K).
    - ``kind="lm"``: forward(ids (B, T)) -> logits (B, T, V); ``input_size`` is V (the
      embedding replaces the input projection). ``stateful``/``state``/``reset_state()`` exist for
      the Trainer but carry nothing: the model sees one window of at most ``context`` tokens,
      never the windows before it (unlike ``CharLM``'s truncated BPTT).

    ``context`` is the number of learned positions, the longest T it accepts. With ``lengths``
    (right padding) the inputs at padded positions are replaced by 0 (so their gradient is 0),
    padded keys are masked, outputs at padded positions are fc(0) = fc.bias, and backward ignores
    d_out there (as ``Recurrent.backward`` does); causality already keeps padding out of every
    valid position.

    backward(d_out, input_grad=True, record=False) returns dL/dx (None for ``lm``: ids have no
    gradient), or (dx, {}) with ``record``: there are no recurrent per-step probes.
    """

    def __init__(self, input_size, d_model, output_size, num_layers=2, heads=4, context=512, *,
                 kind="classify", vocab=(), dropout=0.0, dtype=np.float32, seed=0):
        super().__init__(dtype)
        owner = "Transformer"
        self.kind = check_choice("kind", kind, KINDS, owner=owner)
        self.reads_last = kind not in PER_STEP_KINDS and kind != "lm"     # many-to-one: (B, K)
        self.input_size = check_int("input_size", input_size, minimum=1, owner=owner)
        self.d_model = check_int("d_model", d_model, minimum=1, owner=owner)
        self.output_size = check_int("output_size", output_size, minimum=1, owner=owner)
        self.num_layers = check_int("num_layers", num_layers, minimum=1, owner=owner)
        self.heads = check_int("heads", heads, minimum=1, owner=owner)
        self.context = check_int("context", context, minimum=1, owner=owner)
        self.vocab = tuple(vocab)
        if kind == "lm" and self.vocab and len(self.vocab) != input_size:
            raise InputError(f"Transformer: vocab has {len(self.vocab)} symbols but input_size is "
                             f"{input_size}; for kind='lm' input_size is the vocabulary size")
        rng = np.random.default_rng(seed)
        if kind == "lm":
            self.embedding = self._adopt("embedding", Embedding(input_size, d_model, rng=rng, dtype=dtype))
        else:
            self.input_proj = self._adopt("input_proj", Linear(input_size, d_model, rng=rng,
                                                               init="pytorch", dtype=dtype))
        self.pos = self._adopt("pos", Embedding(context, d_model, rng=rng, dtype=dtype))
        self.pos.params["weight"] *= 0.02                       # GPT-2's scale: positions start as a hint
        self.drop_emb = self._adopt("drop_emb", Dropout(dropout, rng=np.random.default_rng(rng.integers(2**31)),
                                                        dtype=dtype))
        self.blocks = [self._adopt(f"blocks.{i}", Block(d_model, heads, dropout=dropout, rng=rng, dtype=dtype))
                       for i in range(num_layers)]
        self.ln_f = self._adopt("ln_f", LayerNorm(d_model, dtype=dtype))
        self.drop = self._adopt("drop", Dropout(dropout, rng=np.random.default_rng(rng.integers(2**31)),
                                                dtype=dtype))
        self.fc = self._adopt("fc", Linear(d_model, output_size, rng=rng, init="pytorch", dtype=dtype))
        self.flatten_parameters()
        self.stateful = False                                    # Trainer compatibility: no state
        self.state = None
        self._cache = None

    def reset_state(self):
        """Nothing to reset: each forward sees only its own window."""
        self.state = None

    def describe(self) -> dict:
        """The model as built (a run's record is made of this)."""
        return {**super().describe(), "kind": self.kind, "input_size": self.input_size, "d_model": self.d_model,
                "layers": self.num_layers, "heads": self.heads, "context": self.context,
                "dropout": self.drop.p, "output_size": self.output_size}

    # ---- the forward pass shared by forward (training) and step (cache)
    def _check(self, x, lengths, P=0):
        owner = "Transformer"
        if self.kind == "lm":
            x = np.asarray(x)
            if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
                raise InputError(f"{owner}: expected token ids of shape (B, T) with an integer dtype, "
                                 f"got shape {x.shape} and dtype {x.dtype}; encode the text first")
        else:
            check_array("input", x, ndim=3, last=self.input_size, owner=owner,
                        hint=f"build the model with input_size={x.shape[-1] if getattr(x, 'ndim', 0) == 3 else '...'} "
                             "or fix the data")
            x = np.asarray(x, dtype=self.dtype)
        B, T = x.shape[:2]
        if T == 0 or B == 0:
            raise InputError(f"{owner}: input has {T} positions and batch size {B}; both must be at least 1")
        if P + T > self.context:
            raise InputError(f"{owner}: {P + T} positions exceed the model's context of {self.context}; "
                             f"raise {setting('context')} or feed shorter windows")
        return x, check_lengths(lengths, B, T, owner=owner)

    def _run(self, x, lengths=None, past=None):
        """Checked input -> final features ln_f(h) (B, T, d); with ``past`` (a per-layer list of
        (k, v)) the positions continue after the cached ones and the new cache is returned too."""
        P = 0 if past is None else past[0][0].shape[2]
        x, lengths = self._check(x, lengths, P)
        B, T = x.shape[:2]
        keep = None
        if lengths is not None:
            keep = (np.arange(T)[None, :] < lengths[:, None])[:, :, None]    # (B, T, 1) valid
            x = np.where(keep, x, x.dtype.type(0)) if self.kind != "lm" else np.where(keep[..., 0], x, 0)
        e = self.embedding.forward(x) if self.kind == "lm" else self.input_proj.forward(x)
        h = self.drop_emb.forward(e + self.pos.forward(np.arange(P, P + T)))
        allowed = causal_allowed(P, T, lengths)
        for i, block in enumerate(self.blocks):
            h = block.forward(h, allowed, None if past is None else past[i])
        feat = self.ln_f.forward(h)
        if keep is not None:
            feat = feat * keep                                    # padded positions read fc(0)
        self._cache = (B, T, lengths, keep)
        return feat, [b.attn.present for b in self.blocks]

    def forward(self, x, lengths=None):
        """x (B, T, D) or ids (B, T) -> (B, K) for ``classify``, else (B, T, K)."""
        feat, _ = self._run(x, lengths)
        if self.reads_last:
            B, T = feat.shape[:2]
            last = np.full(B, T - 1) if self._cache[2] is None else self._cache[2] - 1
            feat = feat[np.arange(B), last]                      # (B, d) at each last valid position
        return self.fc.forward(self.drop.forward(feat))

    def backward(self, d_out, input_grad=True, record=False):
        """dL/d(outputs) -> dL/dx (B, T, D), None for ``lm``; (dx, {}) with ``record``."""
        if self._cache is None:
            raise RuntimeError("backward() called before forward()")
        B, T, lengths, keep = self._cache
        want = (B, self.output_size) if self.reads_last else (B, T, self.output_size)
        if np.shape(d_out) != want:
            raise InputError(f"Transformer.backward: expected d_out of shape {want}, got "
                             f"{np.shape(d_out)}; pass the loss gradient of forward's output")
        d_out = np.asarray(d_out, dtype=self.dtype)
        if keep is not None and not self.reads_last:
            d_out = d_out * keep                                 # padded positions' outputs are ignored
        d_feat = self.drop.backward(self.fc.backward(d_out))     # through fc and dropout
        if self.reads_last:
            last = np.full(B, T - 1) if lengths is None else lengths - 1
            d_all = np.zeros((B, T, self.d_model), dtype=self.dtype)
            d_all[np.arange(B), last] = d_feat                   # through the read at position len-1
            d_feat = d_all
        dh = self.ln_f.backward(d_feat)                          # through the final LayerNorm
        for block in reversed(self.blocks):
            dh = block.backward(dh)                              # through each block
        de = self.drop_emb.backward(dh)                          # through the embedding dropout
        self.pos.backward(de.sum(axis=0))                        # into the positions (shared by the batch)
        dx = None
        if self.kind == "lm":
            self.embedding.backward(de)                          # into the token rows
        else:
            dx = self.input_proj.backward(de)                    # through the input projection
            if keep is not None:
                dx = dx * keep                                   # padding was replaced by 0
            dx = dx if input_grad else None
        return (dx, {}) if record else dx

    # ---- streaming and generation: the same blocks over a key/value cache
    def step(self, token_or_vector, cache=None):
        """Feed one position (an id for ``lm``, a (D,) vector otherwise) after ``cache`` (None =
        fresh; else the cache an earlier step returned). Returns (output (K,), new cache).

        The output is fc(ln_f(h_t)) at that position: what ``forward`` gives there (for
        ``classify``: the reading if the sequence ended here). Eval mode; the cache holds each
        layer's keys and values (1, h, t, hd) and is not changed in place.
        """
        x = np.array([[token_or_vector]]) if self.kind == "lm" else np.asarray(token_or_vector)[None, None]
        if self.kind != "lm" and x.ndim != 3:
            raise InputError(f"Transformer.step: expected one input vector of shape ({self.input_size},), "
                             f"got shape {np.shape(token_or_vector)}")
        return self._stepped(x, cache)

    def _stepped(self, x, cache):
        """Run x (1, T, ...) after ``cache`` in eval mode -> (outputs at the last position, cache)."""
        if cache is not None and cache[0][0].shape[2] + x.shape[1] > self.context:
            raise InputError(f"Transformer.step: the cache already holds {cache[0][0].shape[2]} of the "
                             f"model's {self.context} positions; start a new cache or raise {setting('context')}")
        was = self.training
        self.eval()
        try:
            feat, new = self._run(x, None, cache)
        finally:
            self.train(was)
        return self.fc.forward(feat[0, -1]), new

    def encode(self, text: str) -> np.ndarray:
        return encode_text(self.vocab, text, "Transformer")

    def generate(self, prime: str, length: int, temperature: float = 1.0, top_k: int = 0,
                 seed: int = 0) -> str:
        """Continue ``prime`` by ``length`` sampled characters (temperature and top-k sampling),
        as ``CharLM.generate``. Each character is drawn given the last ``context`` ones at most:
        once the cache is full, the window slides (recomputed from its last ``context`` ids)."""
        if self.kind != "lm":
            raise InputError("generate: only a Transformer of kind='lm' generates text")
        check_generate(prime, temperature)
        rng = np.random.default_rng(seed)
        ids = list(self.encode(prime))
        logits, cache = self._stepped(np.array([ids[-self.context:]]), None)   # the prime in one pass
        out = []
        for _ in range(length):
            nxt = sample_next(logits, temperature, top_k, rng)
            out.append(self.vocab[nxt])
            ids.append(nxt)
            if cache[0][0].shape[2] < self.context:
                logits, cache = self._stepped(np.array([[nxt]]), cache)
            else:                                                # full: slide the window
                logits, cache = self._stepped(np.array([ids[-self.context:]]), None)
        return "".join(out)


# torch.nn reference layout (what to_torch_state_dict targets):
#   embedding: nn.Embedding(V, d)  | input_proj: nn.Linear(D, d)
#   pos: nn.Embedding(context, d)
#   blocks: nn.ModuleList of modules with ln1, ln2 = nn.LayerNorm(d),
#           attn = nn.MultiheadAttention(d, heads, batch_first=True) (causal attn_mask),
#           mlp = nn.Sequential(nn.Linear(d, 4d), nn.GELU(approximate="tanh"), nn.Linear(4d, d))
#   ln_f: nn.LayerNorm(d);  fc: nn.Linear(d, K)
_TORCH_RENAMES = ((".mlp.fc1.", ".mlp.0."), (".mlp.fc2.", ".mlp.2."))


def to_torch_state_dict(model: Transformer, grads: bool = False) -> dict:
    """The model's parameters under the torch.nn reference's names (the layout above): every
    name is the same except the MLP's, which live in an nn.Sequential (fc1 -> 0, fc2 -> 2).
    Values are copies (NumPy arrays; wrap with torch.from_numpy). ``grads=True`` maps the
    gradients instead, to compare with the reference's ``.grad``."""
    out = {}
    for k, v in (model.grads if grads else model.params).items():
        for ours, theirs in _TORCH_RENAMES:
            k = k.replace(ours, theirs)
        out[k] = v.copy()
    return out


def from_torch_state_dict(state: dict) -> dict:
    """The inverse of ``to_torch_state_dict``: a reference's state dict (arrays or tensors)
    renamed for ``Transformer.load_state_dict``."""
    out = {}
    for k, v in state.items():
        for ours, theirs in _TORCH_RENAMES:
            k = k.replace(theirs, ours)
        out[k] = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
    return out


__all__ = ["LayerNorm", "CausalSelfAttention", "MLP", "Block", "Transformer", "attend",
           "attend_backward", "gelu", "gelu_backward", "causal_allowed", "to_torch_state_dict",
           "from_torch_state_dict"]
