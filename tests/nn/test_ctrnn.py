"""The continuous-time rate network: finite differences (float64) and parity with a PyTorch CTRNN
written here, noise off and with the same samples, variable lengths; Dale's law, masks and the
rate penalty as the docstring states them."""

import numpy as np
import pytest

import rnnlab
from rnnlab.nn.gradcheck import gradcheck, numerical_gradient, relative_error
from rnnlab.nn.wiring import area_mask, density_mask, no_self_connections, spectral_radius


def _loss(net, x, R, Rn, lengths=None, seed=None):
    """A scalar of every output, both final carry parts and the rate penalty (noise redrawn from
    ``seed`` so finite differences see the same samples)."""
    if seed is not None:
        net.rng = np.random.default_rng(seed)
    out, (r_n, x_n) = net.forward(x, lengths=lengths)
    return float((out * R).sum() + (r_n * Rn[0]).sum() + (x_n * Rn[1]).sum() + net.penalty)


def _backward(net, x, R, Rn, lengths=None, seed=None):
    _loss(net, x, R, Rn, lengths, seed)
    net.zero_grad()
    return net.backward(R, tuple(Rn))


@pytest.mark.parametrize("nonlinearity,layers,noise,lengths,rate_l2", [
    ("softplus", 1, 0.0, None, 0.0),
    ("tanh", 2, 0.0, [5, 3, 1], 0.3),
    ("softplus", 1, 0.2, [4, 5, 2], 0.5),
    ("relu", 2, 0.1, None, 0.2),
])
def test_gradients_match_finite_differences(nonlinearity, layers, noise, lengths, rate_l2):
    rng = np.random.default_rng(7)
    B, T, D, H = 3, 5, 2, 4
    net = rnnlab.CTRNN(D, H, layers, nonlinearity=nonlinearity, dt=20, tau=60, rec_noise=noise,
                       input_noise=noise, rate_l2=rate_l2, dtype=np.float64, seed=1)
    x = rng.standard_normal((B, T, D))
    R = rng.standard_normal((B, T, H))
    Rn = rng.standard_normal((2, layers, B, H))
    lengths = None if lengths is None else np.array(lengths)
    dx = _backward(net, x, R, Rn, lengths, seed=3)
    errors = gradcheck(lambda: _loss(net, x, R, Rn, lengths, seed=3), net.params, net.grads)
    errors["x"] = relative_error(dx, numerical_gradient(lambda: _loss(net, x, R, Rn, lengths, seed=3), x))
    assert max(errors.values()) < 1e-7, errors


def test_masked_and_signed_weights_get_the_gradient_of_the_free_ones():
    """With masks the gradient of a masked weight is 0 and every other one matches differences."""
    rng = np.random.default_rng(2)
    H, D = 6, 3
    rec = no_self_connections(H) * density_mask((H, H), 0.6, rng)
    inp = density_mask((H, D), 0.5, rng)
    net = rnnlab.CTRNN(D, H, nonlinearity="softplus", dale=0.5, rec_mask=rec, input_mask=inp,
                       dtype=np.float64, seed=4)
    x, R, Rn = rng.standard_normal((2, 4, D)), rng.standard_normal((2, 4, H)), rng.standard_normal((2, 1, 2, H))
    _backward(net, x, R, Rn)
    for name, mask in (("weight_hh_l0", rec), ("weight_ih_l0", inp)):
        assert np.all(net.params[name][mask == 0] == 0) and np.all(net.grads[name][mask == 0] == 0)
        fd = numerical_gradient(lambda: _loss(net, x, R, Rn), net.params[name])
        assert relative_error(net.grads[name][mask == 1], fd[mask == 1]) < 1e-7


torch = pytest.importorskip("torch")


def torch_ctrnn(params, x, alpha, f, layers, noise=None, lengths=None):
    """The CTRNN in PyTorch, written from the equations: x <- (1 - a) x + a (W r + W_in u + b + n)."""
    act = {"relu": torch.relu, "tanh": torch.tanh, "softplus": torch.nn.functional.softplus}[f]
    B, T, _ = x.shape
    inp = x if noise is None or noise["input"] is None else x + torch.from_numpy(noise["input"].transpose(1, 0, 2))
    finals = []
    for k in range(layers):
        W_ih, W_hh = params[f"weight_ih_l{k}"], params[f"weight_hh_l{k}"]
        b = params[f"bias_ih_l{k}"] + params[f"bias_hh_l{k}"]
        H = W_hh.shape[0]
        cur = torch.zeros(B, H, dtype=x.dtype)
        r = act(cur)
        outs = []
        rec = None if noise is None else noise["recurrent"][k]
        for t in range(T):
            drive = r @ W_hh.T + inp[:, t] @ W_ih.T + b
            if rec is not None:
                drive = drive + torch.from_numpy(rec[t])
            new = (1 - alpha) * cur + alpha * drive
            if lengths is not None:
                live = torch.from_numpy((t < lengths)[:, None])
                new = torch.where(live, new, cur)
            cur, r = new, act(new)
            outs.append(r if lengths is None else r * torch.from_numpy((t < lengths)[:, None]))
        inp = torch.stack(outs, dim=1)
        finals.append((r, cur))
    return inp, finals


