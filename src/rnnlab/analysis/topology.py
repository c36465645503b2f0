"""Fixed-point topology of a trained network, and a distance between two networks' topologies
(issue 32: do networks that differ in architecture or seed solve a task the same way?).

Maheswaranathan et al. (NeurIPS 2019) found that vanilla, LSTM and GRU networks trained on the
3-bit flip-flop differ in the geometry of their states but share one fixed-point topology: 8
stable points (the memories) and index-1 saddles between memories one bit apart, the edges of a
cube. ``fixed_point_signature(model, task)`` reads that topology off one network:

- the points: the analysis' own fixed-point search (``find_fixed_points_in_rounds`` from visited
  states plus noise and points between them, ``analyze.draw_starts``) of the last layer at a
  constant input (zeros by default), each point typed by its Jacobian's eigenvalues: its index is
  the number with |per-step factor| > 1, 0 = stable (``fixed_points.per_step``);
- the memories: each stable point's readout decoded as the analysis decodes it (``decode_state``:
  the sign of each output, "+-+", for +-1 targets; the class for classes);
- the transitions: from each index-1 saddle s*, the two ends of its one unstable eigenvector v
  (unit length), s* + eps v and s* - eps v, stepped with the map F until each comes within a
  quarter of the way from a stable point to its nearest other fixed point (``arrival_radius``;
  a basin's edge runs through the saddles around it), stops moving (|F(s) - s| < ``settle_tol``:
  it settled at no stable point) or ``max_steps`` run out. A saddle whose ends reach two different
  memories is an edge between them; one whose ends reach the same memory, or an end that reaches
  no stable point, is kept as such and counted apart.

- the ghosts: a memory the network holds over its trials with no stable point to hold it, where a
  stable point and a saddle have annihilated and left a slow channel (``find_ghosts``), counted
  among the memories, its leak to a neighbour among the edges (``ghosts=False``: fixed points only).
  A trained GRU flip-flop can hold a memory so (one of 8, in 4 of 10 GRU-64s trained for the
  README's ``universality`` block, which gives how long they hold it).

No time budget: the search stops by its rounds and iterations, so one seed gives one signature.

``topology_distance(a, b)`` compares two signatures in three components, each in [0, 1],
symmetric, and 0 exactly when that part is equal:

- ``counts``: the weighted Jaccard (Ruzicka) distance 1 - sum_k min(a_k, b_k) / sum_k max(a_k, b_k)
  between the numbers of points by index k (8/12/6/1 against 8/12/6/1 is 0; against 4/4/1 it is
  1 - 9/27 = 0.67);
- ``memories``: the same on the multisets of decoded memories (a repeated memory counts twice);
- ``edges``: the Jaccard distance 1 - |A & B| / |A | B| between the sets of saddle outcomes,
  each an unordered pair {end, end} of memories (an end that reached none is "none", so a
  saddle joining a memory to itself or to nothing is compared as well).

``total`` is their mean, 0 exactly when the three parts are equal. Two empty parts are equal (0).

Speed and starts (2-core CPU, one BLAS thread). The search keeps the analysis' settings, its
starts too (``default_fp_starts``: 512 per round up to 128 state numbers): fewer did not always
suffice. 30 signatures of trained 64-unit tanh flip-flops (3 networks x 10 search seeds) took
13.2 s at 512 starts per round (at most 0.43 s each), every one the cube; at 256, 9.2 s and one
missed a saddle; at 128, 3 of 12 missed one or two. The hand-built cube (8 units) found all 12
edges in 20 of 20 searches at 512, 13 of 20 at 256. The 435 distances between them: 12 ms. A
trained LSTM-64 (its [h, c] 128 numbers) took 5-7 s, a GRU-64 9-10 s, nearly all of it the search
(the GRU's starts stall on its slow plateaus): ``fixed_points`` has the numbers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from rnnlab.analysis.analyze import (
    decode_state,
    decodes_states,
    default_fp_starts,
    draw_starts,
    fixed_point_inputs,
    held_out_sequences,
)
from rnnlab.analysis.dynamics import layer_states
from rnnlab.analysis.fixed_points import (
    FP_DEFAULTS,
    StepMap,
    find_fixed_points_in_rounds,
    per_step,
    slow_points,
    steady_layer_input,
)
from rnnlab.checks import check_float, check_int
from rnnlab.data.task import Task
from rnnlab.errors import InputError, InputTypeError
from rnnlab.nn.recurrent import Recurrent
from rnnlab.training.threads import on_analysis_threads

__all__ = ["TopologySignature", "TopologyDistance", "fixed_point_signature", "signature_of_map",
           "follow_saddles", "arrival_radius", "topology_distance", "topology_distances"]

NONE = "none"                  # the end of a saddle that reached no stable point, in the edge outcomes
HELD_EVERY = 10                # steps between the checks of what a followed state decodes as (run_until_near)


# ---------------------------------------------------------------- the signature
def _ghost_ends(g: dict) -> list:
    """The two memories a ghost joins: the memory it holds and where it leaks."""
    return [g["memory"], g["leaks_to"]]


@dataclass
class TopologySignature:
    """A network's fixed-point topology. ``counts``: points by stability index ({0: stable, 1:
    ..}); ``memories``: each stable point's decoded readout, sorted (repeats kept); ``edges``: the
    distinct pairs [a, b] (a < b) of different memories that an index-1 saddle's two ends reach;
    ``transitions``: one row per index-1 saddle, ``{"ends": [a, b], "steps": [n, m], "why": [.., ..],
    "eigenvalue": [re, im]}`` (an end None: it reached no stable point, ``why`` says how it ended);
    ``ghosts``: memories held by no fixed point but by a slow region (``find_ghosts``), one row each,
    ``{"memory", "q", "speed", "held", "leaks_to", "steps", "why"}``; ``search``: the fixed-point
    search's own summary; ``settings``: how the points were sought and the ends followed; ``notes``:
    what may make the counts short (said in the summary); ``seconds``: how long it took."""
    counts: dict
    memories: list
    edges: list
    transitions: list = field(default_factory=list)
    ghosts: list = field(default_factory=list)
    search: str = ""
    settings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    seconds: float = field(default=0.0, compare=False)

    @property
    def outcomes(self) -> set:
        """Each index-1 saddle's unordered pair of ends, "none" for an end that reached no stable
        point, and each ghost's pair {its memory, where it leaks}: the set ``topology_distance``
        compares (the edges, plus self-joins and open ends)."""
        pairs = [t["ends"] for t in self.transitions] + [_ghost_ends(g) for g in self.ghosts]
        return {tuple(sorted(NONE if e is None else e for e in ends)) for ends in pairs}

    @property
    def self_joined(self) -> int:
        """Index-1 saddles whose two ends reach the same memory."""
        return sum(1 for t in self.transitions if None not in t["ends"] and t["ends"][0] == t["ends"][1])

    @property
    def open_ends(self) -> int:
        """Index-1 saddles with at least one end that reached no stable point."""
        return sum(1 for t in self.transitions if None in t["ends"])

    def summary(self) -> str:
        stable, saddles = self.counts.get(0, 0), self.counts.get(1, 0)
        higher = {k: n for k, n in sorted(self.counts.items()) if k >= 2}
        if not self.counts:
            return ("no fixed point found" + (f" ({self.search})" if self.search else "")
                    + "".join(f"; {n}" for n in self.notes))
        distinct = len(set(self.memories))
        held = {g["memory"] for g in self.ghosts}
        fixed = [m for m in self.memories if m not in held]
        mem = (f"{stable} stable point{'s' if stable != 1 else ''} (memories {' '.join(fixed)}"
               + (f"; {len(set(fixed))} distinct" if len(set(fixed)) != stable else "") + ")"
               ) if stable else "no stable point"
        missed = [g for g in self.ghosts if g["why"] == "settled at no stable point"]
        slow = [g for g in self.ghosts if g not in missed]
        if slow:
            mem = (f"{distinct} memories: " + mem + f" and {len(slow)} held at a slow point, a ghost of a "
                   "fixed point (" + "; ".join(
                       f"{g['memory']}: moving {g['speed']:.2g} a step, held {g['held']} steps, "
                       + (f"then leaking to {g['leaks_to']} after {g['steps']}" if g["leaks_to"] else
                          f"{g['why']} after {g['steps']}") for g in slow) + ")")
        if missed:
            mem += (f"; {' '.join(g['memory'] for g in missed)} held at a stable point the search missed (the "
                    "trials settle there): the counts are short")
        loose = []
        if self.self_joined:
            loose.append(f"{self.self_joined} whose two ends reach the same memory")
        if self.open_ends:
            loose.append(f"{self.open_ends} with an end that reaches no stable point")
        joins = (f"{saddles} index-1 saddle{'s' if saddles != 1 else ''} joining them in {len(self.edges)} "
                 f"edge{'s' if len(self.edges) != 1 else ''}" + (f" ({'; '.join(loose)})" if loose else ""))
        more = (", " + ", ".join(f"{n} point{'s' if n != 1 else ''} of index {k}" for k, n in higher.items())
                if higher else "")
        how = (f"; stable: every eigenvalue's per-step factor below 1 in size; a memory: the readout decoded at "
               f"the point; an edge: the two ends of the saddle's unstable eigenvector (s* +- "
               f"{self.settings.get('eps', '?')} v) stepped with the map until each is within "
               f"{self.settings.get('near', '?')} of the way from a stable point to its nearest other fixed point, "
               f"at two different memories")
        return mem + ", " + joins + more + how + "".join(f"; {n}" for n in self.notes)

    def to_json(self) -> dict:
        return {"counts": {str(k): int(n) for k, n in sorted(self.counts.items())},
                "memories": list(self.memories), "edges": [list(e) for e in self.edges],
                "transitions": [dict(t) for t in self.transitions], "ghosts": [dict(g) for g in self.ghosts],
                "search": self.search,
                "settings": dict(self.settings), "notes": list(self.notes), "seconds": self.seconds,
                "summary": self.summary()}

    @classmethod
    def from_json(cls, data) -> "TopologySignature":
        """From ``to_json()``'s dict or its JSON text."""
        d = json.loads(data) if isinstance(data, (str, bytes)) else data
        if not isinstance(d, dict) or not {"counts", "memories", "edges"} <= set(d):
            raise InputError("a topology signature's JSON needs counts, memories and edges; this is not one "
                             "written by TopologySignature.to_json()")
        return cls(counts={int(k): int(n) for k, n in d["counts"].items()}, memories=list(d["memories"]),
                   edges=[list(e) for e in d["edges"]], transitions=list(d.get("transitions", [])),
                   ghosts=list(d.get("ghosts", [])),
                   search=d.get("search", ""), settings=dict(d.get("settings", {})), notes=list(d.get("notes", [])),
                   seconds=float(d.get("seconds", 0.0)))


