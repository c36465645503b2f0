"""Dynamics analysis on cases with known answers."""

import numpy as np
import pytest

from rnnlab.analysis.dynamics import assign_roles, pca_trajectories, unit_signatures


def synthetic_units(N=200, T=30, seed=0):
    """Four units of known kinds driven by the same white-noise input x (N, T)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T))
    steps = np.arange(1, T + 1)
    running = np.cumsum(x, axis=1) / steps
    integ = np.tanh(0.3 * np.cumsum(x, axis=1) / np.sqrt(steps))       # accumulates the input
    trans = np.zeros((N, T))
    for t in range(T):                                                  # h_t = tanh(x_t + 0.2 h_{t-1})
        trans[:, t] = np.tanh(x[:, t] + 0.2 * (trans[:, t - 1] if t else 0))
    phase = rng.uniform(0, 2 * np.pi, (N, 1))
    osc = 0.8 * np.sin(2 * np.pi * steps / 5 + phase) + 0.05 * x
    sat = np.full((N, T), 0.999)
    H = np.stack([integ, trans, osc, sat], axis=2)
    impulse = np.stack([np.full(T, 0.3),                      # an integrator keeps the impulse
                        0.2 ** np.arange(T),                   # a transient forgets it
                        np.r_[0.05, np.full(T - 1, 1e-3)],     # the oscillator barely feels it
                        np.zeros(T)], axis=1)                  # a pinned unit ignores it
    return H, running, impulse


def test_role_classifier_on_units_with_known_structure():
    H, running, impulse = synthetic_units()
    sig = unit_signatures(H, running, impulse)
    assert assign_roles(sig) == ["accumulator", "transient", "oscillatory", "saturated"]
    assert sig[0]["corr_running_mean"] > 0.8
    assert sig[2]["dominant_period"] == pytest.approx(5, rel=0.05)
    assert sig[1]["autocorr_decay"] <= 1


def test_pca_explains_planar_data():
    rng = np.random.default_rng(3)
    plane = rng.standard_normal((50, 10, 2)) @ rng.standard_normal((2, 6))
    out = pca_trajectories(plane + 1e-6 * rng.standard_normal(plane.shape), k=3)
    assert out["projection"].shape == (50, 10, 3)
    assert sum(out["explained"][:2]) > 0.999 and out["explained"][2] < 1e-6


def _one_unit_reference(h, running, impulse_u):
    """The scores of one unit (N, T), written out unit by unit: what ``unit_signatures``
    computes for all units at once."""
    N, T = h.shape
    centred = h - h.mean(axis=1, keepdims=True)
    denom = (centred ** 2).sum()
    ac = [1.0] + [(centred[:, k:] * centred[:, :-k]).sum() / denom for k in range(1, T)]
    spec = (np.abs(np.fft.rfft(centred, axis=1)) ** 2).mean(axis=0)
    peak = int(np.argmax(spec[1:]) + 1)
    r = np.abs(impulse_u)
    return {"std": h.std(), "corr_running_mean": np.corrcoef(h.ravel(), running.ravel())[0, 1],
            "autocorr_decay": next((k for k, a in enumerate(ac) if a < np.exp(-1)), T),
            "sign_change_rate": (np.sign(centred)[:, 1:] * np.sign(centred)[:, :-1] < 0).mean(),
            "dominant_period": T / peak, "steps": T,
            "peak_power_fraction": spec[max(1, peak - 1):peak + 2].sum() / spec[1:].sum(),
            "peak_over_slowest": spec[peak] / spec[1],
            "impulse_persistence": r[-1] / r[0], "saturated_fraction": (np.abs(h) > 0.98).mean()}


def test_signatures_of_all_units_at_once_equal_each_unit_scored_alone():
    rng = np.random.default_rng(5)
    N, T, U = 40, 12, 9
    x = rng.standard_normal((N, T))
    running = np.cumsum(x, axis=1) / np.arange(1, T + 1)
    H = np.tanh(rng.standard_normal((N, T, U)) + rng.uniform(-2, 2, U) * running[..., None]
                + rng.uniform(0, 3, U))                              # some units near saturation
    impulse = rng.uniform(0.1, 1.0, (T, U))
    sig = unit_signatures(H, running, impulse)
    for u in range(U):
        ref = _one_unit_reference(H[:, :, u], running, impulse[:, u])
        assert sig[u]["unit"] == u
        for key, value in ref.items():
            assert sig[u][key] == pytest.approx(value, rel=1e-12, abs=1e-12), (u, key)
    constant = unit_signatures(np.full((N, T, 1), 0.3), running, impulse[:, :1])
    assert constant[0]["corr_running_mean"] == 0.0 and constant[0]["std"] < 1e-12
    assert assign_roles(constant) == ["saturated"]                   # dead: no variance


def test_pca_components_are_the_svds_with_the_largest_entry_positive():
    rng = np.random.default_rng(4)
    H = np.tanh(rng.standard_normal((30, 8, 5)) @ rng.standard_normal((5, 5)))
    out = pca_trajectories(H, k=3)
    flat = H.reshape(-1, 5)
    centred = flat - flat.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    comps = out["components"]
    np.testing.assert_allclose(np.abs(comps @ vt[:3].T), np.eye(3), atol=1e-10)   # same axes, up to sign
    assert (comps[np.arange(3), np.abs(comps).argmax(axis=1)] > 0).all()
    np.testing.assert_allclose(out["explained"], (s ** 2 / (s ** 2).sum())[:3], rtol=1e-10)
    np.testing.assert_allclose(out["projection"].reshape(-1, 3), centred @ comps.T, atol=1e-12)


def test_one_cycle_over_the_window_is_a_drift_not_an_oscillation():
    """A unit whose strongest frequency fits once into the analysed steps (a slow drift over a
    short window) is not called oscillatory; the same shape repeated three times is."""
    from rnnlab.analysis.dynamics import assign_roles, unit_signatures
    T = 12                                                    # a short window, as variable-length data gives
    t = np.arange(T)
    rng = np.random.default_rng(0)
    phases = rng.uniform(0, 2 * np.pi, (40, 1))
    H = np.stack([0.5 * np.sin(2 * np.pi * k * t / T + phases) for k in (1, 3)], axis=-1)   # (40, T, 2)
    sigs = unit_signatures(H, None, None)
    assert [s["cycles_in_window"] for s in sigs] == [1, 3]
    assert sigs[0]["peak_power_fraction"] > 0.5                # the share test alone would pass it
    roles = assign_roles(sigs)
    assert roles[0] != "oscillatory" and roles[1] == "oscillatory"
    assert assign_roles(unit_signatures(H[:, :6], None, None))[1] != "oscillatory"   # 6 steps: too few to say


def test_slow_noise_and_white_noise_are_not_rhythms_and_a_slow_sine_is():
    """The oscillatory test needs no fast sign changes: a sine of period 20 over 100 steps is
    oscillatory (the old rule asked for a sign-change rate over 0.25 and missed it); red noise
    (AR(1), most power at the lowest frequencies, here peaking at 2 cycles by chance) and white
    noise are not."""
    from rnnlab.analysis.dynamics import OSC_POWER_SHARE, assign_roles, unit_signatures
    rng = np.random.default_rng(8)
    N, T = 50, 100
    t = np.arange(T)
    sine = np.sin(2 * np.pi * t / 20 + rng.uniform(0, 2 * np.pi, (N, 1))) + 0.1 * rng.standard_normal((N, T))
    red = np.zeros((N, T))
    for k in range(1, T):
        red[:, k] = 0.8 * red[:, k - 1] + rng.standard_normal(N)
    white = rng.standard_normal((N, T))
    sigs = unit_signatures(np.stack([sine, red, white], axis=-1), None, None)
    assert sigs[0]["dominant_period"] == pytest.approx(20) and sigs[0]["sign_change_rate"] < 0.25
    assert sigs[0]["peak_power_fraction"] >= OSC_POWER_SHARE > sigs[2]["peak_power_fraction"]
    assert sigs[1]["cycles_in_window"] == 2 and sigs[1]["peak_over_slowest"] < 1.5      # a peak of chance
    assert assign_roles(sigs)[0] == "oscillatory" and "oscillatory" not in assign_roles(sigs)[1:]


def test_ablation_of_a_group_of_every_unit_has_no_control():
    """A random group of the same size would be the group itself: no control, said so."""
    from rnnlab.analysis.analyze import ablate_roles, silenced_copy
    from rnnlab.data.tasks import build_task
    from rnnlab.present.report import render_ablation_rows
    from rnnlab.training.build import build_model
    from rnnlab.training.config import PRESETS
    from rnnlab.training.evaluate import evaluate
    cfg = PRESETS["seed"].replace(hidden=6, layers=1, train_size=40, test_size=40)
    task = build_task(cfg)
    model = build_model(cfg, task)
    every = ablate_roles(model, ["transient"] * 6, task)
    assert [r["group"] for r in every] == ["none", "transient"] and every[1]["random_same_size_drop"] is None
    assert "none: the group is every unit" in render_ablation_rows(every, "acc")
    # two halves: each one's control group can only be the other half (silenced_copy sorts units)
    base = evaluate(model, task)[1]
    silenced = {name: evaluate(silenced_copy(model, units), task)[1]
                for name, units in (("transient", [0, 1, 2]), ("mixed", [3, 4, 5]))}
    some = ablate_roles(model, ["transient"] * 3 + ["mixed"] * 3, task)
    assert [r["group"] for r in some] == ["none", "transient", "mixed"]
    assert some[0] == {"group": "none", "units": 0, "metric": "acc", "value": base, "drop": 0.0,
                       "random_same_size_drop": 0.0}
    for row, other in zip(some[1:], ("mixed", "transient")):
        assert row["value"] == silenced[row["group"]] and row["drop"] == base - row["value"]
        assert row["random_same_size_drop"] == base - silenced[other]


def test_ablation_control_is_a_seeded_random_group_of_the_same_size():
    """The control drop is the drop of ``units`` random units drawn with ``seed``: from the
    other groups' units when there are enough, else from all. An MSE task: drop = value - base."""
    from rnnlab.analysis.analyze import ablate_roles, silenced_copy
    from rnnlab.data.tasks import build_task
    from rnnlab.training.build import build_model
    from rnnlab.training.config import PRESETS
    from rnnlab.training.evaluate import evaluate
    cfg = PRESETS["seed"].replace(task="adding", hidden=6, layers=1, train_size=40, test_size=40, length=10)
    task = build_task(cfg)
    model = build_model(cfg, task)
    rows = ablate_roles(model, ["transient"] * 2 + ["mixed"] * 4, task, seed=3)
    base = evaluate(model, task)[1]
    mse_of = lambda units: evaluate(silenced_copy(model, units), task)[1]
    rng = np.random.default_rng(3)                         # the draws, in ROLES order (transient, mixed)
    controls = [rng.choice([2, 3, 4, 5], 2, replace=False),   # 2 of the 4 mixed units
                rng.choice(6, 4, replace=False)]              # only 2 others: 4 of all 6
    assert [r["group"] for r in rows] == ["none", "transient", "mixed"] and rows[0]["value"] == base
    for row, units, control in zip(rows[1:], ([0, 1], [2, 3, 4, 5]), controls):
        assert row["value"] == mse_of(units) and row["drop"] == row["value"] - base
        assert row["random_same_size_drop"] == mse_of(control) - base
    # the draw matters: another group of the same size would give another number
    assert rows[1]["random_same_size_drop"] != mse_of([3, 4]) - base
    assert rows[1]["random_same_size_drop"] != rows[1]["drop"]


