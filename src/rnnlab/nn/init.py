"""Weight initialisers for recurrent layers.

Schemes (``init=`` on every recurrent layer):

- ``"pytorch"``: every weight and bias U(-1/sqrt(H), 1/sqrt(H)), as ``torch.nn.RNN/LSTM/GRU``.
- ``"xavier"``: Xavier-uniform weights (fan_in + fan_out over the whole stacked matrix, as
  ``nn.init.xavier_uniform_``), zero biases. The seed experiment's choice.
- ``"orthogonal"``: recurrent matrices orthogonal per gate block, input weights Xavier, zero
  biases; keeps the recurrent map norm-preserving at the start.
- ``"identity"``: recurrent matrices the identity per gate block (IRNN, Le et al. 2015, meant
  for ``nonlinearity='relu'``), input weights Xavier, zero biases.
"""

from __future__ import annotations

import numpy as np

INIT_SCHEMES = ("pytorch", "xavier", "orthogonal", "identity")


def xavier_uniform(rng, shape):
    fan_out, fan_in = shape
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, shape)


def orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))                      # sign fix makes the draw uniform (Haar)


def recurrent_weights(scheme: str, kind: str, shape, hidden_size: int, gates: int, rng):
    """One parameter array of a recurrent layer; kind is 'weight_ih', 'weight_hh' or 'bias'."""
    if scheme == "pytorch":
        k = 1.0 / np.sqrt(hidden_size)
        return rng.uniform(-k, k, shape)
    if kind == "bias":
        return np.zeros(shape)
    if kind == "weight_ih" or scheme == "xavier":
        return xavier_uniform(rng, shape)
    # weight_hh, one (H, H) block per gate
    block = orthogonal if scheme == "orthogonal" else (lambda _rng, n: np.eye(n))
    return np.concatenate([block(rng, hidden_size) for _ in range(gates)], axis=0)
