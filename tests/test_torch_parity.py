"""Same weights -> same outputs and gradients as torch.nn.RNN (float64, tight tolerance)."""

import zlib

import numpy as np
import pytest

import rnnlab
from conftest import twin_layers

torch = pytest.importorskip("torch")

CONFIGS = [  # (layers, bidirectional, nonlinearity, with_h0, bias)
    (layers, bidi, nl, h0, True)
    for layers in (1, 2, 3) for bidi in (False, True) for nl in ("tanh", "relu") for h0 in (False, True)
] + [(2, True, "tanh", True, False)]


@pytest.mark.parametrize("layers,bidirectional,nonlinearity,with_h0,bias", CONFIGS)
def test_rnn_matches_torch(layers, bidirectional, nonlinearity, with_h0, bias):
    seed = zlib.crc32(repr((layers, bidirectional, nonlinearity, with_h0, bias)).encode())
    rng = np.random.default_rng(seed)
    B, T, D, H = 3, 7, 5, 6
    ours = rnnlab.RNN(D, H, num_layers=layers, nonlinearity=nonlinearity, bias=bias,
                      bidirectional=bidirectional, dtype=np.float64, seed=seed)
    ref = torch.nn.RNN(D, H, num_layers=layers, nonlinearity=nonlinearity, bias=bias,
                       batch_first=True, bidirectional=bidirectional, dtype=torch.float64)
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})

    x = rng.standard_normal((B, T, D))
    dirs = 2 if bidirectional else 1
    h0 = rng.standard_normal((layers * dirs, B, H)) if with_h0 else None
    d_out = rng.standard_normal((B, T, dirs * H))
    d_hn = rng.standard_normal((layers * dirs, B, H))

    out, h_n = ours.forward(x, h0)
    ours.zero_grad()
    dx = ours.backward(d_out, d_hn)

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True) if with_h0 else None
    out_t, hn_t = ref(xt, h0t)
    ((out_t * torch.from_numpy(d_out)).sum() + (hn_t * torch.from_numpy(d_hn)).sum()).backward()

    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_n, hn_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    if with_h0:
        np.testing.assert_allclose(ours.d_h0, h0t.grad.numpy(), rtol=1e-9, atol=1e-11)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=name)


def test_state_dict_round_trip_from_torch():
    ref = torch.nn.RNN(4, 3, num_layers=2, bidirectional=True, batch_first=True, dtype=torch.float64)
    ours = rnnlab.RNN(4, 3, num_layers=2, bidirectional=True, dtype=np.float64)
    assert set(ours.state_dict()) == set(ref.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    np.testing.assert_allclose(ours.forward(x)[0], ref(torch.from_numpy(x))[0].detach().numpy(),
                               rtol=1e-12)


def test_float32_is_default_and_close_to_torch():
    ours = rnnlab.RNN(10, 64, num_layers=2)
    assert all(p.dtype == np.float32 for p in ours.params.values())
    ref = torch.nn.RNN(10, 64, num_layers=2, batch_first=True).float()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((8, 20, 10)).astype(np.float32)
    out, _ = ours.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref(torch.from_numpy(x))[0].detach().numpy(), atol=1e-5)


GATED = [(cls, layers, bidi, h0) for cls in ("LSTM", "GRU") for layers in (1, 2, 3)
         for bidi in (False, True) for h0 in (False, True)]


@pytest.mark.parametrize("kind,layers,bidirectional,with_h0", GATED)
def test_gated_layers_match_torch(kind, layers, bidirectional, with_h0):
    seed = zlib.crc32(repr((kind, layers, bidirectional, with_h0)).encode())
    rng = np.random.default_rng(seed)
    B, T, D, H = 3, 6, 5, 4
    ours, ref = twin_layers(kind, D, H, layers, bidirectional, seed)
    L = layers * (2 if bidirectional else 1)
    n = 2 if kind == "LSTM" else 1
    x = rng.standard_normal((B, T, D))
    h0 = tuple(rng.standard_normal((L, B, H)) for _ in range(n)) if with_h0 else None
    d_out = rng.standard_normal((B, T, H * (2 if bidirectional else 1)))
    d_state = tuple(rng.standard_normal((L, B, H)) for _ in range(n))

    public = lambda parts: parts if n == 2 else parts[0]
    out, state = ours.forward(x, None if h0 is None else public(h0))
    ours.zero_grad()
    dx = ours.backward(d_out, public(d_state))

    xt = torch.tensor(x, requires_grad=True)
    h0t = tuple(torch.tensor(h, requires_grad=True) for h in h0) if with_h0 else None
    out_t, state_t = ref(xt, None if h0t is None else public(h0t))
    state_t = state_t if n == 2 else (state_t,)
    total = (out_t * torch.from_numpy(d_out)).sum()
    total = total + sum((s * torch.from_numpy(d)).sum() for s, d in zip(state_t, d_state))
    total.backward()

    state = state if n == 2 else (state,)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    for s, st in zip(state, state_t):
        np.testing.assert_allclose(s, st.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    if with_h0:
        d_h0 = ours.d_h0 if n == 2 else (ours.d_h0,)
        for d, ht in zip(d_h0, h0t):
            np.testing.assert_allclose(d, ht.grad.numpy(), rtol=1e-9, atol=1e-11)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=name)
