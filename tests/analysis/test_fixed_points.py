"""Fixed points of one recurrent layer (analysis.fixed_points): the map is the real layer's
step, the Jacobian is its real derivative, and the finder recovers systems whose fixed points are
known analytically, counting every start it drops."""

import doctest
import json
import re

import numpy as np
import pytest

import rnnlab
from rnnlab.analysis.fixed_points import StepMap, find_fixed_points, sample_starts, steady_layer_input
from rnnlab.nn.cells import ElmanCell

H_STAR = 0.9575040240772687          # h = tanh(2 h), h > 0

CELLS = {"rnn-tanh": (rnnlab.RNN, {"nonlinearity": "tanh"}),
         "rnn-relu": (rnnlab.RNN, {"nonlinearity": "relu"}),
         "lstm": (rnnlab.LSTM, {}),
         "gru": (rnnlab.GRU, {})}


def stack(kind, input_size=3, hidden=4, layers=2, bidirectional=False, scale=1.0, seed=0):
    cls, kw = CELLS[kind]
    net = cls(input_size, hidden, num_layers=layers, bidirectional=bidirectional,
              dtype=np.float64, seed=seed, **kw)
    for v in net.params.values():
        v *= scale
    net.eval()
    return net


def single_layer_copy(kind, net, layer, direction=0):
    """A one-layer stack of the same kind holding layer ``layer`` (direction ``direction``)."""
    cls, kw = CELLS[kind]
    D = net.params[f"weight_ih_l{layer}"].shape[1]
    one = cls(D, net.hidden_size, dtype=np.float64, **kw)
    suffix = f"_l{layer}" + ("_reverse" if direction else "")
    one.load_state_dict({k: net.params[k.replace("_l0", suffix)] for k in one.params})
    return one


def state_of(F, s):
    """(B, S) -> the stack's initial-state form for one layer slot: h (1, B, H) or (h, c)."""
    carry = F.split(s)
    return carry[0][None] if len(carry) == 1 else tuple(c[None] for c in carry)


def finite_difference_jacobian(F, s, eps=1e-6):
    S = s.size
    cols = [(F(s + eps * e) - F(s - eps * e)) / (2 * eps) for e in np.eye(S)]
    return np.stack(cols, axis=1)                     # column j = dF/ds_j


# ---------------------------------------------------------------- the map is the layer's step
@pytest.mark.parametrize("kind", CELLS)
def test_step_map_is_one_step_of_the_real_layer(kind):
    net = stack(kind)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(3)
    # layer 0: rnn.forward on a length-1 sequence from state s (layer 1's slot: zeros)
    F0 = StepMap.from_recurrent(net, layer=0, x_const=x)
    s = rng.uniform(-0.9, 0.9, (5, F0.size))
    h0 = tuple(np.stack([c, np.zeros_like(c)]) for c in F0.split(s))       # (layers, B, H) each
    _, h_n = net.forward(np.broadcast_to(x, (5, 1, 3)).copy(), h0[0] if F0.n_carry == 1 else h0)
    finals = (h_n,) if F0.n_carry == 1 else h_n
    np.testing.assert_allclose(F0(s), np.concatenate([f[0] for f in finals], axis=1),
                               rtol=0, atol=1e-14)
    # the last layer, fed the steady input that constant x gives it: vs a one-layer copy
    u = steady_layer_input(net, 1, x)
    F1 = StepMap.from_recurrent(net, x_const=u)
    one = single_layer_copy(kind, net, 1)
    out1, h_n1 = one.forward(u[None, None].repeat(5, axis=0), state_of(F1, s))
    finals1 = (h_n1,) if F1.n_carry == 1 else h_n1
    np.testing.assert_allclose(F1(s), np.concatenate([f[0] for f in finals1], axis=1),
                               rtol=0, atol=1e-14)
    np.testing.assert_allclose(F1(s[0]), F1(s)[0])    # a single state (S,) works too


@pytest.mark.parametrize("kind", CELLS)
def test_jacobian_from_the_cells_backward_matches_finite_differences(kind):
    net = stack(kind, hidden=5, layers=1, bidirectional=True, scale=2.0, seed=3)
    rng = np.random.default_rng(2)
    F = StepMap.from_recurrent(net, layer=0, direction=1, x_const=rng.standard_normal(3))
    pts = rng.uniform(-0.8, 0.8, (3, F.size))
    if kind == "rnn-relu":
        pts = np.abs(pts) + 0.1                      # keep away from relu's kinks
    J = F.jacobian(pts)
    assert J.shape == (3, F.size, F.size)
    for p, Jp in zip(pts, J):
        Jfd = finite_difference_jacobian(F, p)
        assert np.abs(Jp - Jfd).max() <= 1e-6 * np.abs(Jfd).max()
    np.testing.assert_allclose(F.jacobian(pts[0]), J[0])
    v = rng.standard_normal((3, F.size))              # vjp is J^T v
    np.testing.assert_allclose(F.vjp(pts, v), np.einsum("mij,mi->mj", J, v), atol=1e-13)


