"""Fixed points of one recurrent layer under a constant input, for any cell, with a solver that
converges per start and says what it dropped.

The problem (Sussillo & Barak 2013; Golub & Sussillo's FixedPointFinder): for the map
F(s) = the layer's new carry from carry s with the input held constant, find the states s* with
F(s*) = s*, by minimising q(s) = 1/2 ||F(s) - s||^2 from many starts (states visited on real
trials plus noise), keep the unique points, drop the ones far from anything visited, and type
each by the eigenvalues of its Jacobian (discrete time: stable iff every |lambda| < 1; a
continuous-time rate network (CTRNN): stable iff every Re(mu) < 0, see ``Clock``).

Pieces:

- ``StepMap``: F for one layer of a trained ``RNN`` / ``LSTM`` / ``GRU`` / ``CTRNN`` stack. The
  state s is the cell's carry flattened: h (H,) for Elman and GRU, [h, c] (2H,) for LSTM; for the
  CTRNN the current x (H,) alone, its rate r = f(x) being a function of it. F calls the
  cell's own ``forward_step`` and J^T v calls the cell's own ``backward_step``; no step equation
  is written twice. ``jacobian`` stacks the VJPs with the S unit vectors, all points at once.
- ``Clock`` and ``per_step``: how a CTRNN's eigenvalues are read. Its map is one Euler step of dt
  of tau dx/dt = -x + W f(x) + ..., so the Jacobian is J_d = I + a (-I + W D'), a = dt / tau,
  and each eigenvalue lambda of it is mu = (lambda - 1) / a of the continuous system (in 1/tau).
  Every test on an eigenvalue (stable, saddle index, "within 0.02 of 1", the slowest mode, the
  turn per step) is written once, for the discrete map, and applied to ``per_step(lambda)``:
  lambda itself for the discrete cells, e^(a mu) for a CTRNN -- the factor by which the
  continuous system's mode grows over one step dt. So a CTRNN's point is stable iff every
  Re(mu) < 0 (not |lambda| < 1), a mode is slow iff |a mu| is small, and its time constant is
  -1 / Re(mu) (in tau).
- ``steady_layer_input``: the input a layer receives when the network is fed a constant input
  for a long time (the layers below run through a float64 copy of the stack's own ``forward``).
- ``sample_starts``: starts drawn from visited states plus Gaussian noise.
- ``find_fixed_points``: batched Levenberg-Marquardt on r(s) = F(s) - s, per-start stopping,
  de-duplication, outlier removal, eigenvalues; returns a ``FixedPointResult`` that counts
  every start (converged, stalled, out of iterations, outlier, merged duplicate).

Solver choice. The residual r(s) = F(s) - s is square and smooth, so the natural
solver is Gauss-Newton on r: at a non-degenerate fixed point A = J - I is invertible and the
step s <- s - A^-1 r converges quadratically. Levenberg-Marquardt damps it,
delta = -(A^T A + mu I)^-1 A^T r, with mu per start (Nielsen's gain-ratio rule: shrink mu
after a step that lowered q as predicted, double it after a step that did not); a step is taken
only if it lowers q, so the solver cannot overshoot near a solution, and far from one it is a
short gradient step on q. All starts advance together as one batch; each stops when q < tol
(converged), when even a tiny damped step cannot lower q any more (stalled: a local minimum of
q that is not a fixed point, a "slow point"), or at ``max_iters``.

Measured on 200 starts (visited states plus noise), 2-core CPU, float64, against the old finder
(``dynamics.find_fixed_points`` before this module: Adam at lr 0.05 for 3000 steps, no stopping
rule, kept q < 1e-6). Times are minima of 3 runs on a shared machine (they varied up to 2x):

- 64-unit random tanh RNN, W_hh ~ 1.5 N(0, 1/64), zero input (chaotic; 3 fixed points, all
  saddles): Adam 0.70 s, keeps 85 starts, 0 reach q < 1e-12, reports 58 "points" of which none
  lies within 1e-3 of a fixed point (polishing them with LM moves each by ~0.2: they are slow
  points with q < 1e-6). LM 0.5-0.9 s, all 200
  starts converge, median 15 / max 45 iterations, the 3 saddles (index 38, 38, 39).
- the same with gain 2.0: Adam keeps 55, 3 of its 17 points are true fixed points. LM converges
  123 (median 24 iterations), finds 22 saddles, and reports 76 starts stalled at local minima of
  q with q = 1e-3 .. 5e-2, |grad q| ~ 1e-10 and A singular there: slow points, not fixed points.
- trained 3-bit flip-flop, tanh RNN, 64 units, noise 0.05: Adam 0.72 s keeps 19 of 200 starts
  (181 dropped without a word) and finds 6 of the 8 memory states (plus 6 saddles its wandering
  reached). LM 0.12 s: 200/200 converge in at most 4 iterations, to the 8 stable points (starts
  this close to the attractors do not reach saddles). With noise 0.5: Adam keeps 90; LM
  0.16 s, 200/200 converge in at most 8 iterations: 8 stable, 12 saddles of index 1, 3 of
  index 2, 1 of index 3. A trained LSTM (32 units) behaves the same (<= 10 iterations).
- Alternatives measured: an Adam warm-up (100 or 300 steps, then LM) gave the same points on
  the gain-1.5 net with fewer LM iterations (median 10) but more total time, and on the gain-2.0
  net converged more starts (144-151 vs 123) yet found fewer distinct points (17-18 vs 22): not
  used. Marquardt's diag(A^T A) scaling and the classic mu *10 / /10 rule were no better than
  Nielsen's rule with mu I on any of these nets, and worse on the GRU below.
- Hard case, trained 3-bit flip-flop GRU (32 units, saturated update gates, stable points with
  |lambda| ~ 0.9999): noise 0.05 converges 200/200 (median 16, max 55 iterations); noise 0.5
  converges 119, 19 stall at slow points (q 1e-10 .. 1e-7) and 62 hit max_iters=200. Those are
  escaping: where z -> 1, F(h) - h = (1 - z)(n - h) -> 0 as |h| grows, so q keeps falling
  while h runs off (10-17 units from its start after 200-1600 iterations); with max_iters=3000
  most of them "converge" there and are then dropped as outliers.

Large states (more than ``MATRIX_FREE_ABOVE`` = 128 numbers, e.g. a 256-unit char-LM's LSTM with
its 512-number [h, c]) take the same LM steps without forming any S x S matrix: each damped
step is solved by conjugate gradients through J v (a central difference of F) and J^T v (the
cell's backward, its forward at the step's states run once per solve: ``StepMap.vjp_at``),
``_solve_damped``. Tested to find the same points of the same types as the dense steps on small
RNN, LSTM and GRU layers. On the char-LM preset's trained LSTM-256, 8 starts at zero input took
8.1 s with dense steps, 3.8 s matrix-free, 2.8 s once J^T reused its forward (4.4 s before that
in the same run); all stalled at q = 0.015 .. 1.4: no fixed point near the visited states at
that input. A 1-epoch GRU-256's 64 starts: 66 s dense, 18.5 then 11.0 s.

Defaults and their reasons:

- ``tol = 1e-12`` on q (FixedPointFinder's default): |F(s) - s| < 1.4e-6.
- ``max_iters = 200``: LM needs tens of iterations near a fixed point; what has not converged
  by 200 was, on the nets above, escaping or creeping along a slow region, and is reported as
  dropped (``hit_max_iters``).
- ``unique_tol = 1e-3 * sqrt(S)`` (an RMS of 1e-3 per unit): converged points lie within ~1e-6
  of the exact solution, distinct fixed points of trained networks are far further apart.
- ``outlier_distance = 3 * spread of the starts`` (spread = RMS distance of the starts from their
  centroid): a converged point farther than that from every start left the visited region.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace

import numpy as np

from rnnlab.errors import warn_user
from rnnlab.nn.cells.ctrnn import CTRNNCell, rate

__all__ = ["FP_DEFAULTS", "Clock", "per_step", "map_state", "StepMap", "steady_layer_input", "sample_starts",
           "find_fixed_points", "FixedPoint", "FixedPointResult"]

# Defaults of the fixed-point search, the one place they are set (``rnnlab analyze --fp-*``,
# ``analyze(fp_*=...)``, ``find_fixed_points``). Half the starts are visited states plus noise, half
# lie on segments between two visited states (where saddles live). Measured on trained 3-bit
# flip-flops (tanh RNN, 64 units): visited states alone find the 8 stable points and 1 saddle; the
# mix finds all 27 (8 stable, 12 + 6 + 1 saddles of index 1, 2, 3) -- with 256 starts 10-12 of the
# 12 edge saddles over 4 seeds, with 512 all 12 for every seed, in about 1 s of analysis.
FP_DEFAULTS = {"starts": 512, "tol": 1e-12, "noise": 0.01, "between": 0.5, "seconds": 30.0, "rounds": 32,
               "slow_tol": 1e-5}

_CHUNK_ROWS = 1 << 15          # rows per batched forward/backward call (bounds memory)
_LM_CHUNK_BYTES = 2 << 20      # one (starts, S, S) float64 array of the solver (it holds a few): ~L2
MATRIX_FREE_ABOVE = 128        # larger states: LM steps through J v and J^T v products (no S x S arrays)


# ---------------------------------------------------------------- time
@dataclass(frozen=True)
class Clock:
    """Continuous time: one step of the map is an Euler step of ``dt`` of tau dx/dt = F_c(x), with
    a = dt / tau. The map's Jacobian J_d = I + a J_c, so an eigenvalue lambda of it is
    mu = (lambda - 1) / a of the continuous system, in units of 1/tau (``rates``). A mode decays iff
    Re(mu) < 0, with time constant -1 / Re(mu) (in tau; ``time_constants``), and grows by e^(a mu)
    over one step (``per_step``). The state moves at |dx/dt| = |F(x) - x| / dt (``speed``).

    Example::

        >>> c = Clock(dt=50.0, tau=100.0)
        >>> lam = np.array([0.5, 1.0 + 0.5j])
        >>> c.rates(lam)                       # mu in 1/tau: a decay with tau, and a marginal rotation
        array([-1.+0.j,  0.+1.j])
        >>> float(c.time_constants(lam)[0])    # -1 / Re(mu), in tau
        1.0
    """
    dt: float                  # the Euler step, in the model's time unit (1.0 with tau = 1/a: units of tau)
    tau: float                 # the time constant, same unit

    @property
    def alpha(self) -> float:
        return self.dt / self.tau

    def rates(self, eig):
        """mu = (lambda - 1) / a: the continuous system's eigenvalues, in 1/tau."""
        return (np.asarray(eig) - 1.0) / self.alpha

    def per_step(self, eig):
        """e^(a mu) = e^(lambda - 1): what the continuous mode grows by over one step dt."""
        return np.exp(np.asarray(eig) - 1.0)

    def time_constants(self, eig):
        """-1 / Re(mu), in tau: how long a mode takes to shrink by e (negative: to grow by e)."""
        re = np.real(self.rates(eig))
        with np.errstate(divide="ignore"):
            return -1.0 / re

    def speed(self, q):
        """|dx/dt| = |F(x) - x| / dt from q = 1/2 |F(x) - x|^2, in x per time unit of dt."""
        return np.sqrt(2.0 * np.asarray(q)) / self.dt

    def to_json(self) -> dict:
        return {"time": "continuous", "dt": self.dt, "tau": self.tau, "alpha": self.alpha,
                "sentence": self.sentence()}

    def sentence(self) -> str:
        return (f"continuous time (dt = {self.dt:g}, tau = {self.tau:g}, a = dt/tau = {self.alpha:g}): each "
                "eigenvalue lambda of the Euler step's Jacobian is read as mu = (lambda - 1)/a in 1/tau; a point is "
                "stable when every Re(mu) < 0, and a mode's time constant is -1/Re(mu) in tau")


