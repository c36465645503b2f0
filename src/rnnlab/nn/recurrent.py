"""Recurrent layers and the ONE time loop that drives every cell.

``scan_forward`` and ``scan_backward`` are the only loops over time in rnnlab; the RNN (and,
later, LSTM and GRU) layers differ only in the cell they hand to them. Everything that can be
done for all time steps at once is done outside the loops as a single matrix product: the input
projection x_t W_ih^T before the forward loop, and dW_ih, dW_hh, biases and dx after the
backward loop. Inside, arrays are time-major (T, B, ...) so each step reads a contiguous slice;
the public API is batch-first (B, T, ...) like ``torch.nn.RNN(batch_first=True)``.
"""

from __future__ import annotations

import numpy as np

from rnnlab.checks import check_array, check_choice, check_float, check_int, check_lengths
from rnnlab.errors import InputError, InputTypeError, warn_user
from rnnlab.nn.cells import ElmanCell, gru_cell, lstm_cell
from rnnlab.nn.cells.ctrnn import RATE_FUNCTIONS, CTRNNCell, rate
from rnnlab.nn.cells.members import transposed
from rnnlab.nn.init import INIT_SCHEMES, recurrent_weights
from rnnlab.nn.modules import Module, dropout_mask, member_masks
from rnnlab.nn.wiring import DALE_RADIUS, check_mask, dale_signs, dale_weights, scale_to_radius


def padding_masks(lengths, T):
    """Per step t, the rows (B, 1) where t >= len_b (padding), or None where every row is valid.

    Computed once per forward so the loops only pay for steps that hold padding; None for
    ``lengths=None`` keeps the fixed-length path exactly as it was.
    """
    if lengths is None:
        return None
    pad = np.arange(T).reshape((T,) + (1,) * lengths.ndim) >= lengths[None]   # (T, B), or (T, K, B)
    return [p[..., None] if p.any() else None for p in pad]


def scan_forward(cell, W_hh, b_hh, XP, carry0, reverse=False, pad=None, carries=None):
    """Run ``cell`` over XP (T, B, G*H) from ``carry0``.

    Returns ``hs`` (T+1, B, H) holding the initial state and every h_t, the final carry, and the
    per-step caches. Forward direction: h_t at hs[t+1], initial at hs[0]; reverse direction:
    h_t at hs[t], initial at hs[T]. Either way hs[1:] / hs[:-1] line up with t as outputs and
    the previous states the recurrent weights saw.

    ``pad`` (from ``padding_masks``) freezes each sequence after its last valid step: at a padded
    step every carry part keeps its old value (carry_t = where(t < len_b, new, old)), in hs too.
    So the forward direction ends at each sequence's own last step, and the reverse direction
    holds carry0 through the padded tail and starts at that step, as a packed sequence does.

    ``carries`` (a list of length T), when given, receives the full carry after each step t
    (h and, for the LSTM, c): what analysis needs beyond the outputs.
    """
    T = XP.shape[0]
    h0 = carry0[0]
    hs = np.empty((T + 1,) + h0.shape, dtype=h0.dtype)   # (T+1, B, H)
    hs[T if reverse else 0] = h0
    off = 0 if reverse else 1
    W_hhT = transposed(W_hh)                              # (H, G*H): contiguous matmuls are 2x faster
    caches = [None] * T
    carry = carry0
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        old = carry
        carry, caches[t] = cell.forward_step(W_hhT, b_hh, XP[t], carry, hs[t + off])
        if pad is not None and pad[t] is not None:
            for new, prev in zip(carry, old):             # carry[0] is the hs slot: hs holds it too
                np.copyto(new, prev, where=pad[t])
        if carries is not None:
            carries[t] = carry
    return hs, carry, caches


FLUSH_BELOW = 1e-30      # float32 carry gradients below this are flushed to 0 (subnormals are slow)


