"""``rnnlab sweep lengths``: how each model's result and gradient flow change with sequence length.

Runs the grid models x lengths x seeds, each run in its own worker process (``--jobs`` at a
time) writing a normal run directory, then writes ``sweep.csv`` (one row per run),
``sweep.md`` (mean +- std over seeds), ``metric_vs_length.png`` and ``gradient_vs_length.png``
(gradient reaching step 1 relative to step T, from the probes). This measures claims like
"at length 100 or 500 a vanilla RNN would struggle".
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import os
import statistics
from pathlib import Path

from ..config import TrainConfig
from ..tasks import METRICS


def _run_one(job) -> dict:
    cfg_dict, run_dir = job
    from ..probes import early_to_late_gradient
    from ..rundir import RunWriter, read_jsonl
    from ..train import Trainer
    cfg = TrainConfig.from_dict(cfg_dict)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    trainer = Trainer(config=cfg, callbacks=[RunWriter(run_dir, figures=False)])
    try:
        s = trainer.fit()
        status = "ok"
    except Exception as e:  # a diverged run is a result too
        s, status = trainer.summary(0.0) if trainer.history else {}, f"failed: {e}"
    m = trainer.metric
    return {"model": cfg.model, "length": cfg.length, "seed": cfg.seed, "status": status,
            "metric": m, "final": s.get(f"final_test_{m}"), "best": s.get(f"best_test_{m}"),
            "early_to_late_gradient": early_to_late_gradient(read_jsonl(Path(run_dir) / "probes.jsonl")),
            "seconds": s.get("seconds"), "run_dir": str(run_dir)}


def sweep_lengths(base: TrainConfig, models, lengths, seeds: int, out_dir, jobs: int = 2) -> list[dict]:
    out_dir = Path(out_dir)
    grid = [(base.replace(model=m, length=T, seed=s, curriculum="").to_dict(),
             str(out_dir / "runs" / f"{m}-T{T}-seed{s}"))
            for T in lengths for m in models for s in range(seeds)]
    # one BLAS thread per worker: set before the workers start, as NumPy reads it on import
    saved = os.environ.get("OPENBLAS_NUM_THREADS")
    if jobs > 1:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        with mp.get_context("spawn").Pool(max(1, jobs)) as pool:
            rows = pool.map(_run_one, grid, chunksize=1)
    finally:
        if saved is None:
            os.environ.pop("OPENBLAS_NUM_THREADS", None)
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = saved
    write_tables(rows, out_dir)
    plot_sweep(rows, out_dir)
    return rows


def _mean_sd(values):
    v = [x for x in values if x is not None]
    if not v:
        return None, None
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def aggregate(rows) -> list[dict]:
    out = []
    for m in dict.fromkeys(r["model"] for r in rows):
        for T in sorted({r["length"] for r in rows}):
            group = [r for r in rows if r["model"] == m and r["length"] == T]
            if not group:
                continue
            final, final_sd = _mean_sd([r["final"] for r in group])
            grads = sorted(r["early_to_late_gradient"] for r in group if r["early_to_late_gradient"] is not None)
            out.append({"model": m, "length": T, "runs": len(group), "metric": group[0]["metric"],
                        "final": final, "final_sd": final_sd,
                        "gradient": grads[len(grads) // 2] if grads else None,
                        "failed": sum(r["status"] != "ok" for r in group)})
    return out


def write_tables(rows, out_dir: Path) -> None:
    fields = ["model", "length", "seed", "status", "metric", "final", "best",
              "early_to_late_gradient", "seconds", "run_dir"]
    with open(out_dir / "sweep.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    agg = aggregate(rows)
    metric = rows[0]["metric"]
    lines = [f"| model | length | runs | final test {metric} (mean ± sd) | gradient at step 1 / step T |",
             "|---|---|---|---|---|"]
    for a in agg:
        val = "failed" if a["final"] is None else (
            f"{100 * a['final']:.1f} ± {100 * a['final_sd']:.1f}%" if metric == "acc"
            else f"{a['final']:.4f} ± {a['final_sd']:.4f}")
        grad = ("n/a" if a["gradient"] is None else
                "0 (below float range: underflow)" if a["gradient"] == 0 else f"{a['gradient']:.1e}")
        lines.append(f"| {a['model']} | {a['length']} | {a['runs']} | {val} | {grad} |")
    (out_dir / "sweep.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out_dir / "sweep.json").write_text(json.dumps(agg, indent=2), encoding="utf-8")


def plot_sweep(rows, out_dir: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(rows)
    metric = rows[0]["metric"]
    higher = METRICS[metric].higher_is_better
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for m in dict.fromkeys(a["model"] for a in agg):
        pts = [a for a in agg if a["model"] == m and a["final"] is not None]
        scale = 100 if metric == "acc" else 1
        ax.errorbar([a["length"] for a in pts], [scale * a["final"] for a in pts],
                    yerr=[scale * a["final_sd"] for a in pts], marker="o", capsize=3, label=m)
    lengths = sorted({a["length"] for a in agg})
    ax.set_xscale("log")
    ax.set_xticks(lengths, [str(t) for t in lengths])
    ax.minorticks_off()
    if metric == "mse":
        ax.set_yscale("log")
    ax.set(xlabel="sequence length T", ylabel=f"final test {metric}" + (" (%)" if metric == "acc" else ""),
           title=f"Result vs sequence length ({'higher' if higher else 'lower'} is better)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "metric_vs_length.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for m in dict.fromkeys(a["model"] for a in agg):
        pts = [a for a in agg if a["model"] == m and a["gradient"] is not None and a["gradient"] > 0]
        zero = [a["length"] for a in agg if a["model"] == m and a["gradient"] == 0]
        label = m + (f" (0 at T={', '.join(map(str, zero))}: underflow)" if zero else "")
        ax.plot([a["length"] for a in pts], [a["gradient"] for a in pts], marker="o", label=label)
    ax.set(xscale="log", yscale="log", xlabel="sequence length T",
           ylabel="||dL/dh_1|| / ||dL/dh_T|| (top layer)",
           title="How much gradient reaches the first step")
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xticks(lengths, [str(t) for t in lengths])
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "gradient_vs_length.png", dpi=110)
    plt.close(fig)

