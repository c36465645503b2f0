"""Many networks at once: the seed preset trained as K stacked members (rnnlab.training.stack)
against single runs, a torch.func vmap ensemble of the same model, and K separate PyTorch
processes; seconds per network, ratios from one run.

Every peer does the seed preset's work per network: a 2-layer tanh RNN (64 units, dropout 0.2,
13,314 parameters) on the mean-sign task, 50 epochs of 10 random batches of 32, Adam 1e-3 halved
every 20 epochs, the 1,000 held-out sequences scored after every epoch. Each measurement runs in
a fresh process on one BLAS / torch thread (as a sweep worker does: two of them fill this
machine's two cores), and counts training and the per-epoch scoring, not imports.

    python benchmarks/stacked.py [--ks 1,4,16,64] [--processes 4]

"rnnlab single" is one run alone (median of 3), "rnnlab stack K" one StackTrainer of K members,
"torch vmap K" one ensemble of K seed-style models (seed_speed.py's SeedStyleRNN: vmap has no
batching rule for nn.RNN's fused kernel; torch.func.stack_module_state + vmap, randomness
"different" for dropout), "torch process" one fresh PyTorch process training one nn.RNN model
(seed_speed.py's TorchRNN; median of --processes, its torch import included: what K separate
processes each pay).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def rnnlab_single(seed: int = 0) -> float:
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    trainer = Trainer(config=PRESETS["seed"].replace(seed=seed))
    t = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - t - trainer.kernel_seconds


def rnnlab_stack(K: int) -> float:
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    from rnnlab.training.stack import StackTrainer
    stack = StackTrainer([Trainer(config=PRESETS["seed"].replace(seed=s)) for s in range(K)])
    t = time.perf_counter()
    stack.fit()
    return time.perf_counter() - t


def torch_vmap(K: int) -> float:
    """K seed-style models (benchmarks/seed_speed.py's SeedStyleRNN: nn.Linear layers and a loop
    over time, the model the seed write-up describes) as one torch.func ensemble."""
    import numpy as np
    import seed_speed as seed
    import torch
    from torch.func import functional_call, stack_module_state, vmap
    torch.set_num_threads(1)
    cfg, data = seed.CFG, seed.build_task(seed.CFG)
    Xtr, ytr = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    Xte, yte = torch.from_numpy(data.X_test), torch.from_numpy(data.y_test)
    models = []
    for k in range(K):
        torch.manual_seed(k)
        models.append(seed.SeedStyleRNN(cfg.features, cfg.hidden, cfg.layers, 2, cfg.dropout))
    params, buffers = stack_module_state(models)
    base = seed.SeedStyleRNN(cfg.features, cfg.hidden, cfg.layers, 2, cfg.dropout).to("meta")

    def one(p, b, x):
        return functional_call(base, (p, b), (x,))
    run = vmap(one, randomness="different")
    opt = torch.optim.Adam(params.values(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, cfg.lr_step, cfg.lr_gamma)
    gens = [np.random.default_rng(k) for k in range(K)]
    t = time.perf_counter()
    for _ in range(cfg.epochs):
        base.train()
        for _ in range(cfg.batches_per_epoch):
            idx = torch.from_numpy(np.stack([g.choice(len(Xtr), cfg.batch_size, replace=False) for g in gens]))
            out = run(params, buffers, Xtr[idx])                          # (K, B, 2)
            loss = torch.nn.functional.cross_entropy(out.reshape(-1, 2), ytr[idx].reshape(-1)) * K
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        base.eval()
        with torch.no_grad():
            (run(params, buffers, Xte.expand(K, *Xte.shape)).argmax(-1) == yte).float().mean(dim=1)
    return time.perf_counter() - t


def torch_process() -> float:
    """One nn.RNN model (seed_speed.py's TorchRNN and training loop) in a fresh process; the time
    includes importing torch, as K separate processes each would."""
    start = time.perf_counter()
    import seed_speed as seed
    import torch
    torch.set_num_threads(1)
    seed.run_torch(seed.TorchRNN, seed.build_task(seed.CFG), seed.CFG.epochs)
    return time.perf_counter() - start


def _fresh(what: str, arg: int = 0) -> float:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, __file__, "--one", what, str(arg)], capture_output=True, text=True,
                         env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", default="1,4,16,64")
    ap.add_argument("--processes", type=int, default=4, help="fresh PyTorch processes to time (median)")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        what, arg = args.one[0], int(args.one[1])
        fn = {"single": rnnlab_single, "stack": rnnlab_stack, "vmap": torch_vmap, "process": torch_process}[what]
        print(fn(arg) if what != "process" else fn())
        return
    ks = [int(k) for k in args.ks.split(",")]
    single = statistics.median(_fresh("single", s) for s in range(3))
    process = statistics.median(_fresh("process") for _ in range(args.processes))
    rows = []
    for K in ks:
        stack, vmapped = _fresh("stack", K) / K, _fresh("vmap", K) / K
        rows.append({"K": K, "stack": stack, "vmap": vmapped})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\nseconds per network (one BLAS/torch thread each; single run alone {single:.2f} s, "
          f"one PyTorch process {process:.2f} s):\n")
    print("| K | rnnlab stack | single run / stack | torch vmap | vmap / stack | torch process / stack |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['K']} | {r['stack']:.3f} | {single / r['stack']:.2f}x | {r['vmap']:.3f} | "
              f"{r['vmap'] / r['stack']:.2f}x | {process / r['stack']:.2f}x |")


if __name__ == "__main__":
    main()