# ---------------------------------------------------------------- following saddles
def follow_saddles(F, saddles, stable, radius, *, eps: float = 1e-3, max_steps: int = 20_000,
                   settle_tol: float = 1e-9, held=None) -> list:
    """Where each index-1 saddle's unstable direction leads. ``saddles`` and ``stable`` are
    ``FixedPoint`` lists, ``radius`` the distance (one number, or one per stable point) within which
    a state counts as having reached a stable point; returns per saddle ``{"ends": [i, j], "steps":
    [n, m], "why": [.., ..], "eigenvalue": [re, im]}``, i and j indices into ``stable`` (None where
    that end reached none, ``why`` saying how it ended).

    Each saddle's unstable eigenvector v (that of the one eigenvalue whose per-step factor exceeds 1,
    unit length) is taken from the Jacobian at the point; the ends s* + eps v and s* - eps v are
    stepped with F, all together, until each lies within ``radius`` of a stable point ("reached"),
    moves less than ``settle_tol`` in a step ("settled at no stable point") or has run ``max_steps``
    steps ("still moving")."""
    if not saddles:
        return []
    clock = getattr(F, "clock", None)
    P = np.array([p.point for p in saddles])                          # (n, S)
    eig, vec = np.linalg.eig(F.jacobian(P))                           # (n, S), (n, S, S)
    rows, lams = [], []
    for k in range(len(saddles)):
        i = int(np.argmax(np.abs(per_step(eig[k], clock))))           # the unstable one (index 1)
        v = np.real(vec[k][:, i])                                     # real: a lone eigenvalue is real
        v /= np.linalg.norm(v)
        rows += [P[k] + eps * v, P[k] - eps * v]
        lams.append(complex(eig[k][i]))
    end, steps, why, _ = run_until_near(F, np.array(rows), stable, radius, max_steps=max_steps,
                                        settle_tol=settle_tol, held=held)
    out = []
    for k in range(len(saddles)):
        a, b = 2 * k, 2 * k + 1
        out.append({"ends": [None if end[a] < 0 else int(end[a]), None if end[b] < 0 else int(end[b])],
                    "steps": [int(steps[a]), int(steps[b])], "why": [str(why[a]), str(why[b])],
                    "eigenvalue": [float(lams[k].real), float(lams[k].imag)]})
    return out


