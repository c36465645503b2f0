"""Heads around a recurrent stack: many-to-one classifier and many-to-many tagger."""

from __future__ import annotations

import numpy as np

from .checks import check_choice, check_int
from .errors import InputError
from .modules import Dropout, Linear, Module
from .recurrent import GRU, LSTM, RNN

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def make_recurrent(cell: str, input_size, hidden_size, num_layers, *, nonlinearity="tanh",
                   dropout=0.0, bidirectional=False, init="pytorch", forget_bias=None,
                   dtype=np.float32, seed=0):
    """One recurrent stack by name: 'rnn', 'lstm' or 'gru'."""
    check_choice("model", cell, tuple(CELLS))
    kwargs = dict(num_layers=num_layers, dropout=dropout, bidirectional=bidirectional,
                  init=init, dtype=dtype, seed=seed)
    if cell == "rnn":
        kwargs["nonlinearity"] = nonlinearity
    if cell == "lstm":
        kwargs["forget_bias"] = forget_bias
    return CELLS[cell](input_size, hidden_size, **kwargs)


class _Head(Module):
    """Shared construction: ``rnn`` stack, dropout, ``fc`` readout (names as in PyTorch)."""

    def __init__(self, input_size, hidden_size, num_classes, num_layers=1, *, cell="rnn",
                 nonlinearity="tanh", dropout=0.0, bidirectional=False, init="pytorch",
                 dtype=np.float32, seed=0):
        super().__init__(dtype)
        self.num_classes = check_int("num_classes", num_classes, minimum=1, owner=type(self).__name__)
        rng = np.random.default_rng(seed)
        # Inter-layer dropout only makes sense for several layers; the head dropout always applies.
        self.rnn = self._adopt("rnn", make_recurrent(
            cell, input_size, hidden_size, num_layers, nonlinearity=nonlinearity,
            dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional,
            init=init, dtype=dtype, seed=int(rng.integers(2**31))))
        self.drop = self._adopt("drop", Dropout(dropout, rng=np.random.default_rng(rng.integers(2**31)),
                                                dtype=dtype))
        width = hidden_size * (2 if bidirectional else 1)
        self.fc = self._adopt("fc", Linear(width, num_classes, rng=rng,
                                           init="pytorch" if init == "pytorch" else "xavier",
                                           dtype=dtype))
        self.flatten_parameters()


class SequenceClassifier(_Head):
    """Many-to-one: logits from the last layer's final hidden state (both directions if any).

    forward(x (B, T, D)) -> logits (B, C); backward(d_logits) -> dL/dx.
    """

    def forward(self, x):
        _, h_n = self.rnn.forward(x)
        h = h_n if isinstance(h_n, np.ndarray) else h_n[0]       # LSTM: (h, c)
        dirs = self.rnn.num_directions
        last = h[-dirs:]                                         # (dirs, B, H)
        feat = last[0] if dirs == 1 else np.concatenate(list(last), axis=-1)   # (B, dirs*H)
        return self.fc.forward(self.drop.forward(feat))

    def backward(self, d_logits, input_grad=True):
        d_feat = self.drop.backward(self.fc.backward(d_logits))  # (B, dirs*H)
        rnn = self.rnn
        L, dirs, H = rnn.num_layers * rnn.num_directions, rnn.num_directions, rnn.hidden_size
        B = d_feat.shape[0]
        d_h = np.zeros((L, B, H), dtype=self.dtype)
        for d in range(dirs):
            d_h[L - dirs + d] = d_feat[:, d * H:(d + 1) * H]
        if rnn.cell.n_carry > 1:
            d_h = (d_h,) + tuple(np.zeros_like(d_h) for _ in range(rnn.cell.n_carry - 1))
        return rnn.backward(None, d_h, input_grad=input_grad)


class SequenceTagger(_Head):
    """Many-to-many: logits at every step. forward(x (B, T, D)) -> logits (B, T, C)."""

    def forward(self, x):
        out, _ = self.rnn.forward(x)                             # (B, T, dirs*H)
        return self.fc.forward(self.drop.forward(out))

    def backward(self, d_logits, input_grad=True):
        if d_logits.ndim != 3:
            raise InputError(f"SequenceTagger.backward: expected d_logits of shape (B, T, C), got {d_logits.shape}")
        return self.rnn.backward(self.drop.backward(self.fc.backward(d_logits)), None,
                                 input_grad=input_grad)
