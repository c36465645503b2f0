"""Figures of a model's dynamics, drawn from what ``rnnlab.analysis.analyze`` measured (its
``Analysis.arrays``): unit roles, PCA trajectories with the fixed points, Jacobian eigenvalues.
A network under Dale's law (``arrays["signs"]``) has its excitatory and inhibitory units drawn
apart; a continuous-time one (a CTRNN) its eigenvalues as mu = (lambda - 1) / a, in 1/tau."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnlab.present.figure_pool import drawer
from rnnlab.present.plots import integer_ticks, pyplot, save_figure
from rnnlab.runs.files import ANALYSIS_AT_INPUT, ANALYSIS_FIGURES

TYPE_COLORS = {0: "C2", 1: "C1", 2: "C3", 3: "C4"}


def draw_analysis_figures(run_dir, arrays: dict, pool=None) -> list[str]:
    """Draw the analysis figures from ``Analysis.arrays`` (each a function of plain data, so a
    FigurePool can draw them in parallel); return their file names."""
    draw = drawer(pool)
    a, run_dir = arrays, Path(run_dir)
    names = [ANALYSIS_FIGURES["unit_roles"], ANALYSIS_FIGURES["pca"]]
    signs = a.get("signs")
    draw(plot_unit_roles, run_dir / names[0], a["H"], a["roles"], a["sig"], a["role_names"], signs)
    draw(plot_pca, run_dir / names[1], a["H"], a["pca"], a["fps"], a["label"], a["fp_json"])
    if a["fps"].points:
        names.append(ANALYSIS_FIGURES["fixed_points"])
        draw(plot_fixed_points, run_dir / names[-1], a["fps"])
    for k, c in enumerate(a.get("conditions", [])[1:], 2):             # the other inputs, each on its own trials
        at = {key: name.format(k) for key, name in ANALYSIS_AT_INPUT.items()}
        names += [at["unit_roles"], at["pca"]]
        draw(plot_unit_roles, run_dir / at["unit_roles"], c["H"], c["roles"], c["sig"], a["role_names"], signs)
        draw(plot_pca, run_dir / at["pca"], c["H"], c["pca"], c["fps"], c["label"], c["fp_json"])
        if c["fps"].points:
            names.append(at["fixed_points"])
            draw(plot_fixed_points, run_dir / names[-1], c["fps"])
    return names


SIGN_STYLES = {"E": "-", "I": "--"}          # excitatory units solid, inhibitory dashed


def sign_groups(signs, n: int) -> list:
    """[(label, units)]: one group of every unit, or with Dale's ``signs`` the excitatory units
    ("E", sign +1) and the inhibitory ("I", sign -1) apart."""
    if signs is None:
        return [("", list(range(n)))]
    signs = np.asarray(signs)
    return [(k, [u for u in range(n) if (signs[u] > 0) == (k == "E")]) for k in ("E", "I")]


def plot_unit_roles(path, H, roles, sig, role_names, signs=None) -> None:
    """Role-labelled trajectories of one sequence, and all last-layer units grouped by role
    (``role_names``: every role, in the analysis's order). With Dale's law (``signs``, +1/-1 per
    unit) the excitatory and inhibitory units are drawn apart: up to 3 of each role and sign above
    (E solid, I dashed), and below the E block over the I block, each grouped by role."""
    plt = pyplot()
    colors = {"accumulator": "C0", "transient": "C1", "oscillatory": "C2", "saturated": "C7", "mixed": "C4"}
    T = H.shape[1]
    t = np.arange(1, T + 1)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7.5), height_ratios=[1, 1.3])
    groups = sign_groups(signs, len(roles))
    shown = set()
    for sign, members in groups:
        for role in role_names:
            units = [u for u in members if roles[u] == role]
            name = f"{role} ({sign})" if sign else role
            for u in sorted(units, key=lambda u: -sig[u]["std"])[:3]:
                ax1.plot(t, H[0, :, u], color=colors[role], lw=1.4, marker=".", ls=SIGN_STYLES.get(sign, "-"),
                         label=name if name not in shown else None)
                shown.add(name)
    ax1.set(xlabel="time step", ylabel="activation",
            title="Up to 3 units of each role" + (" and sign (E solid, I dashed)" if signs is not None else "")
            + ", test sequence 0")
    ax1.legend(ncol=5, fontsize=8)
    ax1.grid(alpha=0.3)
    order = [u for _, members in groups for u in
             sorted(members, key=lambda u: (role_names.index(roles[u]), -abs(sig[u]["corr_running_mean"])))]
    lim = max(1e-6, float(np.abs(H[0]).max()))
    im = ax2.imshow(H[0][:, order].T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                    extent=(0.5, T + 0.5, len(order) - 0.5, -0.5), interpolation="nearest")
    fig.colorbar(im, ax=ax2, label="activation", pad=0.12)
    y = 0
    for sign, members in groups:
        if sign == "I" and y:
            ax2.axhline(y - 0.5, color="black", lw=2.5)                 # E block above, I block below
        for role in role_names:
            n = sum(roles[u] == role for u in members)
            if n:
                ax2.axhline(y - 0.5, color="black", lw=0.8)
                ax2.text(T + 0.8, y + n / 2 - 0.5, f"{sign} {role} ({n})" if sign else f"{role} ({n})",
                         va="center", fontsize=8, color=colors[role])
                y += n
    ax2.set(xlabel="time step", ylabel="unit (grouped by role)",
            title="All last-layer units" + ("; excitatory (E) above the thick line, inhibitory (I) below"
                                            if signs is not None else ""))
    for ax in (ax1, ax2):
        integer_ticks(ax.xaxis)                                 # time steps are whole numbers
    save_figure(fig, path)


def plot_pca(path, H, pca, fps, label, fp_json) -> None:
    """PCA of trajectories coloured by label, with the last layer's fixed points in that plane."""
    from matplotlib.collections import LineCollection  # start-up time: matplotlib loads on first use
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
    what = "Trajectories of the current x" if "time" in fp_json else "Hidden trajectories"   # a CTRNN's state: x
    ax.set(xlabel=f"PC1 ({100 * ex[0]:.0f}% of variance)", ylabel=f"PC2 ({100 * ex[1]:.0f}%)",
           title=f"{what} (dots: final states)" + ("; colour = label" if label is not None else "")
           + ("\nfixed points of the last layer" + ("; labels: the state the readout decodes"
                                                      if "decoded" in fp_json else "") if last_layer else ""))
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def plot_fixed_points(path, fps) -> None:
    """Jacobian eigenvalues at each fixed point on the complex plane, one colour per type, with the
    unit circle; in continuous time (``fps.clock``) mu = (lambda - 1) / a in 1/tau, with the
    imaginary axis (Re mu = 0), the edge of stability there."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    clock = getattr(fps, "clock", None)
    if clock is None:
        th = np.linspace(0, 2 * np.pi, 200)
        ax.plot(np.cos(th), np.sin(th), color="black", lw=0.8, label="unit circle")
    else:
        ax.axvline(0.0, color="black", lw=0.8, label="Re(mu) = 0")
    seen = set()
    for p in fps.points:
        k = p.n_unstable
        name = "stable" if k == 0 else f"saddle, index {k}"
        e = p.eigenvalues if clock is None else p.continuous_eigenvalues
        ax.scatter(e.real, e.imag, s=10, alpha=0.5, color=TYPE_COLORS.get(k, "C5"),
                   label=name if name not in seen else None)
        seen.add(name)
    n = len(fps.points)
    if clock is None:
        ax.set(xlabel="Re", ylabel="Im", title=f"Jacobian eigenvalues at {n} fixed point{'' if n == 1 else 's'}",
               aspect="equal")
    else:
        ax.set(xlabel="Re(mu) (1/tau)", ylabel="Im(mu) (1/tau)",
               title=f"Continuous-time eigenvalues mu = (lambda - 1)/a\nat {n} fixed point{'' if n == 1 else 's'} "
                     f"(a = {clock.alpha:g}; stable: every Re(mu) < 0)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    save_figure(fig, path)
