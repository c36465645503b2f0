"""Many networks at once: the seed preset trained as K stacked members (rnnlab.training.stack)
against single runs, a torch.func vmap ensemble of the same model, and K separate PyTorch
processes; seconds per network, ratios from one run.

Every peer does the seed preset's work per network: a 2-layer tanh RNN (64 units, dropout 0.2,
13,314 parameters) on the mean-sign task, 50 epochs of 10 random batches of 32, Adam 1e-3 halved
every 20 epochs, the 1,000 held-out sequences scored after every epoch. Each measurement runs in
a fresh process on one BLAS / torch thread (as a sweep worker does: two of them fill this
machine's two cores), and counts training and the per-epoch scoring, not imports.

    python benchmarks/stacked.py [--ks 1,4,16,64] [--processes 4] [--floor]

It ends with the floor that arithmetic sets under these targets: the multiply-adds of every
matrix product a network's run does (``run_flops``), over this machine's best float32 product
rate on one core (a 1024 x 1024 x 1024 product, measured in the same run). No arrangement of the
same products, stacked or not, can train a network faster than that. ``--floor`` prints only it,
for the seed preset and for the sensitivity map (``rnnlab sweep --grid lr=... --grid
model=rnn,lstm,gru --seeds 3``, 36 runs on both cores).

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

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def run_flops(cfg, epochs: int | None = None) -> float:
    """Floating-point operations (2 per multiply-add) in the matrix products of one run of ``cfg``
    (a recurrent classifier's config), elementwise work not counted.

    Per sequence step, forward: each layer's input part (D_l x G*H) and recurrent part (H x G*H).
    Backward: every forward product twice (its weight gradient and its input gradient) except
    layer 0's input gradient, which no one needs. Training runs forward and backward on
    ``batches_per_epoch`` batches of ``batch_size``; the held-out scoring after every epoch runs
    forward on ``test_size`` sequences (``batches_per_epoch`` 0: one pass over ``train_size``).
    Left out, so the floor stays a lower bound: the readout (H x classes once per sequence, under
    0.1%) and the probes' Gram products every ``probe_every`` steps (about 1%)."""
    G, H = GATES[cfg.model], cfg.hidden
    inputs = [cfg.features] + [H] * (cfg.layers - 1)
    forward = sum(D * G * H + H * G * H for D in inputs)
    backward = 2 * forward - cfg.features * G * H
    steps_trained = (cfg.batches_per_epoch * cfg.batch_size or cfg.train_size) * cfg.length
    steps_scored = cfg.test_size * cfg.length
    per_epoch = steps_trained * (forward + backward) + steps_scored * forward
    return 2.0 * per_epoch * (cfg.epochs if epochs is None else epochs)


def peak_rate(seconds: float = 2.0) -> float:
    """This core's best float32 matrix-product rate, FLOP/s: the fastest of repeated 1024^3
    products (BLAS at its most efficient shape; the seed run's products are far smaller)."""
    import numpy as np
    a, b = (np.random.default_rng(k).standard_normal((1024, 1024)).astype(np.float32) for k in (0, 1))
    a @ b
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * 1024 ** 3 / best


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
    ap.add_argument("--floor", action="store_true", help="print only the arithmetic floor (a few seconds)")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        what, arg = args.one[0], int(args.one[1])
        fn = {"single": rnnlab_single, "stack": rnnlab_stack, "vmap": torch_vmap, "process": torch_process,
              "peak": peak_rate}[what]
        print(fn(arg) if what not in ("process", "peak") else fn())
        return
    ks = [int(k) for k in args.ks.split(",")]
    single = statistics.median(_fresh("single", s) for s in range(3))
    if args.floor:
        floor(single)
        return
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
    floor(single)


def floor(single: float) -> None:
    """Print what arithmetic allows: the seed preset per network on one core against the
    "16 seeds in 3x one run" target, and the sensitivity map on two cores."""
    from rnnlab.training.config import PRESETS
    seed = PRESETS["seed"]
    rate = _fresh("peak")
    flops = run_flops(seed)
    print(f"\narithmetic floor: one seed-preset run does {flops / 1e9:.1f} GFLOP of matrix products; this "
          f"core's best float32 product rate is {rate / 1e9:.1f} GFLOP/s")
    print(f"- a single run ({single:.2f} s) runs its products at {flops / single / 1e9:.1f} GFLOP/s, "
          f"{flops / single / rate:.0%} of that best rate")
    print(f"- at the best rate a network needs at least {flops / rate:.3f} s: {flops / rate / single:.2f} of "
          f"a single run; the target (16 networks in 3x one run) allows {3 / 16:.3f} of one")
    runs = [seed.replace(model=m, lr=lr, seed=s) for m in GATES for lr in (1e-3, 3e-3, 1e-2, 3e-2) for s in range(3)]
    total = sum(run_flops(c) for c in runs)
    print(f"- the sensitivity map's {len(runs)} runs do {total / 1e12:.2f} TFLOP: at least {total / (2 * rate):.1f} s "
          f"on two cores at the best rate, if no run stops early")


if __name__ == "__main__":
    main()
