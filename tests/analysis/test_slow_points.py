"""Slow points and line attractors (Sussillo & Barak 2013; Mante, Sussillo, Shenoy & Newsome
2013), on maps whose answers are known: a saddle-node ghost, a hand-built line attractor with a
known selection vector, and 81 isolated points that lie on no line."""

import numpy as np
import pytest

import rnnlab
from rnnlab.analysis.analyze import analyze
from rnnlab.analysis.fixed_points import StepMap, find_fixed_points, slow_points
from rnnlab.nn.cells import ElmanCell


def _ghost(b):
    """h = tanh(2 h + b): past the saddle-node at b = 0.533 the negative pair has vanished and
    left a ghost near h = -0.71 where q has a small positive minimum."""
    F = StepMap(ElmanCell("tanh"), np.array([[2.0]]), None, np.array([b]))
    starts = np.vstack([np.linspace(-2.0, -0.8, 7)[:, None], np.linspace(0.5, 1.5, 5)[:, None]])
    return F, find_fixed_points(F, starts), starts


def test_a_ghost_is_a_slow_point_with_an_eigenvalue_of_one():
    F, res, starts = _ghost(0.536)
    assert res.stalled == 7 and len(res.points) == 1                  # the one fixed point, on the right
    (p,) = slow_points(F, res, starts)
    assert p.count == 7 and 1e-7 < p.q < 1e-5 and p.point[0] == pytest.approx(-0.709, abs=2e-3)
    assert abs(p.eigenvalues[0]) == pytest.approx(1.0, abs=1e-6)      # the direction the pair annihilated along
    F, res, starts = _ghost(0.55)                                     # faster: q 3.7e-5 at the ghost
    assert slow_points(F, res, starts) == []
    assert len(slow_points(F, res, starts, slow_tol=1e-4)) == 1


def line_net(seed=0, lam=1.0):
    """A 3-unit tanh RNN with W = V diag(1, 0.3, 0.2) V^-1 (V not orthogonal, so the left and
    right eigenvectors differ): near the origin a line of fixed points along V[:, 0]. Input 0
    enters along the left eigenvector of eigenvalue 1 (the selection vector), input 1 across it."""
    rng = np.random.default_rng(seed)
    V = np.eye(3) + 0.6 * rng.standard_normal((3, 3))
    W = V @ np.diag([lam, 0.3, 0.2]) @ np.linalg.inv(V)
    left = np.linalg.inv(V)[0] / np.linalg.norm(np.linalg.inv(V)[0])
    across = np.cross(left, rng.standard_normal(3))
    across /= np.linalg.norm(across)
    model = rnnlab.StepRegressor(2, 3, 1)
    sd = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    sd["rnn.weight_hh_l0"][:] = W
    sd["rnn.weight_ih_l0"][:] = 0.05 * np.stack([left, across], axis=1)
    sd["fc.weight"][:] = V[:, 0] / np.linalg.norm(V[:, 0])
    model.load_state_dict(sd)
    X = rng.choice([-1.0, 0.0, 1.0], (80, 30, 2), p=[0.15, 0.7, 0.15]).astype(np.float32)
    return model, rnnlab.Task.from_arrays(X, X[..., :1].cumsum(axis=1)), V, left


def test_a_built_line_attractor_and_its_selection_vector():
    """Slow points along the trials' own states lie along V[:, 0]; at each of them the eigenvalue
    along the line is ~1 and the selection vector is the left eigenvector: input 0 (entering along
    it) pushes the state along the line, input 1 (across it) does not."""
    model, task, V, left = line_net()
    fp = analyze(model, task, fp_starts=128).json["fixed_points"]
    line = fp["manifolds"]["manifolds"][0]              # farther out, tanh's saturation makes the line forget
    assert line["kind"] == "line" and line["attractor"] and fp["continuous_attractor"]["line_attractor"]
    assert line["tangent_eigenvalue"]["median"] == pytest.approx(1.0, abs=0.01)
    assert line["fit"]["straight_share"] > 0.99
    sel = fp["selection"]
    assert sel["where"] == "attractor" and sel["accepted"] >= 0.9 * sel["points"] >= 5
    right = V[:, 0] / np.linalg.norm(V[:, 0])
    for r in sel["per_point"]:
        if "refused" in r:
            continue
        assert abs(np.array(r["selection_vector"]) @ left) > 0.999      # the left eigenvector, not the right one
        assert abs(np.array(r["direction"]) @ right) > 0.999
    integrated, ignored = sel["projections"]
    # l . r = 1, so l . b is the push along the line; input 0 enters as b = 0.05 * left (unit vector):
    # l = left / (left . r), so l . b = 0.05 / (left . r)
    assert abs(integrated["median"]) == pytest.approx(abs(0.05 / (left @ right)), rel=0.02)
    assert abs(ignored["median"]) < 1e-3 * abs(integrated["median"])
    signs = {np.sign(r["projections"][0]) for r in sel["per_point"] if "refused" not in r}
    assert len(signs) == 1                                    # one orientation along the line at every point


def test_one_stable_point_with_a_slow_mode_is_a_line_of_slow_points_that_forgets():
    """Eigenvalue 0.98 instead of 1: one stable point at the origin, forgetting along V[:, 0] over
    50 steps. The trials' slow states lie along that mode, a line that forgets (0.98 is not within
    0.02 of 1); its stable points still give selection vectors (a real eigenvalue within 0.05 of 1)."""
    model, task, V, left = line_net(lam=0.98)
    fp = analyze(model, task, fp_starts=128).json["fixed_points"]
    assert len(fp["points"]) == 1
    line = fp["manifolds"]["manifolds"][0]
    assert line["tangent_eigenvalue"]["median"] == pytest.approx(0.98, abs=0.01)
    assert not fp["continuous_attractor"]["line_attractor"] and line["kind"] == "line"
    assert "not an attractor" in line["sentence"] and "within 0.02 of 1" in line["sentence"]
    sel = fp["selection"]
    assert all(abs(np.array(r["selection_vector"]) @ left) > 0.999 for r in sel["per_point"] if "refused" not in r)
    integrated, ignored = sel["projections"]
    assert abs(ignored["median"]) < 1e-2 * abs(integrated["median"])


def test_isolated_points_are_not_a_manifold():
    from rnnlab.analysis.manifolds import find_manifolds
    F = StepMap(ElmanCell("tanh"), 2 * np.eye(4), None, np.zeros(4))     # 81 points on a 4-cube
    res = find_fixed_points(F, np.random.default_rng(0).uniform(-1.2, 1.2, (2048, 4)))
    found = find_manifolds(F, res.points)
    assert not any(m.get("attractor") for m in found["manifolds"])
    assert all(m["kind"] is None for m in found["manifolds"])
    few = find_manifolds(F, res.points[:3])                               # a switch: no manifold to judge
    assert few["manifolds"] == [] and "no manifold to judge" in few["sentence"]
