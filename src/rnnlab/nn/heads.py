"""Heads around a recurrent stack: many-to-one (classifier, regressor) and many-to-many
(tagger, step regressor, char-LM) readouts."""

from __future__ import annotations

import numpy as np

from rnnlab.checks import check_choice, check_int
from rnnlab.errors import InputError
from rnnlab.nn.modules import Dropout, Embedding, Linear, Module
from rnnlab.nn.recurrent import CTRNN, GRU, LSTM, RNN
from rnnlab.nn.wiring import check_mask

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "ctrnn": CTRNN}
READOUTS = ("all", "excitatory")


def make_recurrent(cell: str, input_size, hidden_size, num_layers, *, nonlinearity=None,
                   dropout=0.0, bidirectional=False, init="pytorch", forget_bias=None,
                   dtype=np.float32, seed=0, rate=None):
    """One recurrent stack by name: 'rnn', 'lstm', 'gru' or 'ctrnn' (``rate``: the CTRNN's own
    keyword arguments, dt, tau, noise, dale, masks, rate_l2). ``nonlinearity`` None is the cell's
    own default: tanh for the RNN, relu for the CTRNN."""
    check_choice("model", cell, tuple(CELLS))
    kwargs = dict(num_layers=num_layers, dropout=dropout, init=init, dtype=dtype, seed=seed)
    if cell != "ctrnn":
        kwargs["bidirectional"] = bidirectional
    elif bidirectional:
        raise InputError("a CTRNN runs forward in time only; drop bidirectional")
    if cell in ("rnn", "ctrnn"):
        kwargs["nonlinearity"] = nonlinearity or {"rnn": "tanh", "ctrnn": "relu"}[cell]
    if cell == "lstm":
        kwargs["forget_bias"] = forget_bias
    if cell == "ctrnn":
        kwargs.update(rate or {})
    elif rate:
        raise InputError(f"{', '.join(sorted(rate))} belong to the continuous-time rate network; use "
                         f"model 'ctrnn' or drop them")
    return CELLS[cell](input_size, hidden_size, **kwargs)


class _Head(Module):
    """Shared construction: ``rnn`` stack, dropout, ``fc`` readout (names as in PyTorch).

    ``output_size`` is K, the width of the readout: classes for the classifier and tagger, real
    outputs for the regressors, the vocabulary for ``CharLM``. ``rate`` holds a CTRNN's own
    settings (``rnnlab.CTRNN``); ``readout="excitatory"`` reads it from its excitatory units only
    (Dale's law), ``output_mask`` (K, H) gates the readout's weights.
    """

    def __init__(self, input_size, hidden_size, output_size, num_layers=1, *, cell="rnn",
                 nonlinearity=None, dropout=0.0, bidirectional=False, init="pytorch",
                 forget_bias=None, dtype=np.float32, seed=0, embedding=None, rate=None,
                 readout="all", output_mask=None):
        super().__init__(dtype)
        self.output_size = check_int("output_size", output_size, minimum=1, owner=type(self).__name__)
        rng = np.random.default_rng(seed)
        if embedding is not None:              # ids -> vectors first (CharLM): input_size = vocab
            self.embedding = self._adopt("embedding", Embedding(input_size, embedding, rng=rng, dtype=dtype))
            input_size = embedding
        # Inter-layer dropout only makes sense for several layers; the head dropout always applies.
        self.rnn = self._adopt("rnn", make_recurrent(
            cell, input_size, hidden_size, num_layers, nonlinearity=nonlinearity,
            dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional,
            init=init, forget_bias=forget_bias, dtype=dtype, seed=int(rng.integers(2**31)), rate=rate))
        self.drop = self._adopt("drop", Dropout(dropout, rng=np.random.default_rng(rng.integers(2**31)),
                                                dtype=dtype))
        width = hidden_size * (2 if bidirectional else 1)
        self.fc = self._adopt("fc", Linear(width, output_size, rng=rng,
                                           init="pytorch" if init == "pytorch" else "xavier",
                                           dtype=dtype))
        self.readout = check_choice("readout", readout, READOUTS, owner=type(self).__name__)
        mask = None if output_mask is None else check_mask("output_mask", output_mask, (output_size, width),
                                                           type(self).__name__)
        if readout == "excitatory":
            signs = self.rnn.signs.get(f"weight_hh_l{num_layers - 1}")
            if signs is None:
                raise InputError("a readout from excitatory units needs Dale's law: set dale (e.g. 0.8) "
                                 "or read out from all units")
            mask = (1.0 if mask is None else mask) * (signs > 0)[None, :]
        if mask is not None:
            self.fc.masks["weight"] = mask.astype(dtype)
        self.flatten_parameters()
        self.constrain_weights()

    def describe(self) -> dict:
        """The model as built: its recurrent stack (cell, sizes, init applied), dropout, readout."""
        rnn = self.rnn.describe()
        out = {**super().describe(), **{k: v for k, v in rnn.items() if k not in ("class", "params", "dtype")},
               "dropout": self.drop.p, "output_size": self.output_size}
        if rnn.get("cell") == "ctrnn":
            out["readout"] = self.readout
        if hasattr(self, "embedding"):
            out["embed"] = self.embedding.params["weight"].shape[1]
            out["input_size"] = self.embedding.params["weight"].shape[0]
        return out