@pytest.mark.parametrize("kind", ["rnn-tanh", "lstm", "gru"])
def test_steady_input_is_the_lower_layers_fixed_point(kind):
    """A contractive bidirectional 2-layer stack fed a constant input: layer 1 receives the fixed
    point of layer 0 (both directions), and the network's output in the middle of a long
    sequence is the fixed point of the last layer under that input."""
    net = stack(kind, hidden=4, bidirectional=True, scale=0.5, seed=4)
    x = np.array([0.5, -1.0, 0.3])
    u = steady_layer_input(net, 1, x)
    assert u.shape == (8,)
    n = 2 if kind == "lstm" else 1                      # carry arrays: state size n * H

    def fixed_point(layer, d, x_const):
        res = find_fixed_points(StepMap.from_recurrent(net, layer, d, x_const), np.zeros((1, 4 * n)))
        assert len(res.points) == 1 and res.points[0].type == "stable"
        return res.points[0].point[:4]                   # h

    np.testing.assert_allclose(u, np.concatenate([fixed_point(0, d, x) for d in (0, 1)]), atol=1e-9)
    out, _ = net.forward(np.broadcast_to(x, (1, 401, 3)).copy())
    for d in (0, 1):
        np.testing.assert_allclose(out[0, 200, 4 * d:4 * d + 4], fixed_point(1, d, u), atol=1e-9)
    np.testing.assert_array_equal(steady_layer_input(net, 0, x), x)


def test_float32_network_is_analysed_in_float64():
    net = rnnlab.LSTM(3, 4, num_layers=2, seed=2)                 # float32, as trained
    twin = rnnlab.LSTM(3, 4, num_layers=2, dtype=np.float64, seed=2)
    twin.load_state_dict(net.state_dict())
    x = np.array([0.2, -0.4, 1.0])
    u = steady_layer_input(net, 1, x)
    assert u.dtype == np.float64
    np.testing.assert_array_equal(u, steady_layer_input(twin, 1, x))
    F, G = StepMap.from_recurrent(net, x_const=u), StepMap.from_recurrent(twin, x_const=u)
    s = np.random.default_rng(0).uniform(-1, 1, (3, 8))
    assert F(s).dtype == np.float64 and F.jacobian(s).dtype == np.float64
    np.testing.assert_array_equal(F(s), G(s))


def test_steady_input_warns_when_the_layers_below_do_not_settle():
    net = rnnlab.RNN(2, 2, num_layers=2, dtype=np.float64)
    net.params["weight_hh_l0"][...] = -3 * np.eye(2)             # h -> tanh(-3 h): period 2
    net.params["weight_ih_l0"][...] = np.eye(2)
    with pytest.warns(UserWarning, match="still changes"):
        steady_layer_input(net, 1, np.array([0.1, -0.1]))


# ---------------------------------------------------------------- known systems
def check_corners_edges_origin(res, h_star, lam_stable, lam_unstable):
    """2 bistable units: 4 stable corners, 4 index-1 saddles on the edges, the origin index 2."""
    by_zeros = {0: [], 1: [], 2: []}
    for p in res.points:
        h = p.point[:2]
        assert np.all(np.isclose(np.abs(h), h_star, atol=1e-9) | (np.abs(h) < 1e-9)), p.point
        by_zeros[int((np.abs(h) < 1e-9).sum())].append(p)
    assert [len(by_zeros[k]) for k in (0, 1, 2)] == [4, 4, 1]
    big = lambda p: np.sort(np.abs(p.eigenvalues))[::-1][:2]
    for p in by_zeros[0]:
        assert p.type == "stable" and p.n_unstable == 0
        np.testing.assert_allclose(big(p), [lam_stable] * 2, rtol=1e-8)
    for p in by_zeros[1]:
        assert p.type == "saddle" and p.n_unstable == 1
        np.testing.assert_allclose(big(p), [lam_unstable, lam_stable], rtol=1e-8)
    (origin,) = by_zeros[2]
    assert origin.type == "saddle" and origin.n_unstable == 2
    np.testing.assert_allclose(big(origin), [lam_unstable] * 2, rtol=1e-8)
    for p in res.points:                           # sorted by |lambda|, descending
        assert np.all(np.diff(np.abs(p.eigenvalues)) <= 1e-12)
        assert p.q < 1e-12


def check_stability_by_iteration(F, res, steps=20):
    """A point is a fixed point of F, and a small kick decays iff the point is typed stable
    (few steps: at a saddle even rounding error grows like |lambda|^steps)."""
    rng = np.random.default_rng(7)
    for p in res.points:
        x = p.point[None]
        assert np.linalg.norm(F(x) - x) < 1e-10
        y = x.copy()
        for _ in range(steps):
            y = F(y)
        # iterating from the point stays there (up to rounding, amplified at a saddle)
        assert np.linalg.norm(y - x) < 1e-12 + 1e-13 * max(1.0, p.max_abs_eigenvalue) ** steps
        kick = x + 1e-6 * rng.standard_normal(x.shape)
        for _ in range(steps):
            kick = F(kick)
        assert (np.linalg.norm(kick - x) < 1e-7) == (p.type == "stable")