def per_step(eig, clock: Clock | None = None):
    """Eigenvalues as the per-step factor of the dynamics the analysis reads, the one quantity every
    eigenvalue test is applied to: the map's own lambda in discrete time, e^(a mu) for a
    continuous-time cell (``Clock.per_step``)."""
    return np.asarray(eig) if clock is None else clock.per_step(eig)


def map_state(cell, states):
    """The step map's state from a layer's per-step states as ``return_states`` gives them
    (..., n_carry * H): all of them ([h] or [h, c]), but the current x alone for a CTRNN, whose
    [r | x] holds r = f(x) as well."""
    states = np.asarray(states)
    return states[..., states.shape[-1] // 2:] if isinstance(cell, CTRNNCell) else states


# ---------------------------------------------------------------- the map
def _layer_suffix(rnn, layer: int, direction: int) -> tuple[int, str]:
    L = rnn.num_layers
    layer = layer + L if layer < 0 else layer
    if not 0 <= layer < L:
        raise ValueError(f"layer {layer} out of range for a stack of {L} layers")
    if direction not in range(rnn.num_directions):
        raise ValueError(f"direction {direction} out of range: the stack has "
                         f"{rnn.num_directions} direction(s)")
    return layer, f"_l{layer}" + ("_reverse" if direction == 1 else "")


class StepMap:
    """F(s): one step of a recurrent cell from carry s with a constant input.

    ``xp`` is the cell's projection of the constant input, ``cell.project(x, W_ih, b_ih, b_hh)``
    (G*H,), biases folded in as the cell folds them. States are (S,) or (M, S) arrays,
    S = n_carry * H, the carry parts concatenated ([h, c] for LSTM). A CTRNN's state is its
    current x (S = H): ``split`` makes the carry (f(x), x) the cell steps from, ``join`` keeps the
    new x, and J^T v chains the cell's (dr_prev, dx_prev) into dx_prev + dr_prev f'(x); its
    ``clock`` (``Clock``; units of tau unless given) says how its eigenvalues are read. ``clock`` is
    None for the discrete cells.

    Example::

        >>> import numpy as np
        >>> from rnnlab.nn.cells import ElmanCell
        >>> F = StepMap(ElmanCell("tanh"), 2 * np.eye(2), None, np.zeros(2))
        >>> np.round(F(np.array([0.5, -1.0])), 4)
        array([ 0.7616, -0.964 ])
    """

    def __init__(self, cell, W_hh, b_hh, xp, clock: Clock | None = None):
        self.cell = cell
        self.W_hh = np.ascontiguousarray(W_hh, dtype=np.float64)           # (G*H, H)
        self.W_hhT = np.ascontiguousarray(self.W_hh.T)                     # (H, G*H)
        self.b_hh = None if b_hh is None else np.asarray(b_hh, dtype=np.float64).copy()
        self.xp = np.asarray(xp, dtype=np.float64).reshape(-1).copy()     # (G*H,)
        GH, H = self.W_hh.shape
        if GH != cell.gates * H or self.xp.shape != (GH,):
            raise ValueError(f"StepMap: W_hh {self.W_hh.shape} and xp {self.xp.shape} do not fit a "
                             f"cell with {cell.gates} gate(s)")
        self.hidden_size = H
        self.n_carry = cell.n_carry
        self.rate_cell = isinstance(cell, CTRNNCell)                       # state x, carry (f(x), x)
        self.size = H if self.rate_cell else self.n_carry * H             # S
        # what a unit of the state can take: h's range; a CTRNN's current x takes any value
        self.h_range = (-np.inf, np.inf) if self.rate_cell else getattr(cell, "h_range", (-np.inf, np.inf))
        self.clock = (clock or Clock(dt=cell.alpha, tau=1.0)) if self.rate_cell else None
        if self.rate_cell and not np.isclose(self.clock.alpha, cell.alpha):
            raise ValueError(f"StepMap: the clock's dt/tau = {self.clock.alpha:g} is not the cell's a = {cell.alpha:g}")

    # ---- constructors
    @classmethod
    def from_weights(cls, cell, W_ih, W_hh, b_ih, b_hh, x_const, clock: Clock | None = None) -> "StepMap":
        f64 = (lambda a: None if a is None else np.asarray(a, dtype=np.float64))
        x = np.asarray(x_const, dtype=np.float64).reshape(1, -1)
        xp = cell.project(x, f64(W_ih), f64(b_ih), f64(b_hh))[0]
        return cls(cell, f64(W_hh), f64(b_hh), xp, clock=clock)

    @classmethod
    def from_recurrent(cls, rnn, layer: int = -1, direction: int = 0, x_const=None) -> "StepMap":
        """Layer ``layer`` (direction ``direction``) of an ``RNN``/``LSTM``/``GRU`` stack, fed the
        constant input ``x_const`` (D_layer,) that reaches *that layer* (zeros by default; see
        ``steady_layer_input`` for what a constant network input gives a layer above the first).
        """
        layer, suffix = _layer_suffix(rnn, layer, direction)
        p = rnn.params
        W_ih = p["weight_ih" + suffix]
        if x_const is None:
            x_const = np.zeros(W_ih.shape[1])
        x_const = np.asarray(x_const, dtype=np.float64).reshape(-1)
        if x_const.shape != (W_ih.shape[1],):
            raise ValueError(f"x_const has {x_const.size} values; layer {layer} takes "
                             f"{W_ih.shape[1]} inputs")
        clock = Clock(dt=rnn.dt, tau=rnn.tau) if isinstance(rnn.cell, CTRNNCell) else None
        return cls.from_weights(rnn.cell, W_ih, p["weight_hh" + suffix], p.get("bias_ih" + suffix),
                                p.get("bias_hh" + suffix), x_const, clock=clock)

    # ---- state layout
    def split(self, s):
        """(B, S) -> tuple of n_carry contiguous (B, H) arrays: the carry the cell steps from (a
        CTRNN's (f(x), x), its rate from the cell's own f)."""
        H = self.hidden_size
        if self.rate_cell:
            x = np.ascontiguousarray(s)
            return rate(x, self.cell.nonlinearity), x
        return tuple(np.ascontiguousarray(s[:, i * H:(i + 1) * H]) for i in range(self.n_carry))

    def join(self, carry):
        """tuple of (B, H) -> (B, S) (a CTRNN's new x: its rate is a function of it)."""
        if self.rate_cell:
            return carry[1]
        return carry[0] if len(carry) == 1 else np.concatenate(carry, axis=1)

    def state_of(self, states):
        """This map's states from the layer's per-step states (..., n_carry * H) (``map_state``)."""
        return map_state(self.cell, states)

    def output(self, s):
        """What the readout and the layer above see at states (M, S): carry[0], h (a CTRNN's rate
        r = f(x))."""
        s, single = self._batch(s)
        out = self.split(s)[0]
        return out[0] if single else out

    def speed(self, s):
        """|F(s) - s| per step; for a continuous-time cell |dx/dt| = |F(x) - x| / dt."""
        s, single = self._batch(s)
        v = np.linalg.norm(self(s) - s, axis=1)
        v = v if self.clock is None else v / self.clock.dt
        return v[0] if single else v

    def _batch(self, s):
        s = np.asarray(s, dtype=np.float64)
        if s.ndim not in (1, 2) or s.shape[-1] != self.size:
            raise ValueError(f"states must be (S,) or (M, S) with S = n_carry * H = {self.size}, "
                             f"got shape {s.shape}")
        single = s.ndim == 1
        return (s[None] if single else s), single

    def _step(self, s):
        B = s.shape[0]
        xp = np.broadcast_to(self.xp, (B, self.xp.size))
        out = np.empty((B, self.hidden_size))
        return self.cell.forward_step(self.W_hhT, self.b_hh, xp, self.split(s), out)

    def box_excess(self, s):
        """How far each state's h part lies outside the values the cell's h can take (0 inside):
        a fixed point there is a root of F(s) - s that no trajectory from a zero state reaches."""
        s, single = self._batch(s)
        low, high = self.h_range
        h = s[:, :self.hidden_size]
        out = np.maximum(np.maximum(low - h, h - high), 0.0).max(axis=1)
        return out[0] if single else out

    def clip_to_range(self, s):
        """Move the h part of states (M, S) into the values it can take, in place: the solver's
        steps stay where trajectories can go (a root outside is none the network reaches)."""
        low, high = self.h_range
        if np.isfinite(low) or np.isfinite(high):
            np.clip(s[:, :self.hidden_size], low, high, out=s[:, :self.hidden_size])
        return s

    # ---- F, J^T v, J
    def __call__(self, s):
        s, single = self._batch(s)
        parts = []
        for lo in range(0, len(s), _CHUNK_ROWS):
            carry, _ = self._step(s[lo:lo + _CHUNK_ROWS])
            parts.append(self.join(carry))
        out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return out[0] if single else out

    def vjp(self, s, v):
        """J(s)^T v for a batch of states and cotangents, both (B, S), by the cell's backward."""
        s, single = self._batch(s)
        v, _ = self._batch(v)
        out = np.empty_like(s)
        for lo in range(0, len(s), _CHUNK_ROWS):
            sl = slice(lo, lo + _CHUNK_ROWS)
            out[sl] = self.vjp_at(s[sl])(v[sl])
        return out[0] if single else out

    def vjp_at(self, s):
        """``(v, rows=None) -> J(s[rows])^T v`` for states s (B, S) held fixed: the cell's forward
        at s runs once and its backward at each call (conjugate gradients apply J^T at one s many
        times). The cells' caches are batch-first, so ``rows`` picks the rows to go back through."""
        carry, cache = self._step(s)
        cache = self.cell.prepare_backward([cache], carry[0][None])[0]
        # a CTRNN's carry (f(x), x) is a function of x: f'(x) from the cell, at the states themselves
        slope = self.cell.prepare_backward(None, self.split(s)[0][None])[0] if self.rate_cell else None

        def apply(v, rows=None):
            c = cache if rows is None else (cache[rows] if isinstance(cache, np.ndarray)
                                            else tuple(part[rows] for part in cache))
            d_out = np.empty((len(v), self.W_hh.shape[0]))
            if self.rate_cell:            # v is dL/dx_new; the new rate is no part of the state
                (dr, dx), _, _ = self.cell.backward_step(self.W_hh, c, (np.zeros_like(v), v), d_out)
                return dx + dr * (slope if rows is None else slope[rows])   # through r = f(x)
            d_prev, _, _ = self.cell.backward_step(self.W_hh, c, self.split(v), d_out)
            return np.concatenate(d_prev, axis=1) if len(d_prev) > 1 else d_prev[0]
        return apply

    def jacobian(self, s):
        """dF/ds: (S,) -> (S, S), or (M, S) -> (M, S, S); row i is e_i^T J = (J^T e_i)^T."""
        s, single = self._batch(s)
        M, S = s.shape
        if hasattr(self.cell, "step_jacobian") and not self.rate_cell:
            # the cell's own derivative of one step from its forward cache, O(S^2) a state; equal
            # to the VJP rows below (tested); a GRU-64 flip-flop's whole search ran 2.7x faster
            J = np.empty((M, S, S))
            per = max(1, _CHUNK_ROWS // S)
            for lo in range(0, M, per):
                _, cache = self._step(s[lo:lo + per])
                J[lo:lo + per] = self.cell.step_jacobian(self.W_hh, cache)
            return J[0] if single else J
        J = np.empty((M, S, S))
        eye = np.eye(S)
        per = max(1, _CHUNK_ROWS // S)                       # points per chunk
        for lo in range(0, M, per):
            pts = s[lo:lo + per]
            rows = self.vjp(np.repeat(pts, S, axis=0), np.tile(eye, (len(pts), 1)))
            J[lo:lo + len(pts)] = rows.reshape(len(pts), S, S)
        return J[0] if single else J


def steady_layer_input(rnn, layer: int, x_const_network=None, steps: int = 200,
                       settle_tol: float = 1e-6) -> np.ndarray:
    """The input (D_layer,) that layer ``layer`` receives when the network is fed the constant
    ``x_const_network`` (input_size,) (zeros by default) for a long time.

    Layer 0 receives ``x_const_network`` itself. For a layer above, a float64 copy of the layers
    below (same class, same weights, eval mode: no dropout) runs ``forward`` on the constant
    input for 2*steps+1 steps and the output at the middle step is returned: there both the
    forward directions and, in a bidirectional stack, the reverse directions have run ``steps``
    steps. Warns if that output still changes between neighbouring steps by more than
    ``settle_tol`` (the lower layers oscillate or have not settled: no constant input exists).
    """
    L = rnn.num_layers
    layer = layer + L if layer < 0 else layer
    if not 0 <= layer < L:
        raise ValueError(f"layer {layer} out of range for a stack of {L} layers")
    x = np.zeros(rnn.input_size) if x_const_network is None else \
        np.asarray(x_const_network, dtype=np.float64).reshape(-1)
    if x.shape != (rnn.input_size,):
        raise ValueError(f"x_const_network has {x.size} values; the network takes {rnn.input_size}")
    if layer == 0:
        return x.copy()
    kw = {"nonlinearity": rnn.nonlinearity} if hasattr(rnn, "nonlinearity") else {}
    if rnn.num_directions == 2:
        kw["bidirectional"] = True
    if isinstance(rnn.cell, CTRNNCell):                  # its time step (no bidirectional form)
        kw.update(dt=rnn.dt, tau=rnn.tau)
    below = type(rnn)(rnn.input_size, rnn.hidden_size, layer, bias=rnn.bias, batch_first=True,
                      dtype=np.float64, **kw)
    below.load_state_dict({k: np.asarray(rnn.params[k], dtype=np.float64) for k in below.params})
    below.eval()
    T = 2 * steps + 1
    out, _ = below.forward(np.broadcast_to(x, (1, T, x.size)).copy())
    mid = out[0, steps]
    change = max(np.abs(out[0, steps + 1] - mid).max(), np.abs(out[0, steps - 1] - mid).max())
    if change > settle_tol:
        warn_user(f"steady_layer_input: the output of layers below {layer} still changes by "
                  f"{change:.2g} per step after {steps} steps of constant input; the constant "
                  "input to this layer is only approximate")
    return np.array(mid, dtype=np.float64)


# ---------------------------------------------------------------- starts
def sample_starts(states, n: int, noise: float = 0.0, rng=None) -> np.ndarray:
    """``n`` starts (n, S): visited states (N, T, S) or (M, S) drawn at random (without
    replacement while there are enough) plus Gaussian noise of standard deviation ``noise``."""
    rng = np.random.default_rng(rng)
    flat = np.asarray(states, dtype=np.float64)
    flat = flat.reshape(-1, flat.shape[-1])
    if len(flat) == 0:
        raise ValueError("sample_starts: no states given")
    idx = rng.choice(len(flat), n, replace=n > len(flat))
    starts = flat[idx].copy()
    if noise > 0:
        starts += noise * rng.standard_normal(starts.shape)
    return starts


# ---------------------------------------------------------------- results
def _num(x):
    x = float(x)
    return x if np.isfinite(x) else None


@dataclass
class FixedPoint:
    point: np.ndarray            # (S,)
    count: int                   # starts that reached it
    q: float                     # 1/2 ||F(point) - point||^2
    eigenvalues: np.ndarray      # of dF/ds at the point, complex, sorted by |per_step(lambda)| descending
    n_unstable: int              # #{|per_step(lambda)| > 1}: the saddle index (a CTRNN: #{Re(mu) > 0})
    type: str                    # "stable" (n_unstable == 0) or "saddle"
    clock: Clock | None = None   # continuous time: how the eigenvalues are read (None: discrete)

    @property
    def index(self) -> int:
        return self.n_unstable

    @property
    def max_abs_eigenvalue(self) -> float:
        return float(np.abs(self.eigenvalues).max()) if self.eigenvalues.size else 0.0

    @property
    def growth(self) -> float:
        """The largest |per_step(lambda)|: the slowest mode's factor per step (> 1: unstable)."""
        return float(np.abs(per_step(self.eigenvalues, self.clock)).max()) if self.eigenvalues.size else 0.0

    @property
    def continuous_eigenvalues(self):
        """mu = (lambda - 1) / a in 1/tau, in the order of ``eigenvalues`` (None in discrete time)."""
        return None if self.clock is None else self.clock.rates(self.eigenvalues)

    @property
    def time_constants(self):
        """-1 / Re(mu) in tau, in the order of ``eigenvalues`` (None in discrete time)."""
        return None if self.clock is None else self.clock.time_constants(self.eigenvalues)

    def to_json(self, top_eigenvalues: int = 5, include_point: bool = True) -> dict:
        d = {"type": self.type, "n_unstable": int(self.n_unstable), "count": int(self.count),
             "q": _num(self.q), "max_abs_eigenvalue": _num(self.max_abs_eigenvalue),
             "norm": _num(np.linalg.norm(self.point)),
             "eigenvalues": [[_num(e.real), _num(e.imag)] for e in self.eigenvalues[:top_eigenvalues]]}
        if self.clock is not None:       # continuous time: mu in 1/tau, -1/Re(mu) in tau, |dx/dt|
            mu = self.continuous_eigenvalues
            d.update(time="continuous",
                     continuous_eigenvalues=[[_num(e.real), _num(e.imag)] for e in mu[:top_eigenvalues]],
                     max_real_continuous_eigenvalue=_num(mu.real.max()) if mu.size else None,
                     time_constants=[_num(v) for v in self.time_constants[:top_eigenvalues]],
                     speed=_num(self.clock.speed(self.q)))
        if include_point:
            d["point"] = [_num(v) for v in self.point]
        return d


STATUS = ("converged", "stalled", "max_iters", "out_of_time")
# A kept point's q must fall below tol * POLISH_BELOW under the float64 polish: six orders below the
# tolerance. A degenerate point converges slowly (tanh's line attractor through the origin, where
# F(h) - h is cubic along the line: the polish stalls at q = 1.8e-20), a plateau not at all (a GRU's
# closed update gates, q just under the tolerance).
POLISH_BELOW = 1e-6


@dataclass
class FixedPointResult:
    points: list                 # FixedPoint, most-reached first
    starts: int
    converged: int               # q < tol
    dropped_not_converged: int   # stalled + hit_max_iters + out_of_time
    stalled: int                 # q could not be lowered any more (a slow point or worse)
    hit_max_iters: int
    dropped_outliers: int        # converged starts whose point lies far from every start
    duplicates_merged: int       # converged, kept starts folded into a point already found
    tol: float
    unique_tol: float
    outlier_distance: float
    iterations: np.ndarray = field(repr=False)       # (M,) LM iterations per start
    final_states: np.ndarray = field(repr=False)     # (M, S) where each start ended
    final_q: np.ndarray = field(repr=False)          # (M,)
    start_status: np.ndarray = field(repr=False)     # (M,) "converged" | "stalled" | "max_iters" | "outlier"
    start_point: np.ndarray = field(repr=False)      # (M,) index into points, -1 if dropped
    seconds: float = 0.0
    out_of_time: int = 0         # still running when the time budget was spent
    budget: float | None = None  # the time budget in seconds (None: none)
    rounds: list = field(default_factory=list)       # per round of starts: {"starts", "points", "new_points", ...}
    dropped_unreachable: int = 0  # converged to a root outside the range of h (no trajectory gets there)
    dropped_unpolished: int = 0   # converged, but a float64 polish could not take q below polish_goal
    polish_goal: float = 0.0
    h_range: tuple | None = None
    unfound_estimate: float | None = None   # Chao1 estimate of the points no start reached (rounds)
    clock: Clock | None = None   # continuous time: how the points' eigenvalues are read (None: discrete)

    def type_counts(self) -> dict:
        """{"stable": n, "saddle index 1": n, ...}."""
        out: dict = {}
        for p in sorted(self.points, key=lambda p: p.n_unstable):
            key = "stable" if p.n_unstable == 0 else f"saddle index {p.n_unstable}"
            out[key] = out.get(key, 0) + 1
        return out

    def summary(self) -> str:
        kinds = []
        for key, n in self.type_counts().items():
            if key == "stable":
                kinds.append(f"{n} stable")
            else:
                kinds.append(f"{n} saddle{'s' if n != 1 else ''} of index {key.split()[-1]}")
        head = ", ".join(kinds) if kinds else "no fixed points"
        nc = self.dropped_not_converged
        late = f", {self.out_of_time} out of time" if self.out_of_time else ""
        why = f": {self.stalled} stalled, {self.hit_max_iters} at max_iters{late}" if nc else ""
        rounds = f" in {len(self.rounds)} rounds" if len(self.rounds) > 1 else ""
        lo, hi = self.h_range or (-np.inf, np.inf)
        unreach = (f"{self.dropped_unreachable} dropped (outside [{lo:g}, {hi:g}], the values h can take), "
                   if self.dropped_unreachable else "")
        unpol = (f"{self.dropped_unpolished} dropped (a float64 polish could not take q below "
                 f"{self.polish_goal:.0e}), " if self.dropped_unpolished else "")
        est = ("" if self.unfound_estimate is None else
               "; unfound points not estimable (no start reached a point)" if np.isnan(self.unfound_estimate) else
               f"; estimated unfound points {self.unfound_estimate:.2g} (Chao1, from how many starts reached each)")
        return (f"{head}; {self.starts} starts{rounds}: {self.converged} converged, {nc} dropped "
                f"(did not converge{why}), {unreach}{unpol}"
                f"{self.dropped_outliers} dropped (outliers), {self.duplicates_merged} duplicates merged "
                f"into {len(self.points)} point{'' if len(self.points) == 1 else 's'}; "
                f"max {int(self.iterations.max(initial=0))} "
                f"iterations, {self.seconds:.2f} s{est}{self._time_words()}")

    def _time_words(self) -> str:
        """In continuous time: how the types were read, and each point's slowest time constant."""
        if self.clock is None:
            return ""
        slowest = []
        for p in self.points[:5]:
            tc = p.time_constants[0] if p.eigenvalues.size else np.nan
            slowest.append("none" if not np.isfinite(tc) else f"{tc:.3g}" if tc > 0 else f"grows, {-tc:.3g}")
        more = f" (first 5 of {len(self.points)})" if len(self.points) > 5 else ""
        tcs = (f"; slowest time constant -1/Re(mu) at each point{more}, in tau: {', '.join(slowest)}"
               if slowest else "")
        # stable as an ODE yet not as the Euler steps of dt the network runs: some |lambda| >= 1
        euler = sum(1 for p in self.points if p.index == 0 and p.max_abs_eigenvalue >= 1)
        warn = (f"; {euler} of the stable points {'is' if euler == 1 else 'are'} unstable as the network runs "
                f"them (an Euler step's |lambda| >= 1: dt is too long for a mode there)" if euler else "")
        return f"; {self.clock.sentence()}{tcs}{warn}"

    def to_json(self, top_eigenvalues: int = 5, include_points: bool = True) -> dict:
        return {"summary": self.summary(),
                "counts": {"starts": self.starts, "converged": self.converged,
                           "dropped_not_converged": self.dropped_not_converged,
                           "stalled": self.stalled, "hit_max_iters": self.hit_max_iters,
                           "out_of_time": self.out_of_time,
                           "dropped_unreachable": self.dropped_unreachable,
                           "dropped_unpolished": self.dropped_unpolished,
                           "dropped_outliers": self.dropped_outliers,
                           "duplicates_merged": self.duplicates_merged,
                           "unique_points": len(self.points), "types": self.type_counts(),
                           "unfound_estimate": None if self.unfound_estimate is None else _num(self.unfound_estimate)},
                "settings": {"tol": _num(self.tol), "unique_tol": _num(self.unique_tol),
                             "outlier_distance": _num(self.outlier_distance),
                             "polish_goal": _num(self.polish_goal),
                             "h_range": None if self.h_range is None else [_num(v) for v in self.h_range],
                             "seconds": None if self.budget is None else _num(self.budget),
                             **({} if self.clock is None else {"time": self.clock.to_json()})},
                "iterations": {"median": _num(np.median(self.iterations)) if self.iterations.size else None,
                               "max": int(self.iterations.max(initial=0))},
                "seconds": _num(self.seconds), "rounds": list(self.rounds),
                "points": [p.to_json(top_eigenvalues, include_points) for p in self.points]}

    def dumps(self, **kw) -> str:
        return json.dumps(self.to_json(), **kw)


# ---------------------------------------------------------------- the solver
def merge_nearby(s, members, q, unique_tol, most: int | None = None):
    """Fold the states ``s[members]``, lowest q first, into representatives at least
    ``unique_tol`` apart: each joins the nearest one within reach, else becomes one (while fewer
    than ``most``; past that it is left out). Returns the representatives' indices into ``s``,
    how many members each holds, and each member's representative (index into the first list,
    -1 if left out), in the order of ``members``."""
    reps: list[int] = []
    counts: list[int] = []
    assigned = np.full(len(members), -1)
    for pos in np.argsort(q[members], kind="stable"):
        i = members[pos]
        if reps:
            d = np.linalg.norm(s[reps] - s[i], axis=1)
            j = int(np.argmin(d))
            if d[j] < unique_tol:
                assigned[pos] = j
                counts[j] += 1
                continue
        if most is None or len(reps) < most:
            assigned[pos] = len(reps)
            reps.append(int(i))
            counts.append(1)
    return reps, counts, assigned


def _typed_points(F, s, q, reps, counts, unstable_margin: float) -> list:
    """A ``FixedPoint`` for each representative ``s[reps]``, typed by its Jacobian's eigenvalues
    read per step (``per_step``: |lambda| in discrete time, Re(mu) for a continuous-time cell)."""
    points = []
    clock = getattr(F, "clock", None)
    if reps:
        for k, (i, eig) in enumerate(zip(reps, np.linalg.eigvals(F.jacobian(s[reps])))):
            eig = eig[np.argsort(-np.abs(per_step(eig, clock)), kind="stable")]
            n_unst = int((np.abs(per_step(eig, clock)) > 1.0 + unstable_margin).sum())
            points.append(FixedPoint(point=s[i].copy(), count=counts[k], q=float(q[i]), eigenvalues=eig,
                                     n_unstable=n_unst, type="stable" if n_unst == 0 else "saddle", clock=clock))
    return points


def _nearest_distance(points, refs, chunk: int = 2048):
    """Distance from each point (P, S) to its nearest reference (R, S)."""
    out = np.empty(len(points))
    rr = (refs * refs).sum(axis=1)
    for lo in range(0, len(points), chunk):
        p = points[lo:lo + chunk]
        d2 = (p * p).sum(axis=1)[:, None] + rr[None] - 2.0 * p @ refs.T
        out[lo:lo + chunk] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def _jvp(F, s, v):
    """J(s) v for a batch, by a central difference along v (error ~ h^2, h = 1e-5 of the state's
    scale): the forward-mode product the cells do not write, from two calls of F."""
    nv = np.linalg.norm(v, axis=1, keepdims=True)
    h = 1e-5 * (1.0 + np.linalg.norm(s, axis=1, keepdims=True)) / np.where(nv > 0, nv, 1.0)
    return (F(s + h * v) - F(s - h * v)) / (2.0 * h)


def _solve_damped(F, s, g, mu, iters: int = 60, rtol: float = 1e-8):
    """delta = -(A^T A + mu I)^-1 g with A = J(s) - I, by batched conjugate gradients through
    products only (A v by ``_jvp``, A^T w by the cell's backward): no S x S matrix is formed.
    Each start stops when its residual falls below ``rtol`` of where it began."""
    back = F.vjp_at(s)                                                   # J^T at s: its forward run once
    def apply(v, rows):
        Av = _jvp(F, s[rows], v) - v
        return back(Av, rows) - Av + mu[rows, None] * v
    x = np.zeros_like(g)
    r = -g.copy()
    p = r.copy()
    rr = np.einsum("ms,ms->m", r, r)
    goal = rtol ** 2 * rr
    active = np.flatnonzero(rr > goal)
    for _ in range(iters):
        if active.size == 0:
            break
        Ap = apply(p[active], active)
        alpha = rr[active] / np.maximum(np.einsum("ms,ms->m", p[active], Ap), 1e-300)
        x[active] += alpha[:, None] * p[active]
        r[active] -= alpha[:, None] * Ap
        new = np.einsum("ms,ms->m", r[active], r[active])
        p[active] = r[active] + (new / np.maximum(rr[active], 1e-300))[:, None] * p[active]
        rr[active] = new
        active = active[new > goal[active]]
    return x


def _levenberg_marquardt(F, s, tol, max_iters, step_tol, tau=1e-3, patience=25, deadline=np.inf,
                         on_iteration=None, matrix_free=False):
    """Batched LM on r(s) = F(s) - s. Returns (s, q, iterations, status codes 0/1/2/3).

    A start also counts as stalled when ``patience`` iterations did not halve its q: near a true
    fixed point q falls quadratically, so a start crawling along a slow manifold (or escaping
    where a closed gate makes F(h) - h vanish only at infinity) is stopped early. Starts still
    running at ``deadline`` (a ``time.perf_counter()`` value) stop with code 3 (out of time);
    ``on_iteration(settled)`` is told after each iteration how many starts have stopped.
    ``matrix_free``: each step solved by ``_solve_damped`` (products with J and J^T only) instead
    of forming every start's S x S Jacobian; the damping starts at ``tau`` (the A^T A it would be
    scaled by is not formed). Each step is held inside the values the cell's h can take
    (``StepMap.clip_to_range``): a GRU start escaping where its update gates close (F(h) - h -> 0
    as |h| grows) used to run to |h| ~ 4, and the time budget, chasing roots no trajectory reaches."""
    M, S = s.shape
    clip = getattr(F, "clip_to_range", None)
    eye = None if matrix_free else np.eye(S)
    r = F(s) - s
    q = 0.5 * np.einsum("ms,ms->m", r, r)
    q[~np.isfinite(q)] = np.inf
    status = np.full(M, -1)                         # -1 running, 0 converged, 1 stalled, 2 max_iters, 3 time
    status[q < tol] = 0
    iters = np.zeros(M, dtype=int)
    mu = np.full(M, np.nan)                         # set from A^T A at each start's first step
    nu = np.full(M, 2.0)
    need_J = np.ones(M, dtype=bool)
    AtA = None if matrix_free else np.empty((M, S, S))
    g = np.empty((M, S))
    q_mark = q.copy()
    for it in range(max_iters):
        run = np.flatnonzero(status < 0)
        if run.size == 0:
            break
        if time.perf_counter() > deadline:
            status[run] = 3
            break
        upd = run[need_J[run]]
        if upd.size and matrix_free:
            g[upd] = F.vjp(s[upd], r[upd]) - r[upd]                    # A^T r = grad q
            first = np.isnan(mu[upd])
            mu[upd[first]] = tau
            need_J[upd] = False
        elif upd.size:
            A = F.jacobian(s[upd]) - eye                               # (m, S, S)
            AtA[upd] = np.matmul(A.transpose(0, 2, 1), A)
            g[upd] = np.einsum("mji,mj->mi", A, r[upd])                # A^T r = grad q
            diag_max = np.einsum("mii->mi", AtA[upd]).max(axis=1)
            first = np.isnan(mu[upd])
            mu[upd[first]] = tau * np.maximum(diag_max[first], 1e-12)
            # a floor relative to A^T A keeps the solve well posed where A is singular
            mu[upd] = np.maximum(mu[upd], 1e-12 * np.maximum(diag_max, 1e-12))
            need_J[upd] = False
        if matrix_free:
            delta = _solve_damped(F, s[run], g[run], mu[run])
        else:
            Hm = AtA[run] + mu[run, None, None] * eye
            delta = -np.linalg.solve(Hm, g[run][..., None])[..., 0]
        s_new = s[run] + delta
        if clip is not None:
            clip(s_new)
        r_new = F(s_new) - s_new
        q_new = 0.5 * np.einsum("ms,ms->m", r_new, r_new)
        q_new[~np.isfinite(q_new)] = np.inf
        pred = 0.5 * np.einsum("ms,ms->m", delta, mu[run, None] * delta - g[run])   # L(0) - L(delta)
        gain = (q[run] - q_new) / np.where(pred > 0, pred, np.inf)
        ok = (q_new < q[run]) & np.isfinite(q_new)
        iters[run] += 1
        acc, rej = run[ok], run[~ok]
        small = np.linalg.norm(delta, axis=1) <= step_tol * (np.linalg.norm(s[run], axis=1) + step_tol)
        # accepted: move, shrink mu by Nielsen's factor, new Jacobian next time
        s[acc], r[acc], q[acc] = s_new[ok], r_new[ok], q_new[ok]
        mu[acc] *= np.maximum(1.0 / 3.0, 1.0 - (2.0 * gain[ok] - 1.0) ** 3)
        nu[acc] = 2.0
        need_J[acc] = True
        # rejected: more damping (a shorter, more gradient-like step), same Jacobian
        mu[rej] *= nu[rej]
        nu[rej] *= 2.0
        status[acc[q[acc] < tol]] = 0
        # stalled: the step no longer moves s (relative to its size) and q is not yet < tol
        stuck = run[small & (status[run] < 0)]
        status[stuck] = 1
        if (it + 1) % patience == 0:                # too slow: q not even halved in `patience` steps
            crawl = run[(status[run] < 0) & (q[run] > 0.5 * q_mark[run])]
            status[crawl] = 1
            q_mark = q.copy()
        if on_iteration is not None:
            on_iteration(int((status >= 0).sum()))
    status[status < 0] = 2
    return s, q, iters, status


def _solve_in_chunks(F, s, tol, max_iters, step_tol, deadline=np.inf, progress=None, matrix_free=False):
    """``_levenberg_marquardt`` over blocks of starts whose (m, S, S) arrays fit in a cache.

    Every start's iteration is its own (its damping, its stopping), so the result is that of one
    call over all of them up to rounding (BLAS may round a product of another number of rows
    differently; the blocks are balanced, so none is a lone start unless S is large). The seed
    model's 512 starts at S = 64 made 16 MB Jacobian blocks per iteration, and solving them 64 at
    a time took 0.2 s less of the 0.6 s the first analysis of a process took (measured).
    ``progress(settled, M)`` is told how many starts have stopped, after every iteration."""
    M, S = s.shape
    per = M if matrix_free else max(1, min(M, _LM_CHUNK_BYTES // (8 * S * S)))   # no S x S arrays: one block
    blocks = np.array_split(np.arange(M), -(-M // per))               # sizes differ by at most one
    parts = []
    for b in blocks:
        before = int(b[0])
        tell = None if progress is None else (lambda settled, before=before: progress(before + settled, M))
        parts.append(_levenberg_marquardt(F, s[b[0]:b[-1] + 1], tol, max_iters, step_tol, deadline=deadline,
                                          on_iteration=tell, matrix_free=matrix_free))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))


def find_fixed_points(F, starts, *, tol: float = FP_DEFAULTS["tol"], max_iters: int = 200,
                      unique_tol: float | None = None, outlier_distance: float | None = None,
                      outlier_scale: float = 3.0, unstable_margin: float = 0.0,
                      step_tol: float = 1e-12, polish_iters: int = 200, seconds: float | None = None,
                      progress=None, matrix_free: bool | None = None) -> FixedPointResult:
    """Fixed points of ``F`` from every start (M, S), by batched Levenberg-Marquardt.

    ``F`` maps states (M, S) -> (M, S) and has ``jacobian`` (M, S) -> (M, S, S) (a ``StepMap``).
    Each start stops when q = 1/2 ||F(s) - s||^2 < ``tol`` (converged), when a step no longer
    moves s by more than ``step_tol`` relative to |s| (stalled), or after ``max_iters``
    iterations. Converged points farther than ``outlier_distance`` from every start are dropped
    as outliers (default: ``outlier_scale`` x the RMS distance of the starts from their centroid).
    The rest are merged greedily, lowest q first, into points at least ``unique_tol`` apart
    (default 1e-3 * sqrt(S)); each kept point is the member with the lowest q, typed by the
    eigenvalues of its Jacobian: ``n_unstable`` = #{|per_step(lambda)| > 1 + unstable_margin} (discrete
    time |lambda|; a continuous-time cell's Re(mu), ``Clock``), "stable" if 0
    else "saddle" (of index n_unstable). Before that each kept point is polished by up to
    ``polish_iters`` more LM steps with no tolerance (q < ``tol`` only bounds |F(s) - s| by
    1.4e-6; the polish takes the point to rounding level at the cost of Jacobians of the unique
    points only: a few steps where it is quadratic, 50-85 where an eigenvalue is within 3e-5 of 1, as
    at a trained GRU flip-flop's memories). A point whose q the polish cannot take below
    ``tol * POLISH_BELOW`` is not reported (``dropped_unpolished``; ``slow_points`` may keep it):
    q < tol also holds on plateaus where F(s) - s only creeps towards 0, as where a GRU's update
    gate closes. Roots outside the values the cell's h can take (``StepMap.h_range``) are dropped as
    unreachable, and every step is held inside that range (``StepMap.clip_to_range``).

    ``seconds`` bounds the search: starts still running when it is spent stop as "out of time"
    (counted, and said in the summary). ``progress(settled, starts)`` is called after every
    iteration with how many starts have stopped. ``matrix_free`` (default: for states of more
    than ``MATRIX_FREE_ABOVE`` numbers) solves each step through products with J and J^T instead
    of forming every start's Jacobian; the points found are typed by their Jacobians either way.
    """
    t0 = time.perf_counter()
    starts = np.array(starts, dtype=np.float64, ndmin=2)
    M, S = starts.shape
    if M == 0:
        raise ValueError("find_fixed_points: no starts")
    if unique_tol is None:
        unique_tol = 1e-3 * np.sqrt(S)
    if outlier_distance is None:
        spread = np.sqrt(((starts - starts.mean(axis=0)) ** 2).sum(axis=1).mean())
        outlier_distance = outlier_scale * spread if spread > 0 else np.inf
    deadline = np.inf if seconds is None else t0 + seconds
    if matrix_free is None:
        matrix_free = S > MATRIX_FREE_ABOVE
    s, q, iters, code = _solve_in_chunks(F, starts.copy(), tol, max_iters, step_tol, deadline, progress,
                                         matrix_free)
    status = np.array(STATUS, dtype=object)[code]
    conv = np.flatnonzero(code == 0)
    box = getattr(F, "box_excess", None)
    if box is not None and conv.size:                 # a root no trajectory from a zero state reaches
        out = box(s[conv]) > 0.0
        status[conv[out]] = "unreachable"
        conv = conv[~out]
    far = _nearest_distance(s[conv], starts) > outlier_distance
    status[conv[far]] = "outlier"
    kept = conv[~far]
    start_point = np.full(M, -1)
    reps, counts, start_point[kept] = merge_nearby(s, kept, q, unique_tol)
    goal = tol * POLISH_BELOW
    if reps and polish_iters > 0:
        s_r, q_r, _, _ = _solve_in_chunks(F, s[reps].copy(), 0.0, polish_iters, step_tol, matrix_free=matrix_free)
        better = q_r < q[reps]
        s[np.array(reps)[better]], q[np.array(reps)[better]] = s_r[better], q_r[better]
    if reps and polish_iters > 0:                     # q < tol on a plateau where F(s) - s only creeps to 0
        firm = (q[reps] < goal) & (box(s[reps]) <= 0.0 if box is not None else True)
        if not firm.all():
            keep = np.flatnonzero(firm)
            gone = np.isin(start_point[kept], np.flatnonzero(~firm))
            status[kept[gone]] = "unpolished"
            remap = np.full(len(reps) + 1, -1)
            remap[keep] = np.arange(keep.size)
            start_point[kept] = remap[start_point[kept]]
            reps, counts = [reps[k] for k in keep], [counts[k] for k in keep]
    points = _typed_points(F, s, q, reps, counts, unstable_margin)
    order = sorted(range(len(points)), key=lambda k: (-points[k].count, points[k].n_unstable))
    remap = np.full(len(points) + 1, -1)
    remap[np.array(order, dtype=int)] = np.arange(len(points))
    start_point = np.where(start_point >= 0, remap[start_point], -1)
    n_conv = int((code == 0).sum())
    unpolished = int((status == "unpolished").sum())
    return FixedPointResult(
        points=[points[k] for k in order], starts=M, converged=n_conv,
        dropped_not_converged=M - n_conv, stalled=int((code == 1).sum()),
        hit_max_iters=int((code == 2).sum()), out_of_time=int((code == 3).sum()), budget=seconds,
        dropped_outliers=int(far.sum()), dropped_unreachable=int((status == "unreachable").sum()),
        dropped_unpolished=unpolished, polish_goal=float(goal), h_range=getattr(F, "h_range", None),
        clock=getattr(F, "clock", None),
        duplicates_merged=int(kept.size - unpolished - len(points)), tol=float(tol),
        unique_tol=float(unique_tol), outlier_distance=float(outlier_distance),
        iterations=iters, final_states=s, final_q=q, start_status=status.astype(str),
        start_point=start_point, seconds=time.perf_counter() - t0)


def unfound_estimate(hits) -> float:
    """How many points no start has reached yet, estimated from how many starts reached each one
    found (``hits``): the bias-corrected Chao1 estimator of unseen species, f1 (f1 - 1) / (2 (f2 + 1))
    with f1 and f2 the points reached exactly once and twice. Points that many starts reach say
    nothing of the rare ones; while some are still met only once, more are likely unmet."""
    hits = np.asarray(hits)
    if hits.size == 0:
        return float("nan")                 # no point reached: nothing to estimate from, not "none left"
    f1, f2 = int((hits == 1).sum()), int((hits == 2).sum())
    return f1 * (f1 - 1) / (2.0 * (f2 + 1))


def find_fixed_points_in_rounds(F, draw, per_round: int, *, max_rounds: int = FP_DEFAULTS["rounds"],
                                seconds: float | None = None, progress=None, **kw) -> FixedPointResult:
    """``find_fixed_points`` over rounds of ``per_round`` starts from ``draw(n)`` until the
    estimate of points still unfound (``unfound_estimate``, over every round so far) is below one
    after two rounds in a row (one estimate from a few rare points is noisy: on a trained 5-bit
    flip-flop it fell to 0.6 with 242 of 243 points found, and the next round found the last), or
    two rounds have reached no point at all (the estimate is NaN: nothing to estimate from, and
    said so), or ``max_rounds`` or the ``seconds`` budget end it: how many starts a network needs is not
    known beforehand (a 5-bit flip-flop's 243 points took thousands, and a round that finds nothing
    new does not show that none is left). Every round judges alike (``unique_tol`` and
    ``outlier_distance`` are fixed by the first); the rounds' results are merged into one, whose
    ``rounds`` lists each round's starts, points, new points and the estimate after it, and whose
    ``unfound_estimate`` is the last. ``progress(round, settled, starts)`` follows them."""
    t0 = time.perf_counter()
    first = np.array(draw(per_round), dtype=np.float64, ndmin=2)
    S = first.shape[1]
    kw.setdefault("unique_tol", 1e-3 * np.sqrt(S))
    if kw.get("outlier_distance") is None:
        spread = np.sqrt(((first - first.mean(axis=0)) ** 2).sum(axis=1).mean())
        kw["outlier_distance"] = kw.pop("outlier_scale", 3.0) * spread if spread > 0 else np.inf
    results, rounds, known, hits = [], [], [], []
    for r in range(max_rounds):
        left = None if seconds is None else seconds - (time.perf_counter() - t0)
        if left is not None and left <= 0 and results:
            break
        starts = first if r == 0 else draw(per_round)
        tell = None if progress is None else (lambda settled, n, r=r: progress(r + 1, settled, n))
        res = find_fixed_points(F, starts, seconds=left if left is None or left > 0 else 1e-9,
                                progress=tell, **kw)
        new = 0
        for p in res.points:
            d = np.linalg.norm(np.array(known) - p.point, axis=1) if known else np.array([np.inf])
            j = int(np.argmin(d))
            if d[j] < kw["unique_tol"]:
                hits[j] += p.count
            else:
                known.append(p.point)
                hits.append(p.count)
                new += 1
        unfound = unfound_estimate(hits)
        rounds.append({"starts": res.starts, "points": len(res.points), "new_points": new,
                       "unfound_estimate": unfound})
        results.append(res)
        if unfound < 1.0 and len(rounds) > 1 and rounds[-2]["unfound_estimate"] < 1.0:
            break
        if not known and len(rounds) > 1:            # two rounds reached no point: nothing to estimate from
            break
    merged = _merge_rounds(results, kw["unique_tol"])
    merged.rounds, merged.budget = rounds, seconds
    merged.unfound_estimate = rounds[-1]["unfound_estimate"]
    merged.seconds = time.perf_counter() - t0
    return merged


def _merge_rounds(results: list, unique_tol: float) -> FixedPointResult:
    """One result from several rounds' results: the same point found in several rounds is one
    point (its count summed, the member with the lowest q kept); every start keeps its status."""
    points: list = []
    start_point = []
    for res in results:
        remap = []
        for p in res.points:
            d = [np.linalg.norm(q.point - p.point) for q in points]
            j = int(np.argmin(d)) if d else -1
            if j >= 0 and d[j] < unique_tol:
                q = points[j]
                best = p if p.q < q.q else q
                points[j] = replace(best, count=q.count + p.count)
                remap.append(j)
            else:
                points.append(p)
                remap.append(len(points) - 1)
        remap = np.array(remap + [-1], dtype=int)                  # -1 (dropped) stays -1
        start_point.append(np.where(res.start_point >= 0, remap[res.start_point], -1))
    order = sorted(range(len(points)), key=lambda k: (-points[k].count, points[k].n_unstable))
    rank = np.full(len(points) + 1, -1)
    rank[np.array(order, dtype=int)] = np.arange(len(points))
    start_point = np.concatenate(start_point)
    start_point = np.where(start_point >= 0, rank[start_point], -1)
    total = lambda name: int(sum(getattr(r, name) for r in results))    # noqa: E731
    kept = int((start_point >= 0).sum())
    last = results[-1]
    return FixedPointResult(
        points=[points[k] for k in order], starts=total("starts"), converged=total("converged"),
        dropped_not_converged=total("dropped_not_converged"), stalled=total("stalled"),
        hit_max_iters=total("hit_max_iters"), out_of_time=total("out_of_time"),
        dropped_outliers=total("dropped_outliers"), duplicates_merged=kept - len(points),
        dropped_unreachable=total("dropped_unreachable"),
        dropped_unpolished=total("dropped_unpolished"), polish_goal=last.polish_goal, h_range=last.h_range,
        clock=last.clock,
        tol=last.tol, unique_tol=last.unique_tol, outlier_distance=last.outlier_distance,
        iterations=np.concatenate([r.iterations for r in results]),
        final_states=np.concatenate([r.final_states for r in results]),
        final_q=np.concatenate([r.final_q for r in results]),
        start_status=np.concatenate([r.start_status for r in results]), start_point=start_point)


def slow_points(F, result: FixedPointResult, refs, *, slow_tol: float = FP_DEFAULTS["slow_tol"],
                max_points: int = 200, unstable_margin: float = 0.0) -> list:
    """The starts that stopped short of a fixed point (stalled, out of iterations or of time) at
    q < ``slow_tol``, where the state moves by at most sqrt(2 slow_tol) a step: slow points
    (FixedPointFinder's practice; Sussillo & Barak 2013), merged like fixed points (at
    ``result.unique_tol``), dropped when farther than ``result.outlier_distance`` from every state
    in ``refs``, the ``max_points`` slowest kept, and typed by their Jacobians."""
    cand = np.flatnonzero(np.isin(result.start_status, ("stalled", "max_iters", "out_of_time", "unpolished"))
                          & (result.final_q < slow_tol))
    if hasattr(F, "box_excess") and cand.size:
        cand = cand[F.box_excess(result.final_states[cand]) <= 0.0]
    if cand.size == 0:
        return []
    refs = np.asarray(refs, dtype=np.float64).reshape(-1, F.size)
    cand = cand[_nearest_distance(result.final_states[cand], refs) <= result.outlier_distance]
    s, q = result.final_states, result.final_q
    reps, counts, _ = merge_nearby(s, cand, q, result.unique_tol, most=max_points)
    return _typed_points(F, s, q, reps, counts, unstable_margin)
