"""DSA between every pair of networks: rnnlab's NumPy ``dsa_distances`` against the ``dsa-metric``
package's ``DSA`` class (its default fit, HAVOK DMD; ``score_method="angular"``, its default 1500
Adam steps from two starts per pair), on the same states with the same n_delays and rank, one
thread each, in one run. Prints both times, the ratio (above 1: rnnlab is faster) and how the
distances compare (rnnlab's is a minimum over more starts, so it should be the same or smaller);
then rnnlab alone on 30 networks (435 pairs), the issue's population size.

The networks: random tanh RNNs (H units, gains 0.6-1.6) driven by the same sparse inputs.

    python benchmarks/dsa_speed.py [--networks 5] [--units 32] [--n-delays 3] [--rank 10]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")      # before NumPy loads: one thread for both peers
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402


def networks(count: int, H: int, N: int = 16, T: int = 50, D: int = 3) -> list[np.ndarray]:
    inputs = np.random.default_rng(0).standard_normal((N, T, D)) * (np.random.default_rng(1).random((N, T, 1)) < 0.2)
    out = []
    for seed in range(count):
        rng = np.random.default_rng(100 + seed)
        W = rng.uniform(0.6, 1.6) * rng.standard_normal((H, H)) / np.sqrt(H)
        U, b = rng.standard_normal((H, D)), 0.1 * rng.standard_normal(H)
        h, states = np.zeros((N, H)), []
        for t in range(T):
            h = np.tanh(h @ W.T + inputs[:, t] @ U.T + b)
            states.append(h)
        out.append(np.stack(states, axis=1))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", type=int, default=5, help="networks compared by both (pairs: n(n-1)/2)")
    ap.add_argument("--units", type=int, default=32)
    ap.add_argument("--n-delays", type=int, default=3)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--population", type=int, default=30, help="networks timed for rnnlab alone (0: skip)")
    args = ap.parse_args(argv)

    from rnnlab.analysis.similarity import dsa_distances
    nets = networks(args.networks, args.units)
    settings = dict(n_delays=args.n_delays, rank=args.rank)
    pairs = args.networks * (args.networks - 1) // 2
    dsa_distances(nets[:2], **settings)                                  # warm up
    start = time.perf_counter()
    ours = dsa_distances(nets, **settings).angular
    t_ours = time.perf_counter() - start

    try:
        import torch
        from DSA import DSA
    except ImportError:
        print("dsa-metric is not installed (pip install dsa-metric): rnnlab alone")
        t_theirs = theirs = None
    else:
        torch.set_num_threads(1)
        torch.manual_seed(0)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = DSA(nets, score_method="angular", **settings).fit_score()
        t_theirs = time.perf_counter() - start

    print(f"DSA, {args.networks} networks ({pairs} pairs), H={args.units}, n_delays={args.n_delays}, "
          f"rank={args.rank}, 1 thread")
    print(f"{'':12}{'seconds':>10}{'per pair':>12}")
    print(f"{'rnnlab':12}{t_ours:10.2f}{t_ours / pairs * 1e3:10.1f}ms")
    if theirs is not None:
        print(f"{'dsa-metric':12}{t_theirs:10.2f}{t_theirs / pairs * 1e3:10.1f}ms")
        print(f"ratio dsa-metric / rnnlab: {t_theirs / t_ours:.1f}x")
        iu = np.triu_indices(args.networks, 1)
        diff = ours[iu] - np.asarray(theirs)[iu]
        print(f"angular distance, rnnlab - dsa-metric: max {diff.max():+.4f}, min {diff.min():+.4f} rad; "
              f"rnnlab within 2e-3 of or below dsa-metric on {(diff <= 2e-3).sum()}/{pairs} pairs")
    if args.population:
        many = networks(args.population, args.units)
        start = time.perf_counter()
        dsa_distances(many, **settings)
        t_many = time.perf_counter() - start
        n_pairs = args.population * (args.population - 1) // 2
        print(f"rnnlab alone, {args.population} networks ({n_pairs} pairs): {t_many:.2f} s")


if __name__ == "__main__":
    main()
