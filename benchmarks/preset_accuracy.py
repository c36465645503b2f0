"""Final and best test accuracy of the presets over several seeds (same data split), in parallel.

    python benchmarks/preset_accuracy.py [--presets seed,better] [--seeds 0,1,2,3,4] [--jobs 2]

``seed`` changes initialisation, dropout masks and batch order; the 5,000/1,000 sequences stay
fixed (``data_seed`` 0). Also prints, for each preset, how close to the decision boundary the
misclassified test sequences lie (|mean| of their 200 values), which is what limits accuracy.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics


def run(job):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer

    preset, seed = job
    t = Trainer(config=PRESETS[preset].replace(seed=seed))
    s = t.fit()
    t.model.eval()
    pred = t.model.forward(t.task.X_test).argmax(-1)
    wrong = pred != t.task.y_test
    margin = abs(t.task.X_test.astype("float64").mean(axis=(1, 2)))
    return preset, seed, s, float(margin[wrong].max()) if wrong.any() else 0.0, float(margin.std())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="seed,better")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    jobs = [(p, int(s)) for p in args.presets.split(",") for s in args.seeds.split(",")]
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(run, jobs)
    print(f"{'preset':<8}{'seed':>5}{'params':>8}{'final test':>12}{'best test':>11}{'best ep':>9}"
          f"{'seconds':>9}{'max |mean| wrong':>18}")
    for preset, seed, s, m, _ in results:
        print(f"{preset:<8}{seed:>5}{s['params']:>8}{100 * s['final_test_acc']:>11.1f}%"
              f"{100 * s['best_test_acc']:>10.1f}%{s['best_epoch']:>9}{s['seconds']:>9.2f}{m:>18.4f}")
    for preset in args.presets.split(","):
        rows = [r[2] for r in results if r[0] == preset]
        f = [100 * r["final_test_acc"] for r in rows]
        b = [100 * r["best_test_acc"] for r in rows]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"{preset}: final test {statistics.mean(f):.2f} +- {sd(f):.2f}%, "
              f"best test {statistics.mean(b):.2f} +- {sd(b):.2f}% over {len(rows)} seeds")


if __name__ == "__main__":
    main()