class SequenceClassifier(_Head):
    """Many-to-one: outputs from the last layer's final hidden state (both directions if any).

    forward(x (B, T, D), lengths=None) -> outputs (B, K) (logits for cross-entropy);
    backward(d_out) -> dL/dx. With ``lengths`` (B,) each sequence is read at its own last valid
    step (h_n of a right-padded batch). ``SequenceRegressor`` is the same network read out as
    real values (use with ``mse``).
    """

    def forward(self, x, lengths=None):
        _, h_n = self.rnn.forward(x, lengths=lengths)
        h = h_n if isinstance(h_n, np.ndarray) else h_n[0]       # LSTM: (h, c)
        dirs = self.rnn.num_directions
        last = h[-dirs:]                                         # (dirs, B, H)
        feat = last[0] if dirs == 1 else np.concatenate(list(last), axis=-1)   # (B, dirs*H)
        return self.fc.forward(self.drop.forward(feat))

    def backward(self, d_out, input_grad=True, record=False):
        """dL/d(outputs) (B, K) -> what ``Recurrent.backward`` returns (dx, or (dx, probes))."""
        d_feat = self.drop.backward(self.fc.backward(d_out))     # (B, dirs*H)
        rnn = self.rnn
        L, dirs, H = rnn.num_layers * rnn.num_directions, rnn.num_directions, rnn.hidden_size
        d_h = np.zeros((L,) + d_feat.shape[:-1] + (H,), dtype=self.dtype)     # (L, B, H), or (L, K, B, H)
        for d in range(dirs):
            d_h[L - dirs + d] = d_feat[..., d * H:(d + 1) * H]
        if rnn.cell.n_carry > 1:
            d_h = (d_h,) + tuple(np.zeros_like(d_h) for _ in range(rnn.cell.n_carry - 1))
        return rnn.backward(None, d_h, input_grad=input_grad, record=record)


class SequenceRegressor(SequenceClassifier):
    """Many-to-one regression: forward(x (B, T, D), lengths=None) -> predictions (B, K) for ``mse``."""


class _StepHead(_Head):
    """Many-to-many: outputs at every step, fc(dropout(h_t)) -> (B, T, K).

    The one per-step readout behind ``SequenceTagger``, ``StepRegressor`` and ``CharLM`` (which
    puts its embedding in front and takes dL/d(embedding) on itself).
    """

    def forward(self, x, lengths=None):
        return self._run(x, None, lengths)[0]

    def _run(self, x, h0, lengths=None):
        emb = getattr(self, "embedding", None)
        out, h_n = self.rnn.forward(x if emb is None else emb.forward(x), h0, lengths=lengths)
        return self.fc.forward(self.drop.forward(out)), h_n       # (B, T, K), final state

    def backward(self, d_out, input_grad=True, record=False):
        """dL/d(outputs) (B, T, K) -> what ``Recurrent.backward`` returns (dx, or (dx, probes));
        with an embedding, dx is None (ids have no gradient) and the embedding's is accumulated."""
        if np.ndim(d_out) != (3 if self.members is None else 4):
            raise InputError(f"{type(self).__name__}.backward: expected d_out of shape (B, T, K), "
                             f"got {np.shape(d_out)}; pass the loss gradient of forward's output")
        emb = getattr(self, "embedding", None)
        got = self.rnn.backward(self.drop.backward(self.fc.backward(d_out)), None,
                                input_grad=input_grad or emb is not None, record=record)
        if emb is None:
            return got
        d_emb, probes = got if record else (got, None)
        emb.backward(d_emb)
        return (None, probes) if record else None


class SequenceTagger(_StepHead):
    """Many-to-many classification: forward(x (B, T, D), lengths=None) -> logits (B, T, C)."""


