"""``rnnlab compare``: RNN, LSTM, GRU and a causal Transformer on the same work.

Every model gets (about) the same number of parameters (each one's width is solved for the
target, and the counts are stated) and the same training budget, measured two ways and reported
separately: the same number of updates, and the same wall time (the LSTM's time under equal
updates). Several seeds per cell of the table. Then the two costs the seed write-up argues about:
training throughput against sequence length (a time loop against attention over all positions
at once), and streaming inference (time per generated token and bytes of state against the
position) for the recurrent cells, the Transformer with a key/value cache, and without one.
Writes ``compare.md``/``compare.json``/``compare.csv``, figures and ``compare.html``.
"""

from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path

import numpy as np

from rnnlab.data.batches import Batch
from rnnlab.data.metrics import METRICS
from rnnlab.data.task import Split, Task
from rnnlab.data.tasks import build_task
from rnnlab.experiments.sweep import markdown_table
from rnnlab.present.html import image, page, table
from rnnlab.present.plots import pyplot, save_figure
from rnnlab.runs.checkpoint import atomic_write_text
from rnnlab.runs.files import COMPARE_FILES, dumps, record_written
from rnnlab.training.build import build_model
from rnnlab.training.config import PRESETS, TrainConfig
from rnnlab.training.loop import Callback, Trainer

MODELS = ("rnn", "lstm", "gru", "transformer")

# The work: task settings and an update budget for each entry (epochs x batches of batch_size).
TASKS = {
    "seed": dict(task="mean-sign", epochs=30, batches_per_epoch=10, batch_size=32),
    "adding-50": dict(task="adding", length=50, epochs=20, batches_per_epoch=25, batch_size=64),
    "adding-100": dict(task="adding", length=100, epochs=20, batches_per_epoch=25, batch_size=64),
    "adding-200": dict(task="adding", length=200, epochs=20, batches_per_epoch=25, batch_size=64),
    "copy": dict(task="copy", length=20, epochs=20, batches_per_epoch=25, batch_size=64),
    "flipflop": dict(task="flipflop", length=100, epochs=20, batches_per_epoch=20, batch_size=64),
    "charlm": dict(task="charlm", epochs=10, batches_per_epoch=50, batch_size=32, window=64,
                   corpus_chars=400_000),
}
COMMON = dict(layers=1, dropout=0.0, optimizer="adam", lr=3e-3, schedule="cosine", clip=1.0,
              probe_every=0, checkpoint_every=0, train_size=5000, test_size=500, init="pytorch")


def sized_config(model: str, base: TrainConfig, task, target: int) -> tuple[TrainConfig, int]:
    """The config of ``model`` whose parameter count is closest to ``target``, and that count."""
    best = None
    step = base.heads if model == "transformer" else 1        # d_model must be a multiple of the heads
    widths = range(step, 1025, step) if model == "transformer" else range(2, 1025)
    for w in widths:
        cfg = base.replace(model=model, **({"d_model": w} if model == "transformer" else {"hidden": w}))
        n = build_model(cfg, task).parameter_count()
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (cfg, n)
        if n > target:
            break
    return best


