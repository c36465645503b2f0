"""Dynamics in continuous time: the fixed-point analysis of a CTRNN moves its current x (its rate
r = f(x) follows), reads each eigenvalue lambda of the Euler step as mu = (lambda - 1)/a, calls a
point stable when every Re(mu) < 0, gives time constants -1/Re(mu) in tau and the speed |dx/dt|,
and shows a Dale network's excitatory and inhibitory units apart.

The hand-built networks are chosen so that the discrete reading (|lambda| < 1) gives the wrong
answer: a = 0.5 turns a slowly decaying rotation mu = -0.1 +- 1i into |lambda| = 1.07, and a fast
decay mu = -5 into lambda = -1.5."""

import json

import numpy as np
import pytest

import rnnlab
from rnnlab.analysis.analyze import analyze
from rnnlab.analysis.fixed_points import StepMap, find_fixed_points, steady_layer_input
from rnnlab.analysis.manifolds import find_manifolds
from rnnlab.analysis.selection import selection_at
from rnnlab.data.task import Task
from rnnlab.nn.cells.ctrnn import rate
from rnnlab.nn.heads import SequenceClassifier
from rnnlab.nn.losses import softmax_cross_entropy
from rnnlab.nn.optim import Adam
from rnnlab.present.analysis_figures import draw_analysis_figures

DT, TAU = 50.0, 100.0                      # a = 0.5: a coarse step, where the two readings part


def ctrnn(W, nonlinearity="tanh", D=1, W_ih=None, b=None, dt=DT, tau=TAU):
    """A one-layer float64 CTRNN holding the given recurrent weights (biases 0 unless given)."""
    H = len(W)
    net = rnnlab.CTRNN(D, H, nonlinearity=nonlinearity, dt=dt, tau=tau, dtype=np.float64, seed=0)
    net.params["weight_hh_l0"][...] = W
    net.params["weight_ih_l0"][...] = np.zeros((H, D)) if W_ih is None else W_ih
    net.params["bias_ih_l0"][...] = 0.0 if b is None else b
    net.params["bias_hh_l0"][...] = 0.0
    return net.eval()


def rotation_net():
    """tanh units, zero input: x* = 0 with J_c = -I + W = blocks [[-0.1, -1], [1, -0.1]] and [-5]:
    mu = -0.1 +- 1i (time constant 10 tau) and -5 (0.2 tau); every Re(mu) < 0 (stable), while the
    Euler step's lambda = 1 + 0.5 mu = 0.95 +- 0.5i (|lambda| 1.07) and -1.5 lie outside the unit circle."""
    W = np.array([[0.9, -1.0, 0.0], [1.0, 0.9, 0.0], [0.0, 0.0, -4.0]])
    return ctrnn(W)


def finite_difference_jacobian(F, s, eps=1e-6):
    return np.stack([(F(s + eps * e) - F(s - eps * e)) / (2 * eps) for e in np.eye(s.size)], axis=1)


