"""Continuous attractors on networks built by hand whose manifolds are known: a ring (tanh units
with cosine connectivity), an exact line and an exact sheet (relu units), a bistable switch (two
memories around a saddle, which is not a line attractor), and the selection vector's refusals."""

import numpy as np
import pytest

import rnnlab
from rnnlab.analysis.analyze import analyze
from rnnlab.analysis.fixed_points import StepMap, find_fixed_points
from rnnlab.analysis.manifolds import find_manifolds
from rnnlab.analysis.selection import selection_at
from rnnlab.nn.cells import ElmanCell

N = 64
ANGLES = 2 * np.pi * np.arange(N) / N


def ring_weights(gain=2.0):
    """W = (2 gain / N)(c c^T + s s^T): a bump of activity stays wherever it is put on the ring
    (rotation symmetry up to the N-fold sampling, whose ripple is far below rounding)."""
    c, s = np.cos(ANGLES), np.sin(ANGLES)
    return (2 * gain / N) * (np.outer(c, c) + np.outer(s, s))


def bumps(n, rng, noise=0.01):
    phi = rng.uniform(0, 2 * np.pi, n)
    amp = rng.uniform(0.3, 1.5, n)
    return np.tanh(2 * amp[:, None] * np.cos(ANGLES[None] - phi[:, None])) + noise * rng.standard_normal((n, N))


def test_a_built_ring_is_found_as_a_ring_attractor():
    F = StepMap(ElmanCell("tanh"), ring_weights(), None, np.zeros(N))
    res = find_fixed_points(F, bumps(200, np.random.default_rng(0)))
    found = find_manifolds(F, res.points)
    (ring,) = found["manifolds"]
    assert ring["kind"] == "ring" and ring["closed"] and ring["attractor"]
    assert ring["points"] == ring["of"] == len(res.points) > 100
    assert ring["fit"]["rms_off_circle_share"] < 0.01
    assert ring["tangent_eigenvalue"]["median"] == pytest.approx(1.0, abs=1e-6)
    assert ring["tangent_eigenvalue"]["alignment"] > 0.99 and ring["transverse_max"]["median"] < 0.5
    assert found["sentence"].startswith("a ring attractor (closed)")


@pytest.mark.slow      # 8 s: a continuum, so the search draws all its rounds (the fast ring test is above)
def test_the_analysis_names_the_ring_from_the_trials_own_states():
    """Through ``analyze``: inputs push the bump round; the verdict is a ring, not "15 stable, 15
    saddles; not along one direction" as the straight-line test said."""
    model = rnnlab.StepRegressor(2, N, 2)
    sd = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    sd["rnn.weight_hh_l0"][:] = ring_weights()
    sd["rnn.weight_ih_l0"][:] = 0.3 * np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1)
    sd["fc.weight"][:] = np.stack([np.cos(ANGLES), np.sin(ANGLES)]) / N
    model.load_state_dict(sd)
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((60, 40, 2)) * (rng.random((60, 40, 1)) < 0.2)).astype(np.float32)
    a = analyze(model, rnnlab.Task.from_arrays(X, X.copy()), fp_starts=128).json
    verdict = a["fixed_points"]["continuous_attractor"]
    assert verdict["kind"] == "ring" and verdict["ring_attractor"] and not verdict["line_attractor"]
    assert verdict["reason"].startswith("a ring attractor (closed)")
    assert any("counts the continuum" in n for n in a["fixed_points"]["notes"])


def test_an_exact_line_and_an_exact_sheet_of_fixed_points():
    """relu(W h) with W = U U^T, U's columns orthonormal and non-negative: every h = U a (a >= 0)
    is a fixed point. One column: a half-line (eigenvalue 1 along it, 0 across); two: a sheet."""
    rng = np.random.default_rng(2)
    U = np.abs(np.linalg.qr(rng.standard_normal((8, 8)))[0][:, :1])
    F = StepMap(ElmanCell("relu"), U @ U.T, None, np.zeros(8))
    res = find_fixed_points(F, rng.uniform(0.1, 3, (60, 1)) @ U.T + 0.01 * rng.standard_normal((60, 8)))
    (line,) = find_manifolds(F, res.points)["manifolds"]
    assert line["kind"] == "line" and line["attractor"] and not line["closed"]
    assert line["tangent_eigenvalue"]["median"] == pytest.approx(1.0, abs=1e-9)
    assert line["fit"]["straight_share"] > 0.999
    U2 = np.zeros((8, 2))
    U2[:4, 0], U2[4:, 1] = 0.5, 0.5                                   # orthonormal, non-negative
    G = StepMap(ElmanCell("relu"), U2 @ U2.T, None, np.zeros(8))
    res = find_fixed_points(G, rng.uniform(0.1, 3, (300, 2)) @ U2.T + 0.01 * rng.standard_normal((300, 8)))
    (sheet,) = find_manifolds(G, res.points)["manifolds"]
    assert sheet["kind"] == "surface" and "two-dimensional" in sheet["sentence"]


