"""The dynamics of a trained model, measured.

``analyze(model, task)`` works on any trained model in memory and any task, built-in or not:
unit roles with their scores, the ablation table, PCA of hidden trajectories, and fixed points of
one recurrent layer (any cell) with their types and, for the last layer, what the readout makes
of each. It returns an ``Analysis``: ``json`` (what ``analysis.json`` holds, written by
``write_analysis``) and ``arrays`` (what the figures are drawn from, by
``rnnlab.present.analysis_figures``). ``analyze_run(run_dir)`` loads a saved run and analyses it.

A continuous-time rate network (``rnnlab.CTRNN``) is read as such: its roles from its rates r, its
PCA and fixed points in its currents x (r = f(x) follows), each point's eigenvalues as mu in 1/tau
with time constants and its speed |dx/dt| (``fixed_points.Clock``), the readout of a point through
r = f(x); under Dale's law the role counts of its excitatory and inhibitory units apart (``dale``).
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnlab.analysis.conditions import conditions_for
from rnnlab.analysis.dynamics import (
    ROLES,
    assign_roles,
    impulse_responses,
    layer_states,
    pca_trajectories,
    running_mean_of_input,
    unit_signatures,
)
from rnnlab.analysis.fixed_points import (
    FP_DEFAULTS,
    StepMap,
    find_fixed_points_in_rounds,
    map_state,
    sample_starts,
    slow_points,
    steady_layer_input,
)
from rnnlab.analysis.manifolds import continuous_attractor, distinct, find_manifolds, slow_points_on_trajectories
from rnnlab.analysis.oscillation import rotation_vs_free_run
from rnnlab.analysis.selection import selection_vectors
from rnnlab.analysis.text_cells import interpretable_cells, regex_signal
from rnnlab.checks import check_float, check_int, check_memory, setting
from rnnlab.data.metrics import METRICS
from rnnlab.data.task import Task
from rnnlab.errors import InputError, InputTypeError
from rnnlab.runs.files import ANALYSIS, write_json
from rnnlab.runs.load import load_run
from rnnlab.training.evaluate import evaluate
from rnnlab.training.threads import on_analysis_threads

# The dense solver's work per iteration grows as starts x S^3 (a Jacobian and a solve per start, S
# the layer's state size) and its memory as starts x S^2. Unless starts are asked for, a large
# state gets fewer: the default 512 up to S = 128 (a 64-unit LSTM's [h, c]), 64 at S = 256, 8 at
# S = 512 -- a 256-unit char-LM's LSTM took minutes and gigabytes with 512. Above S = 128 the
# steps are matrix-free now (fixed_points.MATRIX_FREE_ABOVE), cheaper but still far from free: a
# GRU-256's 64 starts took 11 s (66 s dense), an LSTM-256's 8 took 2.8 s (8.1 dense), so the
# counts stay until measured again.
FP_WORK = 512 * 128 ** 3
FP_MIN_STARTS = 8
TRAJECTORY_STARTS = 256        # visited states moved until slow, for the manifolds (at most; fewer for large states)


def default_fp_starts(state_size: int) -> int:
    return int(min(FP_DEFAULTS["starts"], max(FP_MIN_STARTS, FP_WORK // state_size ** 3)))


def draw_starts(states, n: int, noise: float, between: float, rng) -> np.ndarray:
    """``n`` starts: visited states plus noise, and a ``between`` fraction of them moved to a
    random point on the segment towards another visited state (where saddles live)."""
    starts = sample_starts(states, n, noise, rng)
    k = int(round(between * n))
    if k:
        other = sample_starts(states, k, 0.0, rng)
        u = rng.random((k, 1))
        starts[:k] += u * (other - starts[:k])
    return starts


def input_directions(rnn, layer: int, x_const, F, nudge: float = 1e-4, most: int = 16) -> list:
    """For each network input i (the first ``most``), a map whose difference from ``F`` is the
    layer's input direction dF/dx_i: the layer fed what a network input nudged along i gives it."""
    maps = []
    for i in range(min(len(x_const), most)):
        x = x_const.copy()
        x[i] += nudge
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                  # the unnudged input's warnings are kept already
            Fi = StepMap.from_recurrent(rnn, layer=layer, x_const=steady_layer_input(rnn, layer, x))
        maps.append(lambda s, Fi=Fi: F(s) + (Fi(s) - F(s)) / nudge)
    return maps


