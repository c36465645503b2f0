"""The Transformer's fused float32 passes (nn/transformer_fused.py) equal the readable NumPy ones to
float32 rounding, pass by pass and through whole models; float64 and RNNLAB_FUSED=0 keep the
readable path; NaN still reaches the output."""

import math

import numpy as np
import pytest

from rnnlab.nn import cells, transformer
from rnnlab.nn.transformer import LayerNorm, Transformer, attend, attend_backward, causal_allowed, gelu, gelu_backward

pytest.importorskip("numba")
from rnnlab.nn import transformer_fused as fused  # noqa: E402


@pytest.fixture
def mode():
    """Build models with fused passes or readable ones; restore the default afterwards."""
    before = cells.fused_in_effect()
    yield cells.use_fused
    cells.use_fused(before)


PASSES = ("gelu", "gelu_backward", "layer_norm", "layer_norm_backward", "masked_softmax", "masked_softmax_backward")


@pytest.fixture
def calls(monkeypatch):
    """Count the calls of each fused pass (a test that compares paths must know which one ran)."""
    counts = dict.fromkeys(PASSES, 0)
    for name in PASSES:
        def counted(*args, _f=getattr(fused, name), _n=name, **kwargs):
            counts[_n] += 1
            return _f(*args, **kwargs)
        monkeypatch.setattr(transformer.transformer_fused, name, counted)
    return counts


