"""Regenerate the README's measured numbers: each block between ``<!-- numbers: NAME -->`` and
``<!-- /numbers: NAME -->`` is this script's output for NAME, kept in ``docs/results/readme/NAME.md``.

    python benchmarks/readme_numbers.py [NAME ...]      # all blocks when none is named

``tests/test_readme.py`` checks that the README quotes each block's last output word for word, so
a number the README states is one this script printed. The blocks:

- ``presets``: final and best test accuracy of ``--preset seed`` and ``--preset better`` over
  five seeds (same data), with the median training seconds (two runs at a time on 2 cores);
- ``lr_sweep``: the seed task's learning-rate sensitivity map, as ``rnnlab sweep`` writes it
  (Adam over cells; plain SGD and SGD with momentum 0.9 for the tanh RNN);
- ``analysis``: what ``analyze`` measures on each preset's seed-0 model (roles, silencing each
  role next to a random group of the same size, fixed points).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "results" / "readme"
SEEDS = (0, 1, 2, 3, 4)


def block_pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- numbers: {name} -->\n)(.*?)(<!-- /numbers: {name} -->)", re.S)


def _train(job):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    preset, seed = job
    return preset, seed, Trainer(config=PRESETS[preset].replace(seed=seed)).fit()


def presets() -> str:
    jobs = [(p, s) for p in ("seed", "better") for s in SEEDS]
    with mp.get_context("spawn").Pool(2) as pool:
        runs = pool.map(_train, jobs)
    model = {"seed": "2-layer tanh RNN, as published", "better": "1-layer ReLU IRNN, 8 units"}
    lines = ["| preset | model | params | final test acc | best test acc | training time |",
             "|---|---|---|---|---|---|",
             "| published seed | 2-layer tanh RNN | 13,314 | 93.20% | 93.70% | ~2.4 s |"]
    for preset in ("seed", "better"):
        rows = [s for p, _, s in runs if p == preset]
        final = [100 * s["final_test_acc"] for s in rows]
        best = [100 * s["best_test_acc"] for s in rows]
        secs = statistics.median(s["seconds"] for s in rows)
        bold = "**" if preset == "better" else ""
        lines.append(f"| `--preset {preset}` | {model[preset]} | {rows[0]['params']:,} | "
                     f"{bold}{statistics.mean(final):.2f} ± {statistics.stdev(final):.2f}%{bold} | "
                     f"{statistics.mean(best):.2f} ± {statistics.stdev(best):.2f}% | {secs:.1f} s |")
    return "\n".join(lines) + "\n"


def lr_sweep() -> str:
    from rnnlab.experiments.sweep import parse_grid, run_sweep, sweep_dir
    from rnnlab.training.config import PRESETS
    base = PRESETS["seed"]
    parts = []
    for title, cfg, specs in (
            ("Adam (the seed's optimizer), three cells", base,
             ["lr=1e-3,3e-3,1e-2,3e-2", "model=rnn,lstm,gru"]),
            ("plain SGD, tanh RNN", base.replace(optimizer="sgd"), ["lr=0.01,0.03,0.1,0.3"]),
            ("SGD with momentum 0.9, tanh RNN", base.replace(optimizer="sgd", momentum=0.9),
             ["lr=0.01,0.03,0.1,0.3"])):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            grid = parse_grid(specs, cfg)
            out, _ = sweep_dir(Path(tmp) / "sweep", cfg, grid, 3)
            run_sweep(cfg, grid, 3, out, jobs=2)
            seconds = time.perf_counter() - start
            table = (Path(tmp) / "sweep" / "sweep.md").read_text(encoding="utf-8").strip()
        command = " ".join(f"--grid {s}" for s in specs)
        if cfg.optimizer != base.optimizer:
            command = f"--optimizer sgd{' --momentum 0.9' if cfg.momentum else ''} " + command
        parts.append(f"{title} (`rnnlab sweep {command} --seeds 3`, {seconds:.0f} s):\n\n{table}\n")
    return "\n".join(parts)


def analysis() -> str:
    from rnnlab.analysis.analyze import analyze
    from rnnlab.data.metrics import METRICS
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    lines = ["| model | roles | silencing a role (a random group of its size) | fixed and slow points at zero input |",
             "|---|---|---|---|"]
    label = {"seed": "seed preset (2 x 64 tanh)", "better": "better preset (8 ReLU)"}
    for preset in ("seed", "better"):
        t = Trainer(config=PRESETS[preset])
        t.fit()
        a = analyze(t.model, t.task).json
        roles = ", ".join(f"{r} {n}" for r, n in a["role_counts"].items() if n)
        m = METRICS[t.metric]
        silenced = "; ".join(
            f"{r['group']} ({r['units']}): worse by {m.format_change(r['drop'])} "
            f"({'no control' if r['random_same_size_drop'] is None else m.format_change(r['random_same_size_drop'])})"
            for r in a["ablation"][1:])
        fp = a["fixed_points"]["summary"].split(";")[0]
        la = a["line_attractor"]
        verdict = f"; {la['reason']}"
        lines.append(f"| {label[preset]} | {roles} | {silenced} | {fp}{verdict} |")
    return "\n".join(lines) + "\n"


BLOCKS = {"presets": presets, "lr_sweep": lr_sweep, "analysis": analysis}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"blocks to regenerate: {', '.join(BLOCKS)} (default: all)")
    names = ap.parse_args().names or list(BLOCKS)
    unknown = sorted(set(names) - set(BLOCKS))
    if unknown:
        ap.error(f"no block named {', '.join(unknown)}; the blocks are {', '.join(BLOCKS)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        text = BLOCKS[name]()
        print(f"== {name}\n{text}", flush=True)
        (RESULTS / f"{name}.md").write_text(text, encoding="utf-8")
        readme, n = block_pattern(name).subn(lambda m: m.group(1) + text + m.group(3),
                                             README.read_text(encoding="utf-8"))
        if n != 1:
            sys.exit(f"README.md has {n} blocks named {name}; it needs exactly one")
        README.write_text(readme, encoding="utf-8")


if __name__ == "__main__":
    main()