def switch_model(along=1.03):
    """tanh, W = along u u^T + 0.3 (I - u u^T): along u, h = tanh(1.03 h) has two stable points
    (eigenvalue 0.94) around a saddle at 0 (eigenvalue 1.03): two memories, not a continuum,
    although every eigenvalue along the line is within 0.07 of 1."""
    u = np.ones(3) / np.sqrt(3)
    model = rnnlab.StepRegressor(1, 3, 1)
    sd = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    sd["rnn.weight_hh_l0"][:] = along * np.outer(u, u) + 0.3 * (np.eye(3) - np.outer(u, u))
    sd["rnn.weight_ih_l0"][:] = 0.4 * u[:, None]
    sd["fc.weight"][:] = u
    model.load_state_dict(sd)
    X = np.random.default_rng(3).choice([-1.0, 0.0, 1.0], (80, 40, 1), p=[0.1, 0.8, 0.1]).astype(np.float32)
    return model, rnnlab.Task.from_arrays(X, np.sign(X.cumsum(axis=1)))


@pytest.mark.parametrize("along", [1.03, 1.01])
def test_a_bistable_pair_is_not_a_line_attractor(along):
    """At 1.01 every eigenvalue along the line is within 0.02 of 1 and the saddle's neighbourhood
    alone makes a cluster of slow points: only where its unstable direction leads tells the switch."""
    model, task = switch_model(along)
    fp = analyze(model, task, fp_starts=128).json["fixed_points"]
    assert fp["counts"]["types"] == {"stable": 2, "saddle index 1": 1}
    verdict = fp["continuous_attractor"]
    assert not verdict["line_attractor"] and verdict["kind"] is None
    assert not any(m.get("attractor") for m in fp["manifolds"]["manifolds"])
    assert "not an attractor" in verdict["reason"] or "not a line attractor" in verdict["reason"]


def test_a_selection_vector_is_refused_where_the_definition_does_not_hold():
    # a rotation by 0.2 rad: the eigenvalues nearest 1 are a complex pair on the unit circle
    R = np.array([[np.cos(0.2), -np.sin(0.2)], [np.sin(0.2), np.cos(0.2)]])
    out = selection_at(StepMap(ElmanCell("tanh"), R, None, np.zeros(2)), np.zeros(2), [])
    assert "complex" in out["refused"] and "selection_vector" not in out
    # eigenvalue 1 along one direction but 1.5 along another: a saddle, which trajectories leave
    out = selection_at(StepMap(ElmanCell("tanh"), np.diag([1.0, 1.5, 0.2]), None, np.zeros(3)), np.zeros(3), [])
    assert out["refused"].startswith("1 unstable direction besides the slow mode")
    out = selection_at(StepMap(ElmanCell("tanh"), np.diag([0.9, 0.2]), None, np.zeros(2)), np.zeros(2), [])
    assert out["refused"] == "the eigenvalue nearest 1 is 0.900, not within 0.05 of 1"
    # eigenvalue 1 twice (an exact sheet): any basis of the plane is as good, so no one left eigenvector
    out = selection_at(StepMap(ElmanCell("relu"), np.diag([1.0, 1.0, 0.2]), None, np.zeros(3)), np.full(3, 0.5), [])
    assert out["why"] == "repeated eigenvalue" and "a slow plane" in out["refused"]
    # two distinct slow modes (0.98 and 0.963, as on a trained GRU): the one nearest 1 has its own
    out = selection_at(StepMap(ElmanCell("tanh"), np.diag([0.98, 0.963]), None, np.zeros(2)), np.zeros(2),
                       [lambda s: s + np.array([1.0, 0.0])])
    assert "refused" not in out and out["projections"] == [pytest.approx(1.0)]
    # a ring's saddle whose only unstable direction is the slow mode itself (1.01) is marginal: kept
    out = selection_at(StepMap(ElmanCell("tanh"), np.diag([1.01, 0.2]), None, np.zeros(2)), np.zeros(2),
                       [lambda s: s + np.array([1.0, 1.0])])
    assert "refused" not in out and out["projections"] == [pytest.approx(1.0)]


def test_the_selection_push_is_stable_under_four_times_the_search_effort():
    from test_slow_points import line_net
    model, task, _, _ = line_net()
    a = analyze(model, task, fp_starts=128).json["fixed_points"]["selection"]["projections"][0]["median"]
    b = analyze(model, task, fp_starts=512).json["fixed_points"]["selection"]["projections"][0]["median"]
    assert b == pytest.approx(a, rel=0.1)
