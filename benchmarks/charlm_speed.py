"""Character-level LM training throughput (characters per second), rnnlab vs PyTorch, one run.

2-layer LSTM and GRU, hidden 256, embedding 32, batch 64 parallel streams, truncated-BPTT
window 100, Adam, on the default corpus. torch's CPU LSTM runs oneDNN's fused LSTM kernel (its
GRU does not); the LSTM row also times torch with oneDNN switched off, to show what that kernel
is worth against the same unfused per-step arithmetic rnnlab does. Each peer trains ``--steps``
windows after one warm-up
window, in its own fresh process (no library's thread pool disturbs another), interleaved over
``--repeats``; prints the median throughput and the ratio rnnlab / PyTorch (target >= 1.0).

    python benchmarks/charlm_speed.py [--steps 20] [--repeats 3] [--cells lstm,gru]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import statistics
import time

import numpy as np

H, E, B, W, LAYERS = 256, 32, 64, 100, 2


def corpus_windows(steps):
    from rnnlab.batches import stream_windows
    from rnnlab.config import PRESETS
    from rnnlab.tasks import build_task
    data = build_task(PRESETS["charlm"].replace(corpus_chars=B * (W + 1) * max(steps + 2, 12)))
    return data, stream_windows(data.X_train, B, W)[: steps + 1]


def run_rnnlab(cell, steps):
    from rnnlab.batches import Batch
    from rnnlab.config import PRESETS
    from rnnlab.train import Trainer
    data, windows = corpus_windows(steps)
    cfg = PRESETS["charlm"].replace(model=cell, forget_bias=1.0 if cell == "lstm" else 0.0,
                                    hidden=H, layers=LAYERS, embed=E, batch_size=B, window=W)
    t = Trainer(config=cfg, task=data)
    t.train_step(Batch(*windows[0]))                            # warm-up
    start = time.perf_counter()
    for x, y in windows[1:]:
        t.train_step(Batch(x, y))
    return steps * B * W / (time.perf_counter() - start)


def run_torch(cell, steps, onednn=True):
    import torch
    torch.backends.mkldnn.enabled = onednn
    from torch import nn
    data, windows = corpus_windows(steps)
    V = data.output_size

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(V, E)
            self.rnn = getattr(nn, cell.upper())(E, H, LAYERS, batch_first=True)
            self.fc = nn.Linear(H, V)

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
    return steps * B * W / (time.perf_counter() - start)


def measure(peer, cell, steps):
    if peer == "rnnlab":
        return run_rnnlab(cell, steps)
    return run_torch(cell, steps, onednn=peer == "torch")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cells", default="lstm,gru")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    cps = {}
    for _ in range(args.repeats):
        for cell in args.cells.split(","):
            for peer in ("rnnlab", "torch") + (("torch-no-onednn",) if cell == "lstm" else ()):
                with ctx.Pool(1) as pool:
                    cps.setdefault((peer, cell), []).append(pool.apply(measure, (peer, cell, args.steps)))
    import torch
    print(f"char-LM training, {LAYERS}-layer, hidden {H}, batch {B}, window {W}; {args.steps} windows, "
          f"median of {args.repeats}; {platform.machine()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), numpy {np.__version__}")
    for cell in args.cells.split(","):
        ours, theirs = (statistics.median(cps[(p, cell)]) for p in ("rnnlab", "torch"))
        print(f"{cell.upper():<5} rnnlab {ours:>9,.0f} chars/s   torch.nn.{cell.upper():<5}{theirs:>9,.0f} chars/s"
              f"   ratio {ours / theirs:.2f} (target >= 1.0: {'met' if ours >= theirs else 'NOT met'})")
        if (peer := ("torch-no-onednn", cell)) in cps:
            plain = statistics.median(cps[peer])
            print(f"{'':<5} {'':<26}torch, oneDNN off{plain:>9,.0f} chars/s   ratio {ours / plain:.2f}")


if __name__ == "__main__":
    main()