def bistable_starts(n=60, seed=1):
    starts = np.random.default_rng(seed).uniform(-1.5, 1.5, (n, 2))
    return np.vstack([starts, [[0.0, 0.0]], [[0.01, -0.01]]])


def test_elman_bistable_pair():
    """h = tanh(2 h) per unit: corners +-0.9575 (eigenvalues 2 (1 - h*^2)), edges, origin (2)."""
    net = rnnlab.RNN(3, 2, dtype=np.float64)
    for k, v in net.params.items():
        v[...] = 2 * np.eye(2) if k == "weight_hh_l0" else (0.3 if k == "weight_ih_l0" else 0.0)
    F = StepMap.from_recurrent(net)                 # x_const = zeros
    res = find_fixed_points(F, bistable_starts())
    check_corners_edges_origin(res, H_STAR, 2 * (1 - H_STAR ** 2), 2.0)
    check_stability_by_iteration(F, res)
    assert (res.starts, res.converged, res.dropped_not_converged, res.dropped_outliers) == (62, 62, 0, 0)
    assert res.duplicates_merged == 62 - 9 and sum(p.count for p in res.points) == 62
    assert np.all(res.start_point >= 0) and np.all(res.start_status == "converged")
    assert res.iterations.max() < 30


def test_gru_bistable_pair():
    """r = z = 1/2 (no recurrent gate weights), W_hn = 4 I: n = tanh(2 h), h' = (n + h) / 2.
    Same points as tanh(2h); eigenvalues (2 (1 - h*^2) + 1) / 2 and (2 + 1) / 2 = 1.5."""
    net = rnnlab.GRU(3, 2, dtype=np.float64)
    for v in net.params.values():
        v[...] = 0.0
    net.params["weight_hh_l0"][4:6] = 4 * np.eye(2)
    F = StepMap.from_recurrent(net)
    res = find_fixed_points(F, bistable_starts())
    check_corners_edges_origin(res, H_STAR, (2 * (1 - H_STAR ** 2) + 1) / 2, 1.5)
    check_stability_by_iteration(F, res)
    assert res.converged == 62


def test_lstm_bistable_pair():
    """i = f = o = 1/2 (constant), W_hg = 6 I: c' = (c + tanh(6 h)) / 2, h = tanh(c) / 2, so
    c* = tanh(3 tanh c*). State [h, c]: per unit the 2x2 Jacobian block has rank 1, eigenvalues
    0 and f + o (1 - tanh^2 c*) i 6 (1 - c*^2)."""
    net = rnnlab.LSTM(3, 2, dtype=np.float64)
    for v in net.params.values():
        v[...] = 0.0
    net.params["weight_hh_l0"][4:6] = 6 * np.eye(2)          # the g rows
    F = StepMap.from_recurrent(net)
    assert F.size == 4
    c = 1.0
    for _ in range(200):
        c = np.tanh(3 * np.tanh(c))
    lam = lambda c: 0.5 + 0.5 * (1 - np.tanh(c) ** 2) * 0.5 * 6 * (1 - c ** 2)
    h_star = 0.5 * np.tanh(c)
    b = bistable_starts()
    starts = np.hstack([0.5 * np.tanh(b), b])             # [h, c] with h = tanh(c) / 2
    res = find_fixed_points(F, starts)
    check_corners_edges_origin(res, h_star, lam(c), lam(0.0))
    for p in res.points:                                  # c = tanh(...) as claimed
        np.testing.assert_allclose(p.point[:2], 0.5 * np.tanh(p.point[2:]), atol=1e-12)
        np.testing.assert_allclose(np.abs(p.eigenvalues[2:]), 0.0, atol=1e-12)
    check_stability_by_iteration(F, res)


def test_linear_relu_region_has_one_stable_point():
    """h = relu(0.5 h + b), b > 0: the single fixed point 2 b, eigenvalues 0.5."""
    b = np.array([0.2, 0.4, 0.1])
    F = StepMap(ElmanCell("relu"), 0.5 * np.eye(3), None, b)
    res = find_fixed_points(F, np.random.default_rng(2).uniform(0, 2, (20, 3)))
    assert len(res.points) == 1 and res.converged == 20
    p = res.points[0]
    np.testing.assert_allclose(p.point, 2 * b, atol=1e-12)
    np.testing.assert_allclose(p.eigenvalues, 0.5, rtol=1e-12)
    assert p.type == "stable" and p.count == 20


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_contractive_gated_cell_has_one_fixed_point_that_iteration_reaches(kind):
    net = stack(kind, input_size=3, hidden=6, layers=1, scale=0.6, seed=5)
    F = StepMap.from_recurrent(net, x_const=np.array([1.0, -0.5, 0.8]))
    rng = np.random.default_rng(3)
    res = find_fixed_points(F, rng.uniform(-1, 1, (30, F.size)))
    assert len(res.points) == 1 and res.converged == 30
    p = res.points[0]
    assert p.type == "stable" and p.max_abs_eigenvalue < 1
    assert np.linalg.norm(F(p.point) - p.point) < 1e-10
    y = rng.uniform(-1, 1, F.size)                      # a long forward run ends at the point
    for _ in range(500):
        y = F(y)
    np.testing.assert_allclose(y, p.point, atol=1e-10)
    check_stability_by_iteration(F, res)


