"""Optimizer trajectories, schedules and clipping against torch.optim (float64)."""

import numpy as np
import pytest

from rnnlab.nn import optim

torch = pytest.importorskip("torch")

CASES = [
    ("sgd", dict(lr=0.1), dict(lr=0.1)),
    ("sgd", dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2),
     dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("sgd", dict(lr=0.05, momentum=0.5, dampening=0.3), dict(lr=0.05, momentum=0.5, dampening=0.3)),
    ("adam", dict(lr=1e-2), dict(lr=1e-2)),
    ("adam", dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-3),
     dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-3)),
    ("adagrad", dict(lr=0.1), dict(lr=0.1)),
    ("adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=1e-3),
     dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=1e-3)),
    ("rmsprop", dict(lr=1e-2), dict(lr=1e-2)),
    ("rmsprop", dict(lr=1e-3, momentum=0.9, centered=True, weight_decay=1e-3),
     dict(lr=1e-3, momentum=0.9, centered=True, weight_decay=1e-3)),
]
TORCH = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad,
         "rmsprop": torch.optim.RMSprop}


@pytest.mark.parametrize("name,ours_kw,torch_kw", CASES)
def test_trajectory_matches_torch(name, ours_kw, torch_kw):
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    opt = optim.OPTIMIZERS[name](params, grads, **ours_kw)
    topt = TORCH[name](list(tparams.values()), **torch_kw)
    for _ in range(60):
        for k in params:   # gradient of a fixed quadratic plus noise, same on both sides
            g = params[k] * 0.5 + rng.standard_normal(params[k].shape)
            grads[k][...] = g
            tparams[k].grad = torch.tensor(g)
        opt.step()
        topt.step()
    for k in params:
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-10, atol=1e-12)


def test_optimizer_state_dict_resumes_exactly():
    def run(split):
        p = {"w": np.ones(3)}
        g = {"w": np.zeros(3)}
        o = optim.Adam(p, g, lr=0.1)
        r = np.random.default_rng(2)
        for i in range(10):
            if i == split:
                sd = o.state_dict()
                o = optim.Adam(p, g, lr=0.1)
                o.load_state_dict(sd)
            g["w"][...] = r.standard_normal(3)
            o.step()
        return p["w"]
    np.testing.assert_array_equal(run(None), run(5))


@pytest.mark.parametrize("kind", ["step", "cosine"])
def test_schedules_match_torch(kind):
    p = {"w": np.zeros(1)}
    o = optim.SGD(p, {"w": np.zeros(1)}, lr=0.1)
    tp = torch.zeros(1, requires_grad=True)
    to = torch.optim.SGD([tp], lr=0.1)
    if kind == "step":
        s, ts = optim.StepLR(o, 20, 0.5), torch.optim.lr_scheduler.StepLR(to, 20, 0.5)
    else:
        s, ts = optim.CosineLR(o, 50, 1e-4), torch.optim.lr_scheduler.CosineAnnealingLR(to, 50, 1e-4)
    for _ in range(50):
        to.step()
        s.step()
        ts.step()
        assert o.lr == pytest.approx(to.param_groups[0]["lr"], rel=1e-9)


def test_clip_grad_norm_matches_torch_and_reports_norms():
    rng = np.random.default_rng(3)
    grads = {"a": rng.standard_normal((5, 5)) * 10, "b": rng.standard_normal(5)}
    ts = [torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in grads.values()]
    for t, v in zip(ts, grads.values()):
        t.grad = torch.tensor(v.copy())
    before, after = optim.clip_grad_norm(grads, 1.0)
    tnorm = torch.nn.utils.clip_grad_norm_(ts, 1.0)
    assert before == pytest.approx(float(tnorm), rel=1e-12)
    assert after == pytest.approx(1.0, rel=1e-5)
    for t, v in zip(ts, grads.values()):
        np.testing.assert_allclose(v, t.grad.numpy(), rtol=1e-12)
    small = {"a": np.full(4, 0.1)}
    assert optim.clip_grad_norm(small, 1.0) == (pytest.approx(0.2), pytest.approx(0.2))
    np.testing.assert_array_equal(small["a"], 0.1)


def test_clip_grad_value():
    grads = {"a": np.array([-3.0, 0.5, 2.0])}
    before, after = optim.clip_grad_value(grads, 1.0)
    np.testing.assert_array_equal(grads["a"], [-1.0, 0.5, 1.0])
    assert before == pytest.approx(np.sqrt(13.25)) and after == pytest.approx(np.sqrt(2.25))


@pytest.mark.parametrize("name,ours_kw,torch_kw", CASES)
def test_flat_buffer_path_equals_per_array_path(name, ours_kw, torch_kw):
    """Models keep parameters in one buffer; the optimizer's fast path must not change results."""
    import rnnlab
    rng = np.random.default_rng(5)
    flat = rnnlab.SequenceClassifier(3, 4, 2, num_layers=2, dtype=np.float64)
    assert optim._flat_buffer(list(flat.params.values())) is not None
    loose = {k: v.copy() for k, v in flat.params.items()}
    loose_g = {k: np.zeros_like(v) for k, v in loose.items()}
    o_flat = optim.OPTIMIZERS[name](flat.params, flat.grads, **ours_kw)
    o_loose = optim.OPTIMIZERS[name](loose, loose_g, **ours_kw)
    assert list(o_flat._groups) == ["*"] and len(o_loose._groups) == len(loose)
    for _ in range(20):
        for k in loose:
            g = rng.standard_normal(loose[k].shape)
            flat.grads[k][...] = g
            loose_g[k][...] = g
        o_flat.step()
        o_loose.step()
    for k in loose:
        np.testing.assert_allclose(flat.params[k], loose[k], rtol=1e-13, atol=1e-15)


def test_flatten_keeps_children_in_sync():
    import rnnlab
    m = rnnlab.SequenceClassifier(3, 4, 2, num_layers=2)
    assert m.rnn.params["weight_hh_l1"] is m.params["rnn.weight_hh_l1"]
    assert m.fc.grads["weight"] is m.grads["fc.weight"]
    m.params["fc.bias"][...] = 7
    assert np.all(m.fc.params["bias"] == 7)