def run_until_near(F, s, stable, radius, *, max_steps: int = 20_000, settle_tol: float = 1e-9, held=None):
    """Step the states ``s`` (n, S) with ``F``, all together, until each lies within ``radius``
    (one number, or one per point of ``stable``, a list of ``FixedPoint``-like objects with
    ``.point``) of a stable point ("reached"), moves less than ``settle_tol`` in a step ("settled at
    no stable point") or has run ``max_steps`` steps ("still moving"). Returns per state the index
    it reached (-1: none), the steps it ran, why it stopped, and where it stopped (n, S).

    ``held = (decode, {memory: index}, hold)``: a state that decodes as one of these memories (a
    ghost's, which no point marks) at every check, every ``HELD_EVERY`` steps, for ``hold`` steps
    has reached that index too ("held"), as a trial holding it would."""
    s = np.array(s, dtype=np.float64)
    targets = np.array([p.point for p in stable]) if stable else np.zeros((0, s.shape[1]))
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(targets),))
    end = np.full(len(s), -1)
    steps = np.zeros(len(s), dtype=int)
    why = np.array(["still moving"] * len(s), dtype=object)
    live = np.arange(len(s))
    name = np.array([None] * len(s), dtype=object)                     # the ghost memory each is in
    since = np.zeros(len(s), dtype=int)                                # from which step
    for n in range(max_steps + 1):
        cur = s[live]
        hit = np.zeros(len(live), dtype=bool)
        if len(targets):
            d = np.linalg.norm(cur[:, None, :] - targets[None], axis=2) / radius      # (live, P), in radii
            near = d.argmin(axis=1)
            hit = d[np.arange(len(live)), near] < 1.0
            end[live[hit]] = near[hit]
            why[live[hit]] = "reached"
        if held is not None and n % HELD_EVERY == 0:
            decode, ghosts, hold = held
            for j in np.flatnonzero(~hit):
                k = live[j]
                m = decode(cur[j])
                m = m if m in ghosts else None
                if m != name[k]:
                    name[k], since[k] = m, n
                elif m is not None and n - since[k] >= hold:
                    hit[j] = True
                    end[k], why[k] = ghosts[m], "held"
        steps[live] = n
        if n == max_steps:
            break
        nxt = F(cur)
        still = ~hit & (np.linalg.norm(nxt - cur, axis=1) < settle_tol)
        why[live[still]] = "settled at no stable point"
        keep = ~hit & ~still
        s[live[keep]] = nxt[keep]
        live = live[keep]
        if not len(live):
            break
    return end, steps, why, s