@pytest.mark.parametrize("hidden,starts_n,block,sizes", [(2, 62, 16, [16, 16, 15, 15]),
                                                         (64, 129, 64, [43, 43, 43])])
def test_starts_solved_in_cache_sized_blocks_give_the_result_of_one_batch(monkeypatch, hidden, starts_n,
                                                                           block, sizes):
    """Each start's iteration is its own: balanced blocks of starts (the default for many starts)
    and one batch of all of them end in the same points, counts and statuses, the states equal
    to rounding."""
    import rnnlab.analysis.fixed_points as fp
    if hidden == 2:
        F = StepMap(ElmanCell("tanh"), 2 * np.eye(2), None, np.zeros(2))     # h = tanh(2 h): 9 points
        starts = bistable_starts()
    else:
        F = StepMap.from_recurrent(stack("rnn-tanh", input_size=3, hidden=hidden, layers=1, scale=1.5, seed=3))
        starts = np.random.default_rng(5).uniform(-1, 1, (starts_n, F.size))
    assert len(starts) == starts_n
    calls = []
    solve = fp._levenberg_marquardt
    monkeypatch.setattr(fp, "_levenberg_marquardt",
                        lambda F, s, *a, **kw: calls.append(len(s)) or solve(F, s, *a, **kw))
    monkeypatch.setattr(fp, "_LM_CHUNK_BYTES", 8 * hidden * hidden * block)
    blocked = find_fixed_points(F, starts)
    assert calls[:len(sizes)] == sizes
    monkeypatch.setattr(fp, "_LM_CHUNK_BYTES", 1 << 40)
    whole = find_fixed_points(F, starts)
    assert calls[len(sizes) + 1] == starts_n
    assert len(whole.points) == len(blocked.points) and (hidden > 2 or len(whole.points) == 9)
    np.testing.assert_allclose(whole.final_states, blocked.final_states, atol=1e-9)
    np.testing.assert_array_equal(whole.iterations, blocked.iterations)
    assert list(whole.start_status) == list(blocked.start_status)
    assert [p.count for p in whole.points] == [p.count for p in blocked.points]
    for a, b in zip(whole.points, blocked.points):
        np.testing.assert_allclose(a.point, b.point, atol=1e-9)


# ---------------------------------------------------------------- what gets dropped, and why
def test_starts_that_do_not_converge_are_counted_as_dropped():
    F = StepMap(ElmanCell("tanh"), 2 * np.eye(2), None, np.zeros(2))
    exact = np.array([[0.0, 0.0], [H_STAR, -H_STAR]])      # already fixed points: 0 iterations
    rand = np.random.default_rng(4).uniform(-1.5, 1.5, (10, 2))
    res = find_fixed_points(F, np.vstack([exact, rand]), max_iters=1)
    assert res.starts == 12 and res.converged == 2
    assert res.dropped_not_converged == 10 and res.hit_max_iters == 10 and res.stalled == 0
    assert list(res.start_status) == ["converged"] * 2 + ["max_iters"] * 10
    assert list(res.start_point[2:]) == [-1] * 10 and len(res.points) == 2
    assert "12 starts: 2 converged, 10 dropped" in res.summary()


def test_starts_still_running_when_the_time_budget_is_spent_are_counted_as_out_of_time():
    F = StepMap(ElmanCell("tanh"), 2 * np.eye(2), None, np.zeros(2))
    exact = np.array([[0.0, 0.0], [H_STAR, -H_STAR]])      # converged before the first iteration
    rand = np.random.default_rng(4).uniform(-1.5, 1.5, (10, 2))
    told = []
    res = find_fixed_points(F, np.vstack([exact, rand]), seconds=1e-9, progress=lambda *a: told.append(a))
    assert res.converged == 2 and res.out_of_time == 10 and res.dropped_not_converged == 10
    assert list(res.start_status) == ["converged"] * 2 + ["out_of_time"] * 10
    assert "10 out of time" in res.summary() and res.to_json()["counts"]["out_of_time"] == 10
    assert res.to_json()["settings"]["seconds"] == 1e-9 and told == []     # stopped before an iteration
    whole = find_fixed_points(F, np.vstack([exact, rand]), progress=lambda *a: told.append(a))
    assert whole.out_of_time == 0 and whole.converged == 12
    assert told[-1] == (12, 12) and [t[1] for t in told] == [12] * len(told)
    assert [t[0] for t in told] == sorted(t[0] for t in told)            # settled starts only grow