class StepRegressor(_StepHead):
    """Many-to-many regression: forward(x (B, T, D), lengths=None) -> real outputs (B, T, K) for
    ``mse`` (pass ``mask`` for padded batches)."""


class CharLM(_StepHead):
    """Character-level language model: embedding -> recurrent stack -> logits at every step.

    forward(ids (B, T)) -> logits (B, T, V). With ``stateful = True`` (training over a text
    stream) the final state of one call is the initial state of the next, so state carries
    across windows while gradients stop at each window's edge (truncated BPTT).
    ``step``/``generate`` run the same layers one character at a time.
    """

    def __init__(self, vocab_size, embed_size, hidden_size, num_layers=1, *, cell="lstm",
                 dropout=0.0, init="pytorch", forget_bias=None, dtype=np.float32, seed=0,
                 vocab=(), nonlinearity=None, rate=None, readout="all", output_mask=None):
        super().__init__(vocab_size, hidden_size, vocab_size, num_layers, cell=cell,
                         dropout=dropout, init=init, forget_bias=forget_bias, dtype=dtype,
                         seed=seed, embedding=embed_size, nonlinearity=nonlinearity, rate=rate,
                         readout=readout, output_mask=output_mask)
        self.vocab = tuple(vocab)
        if self.vocab and len(self.vocab) != vocab_size:
            raise InputError(f"CharLM: vocab has {len(self.vocab)} characters but vocab_size is {vocab_size}")
        self.stateful = False
        self.state = None

    def reset_state(self):
        self.state = None

    def forward(self, ids, state=None, lengths=None):
        if self.stateful and state is None:
            state = self.state                                  # continue the text stream
        logits, h_n = self._run(ids, state, lengths)
        if self.stateful:
            self.state = h_n
        return logits

    def _run(self, ids, h0, lengths=None):
        logits, h_n = super()._run(ids, h0, lengths)
        self.last_state = h_n
        return logits, h_n

    # ---- streaming and generation: the same forward pass, one step at a time
    def step(self, char_id: int, state=None):
        """Feed one symbol id from ``state`` (None = fresh); returns (logits (V,), new state).

        Eval mode, independent of the training stream's state: stepping through a text one
        character at a time gives the same logits as ``forward`` over the whole text.
        """
        was = self.training
        self.eval()
        logits, h_n = self._run(np.array([[char_id]]), state)
        self.train(was)
        return logits[0, -1], h_n

    def encode(self, text: str) -> np.ndarray:
        return encode_text(self.vocab, text, "CharLM")

    def generate(self, prime: str, length: int, temperature: float = 1.0, top_k: int = 0,
                 seed: int = 0) -> str:
        """Continue ``prime`` by ``length`` sampled characters (temperature and top-k sampling)."""
        check_generate(prime, temperature)
        rng = np.random.default_rng(seed)
        ids = self.encode(prime)
        state = None
        for i in ids:                                           # run the prime through the model
            logits, state = self.step(int(i), state)
        out = []
        for _ in range(length):
            nxt = sample_next(logits, temperature, top_k, rng)
            out.append(self.vocab[nxt])
            logits, state = self.step(nxt, state)
        return "".join(out)


# ---- text generation pieces shared by every language model (CharLM, the Transformer)
def encode_text(vocab: tuple, text: str, owner: str) -> np.ndarray:
    """Characters -> symbol ids of ``vocab``, naming any character the model never saw."""
    index = {c: i for i, c in enumerate(vocab)}
    missing = sorted({c for c in text if c not in index})
    if missing:
        raise InputError(f"{owner}: characters {''.join(missing)!r} are not in the model's "
                         "vocabulary; use characters from its training text")
    return np.array([index[c] for c in text], dtype=np.int64)


def check_generate(prime: str, temperature: float) -> None:
    if not prime:
        raise InputError("generate: the priming string is empty; give at least one character")
    if not temperature > 0:
        raise InputError(f"generate: temperature must be > 0, got {temperature}")


def sample_next(logits, temperature: float, top_k: int, rng) -> int:
    """One id drawn from softmax(logits / temperature), among the ``top_k`` likeliest (0 = all)."""
    z = logits.astype(np.float64) / temperature
    if 0 < top_k < z.size:
        z[z < np.partition(z, -top_k)[-top_k]] = -np.inf       # keep the k most likely
    p = np.exp(z - z.max())
    p /= p.sum()
    return int(rng.choice(z.size, p=p))
