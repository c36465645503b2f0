"""Recurrent cells: each knows exactly one time step, forward and backward.

A cell is used by the one time loop in ``rnnlab.nn.recurrent``; it has no loop of its own.
Interface (shared by every cell):

- ``gates``: G, so ``weight_ih`` is (G*H, D) and ``weight_hh`` is (G*H, H), gates stacked as
  PyTorch stacks them.
- ``n_carry``: how many arrays the recurrent state has ((h,) -> 1; (h, c) -> 2). ``carry[0]``
  is always the hidden state h that the next layer and the readout see.
- ``h_range``: (low, high), the values a unit of h can take from a zero initial state (tanh and
  the gated cells: [-1, 1]; relu: [0, inf)); the fixed-point analysis drops points outside it.
- ``project(X, W_ih, b_ih, b_hh) -> XP``: the input part of every step at once, (N, G*H);
  one matrix product for all time steps, outside the loop.
- ``forward_step(W_hhT, b_hh, xp_t, carry, out) -> (carry, cache)``: ``W_hhT`` is W_hh
  transposed and contiguous (H, G*H); the new h_t is written into ``out`` (B, H), a slot of the
  layer's state buffer, so no step copies its output.
- ``backward_step(W_hh, cache, d_carry, out) -> (d_carry_prev, d_xp_t, d_hh_t)`` where ``d_carry``
  is dL/d(carry_t) in total, ``d_xp_t`` is dL/d(xp_t), written into ``out`` (B, G*H), and
  ``d_hh_t`` is dL/d(h_{t-1} W_hh^T + b_hh) (the same array as ``d_xp_t`` unless
  ``split_hh_grad``).
  Weight gradients are formed by the loop from these after the time loop, as one product each.
- ``prepare_backward(caches, h_steps) -> caches``: called once before the BPTT loop with the
  per-step caches and h_t for every t as one (T, B, H) array; returns what ``backward_step``
  reads, vectorized over all steps (e.g. tanh' for every t in one operation). Return
  ``caches`` unchanged if there is nothing to batch.
"""

import importlib.util
import os

from rnnlab.nn.cells.gru import GRUCell
from rnnlab.nn.cells.lstm import LSTMCell
from rnnlab.nn.cells.rnn import ElmanCell

__all__ = ["ElmanCell", "LSTMCell", "GRUCell", "use_fused", "fused_in_effect", "lstm_cell", "gru_cell"]

# Fused steps (fused.py) for the gated cells, and fused passes for the Transformer
# (nn/transformer_fused.py), when Numba is installed; a process-wide choice made
# at the entry point (RNNLAB_FUSED=0 in the environment, or use_fused(False) before building models).
# what the command line warns about once it has started (a warning at import time would be a source listing)
FUSED_ENV_PROBLEM = (None if os.environ.get("RNNLAB_FUSED", "1") in ("0", "1") else
                     f"RNNLAB_FUSED must be 0 (readable cells and passes) or 1 (fused, the default); got "
                     f"{os.environ['RNNLAB_FUSED']!r}, so the fused kernels are used")
_FUSED = os.environ.get("RNNLAB_FUSED", "1") != "0" and importlib.util.find_spec("numba") is not None


def use_fused(on: bool = True) -> bool:
    """Choose fused (True, needs Numba) or readable (False) gated cells and Transformer passes for
    models built from now on; returns what is in effect."""
    global _FUSED
    _FUSED = bool(on) and importlib.util.find_spec("numba") is not None
    return _FUSED


def fused_in_effect() -> bool:
    """Whether models built now get the fused kernels (``use_fused``, ``RNNLAB_FUSED``)."""
    return _FUSED


def lstm_cell() -> LSTMCell:
    if _FUSED:
        from rnnlab.nn.cells.fused import FusedLSTMCell  # start-up time: Numba loads only for a fused cell
        return FusedLSTMCell()
    return LSTMCell()


def gru_cell() -> GRUCell:
    if _FUSED:
        from rnnlab.nn.cells.fused import FusedGRUCell  # start-up time: Numba loads only for a fused cell
        return FusedGRUCell()
    return GRUCell()