def test_starts_caught_by_a_slow_point_are_counted_as_stalled():
    """h = tanh(2 h + 0.6): past the saddle-node at b = 0.533 the negative pair is gone and
    leaves a ghost, a local minimum of q near h = -0.74 with q > 0; starts left of it stall."""
    F = StepMap(ElmanCell("tanh"), np.array([[2.0]]), None, np.array([0.6]))
    left = np.linspace(-2.0, -0.8, 7)[:, None]
    right = np.linspace(0.5, 1.5, 5)[:, None]
    res = find_fixed_points(F, np.vstack([left, right]))
    assert res.stalled == 7 and res.hit_max_iters == 0 and res.converged == 5
    np.testing.assert_allclose(res.final_states[:7, 0], -0.7407, atol=1e-3)
    assert np.all(res.final_q[:7] > 5e-4)
    (p,) = res.points
    assert p.type == "stable" and p.count == 5


def test_points_far_from_every_start_are_dropped_as_outliers():
    """relu(2 h - 5) per unit: fixed points {0, 5}^2. Starts near 0 reach 0; starts just past
    the kink (2.6) jump to 5 (a point 3.4 away from any start)."""
    F = StepMap(ElmanCell("relu"), 2 * np.eye(2), None, np.full(2, -5.0))
    near = np.random.default_rng(5).uniform(0, 1, (20, 2))
    far = np.array([[2.6, 2.6], [2.7, 2.65], [2.62, 2.8]])
    res = find_fixed_points(F, np.vstack([near, far]), outlier_distance=1.0)
    assert (res.converged, res.dropped_outliers, res.duplicates_merged) == (23, 3, 19)
    assert list(res.start_status[20:]) == ["outlier"] * 3
    (p,) = res.points
    np.testing.assert_allclose(p.point, 0.0, atol=1e-12)
    assert "3 dropped (outliers)" in res.summary()
    kept = find_fixed_points(F, np.vstack([near, far]), outlier_distance=np.inf)
    assert kept.dropped_outliers == 0 and len(kept.points) == 2
    top = [p for p in kept.points if p.point[0] > 1][0]
    np.testing.assert_allclose(top.point, 5.0, atol=1e-12)
    assert top.n_unstable == 2
    # default distance: 3 x the spread of the starts; a point at (10, 10, 10) from starts in
    # [0, 1]^3 is far outside
    G = StepMap(ElmanCell("relu"), 0.5 * np.eye(3), None, np.full(3, 5.0))
    starts = np.random.default_rng(6).uniform(0, 1, (10, 3))
    res = find_fixed_points(G, starts)
    assert res.converged == 10 and res.dropped_outliers == 10 and not res.points
    assert res.outlier_distance == pytest.approx(3 * np.sqrt(starts.var(axis=0).sum()))


def test_result_json_and_summary():
    F = StepMap(ElmanCell("tanh"), 2 * np.eye(2), None, np.zeros(2))
    res = find_fixed_points(F, bistable_starts())
    d = json.loads(json.dumps(res.to_json(top_eigenvalues=2), allow_nan=False))
    assert d["counts"]["starts"] == 62 and d["counts"]["unique_points"] == 9
    assert d["counts"]["types"] == {"stable": 4, "saddle index 1": 4, "saddle index 2": 1}
    for p in d["points"]:
        assert len(p["eigenvalues"]) == 2 and all(len(e) == 2 for e in p["eigenvalues"])
        assert len(p["point"]) == 2 and isinstance(p["count"], int)
    s = res.summary()
    assert s.startswith("4 stable, 4 saddles of index 1, 1 saddle of index 2; 62 starts: 62 converged")
    assert "53 duplicates merged" in s


def test_sample_starts():
    states = np.random.default_rng(0).standard_normal((4, 5, 3))
    s = sample_starts(states, 10, 0.0, rng=1)
    flat = states.reshape(-1, 3)
    assert s.shape == (10, 3) and len({tuple(r) for r in s}) == 10
    assert all(np.any(np.all(flat == r, axis=1)) for r in s)
    np.testing.assert_array_equal(s, sample_starts(flat, 10, 0.0, rng=1))
    noisy = sample_starts(flat, 4000, 0.1, rng=np.random.default_rng(2))   # with replacement
    base = sample_starts(flat, 4000, 0.0, rng=np.random.default_rng(2))
    assert noisy.shape == (4000, 3)
    assert np.std(noisy - base) == pytest.approx(0.1, rel=0.05)


def test_docstring_example():
    import rnnlab.analysis.fixed_points as mod
    result = doctest.testmod(mod)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("n, title", [(1, "Jacobian eigenvalues at 1 fixed point"),
                                      (2, "Jacobian eigenvalues at 2 fixed points")])