@pytest.mark.parametrize("f,layers,noise,lengths", [
    ("relu", 1, 0.0, None), ("softplus", 2, 0.0, [6, 2, 4]), ("tanh", 1, 0.3, None), ("relu", 2, 0.2, [3, 6, 5]),
])
def test_ctrnn_matches_pytorch(f, layers, noise, lengths):
    rng = np.random.default_rng(11)
    B, T, D, H = 3, 6, 4, 5
    net = rnnlab.CTRNN(D, H, layers, nonlinearity=f, dt=10, tau=50, rec_noise=noise, input_noise=noise,
                       dale=0.8, dtype=np.float64, seed=5)
    x, d_out = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, H))
    d_r, d_x = rng.standard_normal((2, layers, B, H))
    lengths = None if lengths is None else np.array(lengths)
    out, (r_n, x_n) = net.forward(x, lengths=lengths)
    net.zero_grad()
    dx = net.backward(d_out, (d_r, d_x))

    params = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}
    xt = torch.tensor(x, requires_grad=True)
    drawn = {"input": net.last_noise["input"], "recurrent": net.last_noise["recurrent"]} if noise else None
    out_t, finals = torch_ctrnn(params, xt, net.alpha, f, layers, drawn, lengths)
    total = (out_t * torch.from_numpy(d_out)).sum()
    for k, (r, c) in enumerate(finals):
        total = total + (r * torch.from_numpy(d_r[k])).sum() + (c * torch.from_numpy(d_x[k])).sum()
    total.backward()
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(r_n, np.stack([r.detach().numpy() for r, _ in finals]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x_n, np.stack([c.detach().numpy() for _, c in finals]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    for name, p in params.items():
        np.testing.assert_allclose(net.grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


def test_dale_initial_matrix_follows_the_stated_rule():
    net = rnnlab.CTRNN(3, 100, dale=0.8, seed=0, dtype=np.float64)
    W, s = net.params["weight_hh_l0"], net.signs["weight_hh_l0"]
    assert (s > 0).sum() == 80 and np.all(s[:80] > 0)
    assert np.all(W * s >= 0) and np.all(W[:, :80] > 0) and np.all(W[:, 80:] < 0)
    assert spectral_radius(W) == pytest.approx(1.5, rel=1e-9)
    # on average a unit's excitatory and inhibitory input balance: inhibitory columns scaled by 80/20
    assert abs(W[:, :80].sum() + W[:, 80:].sum()) < 0.1 * W[:, :80].sum()


def test_noise_is_reproducible_from_the_seed_and_absent_in_eval():
    x = np.ones((2, 10, 3), np.float32)
    a = rnnlab.CTRNN(3, 8, rec_noise=0.1, input_noise=0.1, seed=3).forward(x)[0]
    b = rnnlab.CTRNN(3, 8, rec_noise=0.1, input_noise=0.1, seed=3).forward(x)[0]
    quiet = rnnlab.CTRNN(3, 8, seed=3).forward(x)[0]
    net = rnnlab.CTRNN(3, 8, rec_noise=0.1, input_noise=0.1, seed=3).eval()
    assert np.array_equal(a, b) and not np.allclose(a, quiet)
    assert np.array_equal(net.forward(x)[0], quiet)
    # the drive's noise has the continuous-time scale: sqrt(2 / a) * std per step
    net.train()
    net.forward(np.zeros((200, 50, 3), np.float32))
    assert np.std(net.last_noise["recurrent"][0]) == pytest.approx(np.sqrt(2 / net.alpha) * 0.1, rel=0.02)


def test_area_mask_blocks():
    m = area_mask([3, 2], [[1.0, 0.0], [0.5, 1.0]], np.random.default_rng(0))
    assert np.all(m[:3, :3] == 1) and np.all(m[:3, 3:] == 0) and np.all(m[3:, 3:] == 1)


@pytest.mark.parametrize("kwargs,words", [
    (dict(dt=100, tau=100), "tau (100) must be larger than dt (100)"),
    (dict(dale=1.0), "strictly between 0 and 1"),
    (dict(dale=0.0), "strictly between 0 and 1"),
    (dict(rec_mask=np.ones((3, 3))), "rec_mask has shape (3, 3) but the weight it gates is (4, 4)"),
    (dict(rec_mask=-np.ones((4, 4))), "negative values"),
    (dict(rate_l2=-1.0), "rate_l2 must be >= 0.0"),
    (dict(rec_noise=-0.1), "rec_noise must be >= 0.0"),
])
def test_bad_settings_get_one_sentence(kwargs, words):
    with pytest.raises(rnnlab.InputError) as e:
        rnnlab.CTRNN(2, 4, **kwargs)
    assert words in str(e.value)