# ---------------------------------------------------------------- the map: state x, the cell's own step
@pytest.mark.parametrize("nonlinearity", ["relu", "tanh", "softplus"])
def test_the_state_is_the_current_and_one_step_is_the_layers(nonlinearity):
    rng = np.random.default_rng(0)
    net = rnnlab.CTRNN(2, 5, nonlinearity=nonlinearity, dt=20, tau=100, dale=0.8, dtype=np.float64, seed=3).eval()
    u = rng.standard_normal(2)
    F = StepMap.from_recurrent(net, x_const=u)
    assert F.size == 5 and F.clock.dt == 20 and F.clock.alpha == pytest.approx(0.2)
    x = rng.standard_normal((4, 5))
    _, (r_n, x_n) = net.forward(np.broadcast_to(u, (4, 1, 2)).copy(), h0=(rate(x, nonlinearity)[None], x[None]))
    np.testing.assert_allclose(F(x), x_n[0], atol=1e-12)
    np.testing.assert_allclose(F.output(x), rate(x, nonlinearity), atol=0)      # what the readout sees: r = f(x)
    np.testing.assert_allclose(F.output(F(x)), r_n[0], atol=1e-12)
    # per-step states [r | x] give the map's states x
    _, _, states = net.forward(rng.standard_normal((3, 6, 2)), return_states=True)
    np.testing.assert_array_equal(F.state_of(states[0]), states[0][..., 5:])


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh", "softplus"])
def test_the_jacobian_is_the_euler_steps_and_the_vjp_chains_through_the_rate(nonlinearity):
    """J = I + a(-I + W diag f'(x)) (by hand), equal to finite differences of F and to the rows
    the cell's backward gives (dx_prev + dr_prev f'(x))."""
    rng = np.random.default_rng(1)
    H, a = 4, 0.25
    net = ctrnn(rng.standard_normal((H, H)), nonlinearity, D=2, W_ih=rng.standard_normal((H, 2)),
                b=rng.standard_normal(H), dt=25, tau=100)
    F = StepMap.from_recurrent(net, x_const=rng.standard_normal(2))
    x = rng.uniform(0.3, 1.5, H) * rng.choice([-1, 1], H)            # away from relu's kink
    slope = {"relu": (x > 0).astype(float), "tanh": 1 - np.tanh(x) ** 2, "softplus": 1 / (1 + np.exp(-x))}
    J = np.eye(H) + a * (-np.eye(H) + net.params["weight_hh_l0"] * slope[nonlinearity][None, :])
    np.testing.assert_allclose(F.jacobian(x), J, atol=1e-12)
    np.testing.assert_allclose(finite_difference_jacobian(F, x), J, atol=1e-7)
    v = rng.standard_normal(H)
    np.testing.assert_allclose(F.vjp(x, v), J.T @ v, atol=1e-12)


# ---------------------------------------------------------------- reading the eigenvalues in continuous time
def test_a_point_is_stable_by_re_mu_where_the_euler_steps_lambda_lies_outside_the_unit_circle():
    F = StepMap.from_recurrent(rotation_net())
    res = find_fixed_points(F, 0.05 * np.random.default_rng(0).standard_normal((16, 3)))
    assert len(res.points) == 1
    p = res.points[0]
    np.testing.assert_allclose(p.point, 0.0, atol=1e-8)
    lam = np.sort_complex(np.linalg.eigvals(F.jacobian(p.point)))
    np.testing.assert_allclose(lam, [-1.5, 0.95 - 0.5j, 0.95 + 0.5j], atol=1e-9)
    assert (np.abs(lam) > 1).all()                   # read as a discrete map: a saddle of index 3
    assert p.type == "stable" and p.n_unstable == 0 and res.type_counts() == {"stable": 1}
    mu = p.continuous_eigenvalues
    np.testing.assert_allclose(np.sort_complex(mu), [-5, -0.1 - 1j, -0.1 + 1j], atol=1e-8)
    np.testing.assert_allclose(mu.real[:2], -0.1, atol=1e-8)        # the slowest mode first, not the largest |lambda|
    np.testing.assert_allclose(p.time_constants, [10, 10, 0.2], rtol=1e-7)    # -1/Re(mu), in tau
    d = p.to_json()
    assert d["time"] == "continuous" and d["time_constants"] == pytest.approx([10, 10, 0.2], rel=1e-7)
    assert d["max_real_continuous_eigenvalue"] == pytest.approx(-0.1, abs=1e-8)
    text = res.summary()
    assert text.startswith("1 stable;") and "continuous time (dt = 50, tau = 100, a = dt/tau = 0.5)" in text
    assert "Re(mu) < 0" in text and "in tau: 10" in text
    assert "1 of the stable points is unstable as the network runs them" in text    # the Euler steps of dt diverge
    assert res.to_json()["settings"]["time"]["alpha"] == 0.5


