"""The causal Transformer: finite-difference gradients of every piece and of each head kind,
parity with a torch.nn reference (outputs and every gradient), causality, the key/value cache,
padding, bad input, and a short run that solves the seed task."""

import math
import time

import numpy as np
import pytest

import rnnlab
from rnnlab.data.tasks import make_task
from rnnlab.nn.gradcheck import gradcheck, numerical_gradient, relative_error
from rnnlab.nn.optim import Adam
from rnnlab.nn.transformer import (
    MLP,
    Block,
    CausalSelfAttention,
    LayerNorm,
    Transformer,
    causal_allowed,
    from_torch_state_dict,
    to_torch_state_dict,
)

TOL = 1e-6
B, T, D, d, K, V = 2, 5, 3, 8, 4, 6                      # small sizes: d_model 8, heads 2, T 5


def small(kind, **kw):
    args = dict(num_layers=2, heads=2, context=7, kind=kind, dtype=np.float64, seed=1)
    args.update(kw)
    if kind == "lm":
        return Transformer(V, d, V, vocab="abcdef", **args)
    return Transformer(D, d, K, **args)


def inputs(kind, rng, n=B, length=T):
    return rng.integers(0, V, (n, length)) if kind == "lm" else rng.standard_normal((n, length, D))


def piece_errors(module, x, run, reset=lambda: None):
    """Relative gradient errors of a piece (params and input) under L = sum(run(x) * R)."""
    R = np.random.default_rng(9).standard_normal(run(x).shape)

    def loss():
        reset()
        return float((run(x) * R).sum())
    reset()
    run(x)
    module.zero_grad()
    dx = module.backward(R)
    errors = gradcheck(loss, module.params, module.grads)
    errors["input"] = relative_error(dx, numerical_gradient(loss, x))
    return errors


# ---------------------------------------------------------------- gradients
def test_layernorm_gradients():
    rng = np.random.default_rng(0)
    ln = LayerNorm(d, dtype=np.float64)
    ln.params["weight"][...] = rng.standard_normal(d)
    ln.params["bias"][...] = rng.standard_normal(d)
    errors = piece_errors(ln, rng.standard_normal((B, T, d)), ln.forward)
    assert max(errors.values()) < TOL, errors


def test_attention_gradients_with_causal_and_padding_masks():
    rng = np.random.default_rng(1)
    attn = CausalSelfAttention(d, 2, rng=rng, dtype=np.float64)
    attn.params["in_proj_bias"][...] = rng.standard_normal(3 * d)
    allowed = causal_allowed(0, T, np.array([T, 3]))
    errors = piece_errors(attn, rng.standard_normal((B, T, d)), lambda x: attn.forward(x, allowed))
    assert max(errors.values()) < TOL, errors


def test_mlp_gradients():
    rng = np.random.default_rng(2)
    mlp = MLP(d, 4 * d, rng=rng, dtype=np.float64)
    errors = piece_errors(mlp, rng.standard_normal((B, T, d)), mlp.forward)
    assert max(errors.values()) < TOL, errors


def test_block_gradients_with_dropout(freeze_dropout):
    rng = np.random.default_rng(3)
    block = Block(d, 2, dropout=0.2, rng=rng, dtype=np.float64)
    allowed = causal_allowed(0, T)
    errors = piece_errors(block, rng.standard_normal((B, T, d)), lambda x: block.forward(x, allowed),
                          reset=freeze_dropout(block))
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("kind", ["classify", "tag", "lm"])
def test_model_gradients(kind, model_gradient_errors):
    rng = np.random.default_rng(4)
    model = small(kind, dropout=0.1)
    x = inputs(kind, rng)
    y = rng.integers(0, model.output_size, (B,) if kind == "classify" else (B, T))
    errors = model_gradient_errors(model, x, lambda out: rnnlab.softmax_cross_entropy(out, y),
                                   input_grad=kind != "lm")
    assert max(errors.values()) < TOL, errors
    assert all(np.abs(g).sum() > 0 for g in model.grads.values())   # every parameter is used


@pytest.mark.parametrize("kind", ["classify", "tag"])
def test_model_gradients_with_lengths(kind):
    rng = np.random.default_rng(5)
    model = small(kind)
    x, lengths = inputs(kind, rng), np.array([T, 2])
    R = rng.standard_normal((B, K) if kind == "classify" else (B, T, K))
    if kind == "tag":
        R[1, 2:] = 0                                                 # a masked loss: padding counts for nothing

    def loss():
        return float((model.forward(x, lengths=lengths) * R).sum())
    loss()
    model.zero_grad()
    dx = model.backward(R)
    errors = gradcheck(loss, model.params, model.grads)
    errors["input"] = relative_error(dx, numerical_gradient(loss, x))
    assert max(errors.values()) < TOL, errors
    assert np.all(dx[1, 2:] == 0)                                    # padding has no gradient


