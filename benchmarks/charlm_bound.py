"""What bounds the char-LM's speed: every matrix product of one training window, timed with
NumPy's BLAS and with torch's, next to each library's whole window, in one run.

``charlm_speed.py`` reports the ratio; this script says where it comes from. The products are
the ones rnnlab's fused cells run, with their shapes and memory layouts: the input projection
for all steps, one (B, H) x (H, G*H) product per step forward and one (B, G*H) x (G*H, H) per
step backward, the weight and bias gradients over all steps, the layer below's input gradient,
and the readout. Each is timed hot (operands in cache, median of repeats); the torch column runs
the same shapes through ``torch.matmul`` with torch's default threads, so the difference between
the columns is what the BLAS alone costs rnnlab. The rest of a window (rnnlab: the fused
kernels, loss, optimizer, glue; torch: everything but its products) is the window minus its
products. The bound printed: with products at NumPy's speed, rnnlab matches torch's window only
if everything else fits in (torch's window - NumPy's products).

    python benchmarks/charlm_bound.py [--sizes small,large] [--cells lstm,gru] [--steps 10]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import timeit

import numpy as np
from charlm_speed import SIZES, E, corpus_windows, measure


def window_products(size: str, cell: str, V: int) -> list[tuple[str, int, tuple, tuple, bool, bool]]:
    """(name, count per window, A shape, B shape, A transposed, B transposed): A @ B as rnnlab
    runs it, a transposed operand being a view of a contiguous array (as ``dXP.T``); V is the
    vocabulary the readout predicts."""
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
                (f"L{layer} bias gradient", 1 if cell == "lstm" else 2, (1, N), (N, G), False, False)]
        if layer > 0:
            out.append((f"L{layer} input gradient", 1, (N, G), (G, D), False, False))
    out += [("readout", 1, (N, H), (H, V), False, True),
            ("readout dW", 1, (V, N), (N, H), True, False),
            ("readout input gradient", 1, (N, V), (V, H), False, False)]
    return out


def _operand(rng, shape, transposed):
    a = rng.standard_normal(shape[::-1] if transposed else shape).astype(np.float32)
    return a.T if transposed else a


def time_products(lib: str, size: str, cell: str, V: int) -> dict[str, float]:
    """Seconds per window for each product (count included), in this process."""
    rng = np.random.default_rng(0)
    times = {}
    if lib == "torch":
        import torch
    for name, count, sa, sb, ta, tb in window_products(size, cell, V):
        a, b = _operand(rng, sa, ta), _operand(rng, sb, tb)
        if lib == "torch":
            a, b = torch.from_numpy(a), torch.from_numpy(b)
            f = lambda: torch.matmul(a, b)                      # noqa: E731
        else:
            f = lambda: np.dot(a, b)                            # noqa: E731
        f()
        n = max(1, int(0.02 / (timeit.timeit(f, number=1) + 1e-9)))
        times[name] = count * statistics.median(timeit.repeat(f, number=n, repeat=7)) / n
    return times


def window_seconds(peer: str, size: str, cell: str, steps: int) -> float:
    z = SIZES[size]
    return z["B"] * z["W"] / measure(peer, size, cell, steps)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="small,large")
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--verbose", action="store_true", help="print every product's time")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")

    def own_process(fn, *a):
        with ctx.Pool(1) as pool:                               # each library alone in a fresh process
            return pool.apply(fn, a)

    for size in args.sizes.split(","):
        z = SIZES[size]
        print(f"\n{size}: {z['LAYERS']}-layer, hidden {z['H']}, batch {z['B']}, window {z['W']} "
              f"(ms per training window)")
        for cell in args.cells.split(","):
            V = corpus_windows(size, 1)[0].output_size
            ours, theirs = (own_process(time_products, lib, size, cell, V) for lib in ("numpy", "torch"))
            win_ours = own_process(window_seconds, "rnnlab", size, cell, args.steps)
            win_torch = own_process(window_seconds, "torch", size, cell, args.steps)
            if args.verbose:
                for name in ours:
                    print(f"  {name:<30} numpy {ours[name] * 1e3:8.3f}   torch.matmul {theirs[name] * 1e3:8.3f}")
            p_ours, p_torch = sum(ours.values()), sum(theirs.values())
            print(f"{cell.upper():<5} window: rnnlab {win_ours * 1e3:7.2f}  torch {win_torch * 1e3:7.2f}"
                  f"  (ratio {win_torch / win_ours:.2f})")
            print(f"{'':<5} products: numpy {p_ours * 1e3:7.2f}  torch.matmul {p_torch * 1e3:7.2f}"
                  f"  (numpy / torch {p_ours / p_torch:.2f})")
            print(f"{'':<5} rest: rnnlab {(win_ours - p_ours) * 1e3:7.2f}  torch {(win_torch - p_torch) * 1e3:7.2f}")
            print(f"{'':<5} bound: rnnlab >= 1.0x torch needs its rest in "
                  f"{(win_torch - p_ours) * 1e3:.2f} ms with NumPy's products, "
                  f"{(win_torch - p_torch) * 1e3:.2f} ms with torch's")


if __name__ == "__main__":
    main()
