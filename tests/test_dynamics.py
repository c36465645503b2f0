"""Dynamics analysis on cases with known answers."""

import numpy as np
import pytest

from rnnlab.analysis.dynamics import (RecurrentMap, assign_roles, find_fixed_points,
                                      pca_trajectories, unit_signatures)


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


def test_fixed_points_of_a_bistable_pair():
    """h = tanh(2 h) per unit: 0 is unstable (eigenvalue 2), +-0.9575 stable (2 (1 - h^2))."""
    F = RecurrentMap(2 * np.eye(2), np.zeros(2))
    starts = np.random.default_rng(1).uniform(-1.5, 1.5, (60, 2))
    starts = np.vstack([starts, [[0.0, 0.0]], [[0.01, -0.01]]])
    fps = find_fixed_points(F, starts, steps=4000)
    h = 0.957504
    for f in fps:                                   # every point found is a true fixed point
        assert all(min(abs(c - e) for e in (-h, 0.0, h)) < 1e-3 for c in f["point"])
    corners = [f for f in fps if np.allclose(np.abs(f["point"]), h, atol=1e-3)]
    assert len(corners) == 4
    for f in corners:
        np.testing.assert_allclose(np.sort(np.abs(f["eigenvalues"])), 2 * (1 - h ** 2), rtol=1e-3)
        assert f["stable"]
    origin = [f for f in fps if np.allclose(f["point"], 0, atol=1e-3)]
    if origin:
        np.testing.assert_allclose(np.abs(origin[0]["eigenvalues"]), [2, 2], rtol=1e-6)
        assert not origin[0]["stable"]


def test_fixed_point_of_a_linear_relu_region():
    """h = relu(0.5 h + b) with b > 0 has the single fixed point h = 2b, eigenvalues 0.5."""
    b = np.array([0.2, 0.4, 0.1])
    fps = find_fixed_points(RecurrentMap(0.5 * np.eye(3), b, relu=True),
                            np.random.default_rng(2).uniform(0, 2, (20, 3)))
    assert len(fps) == 1
    np.testing.assert_allclose(fps[0]["point"], 2 * b, atol=1e-4)
    np.testing.assert_allclose(np.abs(fps[0]["eigenvalues"]), 0.5, rtol=1e-9)


def test_pca_explains_planar_data():
    rng = np.random.default_rng(3)
    plane = rng.standard_normal((50, 10, 2)) @ rng.standard_normal((2, 6))
    out = pca_trajectories(plane + 1e-6 * rng.standard_normal(plane.shape), k=3)
    assert out["projection"].shape == (50, 10, 3)
    assert sum(out["explained"][:2]) > 0.999 and out["explained"][2] < 1e-6
