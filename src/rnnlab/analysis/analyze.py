"""``rnnlab analyze RUN_DIR``: the dynamics of a trained run as numbers (analysis.json) and figures.

Unit roles with their scores, the ablation table, PCA of hidden trajectories, and (for the
Elman RNN) fixed points of the last layer with their Jacobian eigenvalues and a line-attractor
verdict. The figures are written next to the run's other figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..checkpoint import atomic_write_text
from ..rundir import load_run
from ..train import build_model
from .dynamics import (ROLES, RecurrentMap, ablate_roles, assign_roles, find_fixed_points,
                       impulse_responses, last_layer_states, pca_trajectories,
                       running_mean_of_input, unit_signatures)


def lower_layers_steady_input(model, T: int = 200) -> np.ndarray:
    """Input the last layer receives when the network is fed zeros for a long time."""
    rnn = model.rnn
    if rnn.num_layers == 1:
        return np.zeros(rnn.input_size)
    x = np.zeros((1, T, rnn.input_size), dtype=model.dtype)
    out = x
    # run all but the last layer: a temporary stack view sharing the weights
    from ..recurrent import RNN
    below = RNN(rnn.input_size, rnn.hidden_size, rnn.num_layers - 1, rnn.nonlinearity, rnn.bias,
                dtype=model.dtype)
    below.load_state_dict({k: v for k, v in rnn.params.items()
                           if not k.endswith(f"_l{rnn.num_layers - 1}")})
    below.eval()
    out, _ = below.forward(out)
    return np.asarray(out[0, -1], dtype=np.float64)


def line_attractor_verdict(fps: list[dict]) -> dict:
    """An approximate line attractor, judged on the linearisation: at the fixed point most
    trajectories settle into (stable, most starts), exactly one slow mode -- a real eigenvalue
    within 0.05 of 1, along which state neither grows nor decays -- and every other mode clearly
    decaying (|lambda| < 0.9). Such a point can store one number, e.g. a running sum."""
    stable = [f for f in fps if f["stable"]]
    if not stable:
        return {"line_attractor": False, "reason": "no stable fixed point was found"}
    main = stable[0]
    e = main["eigenvalues"]
    lead, rest = e[0], (np.abs(e[1]) if len(e) > 1 else 0.0)
    slow = abs(lead.imag) < 1e-6 and abs(lead.real - 1) < 0.05
    verdict = bool(slow and rest < 0.9)
    pts = np.array([f["point"] for f in fps])
    aligned = None
    if len(pts) >= 3:
        sv = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)
        aligned = float(sv[0] ** 2 / (sv ** 2).sum())
    return {"line_attractor": verdict, "leading_eigenvalue": [float(lead.real), float(lead.imag)],
            "second_eigenvalue_abs": float(rest), "fixed_points": len(fps),
            "fraction_of_fixed_point_spread_on_one_line": aligned,
            "reason": (f"one slow mode (lambda = {lead.real:.3f}) and the rest below {rest:.2f}"
                       if verdict else
                       f"leading eigenvalue {abs(lead):.3f}{'' if abs(lead.imag) < 1e-6 else ' (complex)'}, "
                       f"next {rest:.2f}: no single slow mode near 1")}


def analyze_run(run_dir, n_sequences: int = 500, seed: int = 0) -> dict:
    run_dir = Path(run_dir)
    cfg, model, data = load_run(run_dir)
    result: dict = {"task": cfg.task, "model": cfg.model, "hidden": cfg.hidden, "layers": cfg.layers}
    if data.kind == "lm":
        width = min(64, len(data.X_test))                     # held-out text cut into rows
        rows = min(n_sequences, len(data.X_test) // width)
        X = data.X_test[: rows * width].reshape(rows, width)
        H = last_layer_states(model, X)
        running, impulse = None, None
    else:
        X = data.X_test[:n_sequences]
        H = last_layer_states(model, X)
        running = running_mean_of_input(X)
        impulse = impulse_responses(model, X.shape[1], X.shape[2])
    sig = unit_signatures(H, running, impulse)
    roles = assign_roles(sig)
    for s, r in zip(sig, roles):
        s["role"] = r
    result["units"] = sig
    result["role_counts"] = {r: roles.count(r) for r in ROLES}
    if data.kind in ("classify", "tag"):
        result["ablation"] = ablate_roles(model, roles, lambda: build_model(cfg, data),
                                          data.X_test, data.y_test, seed)
    pca = pca_trajectories(H, 3)
    result["pca_explained"] = pca["explained"]
    fps = []
    if cfg.model == "rnn":
        F = RecurrentMap.from_rnn(model.rnn, lower_layers_steady_input(model))
        rng = np.random.default_rng(seed)
        flat = H.reshape(-1, H.shape[-1])
        starts = flat[rng.choice(len(flat), min(200, len(flat)), replace=False)]
        starts = starts + 0.01 * rng.standard_normal(starts.shape)
        fps = find_fixed_points(F, starts)
        result["fixed_points"] = [{"count": f["count"], "residual": f["residual"],
                                   "max_abs_eigenvalue": f["max_abs_eigenvalue"], "stable": f["stable"],
                                   "top_eigenvalues": [[float(e.real), float(e.imag)] for e in f["eigenvalues"][:5]],
                                   "norm": float(np.linalg.norm(f["point"]))} for f in fps]
        result["line_attractor"] = line_attractor_verdict(fps)
    figures = write_figures(run_dir, H, roles, sig, pca, fps, data, X)
    result["figures"] = figures
    atomic_write_text(run_dir / "analysis.json", json.dumps(result, indent=2, default=float))
    return result


def write_figures(run_dir, H, roles, sig, pca, fps, data, X) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    colors = {"accumulator": "C0", "transient": "C1", "oscillatory": "C2", "saturated": "C7", "mixed": "C4"}
    T = H.shape[1]
    t = np.arange(1, T + 1)
    names = []

    # 1. role-labelled trajectories of one sequence, and all units grouped by role
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
    ax2.imshow(H[0][:, order].T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
               extent=(0.5, T + 0.5, len(order) - 0.5, -0.5), interpolation="nearest")
    y = 0
    for role in ROLES:
        n = roles.count(role)
        if n:
            ax2.axhline(y - 0.5, color="black", lw=0.8)
            ax2.text(T + 0.8, y + n / 2 - 0.5, f"{role} ({n})", va="center", fontsize=8, color=colors[role])
            y += n
    ax2.set(xlabel="time step", ylabel="unit (grouped by role)", title="All last-layer units")
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # time steps are whole numbers
    fig.tight_layout()
    fig.savefig(run_dir / "unit_roles.png", dpi=110)
    plt.close(fig)
    names.append("unit_roles.png")

    # 2. PCA of trajectories coloured by label
    P = pca["projection"]
    fig, ax = plt.subplots(figsize=(6.5, 5.2))
    label = None
    if data.kind == "classify":
        label = data.y_test[: len(P)]
    for i in range(min(len(P), 150)):
        c = ("C3" if label[i] else "C0") if label is not None else "grey"
        ax.plot(P[i, :, 0], P[i, :, 1], color=c, lw=0.6, alpha=0.5)
        ax.scatter(P[i, -1, 0], P[i, -1, 1], color=c, s=8)
    ex = pca["explained"]
    ax.set(xlabel=f"PC1 ({100 * ex[0]:.0f}% of variance)", ylabel=f"PC2 ({100 * ex[1]:.0f}%)",
           title="Hidden trajectories (dots: final states)" + ("; red = label 1" if label is not None else ""))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(run_dir / "pca.png", dpi=110)
    plt.close(fig)
    names.append("pca.png")

    # 3. fixed points: eigenvalues on the complex plane
    if fps:
        fig, ax = plt.subplots(figsize=(5.5, 5.5))
        th = np.linspace(0, 2 * np.pi, 200)
        ax.plot(np.cos(th), np.sin(th), color="black", lw=0.8, label="unit circle")
        for k, f in enumerate(fps[:6]):
            e = f["eigenvalues"]
            ax.scatter(e.real, e.imag, s=12, alpha=0.7,
                       label=f"fixed point {k + 1} ({f['count']} starts, {'stable' if f['stable'] else 'unstable'})")
        ax.set(xlabel="Re", ylabel="Im", title="Jacobian eigenvalues at the fixed points", aspect="equal")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        fig.savefig(run_dir / "fixed_points.png", dpi=110)
        plt.close(fig)
        names.append("fixed_points.png")
    return names