def test_analysis_tells_its_steps_and_bounds_the_fixed_point_search():
    """Progress names each step in order (the fixed-point step with its starts and budget) and
    counts settled starts; a spent budget is a note that names the setting."""
    from rnnlab.analysis.analyze import analyze
    from rnnlab.present.progress import StepProgress
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    t = Trainer(config=PRESETS["seed"].replace(epochs=1, batches_per_epoch=3, hidden=16))
    t.fit()
    told = []
    a = analyze(t.model, t.task, n_sequences=50, fp_starts=32, fp_rounds=1, progress=lambda *x: told.append(x))
    steps = list(dict.fromkeys(x[0] for x in told))
    assert steps == ["hidden states, unit roles and PCA", "ablation: each role's units silenced",
                     "fixed points of layer 1 (from 0), round 1: 32 starts, at most 30 s for this input's search"]
    assert told[-1][1:] == (32, 32) and not any("time budget" in n for n in a.json["fixed_points"]["notes"])
    short = analyze(t.model, t.task, n_sequences=50, fp_starts=32, fp_rounds=1, fp_seconds=1e-9)
    fp = short.json["fixed_points"]
    assert fp["counts"]["out_of_time"] > 0
    assert any(f"with {fp['counts']['out_of_time']} of 32 starts still running; give it more time with "
               "fp_seconds" in n for n in fp["notes"])
    import io
    lines = io.StringIO()
    with StepProgress(stream=lines, bar_stream=io.StringIO()) as progress:
        for x in told:
            progress(*x)
    assert lines.getvalue().splitlines() == [f"analysing: {s}" for s in steps]
    quiet = io.StringIO()
    with StepProgress(quiet=True, stream=quiet, bar_stream=io.StringIO()) as progress:
        progress(*told[0])
    assert quiet.getvalue() == ""