def held_out_sequences(task, n: int):
    """Up to ``n`` held-out sequences for the analysis, cut to a common length (variable-length
    data: the sequences at least as long as the median, cut there), and which held-out sequences
    they are (indices into ``task.test``; None for text, cut into rows)."""
    if task.targets == "text":
        ids = task.test.X
        width = min(64, len(ids))
        rows = max(1, min(n, len(ids) // width))
        return ids[: rows * width].reshape(rows, width), None
    X, lengths = task.test.X, task.test.lengths
    which = np.arange(len(X))
    if lengths is not None:
        L = int(np.median(lengths))
        which = which[lengths >= L]
        X = X[which][:, :L]
    return X[:n], which[:n]


def decodes_states(task) -> bool:
    """Whether a readout names a discrete state: classes, or real targets that are all +-1
    (the flip-flop's bits); a regression onto other values has no states to name."""
    if task.targets == "classes":
        return True
    y = task.test.y
    return task.targets == "real" and bool(np.isin(y, (-1.0, 1.0)).all())


def decode_state(task, out: np.ndarray) -> str:
    """The class, or for +-1 targets which way each output points ("+-+")."""
    if task.targets == "classes":
        return str(int(np.argmax(out)))
    return "".join("+" if v > 0 else "-" for v in out)


def _constant_input(rnn, x_const) -> np.ndarray:
    """The network input to find fixed points at, checked: zeros by default; one number will do
    for a network of one input."""
    D = rnn.input_size                     # a language model's: its embedding size
    try:
        x = np.zeros(D) if x_const is None else np.asarray(x_const, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"the constant input for fixed points must be {D} number(s), got {x_const!r}") from None
    if x.ndim == 0 and D == 1:
        x = x.reshape(1)
    if not np.isfinite(x).all():
        raise InputError(f"the constant input for fixed points must be finite numbers, got {x.tolist()}")
    if x.shape != (D,):
        got = "one number" if x.ndim == 0 else f"{x.size} values" if x.ndim == 1 else f"an array of shape {x.shape}"
        raise InputError(f"the constant input for fixed points needs {D} value{'s' if D != 1 else ''} (the "
                         f"network's input size), got {got}; give {setting('fp_input')} one value per input")
    return x


def task_conditions(task, levels_at_most: int = 4, most: int = 16) -> tuple[list, str]:
    """The task's own constant conditions: the inputs that take at most ``levels_at_most``
    values (contexts, cues, level-coded inputs) at each combination of levels the held-out data
    shows (the ``most`` most frequent), every other input (evidence, noise) at 0; and a sentence
    saying which inputs are which."""
    if task.targets == "text":
        raise InputError(f"{setting('fp_input')} 'conditions' reads level-coded inputs; a text task has "
                         "symbols, not levels: give the constant inputs yourself")
    X = np.asarray(task.test.X, dtype=np.float64)
    D = X.shape[-1]
    lengths = task.test.lengths
    # (steps, D): every valid step of every sequence; a padded step is no condition of the task
    X = X.reshape(-1, D) if lengths is None else X[np.arange(X.shape[1])[None, :] < lengths[:, None]]
    levels = [d for d in range(D) if np.unique(X[:, d]).size <= levels_at_most]
    if not levels:
        return [np.zeros(D)], "no input takes few enough values to be a condition: zero input"
    rows, counts = np.unique(X[:, levels], axis=0, return_counts=True)
    inputs = []
    for row in rows[np.argsort(-counts, kind="stable")][:most]:
        x = np.zeros(D)
        x[levels] = row
        inputs.append(x)
    rest = [d for d in range(D) if d not in levels]
    return inputs, (f"a condition of the task: input{'s' if len(levels) > 1 else ''} "
                    f"{', '.join(map(str, levels))} at {'their levels' if len(levels) > 1 else 'a level'}"
                    + (f", input{'s' if len(rest) > 1 else ''} {', '.join(map(str, rest))} at 0" if rest else ""))


def fixed_point_inputs(rnn, task, fp_input) -> tuple[list, str | None]:
    """The constant inputs to seek fixed points at, each checked: [None] (zeros), one input, several
    (a list of them or a (K, D) array), or ``"conditions"`` (``task_conditions``); and why, when
    rnnlab chose them."""
    if isinstance(fp_input, str):
        if fp_input != "conditions":
            raise InputError(f"{setting('fp_input')} takes numbers, a list of inputs, or 'conditions'; got "
                             f"{fp_input!r}")
        inputs, why = task_conditions(task)
    else:
        try:
            several = np.asarray(fp_input, dtype=np.float64).ndim == 2     # (K, D): K inputs
        except (TypeError, ValueError):
            several = False                                               # _constant_input says what is wrong
        inputs, why = (list(np.asarray(fp_input, dtype=np.float64)) if several else [fp_input]), None
    for x in inputs:
        _constant_input(rnn, x)
    return inputs, why


def fixed_point_analysis(model, task, states, *, starts=None, tol=FP_DEFAULTS["tol"],
                         x_const=None, layer=-1, noise=FP_DEFAULTS["noise"], seed=0,
                         seconds=FP_DEFAULTS["seconds"], rounds=FP_DEFAULTS["rounds"], progress=None,
                         reason: str | None = None):
    """Fixed points of one recurrent layer at a constant network input (zeros by default), from
    starts drawn among ``states`` the layer visited on held-out data, plus the readout's reading
    of each point when it is the last layer of a one-direction stack. ``starts=None``: as many
    as the state size allows (``default_fp_starts``), drawn again in up to ``rounds`` rounds until
    the estimate of unfound points is below one (``find_fixed_points_in_rounds``). The search stops
    after ``seconds`` (None: no bound), and the slow points along the trials get a budget of their
    own of the same length; ``progress(step, settled, starts)`` follows it (``analyze``'s protocol)."""
    rnn = model.rnn
    layer = layer % rnn.num_layers
    given = x_const is not None
    x_const = _constant_input(rnn, x_const)
    with warnings.catch_warnings(record=True) as caught:   # kept with the result, not printed
        warnings.simplefilter("always")
        layer_input = steady_layer_input(rnn, layer, x_const)
    F = StepMap.from_recurrent(rnn, layer=layer, x_const=layer_input)
    states = F.state_of(states)                           # the map's state: a CTRNN's current x, not [r | x]
    notes = [str(w.message) for w in caught]
    if starts is None:
        starts = default_fp_starts(F.size)
        if starts < FP_DEFAULTS["starts"]:
            notes.append(f"{starts} starts instead of {FP_DEFAULTS['starts']}: the search's work grows steeply with "
                         f"the state size and this layer's state has {F.size} numbers; ask for more with "
                         f"{setting('fp_starts')}")
    rng = np.random.default_rng(seed)
    tell = None
    if progress is not None:
        def tell(round_, settled, n):
            progress(f"fixed points of layer {layer} (from 0), round {round_}: {starts} starts"
                     + ("" if seconds is None else f", at most {seconds:g} s for this input's search"), settled, n)
    result = find_fixed_points_in_rounds(
        F, lambda n: draw_starts(states, n, noise, FP_DEFAULTS["between"], rng), starts, max_rounds=rounds,
        tol=tol, seconds=seconds, progress=tell)
    if not result.unfound_estimate < 1.0:                 # one or more, or not estimable (no point found)
        stop = (f"round {len(result.rounds)}" if not result.points else
                f"the time budget of {seconds:g} s" if result.out_of_time or len(result.rounds) < rounds
                else f"round {rounds}, the last allowed")
        found_n = sum(r["new_points"] for r in result.rounds)
        how = (f"no start reached a fixed point in {len(result.rounds)} round(s) of {starts}, so how many there are "
               "could not be estimated" if found_n == 0 else
               f"with about {result.unfound_estimate:.2g} point(s) estimated unfound (Chao1: {found_n} found, some "
               "reached by one or two starts only)")
        notes.append(f"the search stopped at {stop}, {how}; allow more rounds with {setting('fp_rounds')} or more "
                     f"time with {setting('fp_seconds')}")
    if result.out_of_time:
        notes.append(f"the search stopped at its time budget of {seconds:g} s with {result.out_of_time} of "
                     f"{result.starts} starts still running; give it more time with {setting('fp_seconds')}")
    out = result.to_json()
    out["oscillation"] = rotation_vs_free_run(F, result.points, states, seed)
    slow = slow_points(F, result, states)
    out["slow_points"] = [p.to_json(3, include_point=False) for p in slow[:50]]
    out["counts"]["slow_points"] = len(slow)
    out["settings"]["slow_tol"] = FP_DEFAULTS["slow_tol"]
    # slow points along the trials: a sample of their own, not the fixed-point search's leftovers (more
    # starts there used to leave less time here, and a line found at the defaults was lost at 4x the starts)
    along = slow_points_on_trajectories(F, states, min(TRAJECTORY_STARTS, max(FP_MIN_STARTS, starts // 2)),
                                        slow_tol=FP_DEFAULTS["slow_tol"], unique_tol=result.unique_tol,
                                        outlier_distance=result.outlier_distance, seconds=seconds,
                                        rng=np.random.default_rng([seed, 1]))     # the same states at any effort
    out["counts"]["slow_points_on_trajectories"] = len(along)
    everything = distinct(result.points + slow + along, result.unique_tol)
    manifolds = out["manifolds"] = find_manifolds(F, everything)
    out["continuous_attractor"] = continuous_attractor(manifolds)       # the verdict, said once
    kind = out["continuous_attractor"]["kind"]
    if kind and result.unfound_estimate >= 1.0:
        notes.append(f"the points lie on a {kind} attractor, a continuum, where nearly every start finds a point of "
                     "its own: the estimate of unfound points counts the continuum, not points a longer search "
                     "would add")
    out["selection"] = selection_vectors(F, everything, manifolds, input_directions(rnn, layer, x_const, F),
                                         fixed=result.points)
    out["layer"], out["input"] = layer, x_const.tolist()
    out["input_reason"] = reason or ("given" if given else
                                     f"zero, the default: give another constant input with {setting('fp_input')}")
    out["notes"] = notes
    if F.clock is not None:
        out["time"] = F.clock.to_json()
    if layer == rnn.num_layers - 1 and rnn.num_directions == 1 and hasattr(model, "fc"):
        # what the readout sees at each point: h (a CTRNN's rate r = f(x))
        readout = [model.fc.forward(F.output(p.point[None]).astype(model.dtype))[0] for p in result.points]
        for p_json, r in zip(out["points"], readout):
            p_json["readout"] = [float(v) for v in r]
    if "readout" in (out["points"] or [{}])[0] and decodes_states(task):
        for p_json in out["points"]:
            if p_json["n_unstable"] == 0:              # a saddle is no memory: trajectories leave it
                p_json["decoded"] = decode_state(task, np.array(p_json["readout"]))
        stable = {p["decoded"] for p in out["points"] if p["n_unstable"] == 0}
        possible = (2 ** task.output_size if task.targets == "real" else task.output_size)
        out["decoded"] = {"distinct_states": len(stable), "possible_states": possible,
                          "stable_points": sum(p["n_unstable"] == 0 for p in out["points"]),
                          "states": sorted(stable)}
    return out, result


@dataclass
class Analysis:
    """What ``analyze`` measured: ``json``, the numbers (``analysis.json``), and ``arrays``, the
    states, roles, PCA and fixed points the figures are drawn from."""
    json: dict
    arrays: dict = field(default_factory=dict, repr=False)


@on_analysis_threads
def analyze(model, task, *, n_sequences: int = 500, seed: int = 0, fp_starts: int | None = None,
            fp_tol: float = FP_DEFAULTS["tol"], fp_input=None, fp_layer: int = -1,
            fp_seconds: float | None = FP_DEFAULTS["seconds"], fp_rounds: int = FP_DEFAULTS["rounds"],
            cell_regex: str | None = None, condition=None, progress=None) -> Analysis:
    """Measure a trained model's dynamics on a task's held-out data (any model with an ``rnn``
    stack, any task), on ``ANALYSIS_THREADS`` BLAS threads whatever the machine's load. The
    fixed-point search, the step that can take long, stops after
    ``fp_seconds`` at each constant input (None: when every start has stopped). ``progress(step, done, total)`` is told
    which step runs and how far it is (a terminal bar: ``rnnlab.present.progress.StepProgress``).

    Each constant input is analysed on its own condition (``analysis.conditions``): roles, PCA and
    fixed points from the held-out trials that match it (``condition=None``), from those a function
    of a trial's inputs picks (``condition=f`` or one per input), or from every trial
    (``condition="pooled"``). The top-level roles, PCA and fixed points are the first input's; the
    ablation silences those roles and scores every held-out trial."""
    t0 = time.perf_counter()
    if not isinstance(task, Task):
        raise InputTypeError(f"analyze: task must be an rnnlab Task (the one the model was trained on), got "
                             f"{task!r}; make one with Task.from_arrays or Task.from_generator")
    if not hasattr(model, "rnn"):
        raise InputError(f"the dynamics analysis reads the hidden states of a recurrent stack (.rnn), which a "
                         f"{type(model).__name__} has not; its report and doctor still apply")
    rnn = model.rnn
    if fp_starts is not None:                              # None: as many as the state size allows
        check_int(setting("fp_starts"), fp_starts, minimum=1)
        state = StepMap.from_recurrent(rnn, layer=0).size     # the state the search moves (each layer's alike)
        check_memory(64.0 * fp_starts * state, f"{fp_starts:,} fixed-point starts of {state} numbers each",
                     f"lower {setting('fp_starts')}")
    check_float(setting("fp_tol"), fp_tol, low=0.0, low_open=True)
    if fp_seconds is not None:
        check_float(setting("fp_seconds"), fp_seconds, low=0.0, low_open=True)
    check_int(setting("fp_rounds"), fp_rounds, minimum=1)
    tell = progress or (lambda step, done, total: None)
    check_int("n_sequences", n_sequences, minimum=1)
    L = rnn.num_layers
    if not -L <= check_int("fp_layer", fp_layer) < L:
        raise InputError(f"fp_layer must name one of the model's {L} layer(s): 0..{L - 1} or -1 for "
                         f"the last, got {fp_layer}")
    inputs, why = fixed_point_inputs(rnn, task, fp_input)    # checked before any work
    if cell_regex is not None:
        if task.targets != "text":
            raise InputError(f"{setting('cell_regex')} scores units against a state of a text; this task's "
                             "inputs are not text")
        regex_signal(cell_regex, "")                        # a bad pattern is said before any work
    X, which = held_out_sequences(task, n_sequences)
    result: dict = {"task": task.name, "targets": task.targets, "per_step": task.per_step,
                    "sequences_analysed": int(X.shape[0]), "steps_analysed": int(X.shape[1]),
                    "model": type(rnn).__name__.lower(), "hidden": rnn.hidden_size, "layers": rnn.num_layers}
    text = task.targets == "text"
    conds = conditions_for(X, inputs, condition, text=text)
    tell("hidden states, unit roles and PCA", 0, None)
    top = layer_states(model, X, -1)                               # (N, T, S) of the last layer
    states = top if fp_layer % rnn.num_layers == rnn.num_layers - 1 else layer_states(model, X, fp_layer)
    impulse = None if text else impulse_responses(model, X.shape[1], X.shape[2])
    label = task.test.y[which] if task.kind == "classify" else None     # each analysed trial's own label
    signs = rnn.signs.get(f"weight_hh_l{rnn.num_layers - 1}")     # Dale's law: +1 E / -1 I per unit, or None
    per = []
    for cond in conds:                                   # roles and PCA of each condition's trials
        m = cond.trials
        H = top[m][..., :rnn.hidden_size]                          # hidden part h (a CTRNN's rate r) of its trials
        sig = unit_signatures(H, None if text else running_mean_of_input(X[m]), impulse)
        roles = assign_roles(sig)
        for sg, r in zip(sig, roles):
            sg["role"] = r
            if signs is not None:
                sg["sign"] = "excitatory" if signs[sg["unit"]] > 0 else "inhibitory"
        # PCA of the state the fixed points live in: h, or a CTRNN's current x
        Z = map_state(rnn.cell, top[m])[..., :rnn.hidden_size]
        per.append({"H": H, "roles": roles, "sig": sig, "pca": pca_trajectories(Z, 3),
                    "label": None if label is None else label[m]})
    first = per[0]
    result["condition"] = conds[0].to_json()
    result["units"] = first["sig"]
    result["role_counts"] = {r: first["roles"].count(r) for r in ROLES}
    if signs is not None:
        result["dale"] = roles_by_sign(first["roles"], signs, rnn.num_layers - 1)
    if not text:
        result["ablation"] = ablate_roles(model, first["roles"], task, seed, progress=tell)
    if text:
        tell("interpretable cells: units that track states of the text", 0, None)
        result["interpretable_cells"] = interpretable_cells(model, task.test.X, task.vocab, regex=cell_regex)
    found = []
    for k, (x, cond, p) in enumerate(zip(inputs, conds, per)):   # one seed, each input from its own trials
        told = tell if len(inputs) == 1 else (lambda step, d, t, k=k: tell(f"input {k + 1} of {len(inputs)}, "
                                                                           f"{step}", d, t))
        fp = fixed_point_analysis(model, task, states[cond.trials], starts=fp_starts, tol=fp_tol, x_const=x,
                                  layer=fp_layer, seed=seed, seconds=fp_seconds, rounds=fp_rounds, progress=told,
                                  reason=why)
        fp[0]["condition"] = cond.to_json()
        p["fps"], p["fp_json"] = fp[1], fp[0]
        found.append(fp)
    result["pca_explained"] = first["pca"]["explained"]
    result["fixed_points"] = first["fp_json"]
    if len(found) > 1:
        result["fixed_points_by_input"] = [j for j, _ in found]
        result["conditions"] = [{**c.to_json(), "input": j["input"], "roles": p["roles"],
                                 "role_counts": {r: p["roles"].count(r) for r in ROLES},
                                 **({} if signs is None else
                                    {"dale": roles_by_sign(p["roles"], signs, rnn.num_layers - 1)}),
                                 "pca_explained": p["pca"]["explained"]}
                                for c, j, p in zip(conds, result["fixed_points_by_input"], per)]
    result["continuous_attractor"] = first["fp_json"]["continuous_attractor"]    # judged on fixed and slow points
    result["seconds"] = time.perf_counter() - t0
    arrays = {**first, "role_names": ROLES, "fps_by_input": [f for _, f in found], "conditions": per,
              "signs": None if signs is None else np.asarray(signs, dtype=np.float64)}
    return Analysis(result, arrays)


def roles_by_sign(roles: list, signs, layer: int) -> dict:
    """Role counts of the excitatory (sign +1) and the inhibitory (-1) units apart, by Dale's law's
    signs of ``weight_hh_l{layer}``'s columns, and a sentence saying so."""
    signs = np.asarray(signs)
    out = {"layer": layer, "excitatory": int((signs > 0).sum()), "inhibitory": int((signs < 0).sum())}
    words = []
    for name, side in (("excitatory", signs > 0), ("inhibitory", signs < 0)):
        mine = [r for r, s in zip(roles, side) if s]
        out[f"{name}_roles"] = {r: mine.count(r) for r in ROLES}
        held = ", ".join(f"{r} {n}" for r, n in out[f"{name}_roles"].items() if n) or "none"
        words.append(f"{len(mine)} {name} ({held})")
    out["sentence"] = (f"Dale's law (each unit's sign, that of its outgoing weights, column of weight_hh_l{layer}): "
                       f"{words[0]}; {words[1]}")
    return out


def write_analysis(analysis: Analysis, out_dir, figures: list[str] = ()) -> dict:
    """Write ``analysis.json`` into ``out_dir``, naming the ``figures`` drawn beside it; return its content."""
    data = {**analysis.json, "figures": list(figures)}
    write_json(Path(out_dir) / ANALYSIS, data)
    return data


def analyze_run(run_dir, **kwargs) -> Analysis:
    """Load a saved run (built-in task or ``--data``) and analyse it."""
    _, model, task = load_run(run_dir)
    return analyze(model, task, **kwargs)


# ---------------------------------------------------------------- ablation
def silenced_copy(model, units):
    """A copy of ``model`` in which the given last-layer units' outputs reach nothing."""
    twin = copy.deepcopy(model)
    sd = twin.state_dict()
    L = twin.rnn.num_layers - 1
    units = np.asarray(sorted(units), dtype=int)
    if units.size:
        sd[f"rnn.weight_hh_l{L}"][:, units] = 0.0     # the recurrence no longer reads them
        sd["fc.weight"][:, units] = 0.0               # nor does the readout
    twin.load_state_dict(sd)
    twin.eval()
    return twin


def ablate_roles(model, roles, task, seed: int = 0, progress=None) -> list[dict]:
    """The task's metric with each role's units silenced, next to a random group of that size;
    ``drop`` is how much worse it got (accuracy points lost, or MSE gained)."""
    metric = METRICS[task.metric]
    groups = [role for role in ROLES if role in roles]
    if progress is not None:
        progress("ablation: each role's units silenced", 0, len(groups))
    base = evaluate(model, task)[1]
    rng = np.random.default_rng(seed)
    rows = [{"group": "none", "units": 0, "metric": task.metric, "value": base, "drop": 0.0,
             "random_same_size_drop": 0.0}]
    for done, role in enumerate(groups, 1):
        units = [u for u, r in enumerate(roles) if r == role]
        value = evaluate(silenced_copy(model, units), task)[1]
        others = [u for u in range(len(roles)) if roles[u] != role]
        control = None                                # a group of every unit has no control group
        if len(units) < len(roles):
            pool = others if len(others) >= len(units) else list(range(len(roles)))   # the control avoids the group
            rand = evaluate(silenced_copy(model, rng.choice(pool, len(units), replace=False)), task)[1]
            control = metric.worse_by(base, rand)
        rows.append({"group": role, "units": len(units), "metric": task.metric, "value": value,
                     "drop": metric.worse_by(base, value), "random_same_size_drop": control})
        if progress is not None:
            progress("ablation: each role's units silenced", done, len(groups))
    return rows