# ---------------------------------------------------------------- parity with torch.nn
def torch_reference(model):
    """The torch.nn layout ``to_torch_state_dict`` names, with ``model``'s weights (float64)."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class RefBlock(nn.Module):
        def __init__(self, dm, heads):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(dm), nn.LayerNorm(dm)
            self.attn = nn.MultiheadAttention(dm, heads, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(dm, 4 * dm), nn.GELU(approximate="tanh"), nn.Linear(4 * dm, dm))

        def forward(self, x, mask):
            a = self.ln1(x)
            x = x + self.attn(a, a, a, attn_mask=mask, need_weights=False)[0]
            return x + self.mlp(self.ln2(x))

    class Ref(nn.Module):
        def __init__(self):
            super().__init__()
            if model.kind == "lm":
                self.embedding = nn.Embedding(model.input_size, model.d_model)
            else:
                self.input_proj = nn.Linear(model.input_size, model.d_model)
            self.pos = nn.Embedding(model.context, model.d_model)
            self.blocks = nn.ModuleList(RefBlock(model.d_model, model.heads) for _ in range(model.num_layers))
            self.ln_f = nn.LayerNorm(model.d_model)
            self.fc = nn.Linear(model.d_model, model.output_size)

        def forward(self, x):
            n = x.shape[1]
            h = (self.embedding(x) if model.kind == "lm" else self.input_proj(x)) + self.pos(torch.arange(n))
            mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)   # True: may not attend
            for block in self.blocks:
                h = block(h, mask)
            out = self.fc(self.ln_f(h))
            return out[:, -1] if model.kind == "classify" else out

    ref = Ref().double()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in to_torch_state_dict(model).items()})
    return ref


@pytest.mark.parametrize("kind", ["classify", "tag", "lm"])
def test_matches_torch_outputs_and_every_gradient(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    model = small(kind)
    for k, p in model.params.items():                  # LayerNorm and biases off their 1/0 start
        if "ln" in k or "bias" in k:
            p += 0.1 * rng.standard_normal(p.shape)
    ref = torch_reference(model)
    x = inputs(kind, rng)
    out = model.forward(x)
    R = rng.standard_normal(out.shape)
    model.zero_grad()
    dx = model.backward(R)

    xt = torch.from_numpy(x) if kind == "lm" else torch.tensor(x, requires_grad=True)
    out_t = ref(xt)
    (out_t * torch.from_numpy(R)).sum().backward()
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-9, atol=1e-12)
    ours = to_torch_state_dict(model, grads=True)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(ours[name], p.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)
    if kind != "lm":
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_loads_a_torch_reference_through_the_inverse_mapping():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = small("lm")
    ref = torch_reference(small("lm", seed=2))                        # other weights than model's
    model.load_state_dict(from_torch_state_dict(ref.state_dict()))
    ids = np.random.default_rng(7).integers(0, V, (B, T))
    np.testing.assert_allclose(model.forward(ids), ref(torch.from_numpy(ids)).detach().numpy(), rtol=1e-10)


# ---------------------------------------------------------------- causality, cache, padding
@pytest.mark.parametrize("kind", ["tag", "lm"])
def test_changing_position_t_never_changes_earlier_outputs(kind):
    rng = np.random.default_rng(8)
    model = small(kind).eval()
    x = inputs(kind, rng)
    before = model.forward(x)
    for t in range(T):
        x2 = x.copy()
        x2[:, t] = (x2[:, t] + 1) % V if kind == "lm" else x2[:, t] + 100.0
        after = model.forward(x2)
        np.testing.assert_allclose(after[:, :t], before[:, :t], rtol=1e-13, atol=1e-13)
        assert np.abs(after[:, t] - before[:, t]).max() > 1e-6          # ... but does change t


@pytest.mark.parametrize("kind", ["classify", "tag", "lm"])
def test_kv_cache_steps_equal_the_full_forward(kind):
    rng = np.random.default_rng(10)
    model = small(kind, dropout=0.3)                     # step runs in eval mode, as forward below
    seq = inputs(kind, rng, n=1, length=7)[0]
    model.eval()
    cache, stepped = None, []
    for item in seq:
        out, cache = model.step(int(item) if kind == "lm" else item, cache)
        stepped.append(out)
    if kind == "classify":                               # the reading if the sequence ended at t
        whole = np.array([model.forward(seq[None, :t + 1])[0] for t in range(len(seq))])
    else:
        whole = model.forward(seq[None])[0]
    np.testing.assert_allclose(np.array(stepped), whole, rtol=1e-12, atol=1e-12)
    assert model.training is False and cache[0][0].shape == (1, 2, 7, d // 2)


def test_generate_returns_the_requested_length_from_the_vocab():
    model = small("lm", dtype=np.float32)                # context 7: the window slides
    text = model.generate("abc", 20, temperature=0.8, top_k=3, seed=1)
    assert len(text) == 20 and set(text) <= set("abcdef")
    assert model.generate("abc", 20, temperature=0.8, top_k=3, seed=1) == text
    model.stateful = True                                # the Trainer's setting changes nothing
    model.reset_state()
    assert model.state is None and model.generate("abc", 20, temperature=0.8, top_k=3, seed=1) == text


@pytest.mark.parametrize("kind", ["classify", "tag"])
def test_padded_batch_equals_each_sequence_truncated(kind):
    rng = np.random.default_rng(11)
    model = small(kind)
    x, lengths = inputs(kind, rng, n=3), np.array([T, 2, 4])
    for b, n in enumerate(lengths):
        x[b, n:] = np.nan                                # padding never enters
    R = rng.standard_normal((3, K) if kind == "classify" else (3, T, K))
    out = model.forward(x, lengths=lengths)
    model.zero_grad()
    dx = model.backward(R)
    padded = {k: g.copy() for k, g in model.grads.items()}
    model.zero_grad()
    for b, n in enumerate(lengths):
        one = model.forward(x[b:b + 1, :n])
        if kind == "classify":
            np.testing.assert_allclose(out[b], one[0], rtol=1e-12, atol=1e-12)
            model.backward(R[b:b + 1])
        else:
            np.testing.assert_allclose(out[b, :n], one[0], rtol=1e-12, atol=1e-12)
            model.backward(R[b:b + 1, :n])
    for k, g in model.grads.items():                     # padded steps add no gradient either
        np.testing.assert_allclose(padded[k], g, rtol=1e-10, atol=1e-12, err_msg=k)
    assert np.isfinite(dx).all() and np.all(dx[1, 2:] == 0)


def test_bad_input_says_how_to_fix_it():
    model = small("classify")
    rng = np.random.default_rng(12)
    with pytest.raises(rnnlab.InputError, match="exceed the model's context of 7; raise context"):
        model.forward(rng.standard_normal((1, 8, D)))
    with pytest.raises(rnnlab.InputError, match=r"shape \(B, T, 3\).*input_size=5"):
        model.forward(rng.standard_normal((1, 4, 5)))
    with pytest.raises(rnnlab.InputError, match=r"lie in \[1, 4\]"):
        model.forward(rng.standard_normal((2, 4, D)), lengths=np.array([4, 0]))
    with pytest.raises(rnnlab.InputError, match="integer dtype"):
        small("lm").forward(rng.standard_normal((1, 4)))
    with pytest.raises(rnnlab.InputError, match="not divisible by heads"):
        Transformer(D, 10, K, heads=4)
    with pytest.raises(rnnlab.InputError, match="kind must be one of"):
        Transformer(D, d, K, kind="seq2seq")
    with pytest.raises(rnnlab.InputError, match="only a Transformer of kind='lm'"):
        model.generate("a", 3)
    model.forward(rng.standard_normal((2, 4, D)))
    with pytest.raises(rnnlab.InputError, match=r"expected d_out of shape \(2, 4\)"):
        model.backward(np.zeros((2, 4, 4)))
    cache = None
    for _ in range(7):
        _, cache = model.step(np.zeros(D), cache)
    with pytest.raises(rnnlab.InputError, match="cache already holds 7"):
        model.step(np.zeros(D), cache)


def test_float32_stays_float32_and_record_returns_no_probes():
    model = Transformer(D, d, K, heads=2, context=T, kind="tag")
    x = np.random.default_rng(13).standard_normal((B, T, D)).astype(np.float32)
    out = model.forward(x)
    dx, probes = model.backward(np.ones_like(out), record=True)
    assert out.dtype == dx.dtype == np.float32 and probes == {}
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert model.backward(np.ones_like(out), input_grad=False) is None


# ---------------------------------------------------------------- training
def test_short_run_solves_the_seed_task():
    """mean-sign (sign of the mean of 20 x 10 inputs), 2,000 training sequences: 8 epochs of
    Adam (L2 1e-2, cosine from 3e-3) reach ~94% test accuracy in ~3 s (no weight decay: ~92%,
    the model overfits the small training set)."""
    start = time.perf_counter()
    task = make_task("mean-sign", 2000, 500, 20, 10, seed=0)
    model = Transformer(10, 32, 2, num_layers=2, heads=4, context=20, seed=0)
    opt = Adam(model.params, model.grads, lr=3e-3, weight_decay=1e-2)
    rng, epochs = np.random.default_rng(0), 8
    X, y = task.train.X, task.train.y
    for epoch in range(epochs):
        opt.lr = 3e-3 * (1 + math.cos(math.pi * epoch / epochs)) / 2
        order = rng.permutation(len(X))
        for i in range(0, len(X), 64):
            idx = order[i:i + 64]
            _, d_out = rnnlab.softmax_cross_entropy(model.forward(X[idx]), y[idx])
            model.zero_grad()
            model.backward(d_out, input_grad=False)
            opt.step()
    model.eval()
    acc = float((model.forward(task.test.X).argmax(-1) == task.test.y).mean())
    seconds = time.perf_counter() - start
    print(f"mean-sign test accuracy {acc:.3f} in {seconds:.1f} s")
    assert acc > 0.9, acc


def test_plugs_into_the_trainer():
    """The head API is all the Trainer needs (probes included: record=True gives (dx, {}))."""
    task = make_task("mean-sign", 300, 100, 20, 10, seed=0)
    model = Transformer(10, 16, 2, num_layers=1, heads=2, context=20)
    s = rnnlab.Trainer(task, model, config=rnnlab.TrainConfig(epochs=1, batches_per_epoch=3, batch_size=32)).fit()
    assert 0 <= s["final_test_acc"] <= 1
