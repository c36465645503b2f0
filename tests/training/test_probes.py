"""Instruments read what BPTT computed, and show vanishing and exploding gradients."""

import numpy as np
import pytest

import rnnlab
from rnnlab.nn.recurrent import scan_backward, scan_forward, whh_step_contributions
from rnnlab.training.config import PRESETS
from rnnlab.training.loop import Trainer
from rnnlab.training.probes import recurrent_spectra

torch = pytest.importorskip("torch")


def test_recorded_step_gradients_match_torch_autograd():
    """||dL/dh_t|| per layer equals torch's h_t.grad in an unrolled loop with the same weights."""
    rng = np.random.default_rng(0)
    B, T, D, H = 3, 9, 4, 5
    rnn = rnnlab.RNN(D, H, num_layers=2, dtype=np.float64, seed=1)
    x, d_out = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, H))
    rnn.forward(x)
    _, record = rnn.backward(d_out, None, record=True)
    W = {k: torch.tensor(v, requires_grad=True) for k, v in rnn.params.items()}
    inp = torch.tensor(x)
    grads_ref = []
    for layer in range(2):
        h, hs = torch.zeros(B, H, dtype=torch.float64), []
        for t in range(T):
            h = torch.tanh(inp[:, t] @ W[f"weight_ih_l{layer}"].T + W[f"bias_ih_l{layer}"]
                           + h @ W[f"weight_hh_l{layer}"].T + W[f"bias_hh_l{layer}"])
            h.retain_grad()
            hs.append(h)
        grads_ref.append(hs)
        inp = torch.stack(hs, 1)
    (inp * torch.tensor(d_out)).sum().backward()
    for layer in range(2):
        ours = record[f"weight_hh_l{layer}"]["grad_norm"]
        ref = [float(h.grad.norm()) for h in grads_ref[layer]]
        np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_step_contributions_sum_to_the_weight_gradient():
    rng = np.random.default_rng(2)
    layer = rnnlab.LSTM(3, 4, dtype=np.float64, seed=3)
    x = rng.standard_normal((2, 6, 3))
    out, _ = layer.forward(x)
    layer.zero_grad()
    d_out = rng.standard_normal(out.shape)
    layer.backward(d_out)
    # redo the first layer's loops by hand to get dHH and the states the weights saw
    X = x.transpose(1, 0, 2)
    cell, p = layer.cell, layer.params
    XP = cell.project(X.reshape(-1, 3), p["weight_ih_l0"], p["bias_ih_l0"], p["bias_hh_l0"]).reshape(6, 2, -1)
    zeros = np.zeros((2, 4))
    hs, _, caches = scan_forward(cell, p["weight_hh_l0"], p["bias_hh_l0"], XP, (zeros, zeros))
    _, dHH, _ = scan_backward(cell, p["weight_hh_l0"], caches, hs[1:], d_out.transpose(1, 0, 2),
                              (zeros, zeros), dtype=np.float64)
    total = sum(whh_step_contributions(dHH, hs[:-1]))
    np.testing.assert_allclose(total, layer.grads["weight_hh_l0"], rtol=1e-12)


def _grad_profile(scale, nonlinearity, T=40):
    rnn = rnnlab.RNN(2, 16, nonlinearity=nonlinearity, init="orthogonal", dtype=np.float64, seed=4)
    if nonlinearity == "relu":
        rnn.params["weight_hh_l0"][...] = scale * np.eye(16)
        rnn.params["bias_ih_l0"][...] = 0.1                      # keep the units active
    else:
        rnn.params["weight_hh_l0"] *= scale
    x = np.abs(np.random.default_rng(5).standard_normal((4, T, 2)))
    out, h_n = rnn.forward(x)
    _, record = rnn.backward(None, np.ones_like(h_n), record=True)   # loss reads only the last state
    return np.array(record["weight_hh_l0"]["grad_norm"])


def test_contractive_recurrence_vanishes_and_expansive_one_explodes():
    vanishing = _grad_profile(0.5, "tanh")
    assert vanishing[0] < 1e-6 * vanishing[-1]                   # orders of magnitude smaller
    assert np.all(np.diff(vanishing) > 0)                        # and monotone toward the loss
    exploding = _grad_profile(1.2, "relu")
    assert exploding[0] > 100 * exploding[-1]                    # grows going back in time


