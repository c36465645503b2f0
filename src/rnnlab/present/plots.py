"""Matplotlib figures for a run (Agg backend: works with no display).

Each figure is a function of plain data (lists, arrays) and a path, so that it can be drawn in
another process (``figure_pool.FigurePool``); matplotlib is imported on first use, in whichever
process draws.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from rnnlab.data.metrics import METRICS
from rnnlab.present.figure_pool import drawer, pyplot
from rnnlab.runs import checkpoint
from rnnlab.runs.files import TRAINING_FIGURES
from rnnlab.training.probes import reference_step, running

DPI = 110                                  # every figure's resolution (dots per inch)


def save_figure(fig, path, rect=None) -> None:
    """Lay out, render, write as PNG and close: the one place every figure is saved. The layout is
    found at the saving resolution by the canvas that renders it, so each text is measured once.

    Rendered by the Agg canvas, not ``savefig``, for the same pixels (tested): ``savefig`` draws
    a figure that holds a layout engine (``tight_layout()`` leaves a placeholder one behind) once
    more, unrendered, before drawing it, which was a sixth of the CPU time of a run's eight
    figures. The PNG holds RGB, not RGBA, when every pixel is opaque (as on the white background
    of every figure here), at zlib level 3: a third less time encoding, and smaller files."""

    from matplotlib.backends.backend_agg import FigureCanvasAgg  # start-up time: matplotlib on first use
    from PIL import Image  # start-up time: with matplotlib

    plt = pyplot()
    fig.set_dpi(DPI)
    fig.tight_layout(rect=rect)
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    image = Image.fromarray(rgba)
    if (rgba[..., 3] == 255).all():
        image = image.convert("RGB")
    plt.close(fig)
    png = io.BytesIO()
    image.save(png, format="png", compress_level=3, dpi=(DPI, DPI))
    checkpoint.atomic_write_bytes(path, png.getvalue())      # a drawing cut short never leaves a half-written PNG


def integer_ticks(axis) -> None:
    """Whole-number ticks (epochs, time steps): no 1.25, 1.5."""
    from matplotlib.ticker import MaxNLocator  # start-up time: matplotlib loads on first use
    axis.set_major_locator(MaxNLocator(integer=True))



def plot_training_curves(history: list[dict], path, title: str = "Training curves",
                         metric: str = "acc", baseline: float | None = None):
    ep = [r["epoch"] for r in history]
    m = METRICS[metric]
    scale = m.scale
    plt = pyplot()
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(11, 4))
    mk = "o" if len(ep) < 4 else None                 # a run of one or two epochs is still visible
    ax_l.plot(ep, [r["train_loss"] for r in history], label="train", marker=mk)
    ax_l.plot(ep, [r["test_loss"] for r in history], label="test", marker=mk)
    ax_l.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_a.plot(ep, [scale * r[f"train_{metric}"] for r in history], label="train", marker=mk)
    ax_a.plot(ep, [scale * r[f"test_{metric}"] for r in history], label="test", marker=mk)
    sign = 1 if m.higher_is_better else -1
    best = max(history, key=lambda r: (sign * r[f"test_{metric}"], -r["epoch"]))
    ax_a.scatter([best["epoch"]], [scale * best[f"test_{metric}"]], color="C3", zorder=3,
                 label=f"best test {m.format_short(best[f'test_{metric}'])} (epoch {best['epoch']})")
    if baseline is not None:
        ax_a.axhline(scale * baseline, color="black", lw=1, ls="--",
                     label=f"memoryless baseline {m.format_short(baseline)}")
    if m.log_axis:
        ax_a.set_yscale("log")
    ax_a.set(xlabel="epoch", ylabel=m.axis_label, title=m.title)
    ax_lr = ax_l.twinx()
    ax_lr.plot(ep, [r["lr"] for r in history], color="grey", lw=1, ls=":", label="learning rate")
    ax_lr.set_yscale("log")
    ax_lr.set_ylabel("learning rate (dotted)", color="grey")
    ax_lr.tick_params(axis="y", colors="grey")
    for ax in (ax_l, ax_a):
        ax.grid(alpha=0.3)
        integer_ticks(ax.xaxis)                                   # epochs: no 1.25, 1.5 ticks
    ax_l.legend(loc="upper right")
    ax_a.legend(loc="best")                                        # clear of the best-epoch marker
    fig.suptitle(title)
    save_figure(fig, path)


def plot_hidden_states(view: dict, path, n_units: int = 8):
    """Per-unit activations of the last recurrent layer over time (``hidden_state_view``)."""
    plt = pyplot()
    hs, running, index = view["hs"], view["running"], view["index"]
    T = hs.shape[0]
    t = np.arange(1, T + 1)
    units = np.argsort(hs.std(axis=0))[::-1][:n_units]            # the most active units
    order = np.argsort(hs[-1])                                    # rows sorted by final value
    fig, (ax_tr, ax_hm) = plt.subplots(2, 1, figsize=(11, 7.5), height_ratios=[1, 1.3])
    for u in units:
        ax_tr.plot(t, hs[:, u], marker=".", lw=1.2, label=f"unit {u}")
    ax_in = ax_tr.twinx() if running is not None else None
    if ax_in is not None:
        ax_in.plot(t, running, color="black", ls="--", lw=1.5, label="running mean of input")
        ax_in.axhline(0, color="black", lw=0.5)
        ax_in.set_ylabel("running mean of input")
        r_lim = 1.1 * max(1e-6, float(np.abs(running).max()))
        ax_in.set_ylim(-r_lim, r_lim)                             # both axes symmetric: zeros align
    a_lim = 1.05 * max(1e-6, float(np.abs(hs[:, units]).max()))
    ax_tr.set(xlabel="time step", ylabel="activation", xlim=(0.5, T + 0.5), ylim=(-a_lim, a_lim),
              title=f"{len(units)} most active hidden units (last layer)")
    integer_ticks(ax_tr.xaxis)
    handles = ax_tr.get_legend_handles_labels()[0] + (
        ax_in.get_legend_handles_labels()[0] if ax_in is not None else [])
    ax_tr.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.08, 1.0), fontsize=8)
    ax_tr.grid(alpha=0.3)
    lim = max(1e-6, float(np.abs(hs).max()))
    im = ax_hm.imshow(hs[:, order].T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                      extent=(0.5, T + 0.5, hs.shape[1] - 0.5, -0.5), interpolation="nearest")
    ax_hm.set(xlabel="time step", ylabel="hidden unit (sorted by final value)",
              title="All hidden units over time")
    integer_ticks(ax_hm.xaxis)
    fig.colorbar(im, ax=ax_hm, label="activation")
    if view["chars"] is not None:
        shown = view["chars"]
        ax_hm.set_xticks(t)
        ax_hm.set_xticklabels(["\u2423" if c == " " else repr(c)[1:-1] for c in shown],
                              fontsize=6, family="monospace")
        fig.suptitle("Hidden states over the first 60 held-out characters")
    else:
        label = view["label"]
        label_txt = f"label {label.tolist()}" if np.size(label) <= 4 else "per-step labels"
        extra = f"; final mean {running[-1]:+.3f}" if running is not None else ""
        fig.suptitle(f"Hidden states for test sequence {index} ({label_txt}{extra})")
    save_figure(fig, path)


def _layer_label(param_name: str) -> str:
    """'weight_hh_l1_reverse' -> 'layer 1 (reverse)'."""
    rest = param_name.replace("weight_hh_l", "")
    return f"layer {rest.replace('_reverse', ' (reverse)')}"


def plot_gradient_flow(probes: list[dict], path):
    """Heatmap of log10 ||dL/dh_t|| (time step x training iteration), one panel per layer."""
    names = sorted(probes[0]["steps"])
    its = [p["iteration"] for p in probes]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(max(8.0, 5.5 * len(names)), 4.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        rows = [running(p["steps"][name], "grad_norm") for p in probes]     # padding: blank
        T = max(len(r) for r in rows)                    # a curriculum grows T: pad earlier stages
        g = np.full((T, len(rows)), np.nan)              # (T, n_probes)
        for j, r in enumerate(rows):
            g[:len(r), j] = r
        logg = np.log10(np.maximum(g, 1e-30))
        im = ax.imshow(logg, aspect="auto", origin="lower", cmap="magma",
                       extent=(its[0] - 0.5, its[-1] + 0.5, 0.5, T + 0.5), interpolation="nearest")
        fig.colorbar(im, ax=ax, label="log10 ||dL/dh_t||")
        ends = [reference_step(p["steps"][name]) for p in probes]  # the last step most sequences reach
        late = max(ends)
        full = np.array([e == late for e in ends])
        ratio = np.median(g[0, full] / np.maximum(g[late, full], 1e-30))
        ax.set(xlabel="training iteration", ylabel="time step t",
               title=f"{_layer_label(name)}: step 1 gets {ratio:.1e} x step {late + 1}")
        integer_ticks(ax.yaxis)
    fig.suptitle("Gradient flow through time\n(median ratio of the first step to the last one at least half "
                 "the sequences reach, in each title)")
    save_figure(fig, path)


def plot_hidden_norms(probes: list[dict], path):
    """Hidden-state norm at every time step (mean and max over the batch), early to late."""
    names = sorted(probes[0]["steps"])
    picks = sorted({0, len(probes) // 2, len(probes) - 1})
    plt = pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(max(8.0, 5.5 * len(names)), 4.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        for k, i in enumerate(picks):
            s = probes[i]["steps"][name]
            t = np.arange(1, len(s["hidden_norm_mean"]) + 1)                # steps no sequence reaches: no line
            ax.plot(t, running(s, "hidden_norm_mean"), color=f"C{k}",
                    label=f"iteration {probes[i]['iteration']}: mean")
            ax.plot(t, running(s, "hidden_norm_max"), color=f"C{k}", ls="--", lw=1, label="max")
        ax.set(xlabel="time step t", ylabel="||h_t||", title=_layer_label(name))
        integer_ticks(ax.xaxis)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle("Hidden-state norm over time\n(per sequence; mean and max over the batch)")
    save_figure(fig, path)


def plot_grad_norm_trace(history: list[dict], path, clip: float = 0.0, events=()):
    """Global gradient norm of every iteration (before clipping), the clip threshold, and events."""
    norms = np.concatenate([r["iter_grad_norm"] for r in history])
    losses = np.concatenate([r["iter_loss"] for r in history])
    it = np.arange(len(norms))
    plt = pyplot()
    fig, (ax_n, ax_l) = plt.subplots(2, 1, figsize=(12, 5.5), sharex=True)
    ax_n.semilogy(it, norms, lw=0.8, label="gradient norm before clipping")
    if clip:
        ax_n.axhline(clip, color="C3", ls="--", label=f"clip threshold {clip:g}")
    ax_l.plot(it, losses, lw=0.8, color="C1", label="training loss")
    titles = []
    if clip:
        titles.append(f"{100 * np.mean(norms > clip):.0f}% of steps clipped at {clip:g}")
    for e in events:                             # at the applied step it interrupted
        x = e.get("accepted_steps_before", e["iteration"])
        for ax in (ax_n, ax_l):
            ax.axvline(x, color="C2", lw=1.0, alpha=0.8)
    if len(events):
        ax_n.plot([], [], color="C2", label="guard recovery (rolled back, lr cut)")
        kinds = sorted({e["kind"] for e in events})
        titles.append(f"{len(events)} guard recover{'y' if len(events) == 1 else 'ies'} ({', '.join(kinds)}): lr "
                      f"{events[0]['lr_before']:.2g} -> {events[-1]['lr_after']:.2g}")
    ax_n.set_title("; ".join(titles), fontsize=10)
    finite = losses[np.isfinite(losses)]
    if finite.size and finite.max() > 100 * max(finite.min(), 1e-12):
        ax_l.set_yscale("log")
    ax_n.set_ylabel("||grad||")
    ax_l.set(xlabel="applied training step", ylabel="loss")
    for ax in (ax_n, ax_l):
        ax.grid(alpha=0.3)
        # beside the axes, not over the trace (the trace fills the whole width)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    save_figure(fig, path)


def draw_training_figures(run_dir, history: list[dict], probes: list[dict], events: list[dict], *,
                          metric: str, baseline: float | None, clip: float = 0.0,
                          hidden_view: dict | None = None, pool=None) -> list[str]:
    """The figures of a finished training run, from its logs as they are in memory: curves,
    gradient norms, the hidden states of one sequence (``hidden_view``, from
    ``analysis.dynamics.hidden_state_view``; None for a model without a recurrent stack) and,
    when per-step probes exist, gradient flow and hidden-state norms. Drawn here or on ``pool``
    (a ``FigurePool``: the caller waits); returns the file names."""
    draw, d, f = drawer(pool), Path(run_dir), TRAINING_FIGURES
    names = [f["training_curves"], f["grad_norm"]]
    draw(plot_training_curves, history, d / f["training_curves"], metric=metric, baseline=baseline)
    draw(plot_grad_norm_trace, history, d / f["grad_norm"], clip, events)
    if hidden_view is not None:
        names.append(f["hidden_states"])
        draw(plot_hidden_states, hidden_view, d / f["hidden_states"])
    if probes and probes[0]["steps"]:                 # per-step probes exist for recurrent layers
        names += [f["gradient_flow"], f["hidden_norms"]]
        draw(plot_gradient_flow, probes, d / f["gradient_flow"])
        draw(plot_hidden_norms, probes, d / f["hidden_norms"])
    return names
