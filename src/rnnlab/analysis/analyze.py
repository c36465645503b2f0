"""The dynamics of a trained model as numbers and figures.

``analyze(model, task)`` works on any trained model in memory and any task, built-in or not:
unit roles with their scores, the ablation table, PCA of hidden trajectories, and fixed points of
one recurrent layer (any cell) with their types and, for the last layer, what the readout makes
of each. ``write_analysis(result, out_dir)`` writes ``analysis.json`` and the figures;
``analyze_run(run_dir)`` only loads a saved run and calls both.
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from pathlib import Path

import numpy as np

from rnnlab.analysis.dynamics import (
    ROLES,
    assign_roles,
    impulse_responses,
    layer_states,
    pca_trajectories,
    running_mean_of_input,
    unit_signatures,
)
from rnnlab.analysis.fixed_points import StepMap, find_fixed_points, sample_starts, steady_layer_input
from rnnlab.checks import check_float, check_int
from rnnlab.errors import InputError
from rnnlab.runs.checkpoint import atomic_write_text

# Defaults of the fixed-point search (``rnnlab analyze --fp-*`` and ``analyze(fp_*=...)``).
# Half the starts are visited states plus noise, half lie on segments between two visited states
# (where saddles live). Measured on trained 3-bit flip-flops (tanh RNN, 64 units): visited states
# alone find the 8 stable points and 1 saddle; the mix finds all 27 (8 stable, 12 + 6 + 1 saddles
# of index 1, 2, 3) -- with 256 starts 10-12 of the 12 edge saddles over 4 seeds, with 512 all 12
# for every seed, in about 1 s of analysis.
FP_DEFAULTS = {"starts": 512, "tol": 1e-12, "noise": 0.01, "between": 0.5}

# The solver's work per iteration grows as starts x S^3 (a Jacobian and a solve per start, S the
# layer's state size) and its memory as starts x S^2. Unless starts are asked for, a large state
# gets fewer: the default 512 up to S = 128 (a 64-unit LSTM's [h, c]), 64 at S = 256, 8 at
# S = 512 -- a 256-unit char-LM's LSTM took minutes and gigabytes with 512.
FP_WORK = 512 * 128 ** 3
FP_MIN_STARTS = 8


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


def line_attractor_verdict(points) -> dict:
    """An approximate line attractor, judged on the linearisation: at the stable fixed point most
    trajectories settle into, exactly one slow mode -- a real eigenvalue within 0.05 of 1, along
    which state neither grows nor decays -- and every other mode clearly decaying (|lambda| <
    0.9). Such a point can store one number, e.g. a running sum."""
    stable = [p for p in points if p.n_unstable == 0]
    if not stable:
        return {"line_attractor": False, "reason": "no stable fixed point was found"}
    e = stable[0].eigenvalues
    lead = e[0]
    nxt = 2 if abs(lead.imag) > 1e-9 else 1                # a complex pair counts once
    rest = np.abs(e[nxt]) if len(e) > nxt else 0.0
    slow = abs(lead.imag) < 1e-6 and abs(lead.real - 1) < 0.05
    verdict = bool(slow and rest < 0.9)
    pts = np.array([p.point for p in points])
    aligned = None
    if len(pts) >= 3:
        sv = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)
        aligned = float(sv[0] ** 2 / (sv ** 2).sum()) if sv.any() else None
    return {"line_attractor": verdict, "leading_eigenvalue": [float(lead.real), float(lead.imag)],
            "second_eigenvalue_abs": float(rest), "fixed_points": len(points),
            "fraction_of_fixed_point_spread_on_one_line": aligned,
            "reason": (f"one slow mode (lambda = {lead.real:.3f}) and the rest below {rest:.2f}"
                       if verdict else
                       f"leading eigenvalue {abs(lead):.3f}"
                       f"{'' if abs(lead.imag) < 1e-6 else ' (a complex pair: a decaying rotation)'}, "
                       f"next {rest:.2f}: no single slow mode near 1")}


def held_out_sequences(task, n: int):
    """Up to ``n`` held-out sequences for the analysis: (X, lengths) cut to a common length
    (variable-length data is cut at the shortest chosen sequence), or text cut into rows."""
    if task.targets == "text":
        ids = task.test.X
        width = min(64, len(ids))
        rows = max(1, min(n, len(ids) // width))
        return ids[: rows * width].reshape(rows, width), None
    X, lengths = task.test.X, task.test.lengths
    if lengths is not None:                # the sequences at least as long as the median, cut there
        L = int(np.median(lengths))
        X = X[lengths >= L][:, :L]
    return X[:n], None


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
    """The network input to find fixed points at, checked: zeros by default."""
    D = rnn.input_size                     # a language model's: its embedding size
    x = np.zeros(D) if x_const is None else np.asarray(x_const, dtype=np.float64)
    if not np.isfinite(x).all():
        raise InputError(f"the constant input for fixed points must be finite numbers, got {x.tolist()}")
    if x.shape != (D,):
        raise InputError(f"the constant input for fixed points needs {D} values (the network's input "
                         f"size), got {x.size}")
    return x


def fixed_point_analysis(model, task, states, *, starts=None, tol=FP_DEFAULTS["tol"],
                         x_const=None, layer=-1, noise=FP_DEFAULTS["noise"], seed=0):
    """Fixed points of one recurrent layer at a constant network input (zeros by default), from
    starts drawn among ``states`` the layer visited on held-out data, plus the readout's reading
    of each point when it is the last layer of a one-direction stack. ``starts=None``: as many
    as the state size allows (``default_fp_starts``)."""
    rnn = model.rnn
    layer = layer % rnn.num_layers
    x_const = _constant_input(rnn, x_const)
    with warnings.catch_warnings(record=True) as caught:   # kept with the result, not printed
        warnings.simplefilter("always")
        layer_input = steady_layer_input(rnn, layer, x_const)
    F = StepMap.from_recurrent(rnn, layer=layer, x_const=layer_input)
    notes = [str(w.message) for w in caught]
    if starts is None:
        starts = default_fp_starts(F.size)
        if starts < FP_DEFAULTS["starts"]:
            notes.append(f"{starts} starts instead of {FP_DEFAULTS['starts']}: the search's work grows as starts x "
                         f"(state size)^3 and this layer's state has {F.size} numbers; ask for more with "
                         f"--fp-starts (rnnlab analyze) or fp_starts=")
    rng = np.random.default_rng(seed)
    result = find_fixed_points(F, draw_starts(states, starts, noise, FP_DEFAULTS["between"], rng), tol=tol)
    out = result.to_json()
    out["layer"], out["input"] = layer, None if x_const is None else x_const.tolist()
    out["notes"] = notes
    H = rnn.hidden_size
    if layer == rnn.num_layers - 1 and rnn.num_directions == 1 and hasattr(model, "fc"):
        readout = [model.fc.forward(p.point[None, :H].astype(model.dtype))[0] for p in result.points]
        for p_json, r in zip(out["points"], readout):
            p_json["readout"] = [float(v) for v in r]
    if "readout" in (out["points"] or [{}])[0] and decodes_states(task):
        for p_json in out["points"]:
            p_json["decoded"] = decode_state(task, np.array(p_json["readout"]))
        stable = {p["decoded"] for p in out["points"] if p["n_unstable"] == 0}
        possible = (2 ** task.output_size if task.targets == "real" else task.output_size)
        out["decoded"] = {"distinct_states": len(stable), "possible_states": possible,
                          "stable_points": sum(p["n_unstable"] == 0 for p in out["points"]),
                          "states": sorted(stable)}
    return out, result


def analyze(model, task, *, n_sequences: int = 500, seed: int = 0, fp_starts: int | None = None,
            fp_tol: float = FP_DEFAULTS["tol"], fp_input=None, fp_layer: int = -1) -> dict:
    """Measure a trained model's dynamics on a task's held-out data (any model with an ``rnn``
    stack, any task). Returns a JSON-ready dict; arrays for the figures ride along under
    ``"_arrays"`` and are dropped by ``write_analysis``."""
    t0 = time.perf_counter()
    if not hasattr(model, "rnn"):
        raise InputError(f"the dynamics analysis reads the hidden states of a recurrent stack (.rnn), which a "
                         f"{type(model).__name__} has not; its report and doctor still apply")
    rnn = model.rnn
    if fp_starts is not None:                              # None: as many as the state size allows
        check_int("fp_starts", fp_starts, minimum=1)
    check_float("fp_tol", fp_tol, low=0.0, low_open=True)
    check_int("n_sequences", n_sequences, minimum=1)
    L = rnn.num_layers
    if not -L <= check_int("fp_layer", fp_layer) < L:
        raise InputError(f"fp_layer must name one of the model's {L} layer(s): 0..{L - 1} or -1 for "
                         f"the last, got {fp_layer}")
    _constant_input(rnn, fp_input)                         # checked before any work
    X, _ = held_out_sequences(task, n_sequences)
    result: dict = {"task": task.name, "targets": task.targets, "per_step": task.per_step,
                    "sequences_analysed": int(X.shape[0]), "steps_analysed": int(X.shape[1]),
                    "model": type(rnn).__name__.lower(), "hidden": rnn.hidden_size, "layers": rnn.num_layers}
    top = layer_states(model, X, -1)                               # (N, T, S) of the last layer
    H = top[..., :rnn.hidden_size]                                 # hidden part h
    text = task.targets == "text"
    running = None if text else running_mean_of_input(X)
    impulse = None if text else impulse_responses(model, X.shape[1], X.shape[2])
    sig = unit_signatures(H, running, impulse)
    roles = assign_roles(sig)
    for s, r in zip(sig, roles):
        s["role"] = r
    result["units"] = sig
    result["role_counts"] = {r: roles.count(r) for r in ROLES}
    if not text:
        result["ablation"] = ablate_roles(model, roles, task, seed)
    pca = pca_trajectories(H, 3)
    result["pca_explained"] = pca["explained"]
    states = top if fp_layer % rnn.num_layers == rnn.num_layers - 1 else layer_states(model, X, fp_layer)
    fp_json, fps = fixed_point_analysis(model, task, states, starts=fp_starts, tol=fp_tol,
                                        x_const=fp_input, layer=fp_layer, seed=seed)
    result["fixed_points"] = fp_json
    if type(rnn).__name__ == "RNN":
        result["line_attractor"] = line_attractor_verdict(fps.points)
    result["seconds"] = time.perf_counter() - t0
    label = task.test.y[:len(pca["projection"])] if task.kind == "classify" else None
    result["_arrays"] = {"H": H, "roles": roles, "sig": sig, "pca": pca, "fps": fps, "label": label,
                         "fp_json": fp_json}
    return result


def write_analysis(result: dict, out_dir, pool=None) -> dict:
    """Write ``analysis.json`` and the analysis figures into ``out_dir`` (drawn here, or on ``pool``,
    a ``workers.FigurePool``: the caller waits); return the JSON part."""
    out_dir = Path(out_dir)
    arrays = result.pop("_arrays", None)
    if arrays is not None:
        result["figures"] = draw_figures(out_dir, arrays, pool)
    atomic_write_text(out_dir / "analysis.json", json.dumps(result, indent=2, default=float))
    return result


def analyze_run(run_dir, **kwargs) -> dict:
    """Load a saved run (built-in task or ``--data``), analyse it, write its analysis files."""
    from rnnlab.runs.rundir import load_run
    _, model, task = load_run(run_dir)
    return write_analysis(analyze(model, task, **kwargs), run_dir)


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


def ablate_roles(model, roles, task, seed: int = 0) -> list[dict]:
    """The task's metric with each role's units silenced, next to a random group of that size;
    ``drop`` is how much worse it got (accuracy points lost, or MSE gained)."""
    from rnnlab.data.tasks import METRICS
    from rnnlab.training.loop import evaluate
    sign = 1 if METRICS[task.metric].higher_is_better else -1
    base = evaluate(model, task)[1]
    rng = np.random.default_rng(seed)
    rows = [{"group": "none", "units": 0, "metric": task.metric, "value": base, "drop": 0.0,
             "random_same_size_drop": 0.0}]
    for role in ROLES:
        units = [u for u, r in enumerate(roles) if r == role]
        if not units:
            continue
        value = evaluate(silenced_copy(model, units), task)[1]
        others = [u for u in range(len(roles)) if roles[u] != role]
        control = None                                # a group of every unit has no control group
        if len(units) < len(roles):
            pool = others if len(others) >= len(units) else list(range(len(roles)))   # the control avoids the group
            rand = evaluate(silenced_copy(model, rng.choice(pool, len(units), replace=False)), task)[1]
            control = sign * (base - rand)
        rows.append({"group": role, "units": len(units), "metric": task.metric, "value": value,
                     "drop": sign * (base - value), "random_same_size_drop": control})
    return rows


# ---------------------------------------------------------------- figures
TYPE_COLORS = {0: "C2", 1: "C1", 2: "C3", 3: "C4"}


def draw_figures(run_dir, arrays: dict, pool=None) -> list[str]:
    """Draw the analysis figures (each a function of plain data, so a FigurePool can draw them in
    parallel); return their file names."""
    from rnnlab.present.figure_pool import drawer
    draw = drawer(pool)
    a = arrays
    draw(plot_unit_roles, run_dir / "unit_roles.png", a["H"], a["roles"], a["sig"])
    draw(plot_pca, run_dir / "pca.png", a["H"], a["pca"], a["fps"], a["label"], a["fp_json"])
    names = ["unit_roles.png", "pca.png"]
    if a["fps"].points:
        draw(plot_fixed_points, run_dir / "fixed_points.png", a["fps"])
        names.append("fixed_points.png")
    return names


def plot_unit_roles(path, H, roles, sig) -> None:
    """Role-labelled trajectories of one sequence, and all last-layer units grouped by role."""
    from rnnlab.present.plots import _integer_ticks, pyplot, save_figure
    plt = pyplot()
    colors = {"accumulator": "C0", "transient": "C1", "oscillatory": "C2", "saturated": "C7", "mixed": "C4"}
    T = H.shape[1]
    t = np.arange(1, T + 1)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7.5), height_ratios=[1, 1.3])
    shown = set()
    for role in ROLES:
        units = [u for u, r in enumerate(roles) if r == role]
        for u in sorted(units, key=lambda u: -sig[u]["std"])[:3]:
            ax1.plot(t, H[0, :, u], color=colors[role], lw=1.4, marker=".",
                     label=role if role not in shown else None)
            shown.add(role)
    ax1.set(xlabel="time step", ylabel="activation", title="Up to 3 units of each role, test sequence 0")
    ax1.legend(ncol=5, fontsize=8)
    ax1.grid(alpha=0.3)
    order = sorted(range(len(roles)), key=lambda u: (ROLES.index(roles[u]), -abs(sig[u]["corr_running_mean"])))
    lim = max(1e-6, float(np.abs(H[0]).max()))
    im = ax2.imshow(H[0][:, order].T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                    extent=(0.5, T + 0.5, len(order) - 0.5, -0.5), interpolation="nearest")
    fig.colorbar(im, ax=ax2, label="activation", pad=0.12)
    y = 0
    for role in ROLES:
        n = roles.count(role)
        if n:
            ax2.axhline(y - 0.5, color="black", lw=0.8)
            ax2.text(T + 0.8, y + n / 2 - 0.5, f"{role} ({n})", va="center", fontsize=8, color=colors[role])
            y += n
    ax2.set(xlabel="time step", ylabel="unit (grouped by role)", title="All last-layer units")
    for ax in (ax1, ax2):
        _integer_ticks(ax.xaxis)                                 # time steps are whole numbers
    save_figure(fig, path)


def plot_pca(path, H, pca, fps, label, fp_json) -> None:
    """PCA of trajectories coloured by label, with the last layer's fixed points in that plane."""
    from matplotlib.collections import LineCollection

    from rnnlab.present.plots import pyplot, save_figure
    plt = pyplot()
    P = pca["projection"]
    fig, ax = plt.subplots(figsize=(7.5, 6))
    if label is not None:                           # one legend entry per class
        for k in sorted(set(int(v) for v in label[:150])):
            ax.plot([], [], color=f"C{k % 10}", label=f"label {k}")
    shown = P[:150]
    cols = [f"C{int(v) % 10}" for v in label[:len(shown)]] if label is not None else ["grey"] * len(shown)
    ax.add_collection(LineCollection(shown[:, :, :2], colors=cols, linewidths=0.6, alpha=0.35))   # one artist
    ax.scatter(shown[:, -1, 0], shown[:, -1, 1], c=cols, s=6, alpha=0.6)
    ax.autoscale_view()
    last_layer = bool(fp_json["points"]) and "readout" in fp_json["points"][0]
    if last_layer and fps.points:
        Hn = H.shape[-1]
        pts = np.array([p.point[:Hn] for p in fps.points])
        proj = (pts - pca["mean"]) @ pca["components"][:2].T
        seen = set()
        for p, xy, pj in zip(fps.points, proj, fp_json["points"]):
            k = p.n_unstable
            name = "stable" if k == 0 else f"saddle, index {k}"
            ax.scatter(*xy, s=90 if k == 0 else 45, marker="o" if k == 0 else "X",
                       color=TYPE_COLORS.get(k, "C5"), edgecolor="black", lw=0.6, zorder=5,
                       label=name if name not in seen else None)
            seen.add(name)
            if k == 0 and "decoded" in pj:
                ax.annotate(pj["decoded"], xy, textcoords="offset points", xytext=(6, 6), fontsize=9,
                            family="monospace", weight="bold", zorder=6,
                            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    if label is not None or (last_layer and fps.points):
        ax.legend(fontsize=8, loc="best")
    ex = pca["explained"]
    ax.set(xlabel=f"PC1 ({100 * ex[0]:.0f}% of variance)", ylabel=f"PC2 ({100 * ex[1]:.0f}%)",
           title="Hidden trajectories (dots: final states)" + ("; colour = label" if label is not None else "")
           + ("\nfixed points of the last layer" + ("; labels: the state the readout decodes"
                                                      if "decoded" in fp_json else "") if last_layer else ""))
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def plot_fixed_points(path, fps) -> None:
    """Jacobian eigenvalues at each fixed point on the complex plane, one colour per type."""
    from rnnlab.present.plots import pyplot, save_figure
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    th = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(th), np.sin(th), color="black", lw=0.8, label="unit circle")
    seen = set()
    for p in fps.points:
        k = p.n_unstable
        name = "stable" if k == 0 else f"saddle, index {k}"
        e = p.eigenvalues
        ax.scatter(e.real, e.imag, s=10, alpha=0.5, color=TYPE_COLORS.get(k, "C5"),
                   label=name if name not in seen else None)
        seen.add(name)
    n = len(fps.points)
    ax.set(xlabel="Re", ylabel="Im", title=f"Jacobian eigenvalues at {n} fixed point{'' if n == 1 else 's'}",
           aspect="equal")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    save_figure(fig, path)