def scan_backward(cell, W_hh, caches, h_steps, d_hs, d_carry, reverse=False, dtype=None,
                  step_grads=None, pad=None):
    """BPTT through the steps recorded by ``scan_forward``.

    ``h_steps`` (T, B, H) is h_t for every t in time order (a view of ``hs``). ``d_hs`` is dL/dh_t
    arriving from outside the recurrence (the layer above, the
    readout) or None; ``d_carry`` is dL/d(final carry). Returns dXP and dHH, both (T, B, G*H),
    and dL/d(initial carry). If ``step_grads`` (T, B, H) is given, the total gradient reaching
    each h_t is written into it for the probes.

    With ``pad`` (the forward's), a padded row's step never happened: its d_hs is ignored (the
    output there was a constant 0), the cell gets zero gradient for it (so dXP, dHH are 0), and
    its carry gradient passes straight to the previous carry; its step_grads row is 0.

    In float32 a carry gradient that has decayed below FLUSH_BELOW is set to exactly 0 (checked
    every 8 steps): left alone it sinks into subnormal numbers, which the CPU handles ~100x more
    slowly -- a tanh RNN on the adding problem at T=256 took 47 ms per step instead of 13 (the
    float64 time). Such a gradient is below anything float32 can add to a weight gradient.
    """
    T = len(caches)
    rows = d_carry[0].shape[:-1]                                # (B,), or (K, B) for stacked members
    GH = W_hh.shape[-2]
    caches = cell.prepare_backward(caches, h_steps)
    dXP = np.empty((T,) + rows + (GH,), dtype=dtype)
    dHH = np.empty_like(dXP) if cell.split_hh_grad else dXP
    flush = np.dtype(dtype) == np.float32
    for i, t in enumerate(range(T) if reverse else range(T - 1, -1, -1)):
        p = None if pad is None else pad[t]
        if d_hs is not None:                                    # h_t feeds the output and the next step
            d_carry = (d_carry[0] + (d_hs[t] if p is None else np.where(p, 0, d_hs[t])),) + d_carry[1:]
        held = d_carry
        if p is not None:
            d_carry = tuple(np.where(p, 0, d) for d in d_carry)  # padded rows skip the cell
        if step_grads is not None:
            step_grads[t] = d_carry[0]
        d_carry, _, d_hh = cell.backward_step(W_hh, caches[t], d_carry, dXP[t])
        if p is not None:
            d_carry = tuple(np.where(p, h, d) for h, d in zip(held, d_carry))   # ... and pass through
        if dHH is not dXP:
            dHH[t] = d_hh
        if flush and i % 8 == 7 and max(float(np.abs(d).max()) for d in d_carry) < FLUSH_BELOW:
            d_carry = tuple(np.zeros_like(d) for d in d_carry)   # decayed: 0, not subnormal
    return dXP, dHH, d_carry


def whh_step_contributions(dHH, h_prev):
    """Step t's term of dL/dW_hh = sum_t dL/da_t^T h_{t-1}, one (G*H, H) matrix per step."""
    for t in range(len(dHH)):
        yield dHH[t].T @ h_prev[t]


def step_probes(step_grads, h_steps, dHH, h_prev, keep=None) -> dict:
    """Per-step instruments from arrays BPTT already made (lists of length T, t = 1..T):
    ||dL/dh_t|| over the batch, hidden-state norm per sequence (mean and max over the batch),
    and the norm of step t's contribution to dL/dW_hh (the contributions sum to dL/dW_hh).
    With variable lengths (``keep``, (T, B, 1) of the valid steps), the mean is over the sequences
    still running at t, and ``valid`` counts them: padding is no sequence's state."""
    seq_norms = np.linalg.norm(h_steps, axis=2)                     # (T, B)
    # ||dHH_t^T h_{t-1}||_F^2 = sum((dHH_t dHH_t^T) * (h_{t-1} h_{t-1}^T)): B x B Gram matrices,
    # all steps in one batched product instead of T (G*H, H) matrices
    gram_d = np.matmul(dHH, dHH.transpose(0, 2, 1))                  # (T, B, B)
    gram_h = np.matmul(h_prev, h_prev.transpose(0, 2, 1))            # (T, B, B)
    share = np.sqrt(np.maximum((gram_d * gram_h).sum(axis=(1, 2)), 0)).tolist()
    out = {"grad_norm": np.linalg.norm(step_grads.reshape(len(step_grads), -1), axis=1).tolist(),
           "hidden_norm_mean": seq_norms.mean(axis=1).tolist(),
           "hidden_norm_max": seq_norms.max(axis=1).tolist(),
           "whh_share": share}
    if keep is not None:
        valid = keep.reshape(len(keep), -1).sum(axis=1)             # (T,) sequences still running
        out["hidden_norm_mean"] = (seq_norms.sum(axis=1) / np.maximum(valid, 1)).tolist()
        out["valid"] = valid.astype(int).tolist()
    return out


