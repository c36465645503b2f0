"""Oscillations measured on oscillators of known frequency built by hand: the units are called
oscillatory, and the fixed point's complex pair turns at the built frequency, beside the period
the network really runs at."""

import numpy as np
import pytest

import rnnlab
from rnnlab.analysis.analyze import analyze
from rnnlab.analysis.fixed_points import StepMap
from rnnlab.analysis.oscillation import free_run_period
from rnnlab.nn.cells import ElmanCell


def oscillator(period: float, gain: float, pairs: int = 5, seed: int = 0, context_drive: float | None = None):
    """A tanh RNN of ``pairs`` 2-D rotations by 2 pi / period per step, scaled by ``gain`` and
    mixed by a random orthogonal basis, driven by weak noise. Gain > 1: the origin is an
    unstable focus and tanh bounds a limit cycle; gain < 1: a stable focus, rung by the noise.
    ``context_drive``: a second input reaching every unit with that weight (the task is the
    caller's)."""
    H = 2 * pairs
    th = 2 * np.pi / period
    R = gain * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((H, H)))
    model = rnnlab.StepRegressor(1 if context_drive is None else 2, H, 1)
    sd = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    sd["rnn.weight_hh_l0"][:] = Q @ np.kron(np.eye(pairs), R) @ Q.T
    sd["rnn.weight_ih_l0"][:, 0] = Q[:, 0]
    if context_drive is not None:
        sd["rnn.weight_ih_l0"][:, 1] = context_drive
    sd["fc.weight"][:] = Q[:, 0]
    model.load_state_dict(sd)
    X = (0.05 * np.random.default_rng(1).standard_normal((100, 100, 1))).astype(np.float32)
    return model, rnnlab.Task.from_arrays(X, X.copy())


@pytest.mark.parametrize("period", [8.0, 20.0, 33.0])
def test_a_limit_cycle_oscillator_is_named_with_its_frequency(period):
    model, task = oscillator(period, gain=1.2)
    a = analyze(model, task, fp_starts=32).json
    assert a["role_counts"]["oscillatory"] == 10                       # every unit
    assert all(u["dominant_period"] == pytest.approx(period, rel=0.15) for u in a["units"])
    osc = a["fixed_points"]["oscillation"]
    assert osc["linear_period"] == pytest.approx(period, rel=1e-6)     # the built rotation, exactly
    assert osc["modulus"] == pytest.approx(1.2, rel=1e-6)
    # tanh's saturation slows the turning a little, more for slow rhythms
    assert period <= osc["free_run_period"] <= 1.15 * period
    # a limit cycle: the sentence gives both periods and says which one the rhythm has
    assert osc["limit_cycle"] and osc["period_ratio"] == pytest.approx(osc["free_run_period"] / period, rel=1e-6)
    assert f"a linear period of {period:.2f} steps" in osc["sentence"]
    assert f"settles on a cycle of period {osc['free_run_period']:.2f} steps" in osc["sentence"]
    assert "a limit cycle, whose period the nonlinearity sets, not the linearisation" in osc["sentence"]


def test_a_stable_focus_settles_when_running_freely():
    model, task = oscillator(20.0, gain=0.9)
    osc = analyze(model, task, fp_starts=32).json["fixed_points"]["oscillation"]
    assert osc["modulus"] == pytest.approx(0.9, rel=1e-6) and osc["free_run_period"] is None
    assert not osc["limit_cycle"] and osc["period_ratio"] is None
    assert osc["sentence"].endswith("running freely at that input it settles: a damped rhythm, of the linear period")


def test_free_run_period_of_a_map_that_only_turns():
    """h -> tanh(W h) with W a rotation by 2 pi / 10 and gain 3: a square-ish limit cycle whose
    period is near 10; a contraction gives no period."""
    th = 2 * np.pi / 10
    W = 3 * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    period, rms = free_run_period(StepMap(ElmanCell("tanh"), W, None, np.zeros(2)), np.array([[0.1, 0.0]]))
    assert period == pytest.approx(10, rel=0.2) and rms > 0.5
    period, rms = free_run_period(StepMap(ElmanCell("tanh"), 0.5 * np.eye(2), None, np.zeros(2)), np.ones((2, 2)))
    assert period is None and rms < 1e-6


def test_a_network_without_a_complex_pair_reports_no_rotation():
    model = rnnlab.StepRegressor(1, 2, 1)
    sd = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    sd["rnn.weight_hh_l0"][:] = np.diag([0.5, 0.8])
    sd["rnn.weight_ih_l0"][:] = 1.0
    sd["fc.weight"][:] = 1.0
    model.load_state_dict(sd)
    X = np.random.default_rng(0).standard_normal((20, 15, 1)).astype(np.float32)
    assert analyze(model, rnnlab.Task.from_arrays(X, X.copy()), fp_starts=8).json["fixed_points"]["oscillation"] is None


def test_a_slowly_damped_focus_is_not_called_a_limit_cycle():
    """Modulus 0.995: after the 512-step burn the rhythm is still there (RMS ~2e-3) with a clean
    period, but it is dying out; before, the analysis called it a limit cycle."""
    model, task = oscillator(20.0, gain=0.995)
    osc = analyze(model, task, fp_starts=32).json["fixed_points"]["oscillation"]
    assert osc["free_run_period"] == pytest.approx(20.0, rel=0.01) and not osc["limit_cycle"]
    assert osc["amplitude_kept"] < 0.9 and "a slowly damped rhythm, not a limit cycle" in osc["sentence"]