def test_a_growing_mode_makes_a_saddle_whose_index_counts_re_mu_above_zero():
    """W = diag(1.2, 0.5, -4) with tanh at x* = 0: mu = 0.2, -0.5, -5. Index 1 (the growing mode),
    not 2 as |lambda| (1.1, 0.75, -1.5) would say; the growing mode's time constant is -1/0.2."""
    F = StepMap.from_recurrent(ctrnn(np.diag([1.2, 0.5, -4.0])))
    res = find_fixed_points(F, 0.02 * np.random.default_rng(2).standard_normal((8, 3)), outlier_distance=np.inf)
    p = min(res.points, key=lambda p: np.linalg.norm(p.point))
    np.testing.assert_allclose(p.point, 0.0, atol=1e-8)
    assert p.type == "saddle" and p.n_unstable == 1
    np.testing.assert_allclose(p.continuous_eigenvalues, [0.2, -0.5, -5.0], atol=1e-9)
    np.testing.assert_allclose(p.time_constants, [-5.0, 2.0, 0.2], rtol=1e-8)


def test_speed_is_dx_dt():
    """|F(x) - x| / dt is |dx/dt| = |-x + W f(x) + W_in u + b| / tau at any state, and a point's
    reported speed is that at the point."""
    rng = np.random.default_rng(4)
    H, D = 5, 2
    W, W_ih = rng.standard_normal((H, H)), rng.standard_normal((H, D))
    b, u = rng.standard_normal(H), rng.standard_normal(D)
    net = ctrnn(W, "softplus", D=D, W_ih=W_ih, b=b, dt=10.0, tau=40.0)
    F = StepMap.from_recurrent(net, x_const=u)
    x = rng.standard_normal((6, H))
    dxdt = (-x + rate(x, "softplus") @ W.T + W_ih @ u + b) / 40.0
    np.testing.assert_allclose(F.speed(x), np.linalg.norm(dxdt, axis=1), rtol=1e-10)
    res = find_fixed_points(F, x, tol=1e-3, polish_iters=0)       # stopped early: points that still move
    for p in res.points:
        assert p.to_json()["speed"] == pytest.approx(float(F.speed(p.point)), rel=1e-6)


def test_a_line_attractor_in_continuous_time_with_a_rotation_the_unit_circle_would_call_unstable():
    """relu units on the positive side are linear: W = I + J_c with J_c = 0 along v = (1,1,1)/sqrt 3 and
    [[-0.1, -1], [1, -0.1]] across it. Every x = c v (c > 0) is a fixed point: a line whose tangent
    mode is mu = 0 and whose other modes decay (Re mu = -0.1), though |lambda| = 1.07 there."""
    Q, _ = np.linalg.qr(np.column_stack([np.ones(3), [1.0, -1.0, 0.0], [1.0, 1.0, -2.0]]))
    Jc = Q @ np.array([[0.0, 0.0, 0.0], [0.0, -0.1, -1.0], [0.0, 1.0, -0.1]]) @ Q.T
    F = StepMap.from_recurrent(ctrnn(np.eye(3) + Jc, "relu"))
    v = Q[:, 0] * np.sign(Q[0, 0])
    rng = np.random.default_rng(5)
    starts = np.linspace(1.0, 3.0, 40)[:, None] * v + 0.01 * rng.standard_normal((40, 3))
    res = find_fixed_points(F, starts, unique_tol=1e-3)
    assert len(res.points) >= 20
    m = find_manifolds(F, res.points)
    line = m["manifolds"][0]
    assert line["kind"] == "line" and line["attractor"], m["sentence"]
    assert abs(line["tangent_continuous"]["median_real"]) < 1e-6
    assert "in continuous time" in line["sentence"]
    lam = np.linalg.eigvals(F.jacobian(res.points[0].point))
    assert np.abs(lam).max() > 1.05                  # a discrete reading would call the line unstable
    sel = selection_at(F, res.points[0].point, [lambda s: F(s) + v])
    assert "refused" not in sel, sel
    assert sel["continuous_eigenvalue"][0] == pytest.approx(0.0, abs=1e-6)
    assert sel["projections"][0] == pytest.approx(1.0, rel=1e-6)     # a push along the line is kept whole


