"""Training throughput of a CTRNN under Dale's law (rnnlab.CTRNN in a SequenceTagger) against the
same network written in plain PyTorch, at NeuroGym sizes; ratios from one run.

The work, the same for both peers: a PerceptualDecisionMaking-style tagger (input 3: fixation and
two noisy stimuli; output 3: fixate, left, right), H = 64, 128, 256 rate units (relu), dt = 20,
tau = 100 (a = 0.2), 80% excitatory units with Dale's law, recurrent noise 0.05, read out from the
excitatory units only; batches of 16 trials of 100 steps, float32. One training step is forward,
cross-entropy at every step, backward, Adam (lr 1e-3), and the projections: masked readout
gradients zeroed before the step, every weight put back on its own side of zero (and the masked
readout weights back to 0) after it.

The PyTorch peer (``TorchCTRNN``) writes the same equations, x_t = (1 - a) x_{t-1} + a (r_{t-1}
W_hh^T + u_t W_ih^T + b_ih + b_hh + sqrt(2 / a) * 0.05 * N(0, 1)), r_t = relu(x_t), with the input
projection of every step as one product before the loop (as rnnlab does), autograd for the
backward, torch.optim.Adam, and Dale's law by the same projection after ``optimizer.step()``;
tests/test_benchmarks_ctrnn.py checks it gives rnnlab's logits from rnnlab's weights.

Each measurement runs in a fresh process on the row's number of threads (rnnlab: BLAS threads by
threadpoolctl; PyTorch: torch.set_num_threads) and takes the median time of --steps steps; the
peers take turns (--repeats rounds) so a slow spell of this shared machine falls on both, and the
row gives the medians. GFLOP/s counts the matrix products a step does (``step_flops``) over its
median time, beside the float32 product peak on the same threads (NumPy's best 2048^3 product,
1024^3 with --quick, measured just before the row), and the machine's load average: on a machine
whose cores other jobs share, rows on 2 threads measure the contention as much as the libraries.
A ratio above 1 means rnnlab is faster.

    python benchmarks/ctrnn_speed.py [--repeats 3] [--steps 20] [--sizes 64,128,256] [--threads 1,2]
    python benchmarks/ctrnn_speed.py --quick          # seconds, for CI and tests
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import time

import numpy as np

D, K, B, T = 3, 3, 16, 100            # input, output, batch, steps (NeuroGym PerceptualDecisionMaking)
RATE = dict(dt=20.0, tau=100.0, dale=0.8, rec_noise=0.05)
LR = 1e-3


def trials(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` batches of (inputs (B, T, 3), targets (B, T)) shaped like PerceptualDecisionMaking:
    fixation for 80 steps with two noisy stimuli of random coherence, then a 20-step decision."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = np.zeros((B, T, D), np.float32)
        y = np.zeros((B, T), np.int64)
        side = rng.integers(0, 2, B)
        coh = rng.choice([0.0, 0.064, 0.128, 0.256, 0.512], B)
        x[:, :80, 0] = 1.0                                       # fixation cue
        mean = np.stack([1 + coh * np.where(side == 0, 1, -1), 1 - coh * np.where(side == 0, 1, -1)], 1) / 2
        x[:, 10:80, 1:] = mean[:, None, :] + 0.1 * rng.standard_normal((B, 70, 2))
        y[:, 80:] = 1 + side[:, None]                            # decision: 1 left, 2 right
        out.append((x, y))
    return out


def step_flops(H: int) -> float:
    """FLOPs (2 per multiply-add) of the matrix products in one training step, elementwise work not
    counted: forward the input projection (D -> H), the recurrence (H -> H) and the readout (H -> K)
    at every step; backward the recurrence twice (dW_hh and dL/dr_{t-1}), dW_ih, the readout twice
    (its weight and dL/dr_t); no dL/du (nothing upstream needs it)."""
    per_step = (D * H + H * H + H * K) + (2 * H * H + D * H + 2 * H * K)
    return 2.0 * B * T * per_step


def timed(step, data) -> float:
    """The median seconds of one training step over ``data`` (a step that another job on the
    machine slowed counts once, not in full)."""
    seconds = []
    for x, y in data:
        start = time.perf_counter()
        step(x, y)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


# ------------------------------------------------------------------ rnnlab
def rnnlab_train(H: int, steps: int, threads: int) -> float:
    from threadpoolctl import threadpool_limits

    import rnnlab
    from rnnlab.nn.losses import softmax_cross_entropy
    from rnnlab.nn.optim import Adam
    from rnnlab.training.allocator import tune_allocator
    threadpool_limits(threads, user_api="blas")                  # this (fresh) process's BLAS
    tune_allocator()                                             # as rnnlab's Trainer does for every run
    model = rnnlab.SequenceTagger(D, H, K, cell="ctrnn", nonlinearity="relu", rate=dict(RATE),
                                  readout="excitatory", seed=0)   # the head's default f is tanh
    opt = Adam(model.params, model.grads, lr=LR)
    data = trials(steps + 1)

    def step(x, y):
        out = model.forward(x)                                   # (B, T, K) logits, noise drawn
        _, d_out = softmax_cross_entropy(out, y)                 # mean over every step and trial
        model.zero_grad()
        model.backward(d_out, input_grad=False)
        model.constrain_grads()                                  # masked readout weights: no gradient
        opt.step()
        model.constrain_weights()                                # Dale's law and masks, by projection

    step(*data[0])                                               # warm: allocations, BLAS buffers
    return timed(step, data[1:])


# ------------------------------------------------------------------ PyTorch
def torch_model(H: int):
    """The plain PyTorch CTRNN tagger (built inside the worker: torch is imported there only)."""
    import torch
    from torch import nn

    class TorchCTRNN(nn.Module):
        """x_t = (1 - a) x_{t-1} + a (W_hh r_{t-1} + W_ih u_t + b + noise), r_t = relu(x_t); Dale's
        law on W_hh's columns and an excitatory-only readout, kept by ``constrain_*``."""

        def __init__(self, d, h, k, dt, tau, dale, rec_noise):
            super().__init__()
            self.alpha = dt / tau
            self.noise_std = (2.0 / self.alpha) ** 0.5 * rec_noise
            self.input2h = nn.Linear(d, h)
            self.h2h = nn.Linear(h, h)
            self.fc = nn.Linear(h, k)
            n_e = int(round(dale * h))
            signs = torch.where(torch.arange(h) < n_e, 1.0, -1.0)
            self.register_buffer("signs", signs)                 # (H,) per sending unit (column)
            self.register_buffer("readout_mask", (signs > 0).float().expand(k, h).clone())
            with torch.no_grad():                                # |N(0,1)|, I columns by n_E/n_I, radius 1.5
                W = torch.randn(h, h).abs()
                W[:, n_e:] *= n_e / (h - n_e)
                W *= signs
                W *= 1.5 / torch.linalg.eigvals(W).abs().max()
                self.h2h.weight.copy_(W)
            self.constrain_weights()

        def forward(self, u):                                    # u (B, T, D) -> logits (B, T, K)
            Bn, Tn, _ = u.shape
            a = self.alpha
            drive_in = self.input2h(u)                           # (B, T, H) every step at once
            if self.training:
                drive_in = drive_in + self.noise_std * torch.randn_like(drive_in)
            x = u.new_zeros(Bn, self.h2h.out_features)
            r = torch.relu(x)
            rates = []
            for t in range(Tn):
                x = (1 - a) * x + a * (self.h2h(r) + drive_in[:, t])
                r = torch.relu(x)
                rates.append(r)
            return self.fc(torch.stack(rates, 1))

        def constrain_grads(self):
            self.fc.weight.grad.mul_(self.readout_mask)

        @torch.no_grad()
        def constrain_weights(self):
            W = self.h2h.weight
            W.masked_fill_(W * self.signs < 0, 0.0)              # a weight crossing zero stops at 0
            self.fc.weight.mul_(self.readout_mask)

    return TorchCTRNN(D, H, K, RATE["dt"], RATE["tau"], RATE["dale"], RATE["rec_noise"])


