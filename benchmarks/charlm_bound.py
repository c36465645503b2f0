"""What bounds the char-LM's speed: every matrix product of one training window, timed with
NumPy's BLAS and with torch's, next to each library's whole window, in one run.

``charlm_speed.py`` reports the ratio; this script says where it comes from. The products are
the ones rnnlab's fused cells and CharLM run, with their shapes and memory layouts: per layer
the input projection for all steps, one (B, H) x (H, G*H) product per step forward and one
(B, G*H) x (G*H, H) per step backward, the weight and bias gradients over all steps and the
layer's input gradient (at layer 0 it feeds the embedding's gradient); then the readout's
three. Each is timed on its own with its operands in cache (``products.py``), so the sum is a
lower limit for the same products inside a window, where they run slower.

Printed per size and cell (medians of ``--repeats`` interleaved runs, each measurement in its
own fresh process; the windows' spread in brackets):

- the two whole windows and their ratio (as ``charlm_speed.py``);
- rnnlab's products with NumPy and the same products with ``torch.matmul`` (torch's threads);
  torch's own LSTM does not run these calls (oneDNN's fused LSTM packs its weights once per
  sequence), so the torch column says what a faster BLAS would make of rnnlab's products;
- rnnlab's rest: its window minus its products' lower limit (the compiled passes, loss,
  optimizer and glue, plus whatever the products lose to cold caches in training);
- the rate: each product's GFLOP/s (with ``--verbose``) and all of them together, next to the
  peak this machine's BLAS reaches on the same threads (a 2048 x 2048 product, measured in the
  same run), so no time claimed is faster than the cores can go;
- the room: rnnlab's window can match torch's only if its rest fits in torch's window minus
  NumPy's products.

Every peer runs on ``--threads`` threads (1 by default, as ``rnnlab train``).

    python benchmarks/charlm_bound.py [--sizes small,large] [--cells lstm,gru] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics

import products
from charlm_speed import SIZES, E, corpus_windows, measure


def window_products(size: str, cell: str, V: int) -> list[tuple]:
    """The products of one training window (``products.py``'s format); V is the vocabulary the
    readout predicts."""
    z = SIZES[size]
    B, H, T, L = z["B"], z["H"], z["W"], z["LAYERS"]
    G, N = (4 if cell == "lstm" else 3) * H, T * B
    out = []
    for layer in range(L):
        D = E if layer == 0 else H
        out += [(f"L{layer} input projection", 1, (N, D), (D, G), False, False),
                (f"L{layer} step forward h W_hh^T", T, (B, H), (H, G), False, False),
                (f"L{layer} step backward da W_hh", T, (B, G), (G, H), False, False),
                (f"L{layer} dW_ih", 1, (G, N), (N, D), True, False),
                (f"L{layer} dW_hh", 1, (G, N), (N, H), True, False),
                (f"L{layer} bias gradient", 1 if cell == "lstm" else 2, (N,), (N, G), False, False),
                (f"L{layer} input gradient", 1, (N, G), (G, D), False, False)]
    out += [("readout", 1, (N, H), (H, V), False, True),
            ("readout dW", 1, (V, N), (N, H), True, False),
            ("readout input gradient", 1, (N, V), (V, H), False, False)]
    return out


def window_seconds(peer: str, size: str, cell: str, steps: int, threads: int) -> float:
    z = SIZES[size]
    return z["B"] * z["W"] / measure(peer, size, cell, steps, threads)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="small,large")
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--steps", type=int, default=10, help="windows timed per run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--verbose", action="store_true", help="print every product's time")
    ap.add_argument("--threads", type=int, default=1, help="BLAS / torch threads of every peer")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")

    def own_process(fn, *a):
        with ctx.Pool(1) as pool:                               # each measurement in a fresh process
            return pool.apply(fn, a)

    ms = 1e3
    peak = statistics.median(own_process(products.peak_gflops, args.threads) for _ in range(3))
    print(f"peak: {peak:.1f} GFLOP/s float32 on {args.threads} BLAS thread(s) (NumPy, 2048 x 2048 products, "
          "median of 3 processes)")
    for size in args.sizes.split(","):
        z = SIZES[size]
        V = corpus_windows(size, args.steps)[0].output_size     # the vocabulary the timed windows have
        print(f"\n{size}: {z['LAYERS']}-layer, hidden {z['H']}, batch {z['B']}, window {z['W']}; "
              f"ms per training window, medians of {args.repeats}")
        for cell in args.cells.split(","):
            prods = window_products(size, cell, V)
            runs = {k: [] for k in ("numpy", "torch", "rnnlab window", "torch window")}
            for _ in range(args.repeats):                       # interleaved: drift hits all alike
                for lib in ("numpy", "torch"):
                    runs[lib].append(own_process(products.seconds, prods, lib, args.threads))
                for peer in ("rnnlab", "torch"):
                    runs[f"{peer} window"].append(own_process(window_seconds, peer, size, cell, args.steps,
                                                              args.threads))
            each = {lib: {name: statistics.median(r[name] for r in runs[lib]) for name in runs[lib][0]}
                    for lib in ("numpy", "torch")}
            work = {}
            for p in prods:
                work[p[0]] = work.get(p[0], 0.0) + products.flops(p)
            if args.verbose:
                for name in each["numpy"]:
                    print(f"  {name:<30} numpy {each['numpy'][name] * ms:8.3f} ms "
                          f"({work[name] / each['numpy'][name] / 1e9:5.1f} GFLOP/s)   torch.matmul "
                          f"{each['torch'][name] * ms:8.3f} ms ({work[name] / each['torch'][name] / 1e9:5.1f})")
            p_np, p_torch = (statistics.median(sum(r.values()) for r in runs[lib]) for lib in ("numpy", "torch"))
            w_ours, w_torch = (statistics.median(runs[k]) for k in ("rnnlab window", "torch window"))
            spread = {k: f"[{min(v) * ms:.1f}-{max(v) * ms:.1f}]" for k, v in runs.items() if "window" in k}
            print(f"{cell.upper():<5} window: rnnlab {w_ours * ms:.2f} {spread['rnnlab window']}, "
                  f"torch {w_torch * ms:.2f} {spread['torch window']} (ratio {w_torch / w_ours:.2f})")
            total = sum(work.values()) / 1e9
            print(f"{'':<5} rnnlab's products ({total:.3f} GFLOP a window): numpy {p_np * ms:.2f} "
                  f"({total / p_np:.1f} GFLOP/s), torch.matmul {p_torch * ms:.2f} ({total / p_torch:.1f} GFLOP/s), "
                  f"peak {peak:.1f}; rnnlab's rest {(w_ours - p_np) * ms:.2f}")
            room = (w_torch - p_np) * ms
            verdict = "none: NumPy's products alone exceed torch's window" if room <= 0 else "at most"
            print(f"{'':<5} room: rnnlab >= 1.0x torch needs its rest in {room:.2f} ms ({verdict})")


if __name__ == "__main__":
    main()