class Recurrent(Module):
    """A stack of recurrent layers of one cell type (multi-layer, bidirectional, dropout).

    Parameter names, shapes and gate order are PyTorch's: ``weight_ih_l{k}`` (G*H, D_k),
    ``weight_hh_l{k}`` (G*H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*H,), with a ``_reverse``
    suffix for the backward direction; ``state_dict()`` copies straight into ``torch.nn.RNN``.
    """

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=True, dropout=0.0, bidirectional=False, *, init="pytorch",
                 dtype=np.float32, seed=0):
        super().__init__(dtype)
        owner = type(self).__name__
        self.input_size = check_int("input_size", input_size, minimum=1, owner=owner)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1, owner=owner)
        self.num_layers = check_int("num_layers", num_layers, minimum=1, owner=owner)
        self.dropout = check_float("dropout", dropout, low=0.0, high=1.0, high_open=True, owner=owner)
        for flag, value in (("bias", bias), ("batch_first", batch_first),
                            ("bidirectional", bidirectional)):
            if not isinstance(value, bool):
                raise InputTypeError(f"{owner}: {flag} must be True or False, got {value!r}")
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.init = check_choice("init", init, INIT_SCHEMES, owner=owner)
        self.cell = cell
        self.num_directions = 2 if bidirectional else 1
        self.rng = np.random.default_rng(seed)
        G, H = cell.gates, hidden_size
        for layer in range(num_layers):
            d_in = input_size if layer == 0 else H * self.num_directions
            for suffix in self._suffixes(layer):
                shapes = {"weight_ih": (G * H, d_in), "weight_hh": (G * H, H)}
                if bias:
                    shapes.update(bias_ih=(G * H,), bias_hh=(G * H,))
                for kind, shape in shapes.items():
                    group = "bias" if kind.startswith("bias") else kind
                    self._register(kind + suffix,
                                   recurrent_weights(init, group, shape, H, G, self.rng))
        self.flatten_parameters()
        if dropout > 0 and num_layers == 1:
            warn_user(f"{owner}: dropout={dropout} does nothing with num_layers=1 (it is "
                      "applied between layers); add layers or drop it")
        self._cache = None

    def _suffixes(self, layer):
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    # ---- state helpers: (h,) for RNN/GRU, (h, c) for LSTM; the public form is h or (h, c)
    def _state_tuple(self, h0, rows):
        L, H, n = self.num_layers * self.num_directions, self.hidden_size, self.cell.n_carry
        owner = type(self).__name__
        if h0 is None:
            zero = np.zeros((L,) + rows + (H,), dtype=self.dtype)
            return tuple(zero for _ in range(n))
        if self.members is not None:
            raise InputError(f"{owner}: stacked members start from zero states; give no h0")
        (B,) = rows
        parts = (h0,) if n == 1 else h0
        if n > 1 and (not isinstance(h0, tuple) or len(h0) != n):
            raise InputTypeError(f"{owner}: the initial state must be a tuple of {n} arrays (h0, c0)")
        out = []
        for part in parts:
            if not isinstance(part, np.ndarray):
                raise InputTypeError(f"{owner}: h0 must be a NumPy array, got {type(part).__name__}")
            if part.shape != (L, B, H):
                raise InputError(f"{owner}: expected h0 of shape (num_layers*num_directions, B, H) = "
                                 f"{(L, B, H)}, got {part.shape}; match the layer's sizes and the batch")
            out.append(np.asarray(part, dtype=self.dtype))
        return tuple(out)

    def _public_state(self, parts):
        return parts[0] if self.cell.n_carry == 1 else tuple(parts)

    def forward(self, x, h0=None, lengths=None, return_states=False):
        """x (B, T, D) -> (output (B, T, dirs*H), h_n (layers*dirs, B, H)) [h_n is (h, c) for LSTM].

        ``return_states=True`` adds a third result: for every layer and direction k (in h_n's
        order), the full state at every step, (B, T, S) with S = H, or 2H for the LSTM ([h | c]).

        ``lengths`` (B,) makes x a right-padded batch, as ``pack_padded_sequence`` does in
        PyTorch: sequence b is x[b, :lengths[b]], h_n holds each sequence's state at its own
        last valid step (the reverse direction starts there), and outputs at padded steps are 0.
        What x holds at padded steps never matters (its gradient there is 0).
        """
        owner = type(self).__name__
        K = self.members
        if K is not None and (not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[0] != K):
            raise InputError(f"{owner}: a stack of {K} members takes x of shape (K, B, T, D) with K = {K}, got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        check_array("input", x if K is None else x[0], ndim=3, last=self.input_size, owner=owner,
                    hint=f"set input_size={x.shape[-1] if getattr(x, 'ndim', 0) >= 3 else '...'} "
                         "or fix the data")
        if K is None:
            X = x.transpose(1, 0, 2) if self.batch_first else x
        else:
            X = x.transpose(2, 0, 1, 3) if self.batch_first else x.transpose(1, 0, 2, 3)
        X = np.ascontiguousarray(X, dtype=self.dtype)           # (T, B, D) time-major, or (T, K, B, D)
        T, B = X.shape[0], X.shape[-2]
        rows = X.shape[1:-1]                                    # (B,), or (K, B)
        if T == 0 or B == 0:
            raise InputError(f"{owner}: input has {T} time steps and batch size {B}; both must be at least 1")
        carry0 = self._state_tuple(h0, rows)
        if K is None:
            lengths = check_lengths(lengths, B, T, owner=owner)
        elif lengths is not None:
            lengths = np.stack([check_lengths(np.asarray(m), B, T, owner=owner) for m in lengths])
        pad = padding_masks(lengths, T)
        keep = None
        if lengths is not None:
            keep = (np.arange(T).reshape((T,) + (1,) * lengths.ndim) < lengths[None])[..., None]   # valid steps
            X = np.where(keep, X, X.dtype.type(0))                 # padding (even NaN) never enters
        n, H = self.cell.n_carry, self.hidden_size
        finals = [np.empty((self.num_layers * self.num_directions,) + rows + (H,), self.dtype) for _ in range(n)]
        layer_in, layers = X, []
        states = [] if return_states else None
        for layer in range(self.num_layers):
            layer_in = self._noisy_input(layer, layer_in)
            runs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                k = layer * self.num_directions + d
                p = self.params
                W_ih, W_hh = p["weight_ih" + suffix], p["weight_hh" + suffix]
                b_ih, b_hh = p.get("bias_ih" + suffix), p.get("bias_hh" + suffix)
                XP = self._project(layer_in, W_ih, b_ih, b_hh)
                carries = [None] * T if return_states else None
                hs, carry, caches = scan_forward(self.cell, W_hh, b_hh, XP,
                                                 tuple(c[k] for c in carry0), reverse=d == 1, pad=pad,
                                                 carries=carries)
                if carries is not None:                            # (B, T, n*H), batch-first
                    states.append(np.stack([np.concatenate(c, axis=-1) for c in carries], axis=1))
                for i in range(n):
                    finals[i][k] = carry[i]
                runs.append((hs, caches))
            outs = [hs[:-1] if d == 1 else hs[1:] for d, (hs, _) in enumerate(runs)]
            out = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=-1)   # (T, B, dirs*H)
            if keep is not None:
                out = out * keep                                   # 0 at padded steps, as pad_packed
            mask = None
            if self.training and layer < self.num_layers - 1:
                mask = self._dropout_mask(out.shape)
                if mask is not None:
                    out = out * mask                               # dropout between layers
            layers.append((layer_in, runs, mask))
            layer_in = out
        self._cache = (layers, T, rows, pad, keep)
        if K is None:
            output = layer_in.transpose(1, 0, 2) if self.batch_first else layer_in
        else:
            output = layer_in.transpose(1, 2, 0, 3) if self.batch_first else layer_in.transpose(1, 0, 2, 3)
        if return_states:
            if K is not None:
                raise InputError(f"{owner}: the states of stacked members are read from each member model")
            return output, self._public_state(finals), states
        return output, self._public_state(finals)

    def _project(self, layer_in, W_ih, b_ih, b_hh):
        """The input part of every step, (T, B, G*H) from layer_in (T, B, D): one product."""
        T, B = layer_in.shape[0], layer_in.shape[-2]
        if self.members is None:                  # one product over every step at once
            return self.cell.project(layer_in.reshape(T * B, -1), W_ih, b_ih, b_hh).reshape(T, B, -1)
        XP = np.empty(layer_in.shape[:-1] + (W_ih.shape[-2],), dtype=self.dtype)
        for m in range(self.members):             # each member's own product, as it runs alone
            XP[:, m] = self.cell.project(layer_in[:, m].reshape(T * B, -1), W_ih[m],
                                         None if b_ih is None else b_ih[m],
                                         None if b_hh is None else b_hh[m]).reshape(T, B, -1)
        return XP

    def _noisy_input(self, layer: int, layer_in):
        """What layer ``layer`` reads as its input (the CTRNN adds input noise); kept for backward."""
        return layer_in

    def _penalty_grad(self, h_steps, d_hs, keep):
        """dL/dh_t from outside the recurrence, plus what a penalty on the states adds (the CTRNN's
        rate penalty); h_steps (T, B, H) in time order, d_hs the same shape or None."""
        return d_hs

    # ---- stacked members (rnnlab.nn.stack): a leading member axis K on every parameter
    def _input_grads(self, suffix, dXP, dHH, layer_in, h_prev, need_dx: bool):
        """From one direction's dL/d(input part) dXP and dL/d(recurrent part) dHH, (T, B, G*H):
        add dW_ih, dW_hh and the biases' gradients, and return dL/d(layer input) (or None), each
        as one product over every step. Stacked members (T, K, B, .) take the same products one
        member at a time, so each gets the bits it gets alone."""
        if self.members is None:
            return self._member_grads(self.grads, self.params, suffix, dXP, dHH, layer_in, h_prev, need_dx)
        g = {k: v for k, v in self.grads.items() if k.endswith(suffix)}
        p = {k: v for k, v in self.params.items() if k.endswith(suffix)}
        dx = np.empty(layer_in.shape, dtype=self.dtype) if need_dx else None
        for m in range(self.members):
            got = self._member_grads({k: v[m] for k, v in g.items()}, {k: v[m] for k, v in p.items()}, suffix,
                                     dXP[:, m], dXP[:, m] if dHH is dXP else dHH[:, m], layer_in[:, m],
                                     h_prev[:, m], need_dx)
            if need_dx:
                dx[:, m] = got
        return dx

    def _member_grads(self, g, p, suffix, dXP, dHH, layer_in, h_prev, need_dx):
        T, B, GH = dXP.shape
        dXP2 = dXP.reshape(T * B, GH)
        dHH2 = dXP2 if dHH is dXP else dHH.reshape(T * B, GH)
        g["weight_ih" + suffix] += dXP2.T @ layer_in.reshape(T * B, -1)
        g["weight_hh" + suffix] += dHH2.T @ h_prev.reshape(T * B, -1)
        if self.bias:
            ones = np.ones(T * B, dtype=self.dtype)        # sum over (T, B) as one gemv
            d_bias = ones @ dXP2
            g["bias_ih" + suffix] += d_bias
            g["bias_hh" + suffix] += d_bias if dHH is dXP else ones @ dHH2
        return (dXP2 @ p["weight_ih" + suffix]).reshape(T, B, -1) if need_dx else None

    def _dropout_mask(self, shape):
        """The dropout mask between layers (None without dropout); stacked, each member's own mask
        from its own random stream at its own rate, as it would draw alone."""
        if self.members is None:
            return dropout_mask(self.rng, shape, self.dropout, self.dtype) if self.dropout > 0 else None
        if not any(p > 0 for p in self.member_dropout):
            return None
        return member_masks(self.member_rngs, self.member_dropout, shape, self.dtype, axis=1)

    def backward(self, d_output=None, d_h_n=None, input_grad=True, record=False):
        """Accumulate parameter gradients into ``grads``; return dL/dx (same layout as x).

        ``d_output`` is dL/d(output) or None (zero); ``d_h_n`` is dL/d(h_n) (a tuple for LSTM)
        or None. dL/dh0 is left in ``self.d_h0``. ``input_grad=False`` skips dL/dx (returns
        None) when nothing upstream needs it, as training on data does. With the forward's
        ``lengths``, d_output at padded steps is ignored and dL/dx there is 0.

        ``record=True`` returns ``(dx, probes)``: per layer and direction (keyed by its
        ``weight_hh`` name) the per-step arrays of ``step_probes``, read from this pass's own
        BPTT arrays.
        """
        if self._cache is None:
            raise RuntimeError("backward() called before forward()")
        layers, T, rows, pad, keep = self._cache
        H, dirs, n = self.hidden_size, self.num_directions, self.cell.n_carry
        dt = self.dtype
        d_out = None
        if d_output is not None:
            if self.members is None:
                d_out = d_output.transpose(1, 0, 2) if self.batch_first else d_output
            else:
                d_out = d_output.transpose(2, 0, 1, 3) if self.batch_first else d_output.transpose(1, 0, 2, 3)
            d_out = np.asarray(d_out, dtype=dt)                    # (T, B, dirs*H), or (T, K, B, dirs*H)
        d_final = None if d_h_n is None else ((d_h_n,) if n == 1 else tuple(d_h_n))
        d_init = [np.zeros((self.num_layers * dirs,) + rows + (H,), dt) for _ in range(n)]
        probes = {} if record else None
        for layer in range(self.num_layers - 1, -1, -1):
            layer_in, runs, mask = layers[layer]
            if mask is not None and d_out is not None:
                d_out = d_out * mask                               # through dropout
            d_in = None
            for d, suffix in enumerate(self._suffixes(layer)):
                k = layer * dirs + d
                hs, caches = runs[d]
                d_hs = None if d_out is None else d_out[..., d * H:(d + 1) * H]
                h_steps = hs[:-1] if d == 1 else hs[1:]            # h_t in time order
                d_hs = self._penalty_grad(h_steps, d_hs, keep)
                d_carry = tuple(np.zeros(rows + (H,), dt) if d_final is None else
                                np.asarray(d_final[i][k], dtype=dt) for i in range(n))
                W_hh = self.params["weight_hh" + suffix]
                step_grads = np.empty((T,) + rows + (H,), dt) if probes is not None else None
                dXP, dHH, d_carry0 = scan_backward(self.cell, W_hh, caches, h_steps, d_hs, d_carry,
                                                   reverse=d == 1, dtype=dt, step_grads=step_grads,
                                                   pad=pad)
                for i in range(n):
                    d_init[i][k] = d_carry0[i]
                h_prev = hs[1:] if d == 1 else hs[:-1]             # state each step's W_hh saw
                if probes is not None:
                    seen = h_steps if keep is None else h_steps * keep
                    probes["weight_hh" + suffix] = (
                        step_probes(step_grads, seen, dHH, h_prev, keep) if self.members is None else
                        [step_probes(step_grads[:, k], seen[:, k], dHH[:, k], h_prev[:, k],
                                     None if keep is None else keep[:, k]) for k in range(self.members)])
                dx = self._input_grads(suffix, dXP, dHH, layer_in, h_prev, not (layer == 0 and not input_grad))
                if dx is None:
                    continue
                d_in = dx if d_in is None else d_in + dx           # both directions read layer_in
            d_out = d_in
        self.d_h0 = self._public_state(d_init)
        dx = None
        if d_out is not None:
            if self.members is None:
                dx = d_out.transpose(1, 0, 2) if self.batch_first else d_out
            else:
                dx = d_out.transpose(1, 2, 0, 3) if self.batch_first else d_out.transpose(1, 0, 2, 3)
        return (dx, probes) if record else dx

    def describe(self) -> dict:
        """The stack as built: cell, sizes, the init actually applied, and the cell's own settings."""
        out = {**super().describe(), "cell": type(self).__name__.lower(), "input_size": self.input_size,
               "hidden": self.hidden_size, "layers": self.num_layers, "bidirectional": self.bidirectional,
               "layer_dropout": self.dropout, "init": self.init}
        if hasattr(self, "nonlinearity"):
            out["nonlinearity"] = self.nonlinearity
        if hasattr(self, "forget_bias"):
            out["forget_bias"] = self.forget_bias
        return out


