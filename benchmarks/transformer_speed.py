"""The Transformer's training throughput against an equal PyTorch model (same layers, heads, width,
batch and length; pre-LN blocks, tanh GELU, Adam), and KV-cached generation of a char model
against the same weights stepped through a hand-written PyTorch KV cache (nn.MultiheadAttention
keeps none). Each measurement runs in a fresh process (medians of --repeats, the two peers taking
turns), ratios from one run.

Sizes: the seed task at its defaults (d_model 64, 2 layers, 4 heads); the sizes ``rnnlab compare``
gives its 20,000-parameter Transformer (1 layer) on the seed task, adding-100 (a regression there,
timed here with a 2-class head: the same blocks) and the char model; and a wider char model. A
ratio above 1 means rnnlab is faster.

    python benchmarks/transformer_speed.py [--repeats 3] [--steps 60] [--sizes 1,5]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

import numpy as np

SIZES = {  # name: (kind, input size, d_model, layers, heads, batch, length); compare: its 20,000-parameter sizes
    "seed task, defaults": ("classify", 10, 64, 2, 4, 32, 20),
    "compare: seed": ("classify", 10, 40, 1, 4, 32, 20),
    "compare: adding-100": ("classify", 2, 36, 1, 4, 64, 100),
    "compare: charlm": ("lm", 94, 28, 1, 4, 32, 64),
    "char model, d 128 x 2": ("lm", 94, 128, 2, 4, 32, 64),
}


def _batches(kind, D, B, T, steps, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "lm":
        return [(rng.integers(0, D, (B, T)), rng.integers(0, D, (B, T))) for _ in range(steps)]
    return [(rng.standard_normal((B, T, D)).astype(np.float32), rng.integers(0, 2, B)) for _ in range(steps)]


def rnnlab_train(size, steps):
    from rnnlab.nn.losses import softmax_cross_entropy
    from rnnlab.nn.optim import Adam
    from rnnlab.nn.transformer import Transformer
    from rnnlab.training.allocator import tune_allocator
    tune_allocator()                                                # as rnnlab's Trainer does for every run
    kind, D, d, L, h, B, T = size
    model = Transformer(D, d, D if kind == "lm" else 2, num_layers=L, heads=h, context=T, kind=kind)
    opt = Adam(model.params, model.grads, lr=1e-3)
    batches = _batches(kind, D, B, T, steps)
    model.forward(batches[0][0])                                    # warm caches and allocations
    start = time.perf_counter()
    for x, y in batches:
        out = model.forward(x)
        _, d_out = softmax_cross_entropy(out, y)
        model.zero_grad()
        model.backward(d_out, input_grad=False)
        opt.step()
    return time.perf_counter() - start


def torch_model(size):
    """The test suite's torch.nn reference (``tests/nn/test_transformer.py``), in float32, holding
    the weights of the rnnlab model of this size: the same model, not just the same shape."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "nn"))
    from test_transformer import torch_reference

    from rnnlab.nn.transformer import Transformer
    kind, D, d, L, h, B, T = size
    ours = Transformer(D, d, D if kind == "lm" else 2, num_layers=L, heads=h, context=T, kind=kind,
                       dtype=np.float64)
    return torch_reference(ours).float()


def torch_train(size, steps):
    import torch
    kind, D, d, L, h, B, T = size
    model = torch_model(size)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in _batches(kind, D, B, T, steps)]
    loss_fn = torch.nn.CrossEntropyLoss()
    model(batches[0][0])
    start = time.perf_counter()
    for x, y in batches:
        out = model(x)
        loss = loss_fn(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def rnnlab_generate(size, tokens):
    from rnnlab.nn.transformer import Transformer
    kind, D, d, L, h, B, T = size
    model = Transformer(D, d, D, num_layers=L, heads=h, context=tokens + 1, kind="lm")
    model.eval()
    model.step(0, None)                                             # warm: loads the compiled passes
    start = time.perf_counter()
    cache, tok = None, 0
    for _ in range(tokens):
        logits, cache = model.step(tok, cache)
        tok = int(np.argmax(logits))
    return time.perf_counter() - start


def torch_generate(size, tokens):
    """The same stepping with a hand-written KV cache over nn.MultiheadAttention's weights."""
    import torch
    kind, D, d, L, h, B, T = size
    model = torch_model((kind, D, d, L, h, 1, tokens + 1)).eval()
    hd = d // h
    start = time.perf_counter()
    with torch.no_grad():
        caches = [([], []) for _ in model.blocks]
        tok = 0
        for t in range(tokens):
            z = model.embedding(torch.tensor([[tok]])) + model.pos(torch.tensor([t]))    # (1, 1, d)
            for block, (ks, vs) in zip(model.blocks, caches):
                a = block.ln1(z)
                q, k, v = torch.nn.functional.linear(a, block.attn.in_proj_weight, block.attn.in_proj_bias).chunk(3, -1)
                ks.append(k.view(1, 1, h, hd).transpose(1, 2))
                vs.append(v.view(1, 1, h, hd).transpose(1, 2))
                att = torch.nn.functional.scaled_dot_product_attention(
                    q.view(1, 1, h, hd).transpose(1, 2), torch.cat(ks, 2), torch.cat(vs, 2))
                z = z + block.attn.out_proj(att.transpose(1, 2).reshape(1, 1, d))
                z = z + block.mlp(block.ln2(z))
            tok = int(model.fc(model.ln_f(z))[0, -1].argmax())
    return time.perf_counter() - start


def _run(job):
    fn, size, n = job
    return globals()[fn](size, n)


def measure(fns, size, n, repeats):
    """Median seconds of each of ``fns`` (peers), each run in a fresh process, the peers taking
    turns so that a slow spell of the machine falls on both."""
    ctx = mp.get_context("spawn")
    times = {fn: [] for fn in fns}
    for _ in range(repeats):
        for fn in fns:
            with ctx.Pool(1) as pool:
                times[fn].append(pool.apply(_run, ((fn, size, n),)))
    return [statistics.median(times[fn]) for fn in fns]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--sizes", default="", help="comma-separated row numbers (1-%d) to run; default all" % len(SIZES))
    args = ap.parse_args()
    sizes = {name: size for i, (name, size) in enumerate(SIZES.items(), 1)
             if not args.sizes or str(i) in args.sizes.split(",")}
    print(f"training: {args.steps} steps (forward, cross-entropy, backward, Adam), median of {args.repeats}")
    print("| size | d_model x layers, batch x length | rnnlab seq/s | PyTorch seq/s | rnnlab / PyTorch |")
    print("|---|---|---|---|---|")
    for name, size in sizes.items():
        kind, D, d, L, h, B, T = size
        ours, theirs = measure(("rnnlab_train", "torch_train"), size, args.steps, args.repeats)
        print(f"| {name} | {d} x {L}, {B} x {T} | {B * args.steps / ours:,.0f} | {B * args.steps / theirs:,.0f} "
              f"| **{theirs / ours:.2f}** |", flush=True)
    print(f"\ngeneration: {args.tokens} tokens one at a time with a KV cache, median of {args.repeats}")
    print("| size | rnnlab tokens/s | PyTorch tokens/s | rnnlab / PyTorch |")
    print("|---|---|---|---|")
    for name, size in sizes.items():
        if size[0] != "lm":
            continue
        ours, theirs = measure(("rnnlab_generate", "torch_generate"), size, args.tokens, args.repeats)
        print(f"| {name} | {args.tokens / ours:,.0f} | {args.tokens / theirs:,.0f} | **{theirs / ours:.2f}** |",
              flush=True)


if __name__ == "__main__":
    main()
