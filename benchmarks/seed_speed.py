"""Seed experiment end to end (50 epochs x 10 batches of 32, test set every epoch), timed for:

1. rnnlab (NumPy, hand-written BPTT),
2. a seed-style PyTorch model: hand-written tanh cells stepping two nn.Linear layers per step, as
   in the "RNNs from scratch" write-up,
3. torch.nn.RNN (fused library layer),

all on the same data, in one run; prints each time (median of --repeats) and the ratios, and the
run's matrix products alone as NumPy computes them (the floor under rnnlab's ratio). Each
measurement runs in a fresh worker process, so no library's thread pool (torch's OpenMP workers
keep spinning after a call) slows down the next peer, and each starts as a user's run would.
Targets (issue 2): rnnlab <= 0.2x seed-style and <= 0.6x torch.nn.RNN.

    python benchmarks/seed_speed.py [--repeats 3] [--epochs 50]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import statistics
import tempfile
import time

import numpy as np
import products
import torch
from torch import nn

from rnnlab.data.tasks import build_task
from rnnlab.training.config import PRESETS
from rnnlab.training.loop import Trainer

CFG = PRESETS["seed"]


# ------------------------------------------------------------------ the PyTorch peers
class SeedStyleRNN(nn.Module):
    """Seed-style: per-layer input->hidden and hidden->hidden nn.Linear, a Python loop over time."""

    def __init__(self, d, h, layers, classes, dropout):
        super().__init__()
        self.i2h = nn.ModuleList(nn.Linear(d if k == 0 else h, h) for k in range(layers))
        self.h2h = nn.ModuleList(nn.Linear(h, h) for _ in range(layers))
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(h, classes)
        self.h = h
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        B, T, _ = x.shape
        hs = [x.new_zeros(B, self.h) for _ in self.i2h]
        for t in range(T):
            inp = x[:, t]
            for k, (i2h, h2h) in enumerate(zip(self.i2h, self.h2h)):
                hs[k] = torch.tanh(i2h(inp) + h2h(hs[k]))
                inp = self.drop(hs[k]) if k < len(self.i2h) - 1 else hs[k]
        return self.fc(self.drop(hs[-1]))


class TorchRNN(nn.Module):
    def __init__(self, d, h, layers, classes, dropout):
        super().__init__()
        self.rnn = nn.RNN(d, h, layers, batch_first=True, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(h, classes)
        for name, p in self.named_parameters():
            (nn.init.zeros_ if "bias" in name else nn.init.xavier_uniform_)(p)

    def forward(self, x):
        _, h_n = self.rnn(x)
        return self.fc(self.drop(h_n[-1]))


def run_torch(model_cls, data, epochs, seed=0):
    torch.manual_seed(seed)
    model = model_cls(CFG.features, CFG.hidden, CFG.layers, 2, CFG.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=CFG.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, CFG.lr_step, CFG.lr_gamma)
    loss_fn = nn.CrossEntropyLoss()
    Xtr, ytr = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    Xte, yte = torch.from_numpy(data.X_test), torch.from_numpy(data.y_test)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for _ in range(CFG.batches_per_epoch):
            idx = torch.from_numpy(rng.choice(len(Xtr), CFG.batch_size, replace=False))
            loss = loss_fn(model(Xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            logits = model(Xte)
            acc = (logits.argmax(1) == yte).float().mean().item()
    return time.perf_counter() - start, acc


def run_rnnlab(data, epochs, seed=0, as_the_cli=False):
    """The bare Trainer (the seed preset, probes every 10 iterations included), or
    (``as_the_cli``) the training of ``rnnlab train``: the same, writing metrics, probes and the
    training state for ``--resume`` to a run directory (its figures, analysis and report come
    after training and are timed by the CLI row)."""
    cfg = CFG.replace(epochs=epochs, seed=seed)
    callbacks = []
    if as_the_cli:
        from rnnlab.runs.writer import RunWriter
        cfg = PRESETS["seed"].replace(epochs=epochs, seed=seed)
        callbacks = [RunWriter(tempfile.mkdtemp())]
    trainer = Trainer(config=cfg, task=data, callbacks=callbacks)
    s = trainer.fit()
    return s["seconds"], s["final_test_acc"]


def run_cli(epochs, figure_workers: str | None = None, pycache: str | None = None):
    """The whole ``rnnlab train`` command as a user runs it (wall time of the process); with
    ``figure_workers="0"``, every figure drawn in the main process, one after another.

    With ``pycache`` (a folder), Python keeps the modules' bytecode there, as ``pip install .``
    does in site-packages: an editable install under ``PYTHONDONTWRITEBYTECODE=1`` compiles
    rnnlab's sources again in every run (about 0.05-0.1 s of the command)."""
    import json
    import os
    import subprocess
    import sys
    out = tempfile.mkdtemp() + "/run"
    env = dict(os.environ)
    env.pop("RNNLAB_FIGURE_WORKERS", None)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    if figure_workers is not None:
        env["RNNLAB_FIGURE_WORKERS"] = figure_workers
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rnnlab", "train", "--epochs", str(epochs), "--out", out, "--quiet"],
                   check=True, capture_output=True, env=env)
    seconds = time.perf_counter() - start
    return seconds, json.loads(open(out + "/summary.json").read())["final_test_acc"]


