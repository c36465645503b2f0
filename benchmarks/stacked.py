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
"torch vmap K" one ensemble of K models (torch.func.stack_module_state + vmap, randomness
"different" for dropout; the RNN written out step by step, as vmap has no batching rule for
nn.RNN), "torch process" one fresh PyTorch process training one nn.RNN model (median of
--processes, its torch import included: what K separate processes each pay).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

EPOCHS, BATCHES, BATCH, HIDDEN, LAYERS = 50, 10, 32, 64, 2


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


def _data():
    from rnnlab.data.tasks import make_task
    task = make_task("mean-sign", 5000, 1000, 20, 10, 0)
    return task.X_train, task.y_train, task.X_test, task.y_test


_CLASSES: dict = {}


def _torch_model(torch):
    if "SeedRNN" in _CLASSES:
        return _CLASSES["SeedRNN"]()

    class SeedRNN(torch.nn.Module):
        """The seed model written out step by step (torch.func.vmap has no batching rule for
        nn.RNN's fused kernel), with nn.RNN's parameters, init and dropout between layers."""

        def __init__(self):
            super().__init__()
            ref = torch.nn.RNN(10, HIDDEN, LAYERS, batch_first=True)
            self.w_ih = torch.nn.ParameterList([getattr(ref, f"weight_ih_l{k}") for k in range(LAYERS)])
            self.w_hh = torch.nn.ParameterList([getattr(ref, f"weight_hh_l{k}") for k in range(LAYERS)])
            self.b = torch.nn.ParameterList([torch.nn.Parameter(getattr(ref, f"bias_ih_l{k}").detach()
                                                                + getattr(ref, f"bias_hh_l{k}").detach())
                                             for k in range(LAYERS)])
            self.drop = torch.nn.Dropout(0.2)
            self.fc = torch.nn.Linear(HIDDEN, 2)

        def forward(self, x):
            seq = x
            for k in range(LAYERS):
                xp = seq @ self.w_ih[k].T + self.b[k]                      # every step's input part at once
                h = x.new_zeros(x.shape[0], HIDDEN)
                outs = []
                for t in range(x.shape[1]):
                    h = torch.tanh(xp[:, t] + h @ self.w_hh[k].T)
                    outs.append(h)
                seq = torch.stack(outs, dim=1)
                if k < LAYERS - 1:
                    seq = self.drop(seq)
            return self.fc(self.drop(h))

    _CLASSES["SeedRNN"] = SeedRNN
    return SeedRNN()


def torch_vmap(K: int) -> float:
    import numpy as np
    import torch
    from torch.func import functional_call, stack_module_state, vmap
    torch.set_num_threads(1)
    Xtr, ytr, Xte, yte = (torch.from_numpy(np.ascontiguousarray(a)) for a in _data())
    models = []
    for k in range(K):
        torch.manual_seed(k)
        models.append(_torch_model(torch))
    params, buffers = stack_module_state(models)
    base = _torch_model(torch).to("meta")

    def one(p, b, x):
        return functional_call(base, (p, b), (x,))
    run = vmap(one, randomness="different")
    opt = torch.optim.Adam(params.values(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, 20, 0.5)
    gens = [np.random.default_rng(k) for k in range(K)]
    t = time.perf_counter()
    for _ in range(EPOCHS):
        base.train()
        for _ in range(BATCHES):
            idx = torch.from_numpy(np.stack([g.choice(len(Xtr), BATCH, replace=False) for g in gens]))
            out = run(params, buffers, Xtr[idx])                          # (K, B, 2)
            loss = torch.nn.functional.cross_entropy(out.reshape(-1, 2), ytr[idx].reshape(-1)) * K
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        base.eval()
        with torch.no_grad():
            out = run(params, buffers, Xte.expand(K, *Xte.shape))
            (out.argmax(-1) == yte).float().mean(dim=1)
    return time.perf_counter() - t


def torch_process() -> float:
    """One model in a fresh process; the time includes importing torch, as K processes each would."""
    start = time.perf_counter()
    import numpy as np
    import torch
    torch.set_num_threads(1)
    Xtr, ytr, Xte, yte = (torch.from_numpy(np.ascontiguousarray(a)) for a in _data())
    torch.manual_seed(0)

    class Fused(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.RNN(10, HIDDEN, LAYERS, batch_first=True, dropout=0.2)
            self.drop = torch.nn.Dropout(0.2)
            self.fc = torch.nn.Linear(HIDDEN, 2)

        def forward(self, x):
            return self.fc(self.drop(self.rnn(x)[1][-1]))
    model = Fused()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, 20, 0.5)
    g = np.random.default_rng(0)
    for _ in range(EPOCHS):
        model.train()
        for _ in range(BATCHES):
            idx = torch.from_numpy(g.choice(len(Xtr), BATCH, replace=False))
            loss = torch.nn.functional.cross_entropy(model(Xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            (model(Xte).argmax(-1) == yte).float().mean()
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