def test_fixed_point_figure_title_counts_points(monkeypatch, tmp_path, n, title):
    from types import SimpleNamespace

    import rnnlab.present.analysis_figures as figures
    from rnnlab.analysis.fixed_points import FixedPoint
    seen = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, **kw: seen.append(fig.axes[0].get_title()))
    point = FixedPoint(np.zeros(2), 1, 0.0, np.array([0.5 + 0j, 0.2 + 0j]), 0, "stable")
    figures.plot_fixed_points(tmp_path / "fp.png", SimpleNamespace(points=[point] * n))
    assert seen == [title]


def _bistable_regressor():
    """h = tanh(2 h + u) in one unit, read out as y = h: two memories (+-0.957) and a saddle at
    0 at zero input; the +-1 targets make the readout decode states."""
    model = rnnlab.StepRegressor(1, 1, 1)
    sd = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    sd["rnn.weight_ih_l0"][:] = 1.0
    sd["rnn.weight_hh_l0"][:] = 2.0
    sd["fc.weight"][:] = 1.0
    model.load_state_dict(sd)
    rng = np.random.default_rng(0)
    X = rng.choice([-1.0, 0.0, 1.0], (60, 12, 1), p=[0.1, 0.8, 0.1]).astype(np.float32)
    y = np.sign(np.cumsum(X, axis=1) + 0.5).astype(np.float32)
    return model, rnnlab.Task.from_arrays(X, y)


def test_only_stable_points_are_decoded_and_the_input_is_said():
    from rnnlab.analysis.analyze import analyze
    model, task = _bistable_regressor()
    fp = analyze(model, task, fp_starts=64).json["fixed_points"]
    kinds = sorted((p["n_unstable"], p.get("decoded")) for p in fp["points"])
    assert kinds == [(0, "+"), (0, "-"), (1, None)]            # the saddle at 0 names no memory
    assert fp["decoded"]["states"] == ["+", "-"] and fp["input"] == [0.0]
    assert fp["input_reason"].startswith("zero, the default")
    at = analyze(model, task, fp_starts=64, fp_input=0.75).json["fixed_points"]   # one number, one input
    assert at["input"] == [0.75] and at["input_reason"] == "given"
    assert [p["type"] for p in at["points"]] == ["stable"]      # past the saddle-node only one memory is left


@pytest.mark.parametrize("value,got", [([1.0, 2.0], "got 2 values"), ([[1.0, 2.0]], "got 2 values"),
                                       ([[[1.0, 2.0]]], "an array of shape (1, 1, 2)"),
                                       ("x", "takes numbers, a list of inputs, or 'conditions'; got 'x'"),
                                       ([1.0, "a"], "must be 1 number(s)")])
def test_a_constant_input_of_the_wrong_shape_is_one_sentence(value, got):
    from rnnlab.analysis.analyze import analyze
    model, task = _bistable_regressor()
    with pytest.raises(rnnlab.InputError, match=re.escape(got)):
        analyze(model, task, fp_input=value)


def _four_bistable_units():
    """h = tanh(2 h) in 4 independent units: 3^4 = 81 fixed points (16 stable, then 32, 24, 8
    and 1 saddles of index 1 to 4), the count of a 4-bit flip-flop."""
    return StepMap(ElmanCell("tanh"), 2 * np.eye(4), None, np.zeros(4))


def test_rounds_of_starts_go_on_until_one_finds_nothing_new():
    from rnnlab.analysis.fixed_points import find_fixed_points_in_rounds
    rng = np.random.default_rng(0)
    told = []
    res = find_fixed_points_in_rounds(_four_bistable_units(), lambda n: rng.uniform(-1.2, 1.2, (n, 4)), 256,
                                      max_rounds=50, progress=lambda *a: told.append(a))
    assert len(res.points) == 81
    assert res.type_counts() == {"stable": 16, "saddle index 1": 32, "saddle index 2": 24,
                                 "saddle index 3": 8, "saddle index 4": 1}
    new = [r["new_points"] for r in res.rounds]
    assert new[-1] == 0 and all(n > 0 for n in new[:-1]) and sum(new) == 81 and len(new) > 2
    assert res.starts == 256 * len(new) == len(res.start_point) == len(res.start_status)
    kept = res.start_point[res.start_point >= 0]
    assert sorted(np.bincount(kept, minlength=81)) == sorted(p.count for p in res.points)
    assert {t[0] for t in told} == set(range(1, len(new) + 1))            # every round followed
    for k, p in enumerate(res.points):                                     # each start names its own point
        members = res.final_states[res.start_point == k]
        assert np.abs(members - p.point).max() < 1e-3
    capped = find_fixed_points_in_rounds(_four_bistable_units(), lambda n: rng.uniform(-1.2, 1.2, (n, 4)), 16,
                                         max_rounds=2)
    assert len(capped.rounds) == 2 and capped.rounds[-1]["new_points"] > 0 and len(capped.points) < 81
    assert "32 starts in 2 rounds" in capped.summary()