class RNN(Recurrent):
    """Elman RNN layer stack with ``torch.nn.RNN``'s arguments, shapes and state dict.

    Example::

        >>> import numpy as np, rnnlab
        >>> rnn = rnnlab.RNN(10, 64, num_layers=2)
        >>> out, h_n = rnn.forward(np.zeros((32, 20, 10), np.float32))
        >>> out.shape, h_n.shape
        ((32, 20, 64), (2, 32, 64))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=True, dropout=0.0, bidirectional=False, *, init="pytorch",
                 dtype=np.float32, seed=0):
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"), owner="RNN")
        self.nonlinearity = nonlinearity
        super().__init__(ElmanCell(nonlinearity), input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, init=init, dtype=dtype, seed=seed)


class LSTM(Recurrent):
    """LSTM layer stack with ``torch.nn.LSTM``'s arguments, shapes, gate order and state dict.

    ``forward(x, (h0, c0))`` returns ``(output, (h_n, c_n))``. ``forget_bias`` (for example 1.0)
    sets the forget-gate part of ``bias_ih`` to that value and of ``bias_hh`` to 0, so the total
    forget bias starts there and the cell remembers by default (Jozefowicz et al. 2015).

    Example::

        >>> import numpy as np, rnnlab
        >>> lstm = rnnlab.LSTM(10, 32, num_layers=2, forget_bias=1.0)
        >>> out, (h_n, c_n) = lstm.forward(np.zeros((4, 7, 10), np.float32))
        >>> out.shape, h_n.shape, c_n.shape
        ((4, 7, 32), (2, 4, 32), (2, 4, 32))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=True,
                 dropout=0.0, bidirectional=False, *, init="pytorch", forget_bias=None,
                 dtype=np.float32, seed=0):
        super().__init__(lstm_cell(), input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, init=init, dtype=dtype, seed=seed)
        self.forget_bias = forget_bias
        if forget_bias is not None:
            if not bias:
                raise InputError("LSTM: forget_bias needs bias=True")
            H = hidden_size
            for layer in range(num_layers):
                for suffix in self._suffixes(layer):
                    self.params["bias_ih" + suffix][H:2 * H] = forget_bias
                    self.params["bias_hh" + suffix][H:2 * H] = 0.0