def f32(rng, *shape, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def close(a, b, rtol=2e-6, atol=2e-6):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("shape", [(3, 5, 7), (32, 64, 512)])       # remainders only; vector bodies
def test_gelu_forward_and_backward_equal_the_readable_ones(shape):
    rng = np.random.default_rng(0)
    x = f32(rng, *shape, scale=3.0)
    x.flat[:4] = [0.0, -20.0, 20.0, 1e-30]                            # zero, both saturations, tiny
    y, t = fused.gelu(x)
    y_ref, t_ref = gelu(x)
    assert y.dtype == t.dtype == np.float32
    close(y, y_ref)
    close(t, t_ref)
    dy = f32(rng, *shape)
    close(fused.gelu_backward(dy.copy(), x, t), gelu_backward(dy, x, t_ref), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("d", [5, 128])
def test_layer_norm_equals_the_readable_one_with_its_parameter_gradients(mode, calls, d):
    rng = np.random.default_rng(1)
    x = f32(rng, 4, 6, d, scale=3.0, shift=2.0)
    dy = f32(rng, 4, 6, d)
    weight = f32(rng, d)
    results = []
    for on in (False, True):
        mode(on)
        ln = LayerNorm(d)
        ln.params["weight"][...] = weight
        ln.params["bias"][...] = np.linspace(-1, 1, d)
        assert ln.fused is on
        y = ln.forward(x)
        dx = ln.backward(dy)
        assert calls["layer_norm"] == calls["layer_norm_backward"] == int(on)     # the path taken
        results.append((y, dx, ln.grads["weight"].copy(), ln.grads["bias"].copy()))
    for ref, got in zip(*results):
        close(got, ref, rtol=1e-5, atol=1e-5)


def test_masked_softmax_and_its_backward_equal_the_readable_attention_with_padding():
    rng = np.random.default_rng(2)
    B, h, T, hd = 3, 2, 9, 4
    q, k, v, d_o = (f32(rng, B, h, T, hd, scale=2.0) for _ in range(4))
    allowed = causal_allowed(0, T, np.array([9, 4, 1]))              # causal and padding, per sequence
    o_ref, p_ref = attend(q, k, v, allowed)
    o, p = attend(q, k, v, allowed, fused=True)
    close(p, p_ref)
    close(o, o_ref)
    assert np.all(p[~np.broadcast_to(allowed, p.shape)] == 0)         # masked keys get weight 0 exactly
    close(p.sum(axis=-1), np.ones((B, h, T)), rtol=1e-6)
    for g, g_ref in zip(attend_backward(d_o, q, k, v, p, fused=True), attend_backward(d_o, q, k, v, p_ref)):
        close(g, g_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["classify", "tag", "lm"])
def test_whole_float32_models_equal_with_and_without_the_fused_passes(mode, calls, kind):
    rng = np.random.default_rng(3)
    B, T, D = 4, 11, 6
    x = rng.integers(0, D, (B, T)) if kind == "lm" else f32(rng, B, T, D)
    lengths = None if kind == "lm" else np.array([11, 7, 3, 1])
    runs = []
    for on in (False, True):
        mode(on)
        model = Transformer(D, 16, D if kind == "lm" else 3, num_layers=2, heads=4, context=T, kind=kind, seed=5)
        assert all(getattr(m, "fused", on) is on for m in model.modules())
        out = model.forward(x, lengths) if lengths is not None else model.forward(x)
        d_out = np.random.default_rng(4).standard_normal(out.shape).astype(np.float32)
        model.zero_grad()
        model.backward(d_out)
        assert all(calls[name] > 0 for name in PASSES) if on else not any(calls.values()), calls
        runs.append((out, {n: g.copy() for n, g in model.grads.items()}))
    (out_ref, g_ref), (out, g) = runs
    close(out, out_ref, rtol=1e-5, atol=1e-5)
    for name in g_ref:
        scale = np.abs(g_ref[name]).max()
        np.testing.assert_allclose(g[name], g_ref[name], rtol=1e-4, atol=1e-5 * scale, err_msg=name)


@pytest.mark.parametrize("mask_shape", ["padding only (B, 1, 1, Tk)", "per head (1, h, Tq, Tk)", "one row (Tq, Tk)"])
def test_masks_of_any_broadcasting_shape_give_the_readable_weights(mask_shape):
    """``attend`` takes any mask np.where takes; the fused softmax broadcasts it the same way."""
    rng = np.random.default_rng(9)
    B, h, T, hd = 3, 2, 6, 4
    q, k, v = (f32(rng, B, h, T, hd) for _ in range(3))
    lengths = np.array([6, 3, 1])[:, None, None, None]
    allowed = {"padding only (B, 1, 1, Tk)": np.arange(T)[None, None, None, :] < lengths,
               "per head (1, h, Tq, Tk)": rng.random((1, h, T, T)) < 0.7,
               "one row (Tq, Tk)": np.tril(np.ones((T, T), bool))}[mask_shape]
    allowed = allowed | (np.arange(T) == 0)                          # every row keeps a key
    o_ref, p_ref = attend(q, k, v, allowed)
    o, p = attend(q, k, v, allowed, fused=True)
    close(p, p_ref)
    close(o, o_ref)


def test_float64_models_keep_the_readable_passes(monkeypatch):
    """The PyTorch parity tests run in float64 and so check the readable path: the fused passes
    must not run there (a call to any of them fails this test)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a fused pass ran on float64")
    for name in PASSES:
        monkeypatch.setattr(transformer.transformer_fused, name, refuse)
    model = Transformer(3, 8, 2, num_layers=1, heads=2, context=5, dtype=np.float64)
    out = model.forward(np.ones((2, 5, 3)))
    model.backward(np.ones_like(out))


def test_nan_reaches_the_output_so_the_guards_still_see_it():
    x = np.ones((2, 3, 8), np.float32)
    x[0, 1, 2] = np.nan
    assert np.isnan(fused.gelu(x)[0][0, 1, 2]) and not np.isnan(fused.gelu(x)[0][1]).any()
    y, _, _ = fused.layer_norm(x, np.ones(8, np.float32), np.zeros(8, np.float32), 1e-5)
    assert np.isnan(y[0, 1]).all() and not np.isnan(y[1]).any()
    s = np.zeros((1, 1, 2, 2), np.float32)
    s[0, 0, 1, 0] = np.nan
    p = fused.masked_softmax(s, np.ones((1, 1, 2, 2), bool), 1.0)
    assert np.isnan(p[0, 0, 1]).all() and not np.isnan(p[0, 0, 0]).any()


def test_the_gelu_tanh_is_the_cells_float32_tanh_within_a_few_ulp():
    z = np.linspace(-12, 12, 20001, dtype=np.float32)
    _, t = fused.gelu(z)                                              # t = tanh(c (z + a z^3))
    exact = np.tanh(np.float64(fused.GELU_C) * (z.astype(np.float64) + 0.044715 * z.astype(np.float64) ** 3))
    ulp = np.spacing(np.abs(exact).astype(np.float32))
    assert np.max(np.abs(t - exact) / ulp) < 16
    assert math.isclose(float(fused.GELU_C), math.sqrt(2 / math.pi), rel_tol=1e-7)


def test_a_run_loads_the_passes_before_its_training_clock_starts(mode):
    """``ready_compiled_cells`` (called before a run's clock starts) loads the Transformer's kernels
    for a float32 model with fused passes, and reports no time for one without."""
    from rnnlab.training.build import ready_compiled_cells
    mode(True)
    fused.kernels.cache_clear()
    assert ready_compiled_cells(Transformer(3, 8, 2, num_layers=1, heads=2, context=5)) > 0
    assert fused.kernels.cache_info().currsize == 1
    assert ready_compiled_cells(Transformer(3, 8, 2, num_layers=1, heads=2, context=5, dtype=np.float64)) == 0.0
    mode(False)
    assert ready_compiled_cells(Transformer(3, 8, 2, num_layers=1, heads=2, context=5)) == 0.0


@pytest.mark.parametrize("kind", ["classify", "lm"])
def test_float32_fused_model_matches_torch_in_float32(mode, calls, kind):
    """The fused passes against PyTorch itself: the same weights in torch.nn's float32 modules give
    the same outputs and gradients to float32 rounding."""
    torch = pytest.importorskip("torch")
    from test_transformer import torch_reference

    from rnnlab.nn.transformer import to_torch_state_dict
    mode(True)
    rng = np.random.default_rng(8)
    B, T, D = 4, 12, 7
    model = Transformer(D, 32, D if kind == "lm" else 3, num_layers=2, heads=4, context=T, kind=kind, seed=2)
    for name, p in model.params.items():                             # LayerNorm and biases off their 1/0 start
        if "ln" in name or "bias" in name:
            p += (0.1 * rng.standard_normal(p.shape)).astype(np.float32)
    ref = torch_reference(model).float()
    x = rng.integers(0, D, (B, T)) if kind == "lm" else f32(rng, B, T, D)
    out = model.forward(x)
    R = f32(rng, *out.shape)
    model.zero_grad()
    model.backward(R)
    assert all(calls[name] > 0 for name in PASSES), calls                  # the fused path is what ran
    out_t = ref(torch.from_numpy(x))
    (out_t * torch.from_numpy(R)).sum().backward()
    close(out, out_t.detach().numpy(), rtol=1e-5, atol=1e-5)
    ours = to_torch_state_dict(model, grads=True)
    for name, p in ref.named_parameters():
        scale = float(p.grad.abs().max())
        np.testing.assert_allclose(ours[name], p.grad.numpy(), rtol=1e-4, atol=1e-5 * scale, err_msg=name)