def test_the_layer_above_gets_the_rates_the_layer_below_settles_to():
    net = rnnlab.CTRNN(2, 4, num_layers=2, nonlinearity="softplus", dt=20, tau=100, dtype=np.float64, seed=2).eval()
    u = np.array([0.3, -0.2])
    got = steady_layer_input(net, 1, u)
    one = rnnlab.CTRNN(2, 4, nonlinearity="softplus", dt=20, tau=100, dtype=np.float64)
    one.load_state_dict({k: net.params[k] for k in one.params})
    F0 = StepMap.from_recurrent(one, x_const=u)
    x = np.zeros(4)
    for _ in range(2000):
        x = F0(x)
    np.testing.assert_allclose(got, F0.output(x), atol=1e-6)          # r = f(x*) of layer 0, not x*
    assert StepMap.from_recurrent(net, layer=1, x_const=got).size == 4


# ---------------------------------------------------------------- end to end: a Dale network through analyze
def _evidence(rng, batch, length):
    x = rng.standard_normal((batch, length, 2)).astype(np.float32) * 0.5
    x[..., 0] += rng.choice([-0.3, 0.3], (batch, 1))
    return x, (x[..., 0].sum(axis=1) > 0).astype(np.int64)


@pytest.fixture(scope="module")
def dale_analysis():
    """A 10-unit softplus CTRNN under Dale's law (7 E, 3 I) trained 300 Adam steps (0.3 s) to say
    which way a noisy input leans, and its analysis."""
    task = Task.from_generator(_evidence, length=15, test_size=120, name="evidence")
    model = SequenceClassifier(2, 10, 2, cell="ctrnn", nonlinearity="softplus",
                               rate=dict(dt=20, tau=100, dale=0.7), seed=4, dtype=np.float64)
    opt, rng = Adam(model.params, model.grads, lr=0.01), np.random.default_rng(0)
    for _ in range(300):
        x, y = _evidence(rng, 32, 15)
        model.zero_grad()
        _, d = softmax_cross_entropy(model.forward(x.astype(np.float64)), y)
        model.backward(d)
        model.constrain_grads()
        opt.step()
        model.constrain_weights()                          # Dale's signs kept, as the trainer keeps them
    model.eval()
    assert (model.forward(task.test.X.astype(np.float64)).argmax(axis=1) == task.test.y).mean() > 0.9
    return model, task, analyze(model, task, n_sequences=80, fp_starts=48, fp_seconds=20, fp_rounds=2)


def test_analyze_reads_a_dale_ctrnn_in_continuous_time_with_its_excitatory_and_inhibitory_units_apart(dale_analysis):
    model, task, r = dale_analysis
    j = r.json
    signs = model.rnn.signs["weight_hh_l0"]
    assert (signs > 0).sum() == 7 and (signs < 0).sum() == 3
    # each unit's sign is its column's; the role counts split by sign add up to the roles
    for unit in j["units"]:
        assert unit["sign"] == ("excitatory" if signs[unit["unit"]] > 0 else "inhibitory")
    dale = j["dale"]
    assert (dale["excitatory"], dale["inhibitory"]) == (7, 3)
    roles = [u["role"] for u in j["units"]]
    for name, side in (("excitatory", signs > 0), ("inhibitory", signs < 0)):
        expect = {role: sum(1 for r_, s in zip(roles, side) if s and r_ == role) for role in j["role_counts"]}
        assert dale[f"{name}_roles"] == expect
    assert {k: dale["excitatory_roles"][k] + dale["inhibitory_roles"][k] for k in j["role_counts"]} == j["role_counts"]
    assert "7 excitatory (" in dale["sentence"] and "3 inhibitory (" in dale["sentence"]
    # fixed points of x (H numbers, not [r | x]), read in continuous time, decoded through r = f(x)
    fp = j["fixed_points"]
    assert fp["time"]["time"] == "continuous" and fp["time"]["alpha"] == pytest.approx(0.2)
    assert "continuous time" in fp["summary"] and fp["points"]
    assert any(p["type"] == "stable" and "decoded" in p for p in fp["points"])
    F = StepMap.from_recurrent(model.rnn)
    for p in fp["points"]:
        x = np.array(p["point"])
        assert x.shape == (10,)
        mu = np.array([complex(*e) for e in p["continuous_eigenvalues"]])        # the top 5, slowest first
        assert int((mu.real > 0).sum()) == min(p["n_unstable"], 5)
        assert p["type"] == ("stable" if mu[0].real < 0 else "saddle")
        assert p["max_real_continuous_eigenvalue"] == pytest.approx(mu[0].real)
        assert p["speed"] == pytest.approx(float(F.speed(x)), rel=1e-5, abs=1e-12)
        assert p["readout"] == pytest.approx(model.fc.forward(rate(x, "softplus")[None])[0].tolist(), rel=1e-9)
    # PCA of the current x, where the fixed points live
    assert r.arrays["pca"]["mean"].shape == (10,)
    _, _, states = model.rnn.forward(task.test.X[:80].astype(np.float64), return_states=True)
    np.testing.assert_allclose(r.arrays["pca"]["mean"], states[0][..., 10:].reshape(-1, 10).mean(axis=0), atol=1e-9)
    json.dumps(j)                                                              # all of it is JSON