def arrival_radius(points, stable, reach: float, near: float = 0.25) -> np.ndarray:
    """Per stable point, how close an end must come to have reached it: ``near`` times the distance
    to the nearest other fixed point (of any index), at least ``reach``. A basin's edge runs through
    the saddles around its point, so a ball a quarter of the way to the nearest one lies well inside it;
    a trained GRU's memories, whose slowest eigenvalues are within 1e-4 of 1, take tens of thousands
    of steps to come within the search's ``unique_tol``, a few hundred to come this close."""
    if not stable:
        return np.zeros(0)
    A = np.array([p.point for p in points])                           # (N, S)
    out = []
    for p in stable:
        d = np.linalg.norm(A - p.point, axis=1)
        d = d[d > 0]
        out.append(max(reach, near * d.min()) if d.size else reach)
    return np.array(out)


@dataclass(frozen=True)
class _Spot:
    """A place the saddles' ends may reach that is no fixed point: a ghost's slowest state."""
    point: np.ndarray


def find_ghosts(F, result, states, stable, names, decode, *, hold: int, near: float = 0.25,
                leak_steps: int = 50_000, settle_tol: float = 1e-9) -> tuple[list, list]:
    """Memories held by a slow region rather than a fixed point: returns (rows, spots).

    Where a stable point and a saddle have met and annihilated (a saddle-node bifurcation), a
    "ghost" is left: a channel where q = |F(s) - s|^2 / 2 stays above 0 but small, and the state
    creeps for thousands of steps before it leaks away. A trained GRU flip-flop can hold a memory
    so: one stable point and one index-1 saddle short of the cube, it still keeps all 8 memories
    over its trials. The test is the network's own behaviour: the trials' last states whose decoded
    memory no stable point holds are run freely; a memory is held by a ghost when some of them keep
    it for ``hold`` steps without coming within ``arrival_radius`` of a stable point. Its place
    (``spot``, which saddles' ends may reach) is the slowest of the search's slow points
    (``fixed_points.slow_points``) that decodes it, else the slowest of those held states; the held
    states are then run on for at most ``leak_steps`` to where most of them leak (``steps``: from the
    trial's end). Where they settle instead, the memory is held by a stable point the search
    missed, and the summary says so."""
    ends = states[:, -1] if states.ndim == 3 else states
    first = [decode(x) for x in ends]
    todo = np.flatnonzero([m not in set(names) for m in first])
    if not todo.size:
        return [], []
    radius = arrival_radius(result.points, stable, float(result.unique_tol), near)
    end, _, _, after = run_until_near(F, ends[todo], stable, radius, max_steps=hold, settle_tol=settle_tol)
    held: dict = {}
    for k, i in enumerate(todo):
        if end[k] < 0 and decode(after[k]) == first[i]:
            held.setdefault(first[i], []).append(after[k])
    if not held:
        return [], []
    slow = sorted(slow_points(F, result, states), key=lambda p: p.q)
    rows, spots = [], []
    for m in sorted(held):
        kept = np.array(held[m])
        here = [p for p in slow if decode(p.point) == m]
        if here:
            spot, q = np.asarray(here[0].point), float(here[0].q)
        else:
            speed = np.linalg.norm(F(kept) - kept, axis=1)
            spot, q = kept[int(np.argmin(speed))], float(0.5 * speed.min() ** 2)
        end, steps, why, _ = run_until_near(F, kept[:16], stable, radius, max_steps=leak_steps,
                                            settle_tol=settle_tol)
        to = [names[e] for e in end if e >= 0]
        lead = max(set(to), key=to.count) if to else None
        at = [k for k, e in enumerate(end) if (names[e] if e >= 0 else None) == lead]
        rows.append({"memory": m, "q": q, "speed": float(np.sqrt(2.0 * q)), "held": int(hold),
                     "trials": len(kept), "leaks_to": lead, "steps": hold + int(np.median(steps[at])),
                     "why": str(why[at[0]])})
        spots.append(_Spot(spot))
    return rows, spots