class GRU(Recurrent):
    """GRU layer stack with ``torch.nn.GRU``'s arguments, shapes, gate order (r, z, n) and state
    dict. PyTorch's form: the reset gate multiplies ``W_hn h + b_hn`` after the product.

    Example::

        >>> import numpy as np, rnnlab
        >>> gru = rnnlab.GRU(10, 32, bidirectional=True)
        >>> out, h_n = gru.forward(np.zeros((4, 7, 10), np.float32))
        >>> out.shape, h_n.shape
        ((4, 7, 64), (2, 4, 32))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=True,
                 dropout=0.0, bidirectional=False, *, init="pytorch", dtype=np.float32, seed=0):
        super().__init__(gru_cell(), input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, init=init, dtype=dtype, seed=seed)


class CTRNN(Recurrent):
    """Continuous-time rate network: x <- (1 - a) x + a (W_rec r + W_in u + b) + noise, r = f(x),
    a = dt / tau (``rnnlab.nn.cells.ctrnn``), with noise, Dale's law, wiring masks and a rate penalty.

    - ``dt``, ``tau``: the Euler step and the time constant, in the same unit (ms); tau > dt.
    - ``rec_noise``, ``input_noise``: standard deviations in the continuous-time convention: the
      recurrence gets a * sqrt(2 / a) * rec_noise * N(0, 1) = sqrt(2a) rec_noise N(0, 1) per step, the
      input sqrt(2 / a) * input_noise * N(0, 1). Drawn from the layer's own random stream, in
      training only (like dropout: evaluation and analysis see the deterministic network).
    - ``dale``: the fraction of excitatory units (0.8 is usual), or None. Unit j's outgoing weights
      (column j of ``weight_hh``) keep its sign (``signs``), by projection after each optimizer
      step; the initial matrix is |N(0, 1)| on the mask, inhibitory columns scaled by n_E / n_I,
      scaled to ``spectral_radius`` (1.5 by default, Song, Yang & Wang 2016).
    - ``spectral_radius`` without ``dale``: the initial ``weight_hh`` (from ``init``) rescaled to it.
    - ``rec_mask`` (H, H), ``input_mask`` (H, D): 0/1 arrays (``rnnlab.nn.wiring`` builds named ones);
      masked weights are 0 from the start and stay 0 (their gradients are zeroed in ``backward``).
    - ``rate_l2``: adds rate_l2 * mean(r^2) over every unit, valid step and sequence (all layers) to
      the loss; its value after a forward is ``penalty`` and ``backward`` adds its gradient.

    The carry is (r, x): ``forward`` returns the rates as output and h_n = (r_n, x_n);
    ``return_states=True`` gives [r | x] per step. No bidirectional form (time runs one way).

    Example::

        >>> import numpy as np, rnnlab
        >>> net = rnnlab.CTRNN(3, 50, dt=20, tau=100, dale=0.8, rec_noise=0.05)
        >>> out, (r_n, x_n) = net.forward(np.zeros((4, 30, 3), np.float32))
        >>> out.shape, int((net.signs["weight_hh_l0"] > 0).sum())
        ((4, 30, 50), 40)
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="relu", bias=True,
                 batch_first=True, dropout=0.0, *, dt=20.0, tau=100.0, rec_noise=0.0, input_noise=0.0,
                 dale=None, spectral_radius=None, rec_mask=None, input_mask=None, rate_l2=0.0,
                 init="pytorch", dtype=np.float32, seed=0):
        owner = "CTRNN"
        check_choice("nonlinearity", nonlinearity, RATE_FUNCTIONS, owner=owner)
        dt = check_float("dt", dt, low=0.0, low_open=True, owner=owner)
        tau = check_float("tau", tau, low=0.0, low_open=True, owner=owner)
        if not tau > dt:
            raise InputError(f"{owner}: tau ({tau:g}) must be larger than dt ({dt:g}): the Euler step must be "
                             f"shorter than the time constant; e.g. dt=20 with tau=100")
        for name, value in (("rec_noise", rec_noise), ("input_noise", input_noise), ("rate_l2", rate_l2)):
            check_float(name, value, low=0.0, owner=owner)
        if spectral_radius is not None:
            check_float("spectral_radius", spectral_radius, low=0.0, low_open=True, owner=owner)
        self.nonlinearity, self.dt, self.tau = nonlinearity, float(dt), float(tau)
        self.alpha = self.dt / self.tau
        self.rec_noise, self.input_noise, self.rate_l2 = float(rec_noise), float(input_noise), float(rate_l2)
        self.dale = dale
        super().__init__(CTRNNCell(self.alpha, nonlinearity), input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, False, init=init, dtype=dtype, seed=seed)
        H = self.hidden_size
        signs = None if dale is None else dale_signs(H, dale)
        rec = np.ones((H, H)) if rec_mask is None else check_mask("rec_mask", rec_mask, (H, H), owner)
        self.spectral_radius = DALE_RADIUS if (dale is not None and spectral_radius is None) else spectral_radius
        for layer in range(self.num_layers):
            W = self.params[f"weight_hh_l{layer}"]
            if signs is not None:
                W[...] = dale_weights(self.rng, signs, rec, self.spectral_radius)
                self.signs[f"weight_hh_l{layer}"] = signs.astype(self.dtype)
            elif self.spectral_radius is not None:
                W[...] = scale_to_radius(W * rec, self.spectral_radius)
            if rec_mask is not None:
                self.masks[f"weight_hh_l{layer}"] = rec.astype(self.dtype)
        if input_mask is not None:
            self.masks["weight_ih_l0"] = check_mask("input_mask", input_mask, (H, self.input_size),
                                                    owner).astype(self.dtype)
        self.constrain_weights()
        self.penalty = 0.0

    # ---- state: a zero current and the rate it gives (softplus(0) = log 2)
    def _state_tuple(self, h0, rows):
        if h0 is not None:
            return super()._state_tuple(h0, rows)
        x0 = np.zeros((self.num_layers,) + rows + (self.hidden_size,), dtype=self.dtype)
        return rate(x0, self.nonlinearity), x0

    # ---- noise, from the layer's own stream (each stacked member's from its own)
    def _noise(self, shape, std: float):
        if not self.training or std == 0.0:
            return None
        scale = self.dtype.type(np.sqrt(2.0 / self.alpha) * std)
        if self.members is None:
            return self.rng.standard_normal(shape, dtype=self.dtype) * scale
        one = shape[:1] + shape[2:]                                    # shape without the member axis
        return np.stack([rng.standard_normal(one, dtype=self.dtype) for rng in self.member_rngs], axis=1) * scale

    def _noisy_input(self, layer, layer_in):
        noise = self._noise(layer_in.shape, self.input_noise) if layer == 0 else None
        self.last_noise = {"input": noise} if layer == 0 else self.last_noise
        return layer_in if noise is None else layer_in + noise

    def _project(self, layer_in, W_ih, b_ih, b_hh):
        XP = super()._project(layer_in, W_ih, b_ih, b_hh)
        noise = self._noise(XP.shape, self.rec_noise)
        self.last_noise.setdefault("recurrent", []).append(noise)      # one (T, B, H) per layer, or None
        return XP if noise is None else XP + noise                     # the drive's noise: a * this per step

    def forward(self, x, h0=None, lengths=None, return_states=False):
        result = super().forward(x, h0, lengths, return_states)
        self.penalty = self._rate_penalty() if self.rate_l2 else 0.0
        return result

    # ---- the rate penalty: rate_l2 * mean(r^2) over units, valid steps, sequences and layers
    def _rate_penalty(self):
        """The penalty's value (per member when stacked); keeps the count of rates it averages over,
        which backward's gradient divides by."""
        layers, T, rows, pad, keep = self._cache
        per_layer = [hs[1:] for _, runs, _ in layers for hs, _ in runs]   # (T, B, H) each: r_t
        n = T * int(np.prod(rows[-1:])) if keep is None else keep.reshape(T, *rows).sum(axis=(0, -1))
        n = self._rate_count = n * self.hidden_size * len(per_layer)

        def value(rates, kept, count):
            total = sum(np.square(r if kept is None else r * kept, dtype=np.float64).sum() for r in rates)
            return float(self.rate_l2 * total / count)
        if self.members is None:
            return value(per_layer, keep, n)
        return np.array([value([r[:, m] for r in per_layer], None if keep is None else keep[:, m],
                               n if np.ndim(n) == 0 else n[m]) for m in range(self.members)])   # each as alone

    def _penalty_grad(self, h_steps, d_hs, keep):
        if not self.rate_l2:
            return d_hs
        scale = 2.0 * self.rate_l2 / np.asarray(self._rate_count, dtype=np.float64)
        if np.ndim(scale):
            scale = scale[:, None, None]                                     # per member (K, 1, 1)
        g = (h_steps * scale.astype(self.dtype) if np.ndim(scale) else h_steps * self.dtype.type(scale))
        if keep is not None:
            g = g * keep
        return g if d_hs is None else d_hs + g

    def backward(self, d_output=None, d_h_n=None, input_grad=True, record=False):
        result = super().backward(d_output, d_h_n, input_grad, record)
        self.constrain_grads()                                             # weights that do not exist
        return result

    def describe(self) -> dict:
        out = {**super().describe(), "dt": self.dt, "tau": self.tau, "rec_noise": self.rec_noise,
               "input_noise": self.input_noise, "rate_l2": self.rate_l2, "dale": self.dale,
               "spectral_radius": self.spectral_radius,
               "masked": sorted(self.masks)}
        return out
