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
