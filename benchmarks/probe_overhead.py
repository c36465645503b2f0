"""Cost of leaving the probes on: the seed run with probes every N iterations vs off, in one run.

    python benchmarks/probe_overhead.py [--every 10] [--repeats 5]
"""

import argparse
import statistics

from rnnlab.training.config import PRESETS
from rnnlab.training.loop import Trainer


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=PRESETS["seed"].probe_every)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    times = {0: [], args.every: []}
    Trainer(config=PRESETS["seed"].replace(epochs=3)).fit()                     # warm-up
    for _ in range(args.repeats):                                        # interleaved
        for every in times:
            times[every].append(Trainer(config=PRESETS["seed"].replace(probe_every=every)).fit()["seconds"])
    off, on = statistics.median(times[0]), statistics.median(times[args.every])
    print(f"seed run, median of {args.repeats}: probes off {off:.3f} s, every {args.every} "
          f"iterations {on:.3f} s -> overhead {100 * (on / off - 1):+.1f}% (target < 10%)")


if __name__ == "__main__":
    main()