def torch_train(H: int, steps: int, threads: int) -> float:
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_model(H).train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in trials(steps + 1)]

    def step(x, y):
        out = model(x)
        loss = loss_fn(out.reshape(-1, K), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        model.constrain_grads()
        opt.step()
        model.constrain_weights()

    step(*data[0])
    return timed(step, data[1:])


def peak(threads: int, n: int) -> float:
    import products
    return products.peak_gflops(threads, n)


def _run(job):
    fn, args = job
    return globals()[fn](*args)


def in_fresh_process(fn: str, *args):
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_run, ((fn, args),))


def blas_info() -> str:
    """The libraries each peer's products run in (read in this process, before any worker starts)."""
    import torch
    from threadpoolctl import threadpool_info
    libs = [f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info() if i.get("user_api") == "blas"]
    backend = [line.split(":", 1)[1].strip() for line in torch.__config__.parallel_info().splitlines()
               if line.startswith("ATen parallel backend")]
    torch_blas = "MKL" if torch.backends.mkl.is_available() else "its own BLAS"
    return (f"NumPy {np.__version__} on {', '.join(libs) or 'an unknown BLAS'}; torch {torch.__version__} on "
            f"{torch_blas}{', oneDNN' if torch.backends.mkldnn.is_available() else ''}, "
            f"{backend[0] if backend else 'unknown'} threads")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="rounds of the peers taking turns (medians)")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    ap.add_argument("--sizes", default="64,128,256", help="hidden sizes H")
    ap.add_argument("--threads", default="1,2", help="thread counts, the same for both peers")
    ap.add_argument("--quick", action="store_true", help="H 64 and 256, 1 thread, 2 rounds of 5 steps")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.steps, args.sizes, args.threads = 2, 5, "64,256", "1"
    sizes = [int(h) for h in args.sizes.split(",")]
    threads = [int(n) for n in args.threads.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {blas_info()}")
    print(f"work: CTRNN tagger, input {D}, output {K}, batch {B} x {T} steps, float32, relu, "
          f"dt {RATE['dt']:g} / tau {RATE['tau']:g}, Dale 0.8, rec_noise {RATE['rec_noise']}, excitatory readout, "
          f"Adam; median step of {args.steps} per measurement, median of {args.repeats} measurements (fresh "
          f"processes, peers taking turns); peak: NumPy's best float32 product on the row's threads, measured "
          f"before the row; load: this machine's 1-minute load average after the row (other jobs included)")
    print()
    print("| H | threads | rnnlab steps/s | PyTorch steps/s | rnnlab / PyTorch | rnnlab GFLOP/s | "
          "PyTorch GFLOP/s | peak GFLOP/s | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in threads:
        for H in sizes:
            top = in_fresh_process("peak", n, 1024 if args.quick else 2048)
            times = {"rnnlab_train": [], "torch_train": []}
            for r in range(args.repeats):
                order = list(times) if r % 2 == 0 else list(times)[::-1]   # alternate who goes first
                for fn in order:
                    times[fn].append(in_fresh_process(fn, H, args.steps, n))
            ours, theirs = (statistics.median(times[fn]) for fn in ("rnnlab_train", "torch_train"))
            f = step_flops(H) / 1e9
            print(f"| {H} | {n} | {1 / ours:,.1f} | {1 / theirs:,.1f} | **{theirs / ours:.2f}** | "
                  f"{f / ours:.1f} | {f / theirs:.1f} | {top:.0f} | {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