def signature_of_map(F, states, decode, *, starts: int = FP_DEFAULTS["starts"], seed: int = 0,
                     tol: float = FP_DEFAULTS["tol"], rounds: int = FP_DEFAULTS["rounds"],
                     seconds: float | None = None, eps: float = 1e-3, near: float = 0.25,
                     max_steps: int = 20_000, settle_tol: float = 1e-9, hold: int | None = None,
                     ghosts: bool = True) -> TopologySignature:
    """The signature of the step map ``F`` (a ``StepMap``), its points sought from the visited
    ``states`` (N, T, S) or (M, S) as the analysis seeks them, each stable point named by
    ``decode(point) -> str`` (``fixed_point_signature`` decodes the readout); the memories that a
    ghost holds found by ``find_ghosts`` (held ``hold`` steps: by default as long as a trial, T, as
    the task asks of a memory; 100 for (M, S) states); each saddle's ends followed by ``follow_saddles`` until within
    ``arrival_radius(.., near)`` of a stable point or a ghost.

    No time budget by default (``seconds``): the search stops by its rounds and iterations, so one
    seed gives one signature whatever else the machine is doing."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    states = np.asarray(states, dtype=np.float64)
    if hold is None:
        hold = states.shape[1] if states.ndim == 3 else 100
    result = find_fixed_points_in_rounds(
        F, lambda n: draw_starts(states, n, FP_DEFAULTS["noise"], FP_DEFAULTS["between"], rng), starts,
        max_rounds=rounds, tol=tol, seconds=seconds)
    counts: dict = {}
    for p in result.points:
        counts[p.n_unstable] = counts.get(p.n_unstable, 0) + 1
    stable = [p for p in result.points if p.n_unstable == 0]
    names = [decode(p.point) for p in stable]
    ghost_rows, spots = (find_ghosts(F, result, states, stable, names, decode, hold=hold, near=near,
                                     settle_tol=settle_tol) if ghosts and result.points else ([], []))
    saddles = [p for p in result.points if p.n_unstable == 1]
    radius = arrival_radius(result.points + spots, stable + spots, float(result.unique_tol), near)
    # an end reaches a ghost memory where it holds it as long as a trial would (its spot marks only
    # the ghost's slowest state, which the end may pass by on the way)
    ghost_at = {g["memory"]: len(stable) + k for k, g in enumerate(ghost_rows)}
    moves = follow_saddles(F, saddles, stable + spots, radius, eps=eps, max_steps=max_steps,
                           settle_tol=settle_tol, held=(decode, ghost_at, hold) if ghost_at else None)
    names = names + [g["memory"] for g in ghost_rows]
    notes = []
    if not result.unfound_estimate < 1.0:             # one or more, or not estimable
        notes.append("the search may have missed points (" + (
            "no start reached one, so how many there are could not be estimated" if not result.points else
            f"about {result.unfound_estimate:.2g} estimated unfound by Chao1") + "): the counts may be short")
    if result.out_of_time:
        notes.append(f"the search stopped at its time budget of {seconds:g} s with {result.out_of_time} starts "
                     "still running: the counts may be short; give it more seconds")
    edges = set()
    for m in moves:
        m["ends"] = [None if e is None else names[e] for e in m["ends"]]
    for a, b in [m["ends"] for m in moves] + [_ghost_ends(g) for g in ghost_rows]:
        if a is not None and b is not None and a != b:
            edges.add(tuple(sorted((a, b))))
    return TopologySignature(
        counts=dict(sorted(counts.items())), memories=sorted(names), edges=[list(e) for e in sorted(edges)],
        transitions=moves, ghosts=ghost_rows, search=result.summary(), notes=notes,
        settings={"starts_per_round": starts, "rounds": len(result.rounds), "seed": seed, "tol": tol,
                  "eps": eps, "near": near, "radius": [float(r) for r in radius], "max_steps": max_steps,
                  "settle_tol": settle_tol, "hold": hold if ghosts else None},
        seconds=time.perf_counter() - t0)


@on_analysis_threads
def fixed_point_signature(model, task, *, x_const=None, n_sequences: int = 200, starts: int | None = None,
                          seed: int = 0, rounds: int = FP_DEFAULTS["rounds"],
                          seconds: float | None = None, eps: float = 1e-3, near: float = 0.25,
                          max_steps: int = 20_000, ghosts: bool = True) -> TopologySignature:
    """The fixed-point topology of ``model``'s last recurrent layer at the constant input
    ``x_const`` (zeros by default), sought from the states it visits on ``n_sequences`` of
    ``task``'s held-out sequences, its stable points named by the readout as the analysis names
    them (``decode_state``). Any one-direction stack with a readout (``fc``) of a task whose targets
    name states (classes, or +-1 values like the flip-flop's bits); on ``ANALYSIS_THREADS`` BLAS threads.

    Example::

        >>> from rnnlab.data.tasks import flipflop
        >>> sig = fixed_point_signature(model, flipflop(bits=3))                 # doctest: +SKIP
        >>> sig.summary()                                                         # doctest: +SKIP
        '8 stable points (memories +++ ++- +-+ +-- -++ -+- --+ ---), 12 index-1 saddles joining them in 12 edges, ...'
    """
    if not isinstance(task, Task):
        raise InputTypeError(f"fixed_point_signature: task must be an rnnlab Task (the one the model was trained "
                             f"on), got {task!r}")
    if isinstance(model, Recurrent):
        raise InputError(f"a fixed-point signature names stable points by a readout, which a bare "
                         f"{type(model).__name__} layer has not; give the head that wraps it (e.g. StepRegressor)")
    if not hasattr(model, "rnn") or not hasattr(model, "fc"):
        lacks = "no recurrent state (.rnn)" if not hasattr(model, "rnn") else "no readout (.fc)"
        raise InputError(f"a fixed-point signature reads the recurrent state (.rnn) of a network with a readout "
                         f"(.fc); a {type(model).__name__} has {lacks}")
    rnn = model.rnn
    if rnn.num_directions != 1:
        raise InputError("a fixed-point signature follows one direction of time; this stack is bidirectional, "
                         "whose readout sees both directions at once: give a one-direction network")
    if not decodes_states(task):
        raise InputError(f"a fixed-point signature names each stable point by the state the readout decodes, and "
                         f"task {task.name!r} has targets that name no states (neither classes nor +-1 values)")
    check_int("n_sequences", n_sequences, minimum=1)
    if starts is not None:
        check_int("starts", starts, minimum=1)
    check_float("eps", eps, low=0.0, low_open=True)
    check_float("near", near, low=0.0, high=0.5, low_open=True)
    check_int("max_steps", max_steps, minimum=1)
    inputs, _ = fixed_point_inputs(rnn, task, x_const)
    if len(inputs) != 1:
        raise InputError(f"a fixed-point signature is taken at one constant input, got {len(inputs)}; "
                         "give one input (or None for zeros)")
    layer = rnn.num_layers - 1
    F = StepMap.from_recurrent(rnn, layer=layer, x_const=steady_layer_input(rnn, layer, inputs[0]))
    X, _ = held_out_sequences(task, n_sequences)
    states = F.state_of(layer_states(model, X, layer))
    starts = default_fp_starts(F.size) if starts is None else starts

    def decode(point):
        out = model.fc.forward(F.output(point[None]).astype(model.dtype))[0]
        return decode_state(task, np.asarray(out, dtype=np.float64))
    return signature_of_map(F, states, decode, starts=starts, seed=seed, rounds=rounds, seconds=seconds,
                            eps=eps, near=near, max_steps=max_steps, ghosts=ghosts)


# ---------------------------------------------------------------- the distance
def _ruzicka(a: dict, b: dict) -> float:
    """1 - sum min / sum max over the keys of two multisets (count dicts); 0 when both are empty."""
    keys = set(a) | set(b)
    top = sum(max(a.get(k, 0), b.get(k, 0)) for k in keys)
    return 0.0 if top == 0 else 1.0 - sum(min(a.get(k, 0), b.get(k, 0)) for k in keys) / top


def _multiset(items) -> dict:
    out: dict = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


@dataclass(frozen=True)
class TopologyDistance:
    """How far two signatures are apart, by part (each in [0, 1]) and in ``total`` (their mean)."""
    counts: float      # weighted Jaccard distance between the points' counts by stability index
    memories: float    # weighted Jaccard distance between the multisets of decoded memories
    edges: float       # Jaccard distance between the sets of saddle outcomes (edges, self-joins, open ends)

    @property
    def total(self) -> float:
        return (self.counts + self.memories + self.edges) / 3.0

    def to_json(self) -> dict:
        return {"counts": self.counts, "memories": self.memories, "edges": self.edges, "total": self.total}


def topology_distance(a: TopologySignature, b: TopologySignature) -> TopologyDistance:
    """The distance between two signatures (module docstring): symmetric, each part in [0, 1] and
    0 exactly when that part of the two is equal."""
    for name, sig in (("a", a), ("b", b)):
        if not isinstance(sig, TopologySignature):
            raise InputTypeError(f"topology_distance: {name} must be a TopologySignature, got "
                                 f"{type(sig).__name__}; make one with fixed_point_signature(model, task)")
    ea, eb = a.outcomes, b.outcomes
    union = ea | eb
    return TopologyDistance(counts=_ruzicka(a.counts, b.counts),
                            memories=_ruzicka(_multiset(a.memories), _multiset(b.memories)),
                            edges=0.0 if not union else 1.0 - len(ea & eb) / len(union))


def topology_distances(signatures) -> dict:
    """Every pair's distance: {"counts", "memories", "edges", "total"} -> (n, n) symmetric arrays."""
    sigs = list(signatures)
    n = len(sigs)
    out = {k: np.zeros((n, n)) for k in ("counts", "memories", "edges", "total")}
    for i in range(n):
        for j in range(i + 1, n):
            d = topology_distance(sigs[i], sigs[j]).to_json()
            for k, v in d.items():
                out[k][i, j] = out[k][j, i] = v
    return out