def test_analysis_says_when_the_last_round_still_found_points():
    from rnnlab.analysis.analyze import analyze
    model = rnnlab.StepRegressor(1, 4, 1)
    sd = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    sd["rnn.weight_hh_l0"][:] = 2 * np.eye(4)
    sd["rnn.weight_ih_l0"][:] = np.array([[1.0], [-1.0], [0.5], [-0.7]])
    sd["fc.weight"][:] = 1.0
    model.load_state_dict(sd)
    X = np.random.default_rng(0).standard_normal((40, 15, 1)).astype(np.float32)
    task = rnnlab.Task.from_arrays(X, np.sign(X))
    fp = analyze(model, task, fp_starts=8, fp_rounds=1).json["fixed_points"]
    assert len(fp["rounds"]) == 1 and fp["counts"]["unfound_estimate"] >= 1
    assert any("stopped at round 1, the last allowed, with about" in n and "estimated unfound" in n
               and "fp_rounds" in n for n in fp["notes"])
    assert "estimated unfound points" in fp["summary"]
    with pytest.raises(rnnlab.InputError, match="fp_rounds must be at least 1"):
        analyze(model, task, fp_rounds=0)


def test_unfound_estimate_is_chao1_of_the_points_reached_once_and_twice():
    from rnnlab.analysis.fixed_points import unfound_estimate
    assert unfound_estimate([500, 3, 7]) == 0.0                  # nothing rare: nothing likely missed
    assert unfound_estimate([1, 1, 1, 40]) == 3.0                # f1 = 3, f2 = 0: 3 * 2 / 2
    assert unfound_estimate([1, 1, 1, 2, 2, 9]) == pytest.approx(1.0)     # 3 * 2 / (2 * 3)


def test_rounds_do_not_stop_on_an_empty_round_while_rare_points_say_more_are_left():
    """Before: the first round that found nothing new ended the search. Now a round ends it only
    when the Chao1 estimate of unfound points was below one after it and after the round before."""
    from rnnlab.analysis.fixed_points import find_fixed_points_in_rounds
    rng = np.random.default_rng(2)
    res = find_fixed_points_in_rounds(_four_bistable_units(), lambda n: rng.uniform(-1.2, 1.2, (n, 4)), 32,
                                      max_rounds=200)
    est = [r["unfound_estimate"] for r in res.rounds]
    new = [r["new_points"] for r in res.rounds]
    assert len(res.points) == 81 and est[-1] < 1 and est[-2] < 1 and res.unfound_estimate == est[-1]
    assert not any(a < 1 and b < 1 for a, b in zip(est[:-2], est[1:-1]))      # it stopped at the first chance
    assert any(n == 0 and e >= 1 for n, e in zip(new[:-2], est[:-2]))           # an empty round did not stop it


def _gru_with_closing_gate():
    """A 1-unit GRU whose update gate closes as h grows (z = sigmoid(12 h)): past h ~ 3.3 z rounds
    to 1.0 and F(h) - h = (1 - z)(n - h) is exactly 0, a plateau of roots no trajectory reaches
    (h stays in [-1, 1]); the network's one real fixed point is n(h) = h = tanh(0.5 h + 0.3)."""
    from rnnlab.nn.cells import GRUCell
    W_hh = np.array([[0.0], [12.0], [0.5]])                   # rows: r, z, n
    return StepMap(GRUCell(), W_hh, np.zeros(3), np.array([0.0, 0.0, 0.3]))


def test_roots_outside_the_values_h_can_take_are_not_reported():
    F = _gru_with_closing_gate()
    inside = np.linspace(-0.9, 0.9, 10)[:, None]
    outside = np.linspace(3.6, 4.0, 5)[:, None]               # q = 0 there already: "converged" at once
    res = find_fixed_points(F, np.vstack([inside, outside]), outlier_distance=np.inf)
    assert res.dropped_unreachable == 5 and list(res.start_status[10:]) == ["unreachable"] * 5
    (p,) = res.points
    assert abs(p.point[0]) < 1 and p.q < 1e-20 and F(p.point) == pytest.approx(p.point, abs=1e-10)
    assert "5 dropped (outside [-1, 1], the values h can take)" in res.summary()
    assert res.to_json()["counts"]["dropped_unreachable"] == 5
    # the solver's steps stay in the range: starts that ran off towards the plateau are held at its edge
    s = np.array([[0.99]])
    assert F.clip_to_range(s + 2.0)[0, 0] == 1.0


def test_a_root_a_float64_polish_cannot_make_exact_is_a_slow_point_not_a_fixed_point():
    """h = tanh(2 h + b) just past its saddle-node (b = b* - 2e-7): the pair of points near
    h = 0.707 is gone, leaving a ghost where q ~ 5e-15 < tol = 1e-12 but no lower; before, it
    was reported as a fixed point. The stable point near -0.96 polishes to rounding level."""
    u = np.arctanh(np.sqrt(0.5))
    b = u - 2 * np.tanh(u) - 2e-7
    F = StepMap(ElmanCell("tanh"), np.array([[2.0]]), None, np.array([b]))
    starts = np.vstack([np.linspace(0.6, 0.8, 9)[:, None], np.linspace(-1.0, -0.9, 3)[:, None]])
    res = find_fixed_points(F, starts, outlier_distance=np.inf)
    (p,) = res.points
    assert p.point[0] < -0.9 and p.q < 1e-20
    assert res.dropped_unpolished == 9 and "9 dropped (a float64 polish could not take q below 1e-18)" in res.summary()
    from rnnlab.analysis.fixed_points import slow_points
    (ghost,) = slow_points(F, res, starts)
    assert ghost.point[0] == pytest.approx(np.sqrt(0.5), abs=2e-3) and 1e-16 < ghost.q < 1e-12


