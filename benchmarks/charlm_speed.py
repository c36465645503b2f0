"""Character-level LM training throughput (characters per second), rnnlab vs PyTorch, one run.

Two sizes (``--sizes``): small = 1-layer, hidden 128, batch 32, window 64; large = 2-layer,
hidden 256, batch 64, window 100; LSTM and GRU, embedding 32, Adam, on the default corpus.
rnnlab runs with its fused cells (Numba) and, as ``rnnlab-readable``, with the readable NumPy
cells, so the fused path's gain is measured in the same run; the first line reports the
kernels' compile time (cold cache) and load time (warm cache). torch's CPU LSTM runs oneDNN's fused LSTM kernel (its
GRU does not); the LSTM row also times torch with oneDNN switched off, to show what that kernel
is worth against the same unfused per-step arithmetic rnnlab does. Each peer trains ``--steps``
windows after one warm-up
window, in its own fresh process (no library's thread pool disturbs another), interleaved over
``--repeats``; prints the median throughput and the ratio rnnlab / PyTorch (target >= 1.0).

Both peers run on ``--threads`` threads (1 by default, as ``rnnlab train`` does unless
``--blas-threads`` says otherwise; torch.set_num_threads for PyTorch).

    python benchmarks/charlm_speed.py [--steps 20] [--repeats 3] [--cells lstm,gru] [--threads 1]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import statistics
import tempfile
import time

import numpy as np

E = 32
SIZES = {"small": dict(H=128, B=32, W=64, LAYERS=1), "large": dict(H=256, B=64, W=100, LAYERS=2)}


def corpus_windows(size, steps):
    from rnnlab.data.batches import stream_windows
    from rnnlab.data.tasks import build_task
    from rnnlab.training.config import PRESETS
    z = SIZES[size]
    B, W = z["B"], z["W"]
    data = build_task(PRESETS["charlm"].replace(corpus_chars=B * (W + 1) * max(steps + 2, 12),
                                                batch_size=B, window=W))
    return data, stream_windows(data.X_train, B, W)[: steps + 1]


def run_rnnlab(size, cell, steps, fused=True, threads=1):
    from rnnlab.nn.cells import use_fused
    use_fused(fused)                                            # process-wide, before building
    from rnnlab.training.threads import BlasThreads
    BlasThreads(threads).apply()                                # what fit() applies; train_step alone does not
    from rnnlab.data.batches import Batch
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    z = SIZES[size]
    data, windows = corpus_windows(size, steps)
    cfg = PRESETS["charlm"].replace(model=cell, forget_bias=1.0 if cell == "lstm" else 0.0,
                                    hidden=z["H"], layers=z["LAYERS"], embed=E, batch_size=z["B"],
                                    window=z["W"], probe_every=0, blas_threads=threads)
    t = Trainer(config=cfg, task=data)
    t.train_step(Batch(*windows[0]))                            # warm-up
    start = time.perf_counter()
    for x, y in windows[1:]:
        t.train_step(Batch(x, y))
    return steps * z["B"] * z["W"] / (time.perf_counter() - start)


def run_torch(size, cell, steps, onednn=True, threads=1):
    import torch
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = onednn
    from torch import nn
    z = SIZES[size]
    data, windows = corpus_windows(size, steps)
    V = data.output_size

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(V, E)
            self.rnn = getattr(nn, cell.upper())(E, z["H"], z["LAYERS"], batch_first=True)
            self.fc = nn.Linear(z["H"], V)

        def forward(self, x, state):
            out, state = self.rnn(self.emb(x), state)
            return self.fc(out), state

    torch.manual_seed(0)
    model = LM()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    state = None

    def step(x, y):
        nonlocal state
        logits, state = model(torch.from_numpy(x), state)
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        loss = loss_fn(logits.reshape(-1, V), torch.from_numpy(y).reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step(*windows[0])
    start = time.perf_counter()
    for x, y in windows[1:]:
        step(x, y)
    return steps * z["B"] * z["W"] / (time.perf_counter() - start)


def measure(peer, size, cell, steps, threads=1):
    if peer.startswith("rnnlab"):
        return run_rnnlab(size, cell, steps, fused=peer == "rnnlab", threads=threads)
    return run_torch(size, cell, steps, onednn=peer == "torch", threads=threads)


def compile_seconds(cache_dir: str) -> float:
    """Time to make the fused kernels ready and run each once, with Numba's cache in
    ``cache_dir``: a compile when it is empty, a load once a first run has filled it."""
    import os
    os.environ["NUMBA_CACHE_DIR"] = cache_dir
    start = time.perf_counter()
    from rnnlab.nn.cells.fused import warm_up
    warm_up()
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--sizes", default="small,large")
    ap.add_argument("--threads", type=int, default=1, help="BLAS / torch threads of both peers")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as cache:       # its own cache: the user's may be stale or warm
        with ctx.Pool(1) as pool:
            cold = pool.apply(compile_seconds, (cache,))
        with ctx.Pool(1) as pool:
            warm = pool.apply(compile_seconds, (cache,))
    import torch
    print(f"fused kernels: {cold:.1f} s to compile (cold cache), {warm:.2f} s to load (warm cache); "
          f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s) each, "
          f"numpy {np.__version__}")
    for size in args.sizes.split(","):
        z = SIZES[size]
        cps = {}
        for _ in range(args.repeats):
            for cell in args.cells.split(","):
                peers = ("rnnlab", "rnnlab-readable", "torch") + (("torch-no-onednn",) if cell == "lstm" else ())
                for peer in peers:
                    with ctx.Pool(1) as pool:
                        cps.setdefault((peer, cell), []).append(pool.apply(measure, (peer, size, cell, args.steps,
                                                                                            args.threads)))
        print(f"\n{size}: {z['LAYERS']}-layer, hidden {z['H']}, batch {z['B']}, window {z['W']}; "
              f"{args.steps} windows, median of {args.repeats}")
        for cell in args.cells.split(","):
            ours, readable, theirs = (statistics.median(cps[(p, cell)])
                                      for p in ("rnnlab", "rnnlab-readable", "torch"))
            print(f"{cell.upper():<5} rnnlab {ours:>9,.0f} chars/s   torch.nn.{cell.upper():<5}{theirs:>9,.0f} chars/s"
                  f"   ratio {ours / theirs:.2f} (target >= 1.0: {'met' if ours >= theirs else 'NOT met'})")
            print(f"{'':<5} readable cells {readable:>9,.0f} chars/s   (fused / readable {ours / readable:.2f})")
            if (peer := ("torch-no-onednn", cell)) in cps:
                plain = statistics.median(cps[peer])
                print(f"{'':<5} {'':<26}torch, oneDNN off{plain:>9,.0f} chars/s   ratio {ours / plain:.2f}")


if __name__ == "__main__":
    main()