def seed_products() -> list[tuple]:
    """Every matrix product of the seed run as rnnlab computes it (``products.py``'s format):
    per training batch each layer's input projection, T step products forward and backward,
    weight and bias gradients and (above layer 0) input gradient, and the readout's three; per
    epoch the forward pass over the test set. The probes' products (every 10th batch) are left out."""
    B, T, H, L = CFG.batch_size, CFG.length, CFG.hidden, CFG.layers
    N, Ne = B * T, CFG.test_size * T
    train, evals = CFG.epochs * CFG.batches_per_epoch, CFG.epochs
    out = []
    for layer in range(L):
        D = CFG.features if layer == 0 else H
        out += [("projection", train, (N, D), (D, H), False, False),
                ("step forward", train * T, (B, H), (H, H), False, False),
                ("step backward", train * T, (B, H), (H, H), False, False),
                ("dW_ih", train, (H, N), (N, D), True, False),
                ("dW_hh", train, (H, N), (N, H), True, False),
                ("bias gradient", train, (N,), (N, H), False, False),
                ("test projection", evals, (Ne, D), (D, H), False, False),
                ("test step forward", evals * T, (CFG.test_size, H), (H, H), False, False)]
        if layer > 0:
            out.append(("input gradient", train, (N, H), (H, D), False, False))
    return out + [("readout", train, (B, H), (H, 2), False, True),
                  ("readout dW", train, (2, B), (B, H), True, False),
                  ("readout input gradient", train, (B, 2), (2, H), False, False),
                  ("test readout", evals, (CFG.test_size, H), (H, 2), False, True)]


def run_products() -> tuple[float, float, float]:
    """(seconds, GFLOP, peak GFLOP/s): the run's matrix products alone in NumPy on one BLAS thread
    (as the trainer runs them), each timed on its own with its operands in cache -- a floor under
    rnnlab's time that no change to its elementwise work can lower -- their work, and the rate
    this machine's BLAS reaches on one thread, measured in the same process."""
    prods = seed_products()
    return (sum(products.seconds(prods, threads=1).values()), sum(map(products.flops, prods)) / 1e9,
            products.peak_gflops(1))


PEERS = {"rnnlab (bare Trainer)": None, "rnnlab train's training": None,
         "seed-style PyTorch": SeedStyleRNN, "torch.nn.RNN": TorchRNN}


def measure(name: str, epochs: int):
    """Run one peer once (in a worker process): (seconds, final test accuracy)."""
    data = build_task(CFG)
    if PEERS[name] is None:
        return run_rnnlab(data, epochs, as_the_cli=name.startswith("rnnlab train"))
    return run_torch(PEERS[name], data, epochs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=CFG.epochs)
    args = ap.parse_args()
    peers = list(PEERS)
    times = {k: [] for k in peers}
    accs = {}
    ctx = mp.get_context("spawn")
    for _ in range(args.repeats):           # interleaved, so drift hits every peer alike
        for name in peers:
            with ctx.Pool(1) as pool:
                t, acc = pool.apply(measure, (name, args.epochs))
            times[name].append(t)
            accs[name] = acc
    with ctx.Pool(1) as pool:
        products = pool.apply(run_products)
    cli_runs = {"default": [], "0": []}
    with tempfile.TemporaryDirectory() as pycache:
        run_cli(args.epochs, pycache=pycache)                       # compiles the bytecode, untimed
        for _ in range(args.repeats):                               # interleaved as above
            for workers in cli_runs:
                cli_runs[workers].append(run_cli(args.epochs, None if workers == "default" else workers,
                                                 pycache)[0])
    cli, serial = (statistics.median(v) for v in cli_runs.values())
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"seed experiment, {args.epochs} epochs x {CFG.batches_per_epoch} batches of "
          f"{CFG.batch_size} + test set each epoch; median of {args.repeats}")
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), numpy {np.__version__}")
    print(f"{'implementation':<22}{'seconds':>9}{'final test acc':>16}")
    for k in peers:
        print(f"{k:<22}{med[k]:>9.3f}{100 * accs[k]:>15.1f}%")
    for ours in ("rnnlab (bare Trainer)", "rnnlab train's training"):
        r_seed = med[ours] / med["seed-style PyTorch"]
        r_torch = med[ours] / med["torch.nn.RNN"]
        print(f"{ours}: ratio to seed-style PyTorch = {r_seed:.3f} (target <= 0.2: "
              f"{'met' if r_seed <= 0.2 else 'NOT met'}); to torch.nn.RNN = {r_torch:.3f} (target <= 0.6: "
              f"{'met' if r_torch <= 0.6 else 'NOT met'})")
    seconds, gflop, peak = products
    floor = seconds / med["seed-style PyTorch"]
    print(f"the run's matrix products alone, in NumPy on one thread and warm caches: {gflop:.1f} GFLOP in "
          f"{seconds:.3f} s ({gflop / seconds:.1f} GFLOP/s; this machine's one-thread peak, measured: "
          f"{peak:.1f}) = {floor:.3f}x the seed-style model (a floor for the ratio: the target 0.2 leaves "
          f"{0.2 * med['seed-style PyTorch'] - seconds:.3f} s for everything else)")
    print(f"the whole `rnnlab train` command (training, figures, analysis, report; bytecode compiled, as "
          f"`pip install .` leaves it): {cli:.2f} s wall "
          f"(target <= 2.5 s: {'met' if cli <= 2.5 else 'NOT met'}); with every figure drawn in the main "
          f"process (RNNLAB_FIGURE_WORKERS=0): {serial:.2f} s, ratio {cli / serial:.2f}")


if __name__ == "__main__":
    main()