@pytest.mark.slow
def test_a_trained_5_bit_flip_flop_gets_all_243_points_at_the_defaults():
    """Before: 240 at the defaults, and 241 with fp_rounds=20 (one empty round ended it)."""
    from rnnlab.analysis.analyze import analyze
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    t = Trainer(config=PRESETS["flipflop"].replace(bits=5))
    t.fit()
    fp = analyze(t.model, t.task).json["fixed_points"]
    assert fp["counts"]["types"] == {"stable": 32, "saddle index 1": 80, "saddle index 2": 80,
                                     "saddle index 3": 40, "saddle index 4": 10, "saddle index 5": 1}
    assert fp["counts"]["unfound_estimate"] < 1 and not fp["notes"]


@pytest.mark.slow
def test_a_trained_4_bit_flip_flop_gets_all_81_points_at_the_defaults(tmp_path):
    """The case that needed rounds: 512 starts found 68-70 of the 81 points; rounds of 512 until
    one finds nothing new find them all (16 memories and the 32/24/8/1 saddles between them)."""
    from rnnlab.analysis.analyze import analyze
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    t = Trainer(config=PRESETS["flipflop"].replace(bits=4))
    t.fit()
    fp = analyze(t.model, t.task).json["fixed_points"]
    assert fp["counts"]["types"] == {"stable": 16, "saddle index 1": 32, "saddle index 2": 24,
                                     "saddle index 3": 8, "saddle index 4": 1}
    assert len(fp["rounds"]) > 1 and fp["rounds"][-1]["new_points"] == 0
    assert fp["counts"]["unfound_estimate"] < 1
    assert fp["decoded"]["distinct_states"] == 16


@pytest.mark.parametrize("kind,scale", [("rnn-tanh", 1.5), ("lstm", 3.0), ("gru", 3.0)])
def test_matrix_free_steps_find_the_points_dense_steps_find(kind, scale):
    """Solving each LM step through J v and J^T v products (what large states use) reaches the
    same fixed points, of the same types, as forming every start's Jacobian."""
    F = StepMap.from_recurrent(stack(kind, input_size=3, hidden=12, layers=1, scale=scale, seed=3))
    starts = np.random.default_rng(5).uniform(-1, 1, (64, F.size))
    dense = find_fixed_points(F, starts, matrix_free=False)
    free = find_fixed_points(F, starts, matrix_free=True)
    assert len(dense.points) == len(free.points) > 0
    assert dense.type_counts() == free.type_counts()
    for p in dense.points:
        nearest = min(np.linalg.norm(q.point - p.point) for q in free.points)
        assert nearest < 1e-6
    assert free.converged >= dense.converged - 2                # the same starts, up to a few at the edge


@pytest.mark.slow
def test_a_trained_gru_flip_flop_search_finishes_its_starts_within_the_budget():
    """Before: a GRU's search at defaults hit its 30 s budget with 25-63% of starts unfinished
    (starts ran off where the update gates close), and memories whose eigenvalues lie within
    3e-5 of 1 need 50-85 polish steps."""
    from rnnlab.analysis.analyze import analyze
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    t = Trainer(config=PRESETS["flipflop"].replace(model="gru"))
    t.fit()
    fp = analyze(t.model, t.task).json["fixed_points"]
    assert fp["counts"]["out_of_time"] == 0
    assert fp["counts"]["types"]["stable"] == 8 and fp["decoded"]["distinct_states"] == 8
    assert all(p["q"] < 1e-20 for p in fp["points"])


def test_a_search_that_reaches_no_point_says_it_could_not_estimate_what_is_left():
    """relu(1.5 h + 1) runs away from every start: no fixed point. Before, the estimate read 0
    ("nothing unfound"); now it is not estimable, said, and two empty rounds end the search."""
    from rnnlab.analysis.fixed_points import find_fixed_points_in_rounds, unfound_estimate
    assert np.isnan(unfound_estimate([]))
    F = StepMap(ElmanCell("relu"), 1.5 * np.eye(2), None, np.full(2, 1.0))
    rng = np.random.default_rng(0)
    res = find_fixed_points_in_rounds(F, lambda n: rng.uniform(0, 1, (n, 2)), 16, max_rounds=10)
    assert len(res.rounds) == 2 and not res.points and np.isnan(res.unfound_estimate)
    assert "unfound points not estimable (no start reached a point)" in res.summary()