class TimeBudget(Callback):
    """Ask the trainer to stop after the epoch in which ``seconds`` of training have passed."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_epoch_end(self, trainer, result):
        if result.record["seconds"] >= self.seconds:
            trainer.stop_requested = True


def run_cell(cfg: TrainConfig, task, seconds: float | None = None) -> dict:
    """Train one model on one task: equal updates (seconds None) or a wall-time budget."""
    if seconds is not None:      # as many epochs as fit the time, at a constant learning rate
        cfg = cfg.replace(epochs=cfg.epochs * 20, schedule="constant")
    t = Trainer(task, config=cfg, callbacks=[TimeBudget(seconds)] if seconds else [])
    s = t.fit()
    m = s["metric"]
    return {"final": s[f"final_test_{m}"], "seconds": s["seconds"], "updates": t.accepted, "metric": m}


def compare_tasks(names, seeds: int, target: int, scale: float = 1.0, on_cell=None) -> list[dict]:
    rows = []
    for name in names:
        over = dict(COMMON, **TASKS[name])
        if scale != 1.0:                                         # --quick: a fraction of every budget
            over["epochs"] = max(1, int(over["epochs"] * scale))
        base = TrainConfig.from_dict({**PRESETS["seed"].to_dict(), **over})
        task = build_task(base)
        sized = {m: sized_config(m, base, task, target) for m in MODELS}
        lstm_time = None
        for m in ("lstm",) + tuple(x for x in MODELS if x != "lstm"):       # the LSTM's time sets the budget
            cfg, params = sized[m]
            for seed in range(seeds):
                eq = run_cell(cfg.replace(seed=seed), task)
                if m == "lstm" and seed == 0:
                    lstm_time = eq["seconds"]
                wall = run_cell(cfg.replace(seed=seed), task, seconds=lstm_time)
                row = {"task": name, "model": m, "params": params, "seed": seed, "metric": eq["metric"],
                       "equal_updates": eq["final"], "updates": eq["updates"], "seconds": eq["seconds"],
                       "equal_time": wall["final"], "time_budget": lstm_time, "updates_in_time": wall["updates"],
                       "baseline": task.baseline}
                rows.append(row)
                if on_cell:
                    on_cell(row)
    return rows


# ---------------------------------------------------------------- costs
def throughput(lengths, target: int, batch: int = 32, steps: int = 5) -> list[dict]:
    """Training sequences per second at each sequence length (adding problem, equal parameters)."""
    out = []
    for T in lengths:
        base = TrainConfig.from_dict({**PRESETS["seed"].to_dict(), **COMMON, "task": "adding", "length": T,
                                      "train_size": batch * 2, "test_size": batch, "batch_size": batch})
        task = build_task(base)
        for m in MODELS:
            cfg, _ = sized_config(m, base, task, target)
            t = Trainer(task, config=cfg)
            b = Batch(task.train.X[:batch], task.train.y[:batch])
            t.train_step(b)                                        # warm-up (and any compilation)
            start = time.perf_counter()
            for _ in range(steps):
                t.train_step(b)
            out.append({"model": m, "length": T, "sequences_per_s": steps * batch / (time.perf_counter() - start)})
    return out


def _state_bytes(state) -> int:
    if state is None:
        return 0
    if isinstance(state, np.ndarray):
        return state.nbytes
    return sum(_state_bytes(s) for s in state)


def streaming(positions, target: int, vocab: int = 64, repeats: int = 5) -> list[dict]:
    """Time per generated token and bytes of state at each position, language models of equal size:
    recurrent cells (carry), the Transformer with a KV cache, and without one (recompute)."""
    ids = np.arange(vocab)
    task = Task("stream", "text", True, vocab, vocab, Split(ids, ids), Split(ids, ids), vocab=tuple(map(chr, ids + 48)))
    L = max(positions)
    base = TrainConfig.from_dict({**PRESETS["seed"].to_dict(), **COMMON, "task": "charlm", "context": L + 1,
                                  "window": 64})
    rng = np.random.default_rng(0)
    seq = rng.integers(0, vocab, L + 1)
    out = []
    for m in MODELS:
        cfg, params = sized_config(m, base, task, target)
        model = build_model(cfg, task)
        model.eval()
        modes = ["kv-cache", "recompute"] if m == "transformer" else ["state"]
        for mode in modes:
            state = None
            marks = set(positions)
            for t in range(L):
                if mode == "recompute":
                    if t + 1 not in marks:
                        continue
                    n = repeats if t < 1000 else 1
                    start = time.perf_counter()
                    for _ in range(n):
                        model.forward(seq[None, :t + 1])           # every position again for one token
                    sec = (time.perf_counter() - start) / n
                    # what must be kept: the prefix ids; what one step touches: t x t attention
                    out.append({"model": f"{m} ({mode})", "position": t + 1, "us_per_token": 1e6 * sec,
                                "state_bytes": int(seq[:t + 1].nbytes), "params": params})
                    continue
                if t + 1 in marks:
                    start = time.perf_counter()
                    for _ in range(repeats):
                        model.step(int(seq[t]), state)
                    sec = (time.perf_counter() - start) / repeats
                _, state = model.step(int(seq[t]), state)
                if t + 1 in marks:
                    out.append({"model": m if mode == "state" else f"{m} ({mode})", "position": t + 1,
                                "us_per_token": 1e6 * sec, "state_bytes": _state_bytes(state), "params": params})
    return out


# ---------------------------------------------------------------- tables, figures, page
def summarize(rows) -> list[dict]:
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        for m in MODELS:
            g = [r for r in rows if r["task"] == task and r["model"] == m]
            if not g:
                continue

            def ms(key):
                v = [r[key] for r in g if r[key] is not None]
                return (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0) if v else (None, None)
            (eu, eu_sd), (et, et_sd) = ms("equal_updates"), ms("equal_time")
            out.append({"task": task, "model": m, "params": g[0]["params"], "metric": g[0]["metric"], "seeds": len(g),
                        "equal_updates": eu, "equal_updates_sd": eu_sd, "equal_time": et, "equal_time_sd": et_sd,
                        "seconds": statistics.mean(r["seconds"] for r in g), "time_budget": g[0]["time_budget"],
                        "updates_in_time": statistics.mean(r["updates_in_time"] for r in g),
                        "baseline": g[0]["baseline"]})
    return out


def _fmt(metric, v, sd):
    if v is None:
        return "-"
    return METRICS[metric].format_spread(v, sd)


def write_outputs(rows, thr, stream, out_dir: Path) -> None:
    summ = summarize(rows)
    with open(out_dir / "compare.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    tabs = tables(summ, thr, stream)
    lines = [ln for i, t in enumerate(tabs) for ln in ([""] if i else []) + markdown_table(*t)]
    (out_dir / "compare.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    atomic_write_text(out_dir / "compare.json", dumps({"summary": summ, "throughput": thr, "streaming": stream},
                                                           indent=2))
    figures = plot(summ, thr, stream, out_dir)
    write_page(out_dir, tabs, figures)
    record_written(out_dir, [*COMPARE_FILES, *figures])


def tables(summ, thr, stream) -> list[tuple[list[str], list[dict]]]:
    """The three tables (results, throughput, streaming) as (column headers, one dict of cell
    text per row): made once, so compare.md and compare.html show the very same cells."""
    cols = ["task", "model", "params", "equal updates", "equal wall time (updates done)", "train s"]
    results = [dict(zip(cols, [f"{s['task']} ({s['metric']})", s["model"], f"{s['params']:,}",
                               _fmt(s["metric"], s["equal_updates"], s["equal_updates_sd"]),
                               f"{_fmt(s['metric'], s['equal_time'], s['equal_time_sd'])} "
                               f"({s['updates_in_time']:.0f})", f"{s['seconds']:.2f}"])) for s in summ]
    speed = {T: f"T={T} seq/s" for T in sorted({r["length"] for r in thr})}
    thr_rows = [{"model": m, **{speed[r["length"]]: f"{r['sequences_per_s']:,.0f}" for r in thr if r["model"] == m}}
                for m in MODELS]
    at = {p: f"t={p}: us/token, state bytes" for p in sorted({r["position"] for r in stream})}
    stream_rows = [{"streaming": name, **{at[r["position"]]: f"{r['us_per_token']:,.0f} us, {r['state_bytes']:,} B"
                                          for r in stream if r["model"] == name}}
                   for name in dict.fromkeys(r["model"] for r in stream)]
    return [(cols, results), (["model", *speed.values()], thr_rows), (["streaming", *at.values()], stream_rows)]


def plot(summ, thr, stream, out_dir: Path) -> list[str]:
    plt = pyplot()
    names = []
    tasks = list(dict.fromkeys(s["task"] for s in summ))
    cols = min(4, len(tasks))                                    # a readable grid, not one long strip
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols + 0.6, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    for ax, task in zip(axes.flat, tasks):
        g = [s for s in summ if s["task"] == task]
        metric = g[0]["metric"]
        m = METRICS[metric]
        scale = m.scale
        x = np.arange(len(g))
        ax.bar(x - 0.2, [scale * (s["equal_updates"] or 0) for s in g], 0.4,
               yerr=[scale * (s["equal_updates_sd"] or 0) for s in g], label="equal updates")
        ax.bar(x + 0.2, [scale * (s["equal_time"] or 0) for s in g], 0.4,
               yerr=[scale * (s["equal_time_sd"] or 0) for s in g], label="equal time")
        if g[0]["baseline"] is not None:
            ax.axhline(scale * g[0]["baseline"], color="black", ls="--", lw=1, label="memoryless")
        ax.set_xticks(x, [s["model"] for s in g], rotation=30)
        ax.set_title(f"{task}\n({'higher' if m.higher_is_better else 'lower'} is better)", fontsize=9)
        ax.set_ylabel(metric + (" (%)" if m.percent else ""))
        if m.log_axis:
            ax.set_yscale("log")
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8)  # off the bars
    save_figure(fig, out_dir / "compare_tasks.png", rect=(0, 0.06, 1, 1))
    names.append("compare_tasks.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in MODELS:
        pts = [r for r in thr if r["model"] == m]
        ax.plot([r["length"] for r in pts], [r["sequences_per_s"] for r in pts], marker="o", label=m)
    ax.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel="training sequences / s",
           title="Training throughput (equal parameters)")
    Ts = sorted({r["length"] for r in thr})
    ax.set_xticks(Ts, [str(t) for t in Ts])
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, out_dir / "compare_throughput.png")
    names.append("compare_throughput.png")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for name in dict.fromkeys(r["model"] for r in stream):
        pts = [r for r in stream if r["model"] == name]
        a1.plot([r["position"] for r in pts], [r["us_per_token"] for r in pts], marker="o", label=name)
        a2.plot([r["position"] for r in pts], [max(r["state_bytes"], 1) for r in pts], marker="o", label=name)
    a1.set(xscale="log", yscale="log", xlabel="position t", ylabel="us per generated token",
           title="Streaming: time per token")
    a2.set(xscale="log", yscale="log", xlabel="position t", ylabel="bytes kept between tokens",
           title="Streaming: state memory")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    save_figure(fig, out_dir / "compare_streaming.png")
    names.append("compare_streaming.png")
    return names


def write_page(out_dir: Path, tabs, figures) -> None:
    """compare.html: the three tables (the cells of ``tables``) with their figures, self-contained."""
    html_tables = [table(rows, cols, headers={}) for cols, rows in tabs]
    parts = ["<h1>rnnlab compare: RNN, LSTM, GRU, Transformer</h1>",
             "<p>Equal parameter counts (stated), equal training budgets: the same updates, and the same wall "
             "time (the LSTM's under equal updates).</p>", "<h2>Results</h2>", html_tables[0],
             image(out_dir / figures[0], figures[0]), "<h2>Training throughput</h2>", html_tables[1],
             image(out_dir / figures[1], figures[1]), "<h2>Streaming inference</h2>", html_tables[2],
             image(out_dir / figures[2], figures[2])]
    atomic_write_text(out_dir / "compare.html", page("rnnlab compare", parts))


def run_compare(tasks, seeds: int, target: int, out_dir, *, scale: float = 1.0, lengths=(16, 64, 256),
                positions=(16, 256, 4096), on_cell=None) -> list[dict]:
    out_dir = Path(out_dir)
    rows = compare_tasks(tasks, seeds, target, scale, on_cell)
    thr = throughput(lengths, target)
    stream = streaming(positions, target)
    write_outputs(rows, thr, stream, out_dir)
    return rows