def test_spectra_of_known_matrices():
    rnn = rnnlab.GRU(2, 3)
    W = rnn.params["weight_hh_l0"]
    W[...] = 0
    W[0:3] = np.diag([0.5, -2.0, 1.0])
    W[3:6] = 3 * np.eye(3)
    s = recurrent_spectra(rnn)["weight_hh_l0"]
    np.testing.assert_allclose(s["spectral_radius"], [2.0, 3.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(s["sigma_max"], [2.0, 3.0, 0.0], atol=1e-6)


def test_trainer_writes_probes_at_the_interval(tmp_path):
    from rnnlab.runs.writer import RunWriter
    t = Trainer(config=PRESETS["seed"].replace(epochs=2, probe_every=4), callbacks=[RunWriter(tmp_path)])
    t.fit()
    import json
    rows = [json.loads(line) for line in (tmp_path / "probes.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 4, 8, 12, 16]
    r = rows[0]
    assert set(r["steps"]) == {"weight_hh_l0", "weight_hh_l1"}
    assert all(len(v) == 20 for v in r["steps"]["weight_hh_l1"].values())
    assert set(r["param_grad_norms"]) == set(t.model.params)
    assert r["grad_norm"] == pytest.approx(
        np.sqrt(sum(v * v for v in r["param_grad_norms"].values())), rel=1e-5)


def test_spectra_are_recorded_about_ten_times_a_run():
    t = Trainer(config=PRESETS["seed"].replace(epochs=30, batches_per_epoch=1))
    t.fit()
    epochs = [r["epoch"] for r in t.history if "spectra" in r]
    assert epochs[0] == 1 and epochs[-1] == 30 and 10 <= len(epochs) <= 12
    assert set(t.history[0]["spectra"]) == {"weight_hh_l0", "weight_hh_l1"}
    off = Trainer(config=PRESETS["seed"].replace(epochs=2, probe_every=0))
    off.fit()
    assert all("spectra" not in r for r in off.history)


def test_gradient_flow_with_variable_lengths_ends_at_a_step_most_sequences_reach():
    """Per-step targets on sequences of 5 to 40 steps, most of them short: step 40 is padding for
    nearly every sequence, so the "late" end of gradient flow is the last step at least half of
    the batch reaches, and the hidden-state mean is over the sequences still running."""
    import rnnlab
    from rnnlab.training.probes import early_to_late_gradient, reference_step
    rng = np.random.default_rng(0)
    N, T = 200, 40
    lengths = np.where(rng.random(N) < 0.9, rng.integers(5, 11, N), T)
    X = rng.standard_normal((N, T, 2)).astype(np.float32)
    y = (np.cumsum(X[..., 0], axis=1) > 0).astype(np.int64)
    task = rnnlab.Task.from_arrays(X, y, lengths)
    t = rnnlab.Trainer(task, config=rnnlab.TrainConfig(epochs=2, batch_size=32, hidden=8, layers=1,
                                                       dropout=0.0, probe_every=1))
    rows = []
    t.callbacks.append(type("Keep", (rnnlab.Callback,), {"on_epoch_end": lambda s, tr, r: rows.extend(r.probes)})())
    t.fit()
    layer = rows[-1]["steps"]["weight_hh_l0"]
    valid = layer["valid"]
    assert len(valid) == T and valid[-1] < 16 and max(valid) == 32
    end = reference_step(layer)
    assert end < T - 1 and valid[end] >= 16 and valid[end + 1] < 16
    late = rows[len(rows) // 2:]                                        # measured at that step, not at T
    ends = [reference_step(p["steps"]["weight_hh_l0"]) for p in late]   # each batch's own
    assert max(ends) < T - 1
    want = np.median([p["steps"]["weight_hh_l0"]["grad_norm"][0] / p["steps"]["weight_hh_l0"]["grad_norm"][e]
                      for p, e in zip(late, ends)])
    assert early_to_late_gradient(rows) == pytest.approx(want, rel=1e-12)


def test_steps_no_sequence_reaches_are_blank_in_the_figures_not_zero():
    from rnnlab.training.probes import running
    layer = {"grad_norm": [1.0, 0.5, 0.0], "valid": [4, 1, 0]}
    assert np.isnan(running(layer, "grad_norm")[2]) and running(layer, "grad_norm")[1] == 0.5
    assert list(running({"grad_norm": [1.0, 0.0]}, "grad_norm")) == [1.0, 0.0]    # fixed lengths: as recorded