def test_the_figures_draw_excitatory_and_inhibitory_units_apart_and_mu(dale_analysis, tmp_path, monkeypatch):
    from rnnlab.present import analysis_figures as AF
    _, _, r = dale_analysis
    drawn = {}
    real = AF.plot_unit_roles

    def spy(path, H, roles, sig, role_names, signs=None):
        drawn["signs"] = signs
        real(path, H, roles, sig, role_names, signs)
    monkeypatch.setattr(AF, "plot_unit_roles", spy)
    names = draw_analysis_figures(tmp_path, r.arrays)
    assert drawn["signs"] is not None and (drawn["signs"] < 0).sum() == 3
    assert all((tmp_path / n).is_file() for n in names)
    groups = AF.sign_groups(drawn["signs"], 10)
    assert [k for k, _ in groups] == ["E", "I"] and sorted(groups[0][1] + groups[1][1]) == list(range(10))
    assert all(drawn["signs"][u] < 0 for u in groups[1][1])


def test_the_fixed_point_starts_are_drawn_among_the_trials_currents(dale_analysis, monkeypatch):
    """The search starts from the x the trials visited (the map's state), not from [r | x] or r."""
    from rnnlab.analysis import analyze as A
    model, task, _ = dale_analysis
    seen = []
    real = A.draw_starts

    def spy(states, *args):
        seen.append(np.array(states))
        return real(states, *args)
    monkeypatch.setattr(A, "draw_starts", spy)
    X = task.test.X[:40]
    _, _, states = model.rnn.forward(X.astype(np.float64), return_states=True)      # [r | x] per step
    A.fixed_point_analysis(model, task, states[0], starts=16, seconds=10, rounds=1)
    np.testing.assert_array_equal(seen[0], states[0][..., 10:])


def test_the_report_renders_the_continuous_reading_and_the_two_kinds_of_unit(dale_analysis, tmp_path, capsys):
    """The report renders what analysis.json holds: put the CTRNN's analysis into a run directory."""
    from rnnlab.analysis.analyze import write_analysis
    from rnnlab.cli import main
    from rnnlab.present.report import write_report
    _, _, r = dale_analysis
    run = tmp_path / "run"
    short = ["--epochs", "1", "--batches-per-epoch", "2", "--train-size", "100", "--test-size", "20", "--quiet"]
    assert main(["train", "--out", str(run), *short, "--no-report"]) == 0
    capsys.readouterr()
    write_analysis(r, run, draw_analysis_figures(run, r.arrays))
    page = write_report(run).read_text(encoding="utf-8")
    dale = r.json["dale"]
    assert "<th>excitatory</th><th>inhibitory</th>" in page and "7 excitatory (" in page
    for role, n in dale["inhibitory_roles"].items():
        if r.json["role_counts"][role]:
            cells = (role, r.json["role_counts"][role], dale["excitatory_roles"][role], n)
            assert '<td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td>'.format(*cells) in page
    assert "continuous time (dt = 20, tau = 100" in page and "|dx/dt| = |F(x) - x| / dt" in page
    assert "<th>speed</th><th>mu</th><th>tc</th>" in page and "Continuous-time eigenvalues mu" in page
