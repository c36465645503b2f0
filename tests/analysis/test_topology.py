"""Fixed-point topology (analysis.topology): a hand-built 3-bit flip-flop, three independent
bistable tanh units, has its memories at the 8 corners of a cube and its index-1 saddles on the 12
edges; the signature finds them through the analysis' own search, the distance is 0 to itself and
to a copy with its units permuted and sign-flipped, and not 0 to a 2-bit network."""

import itertools
import json

import numpy as np
import pytest

import rnnlab
from rnnlab.analysis.fixed_points import StepMap, find_fixed_points
from rnnlab.analysis.topology import (
    TopologyDistance,
    TopologySignature,
    fixed_point_signature,
    follow_saddles,
    topology_distance,
    topology_distances,
)
from rnnlab.data.task import Task
from rnnlab.data.tasks import flipflop
from rnnlab.nn.cells import ElmanCell

CORNERS = sorted("".join(c) for c in itertools.product("+-", repeat=3))
CUBE_EDGES = sorted(sorted((a, b)) for a, b in itertools.combinations(CORNERS, 2)
                    if sum(x != y for x, y in zip(a, b)) == 1)


def flip_flop(bits=3, hidden=8, gain=2.0, drive=4.0, basis=None):
    """``bits`` independent bistable units h_i = tanh(gain h_i + drive x_i) (stable at +-0.9575 for
    gain 2, a saddle at 0), the other units decaying (self-weight 0.5), the readout unit i -> output
    i. ``basis`` (H, H), a signed permutation P: the same network in the units P h (tanh is odd and
    acts unit by unit, so P tanh(z) = tanh(P z)), its readout reading P^T back."""
    model = rnnlab.StepRegressor(bits, hidden, bits, dtype=np.float64)
    W = np.diag([gain] * bits + [0.5] * (hidden - bits))
    W_ih = np.zeros((hidden, bits))
    W_ih[np.arange(bits), np.arange(bits)] = drive
    fc = np.zeros((bits, hidden))
    fc[np.arange(bits), np.arange(bits)] = 1.0
    P = np.eye(hidden) if basis is None else basis
    model.load_state_dict({"rnn.weight_ih_l0": P @ W_ih, "rnn.weight_hh_l0": P @ W @ P.T,
                           "rnn.bias_ih_l0": np.zeros(hidden), "rnn.bias_hh_l0": np.zeros(hidden),
                           "fc.weight": fc @ P.T, "fc.bias": np.zeros(bits)})
    model.eval()
    return model


def signed_permutation(H, seed=0):
    rng = np.random.default_rng(seed)
    return np.eye(H)[rng.permutation(H)] * rng.choice([-1.0, 1.0], H)[:, None]


@pytest.fixture(scope="module")
def cube():
    return fixed_point_signature(flip_flop(), flipflop(3))


def test_the_hand_built_flip_flop_has_the_cube_topology(cube):
    assert cube.counts == {0: 8, 1: 12, 2: 6, 3: 1}            # corners, edges, faces, centre
    assert cube.memories == CORNERS
    assert cube.edges == CUBE_EDGES                            # each memory joined to the 3 one bit away
    assert cube.self_joined == 0 and cube.open_ends == 0
    for t in cube.transitions:                                 # the unstable eigenvalue: gain * tanh'(0) = 2
        assert t["eigenvalue"] == pytest.approx([2.0, 0.0], abs=1e-6)
        assert t["why"] == ["reached", "reached"]
    text = cube.summary()
    assert text.startswith("8 stable points (memories " + " ".join(CORNERS) + "), 12 index-1 saddles joining "
                           "them in 12 edges, 6 points of index 2, 1 point of index 3; stable: ")
    assert "unstable eigenvector" in text                      # the sentence names its tests


def test_the_distance_is_zero_to_itself_and_to_the_same_network_in_other_units(cube):
    assert topology_distance(cube, cube) == TopologyDistance(0.0, 0.0, 0.0)
    for seed in range(3):                                      # other search draws, other units
        twin = fixed_point_signature(flip_flop(basis=signed_permutation(8, seed)), flipflop(3), seed=seed)
        d = topology_distance(cube, twin)
        assert (d.counts, d.memories, d.edges, d.total) == (0.0, 0.0, 0.0, 0.0), twin.summary()


def test_the_distance_to_a_two_bit_network_is_not_zero(cube):
    two = fixed_point_signature(flip_flop(bits=2), flipflop(2))
    assert two.counts == {0: 4, 1: 4, 2: 1} and len(two.edges) == 4     # a square
    d = topology_distance(cube, two)
    assert d.counts == pytest.approx(1 - 9 / 27)              # sum of minima 4 + 4 + 1 over maxima 27
    assert d.memories == 1.0 and d.edges == 1.0                # no memory, no edge in common
    assert d.total == pytest.approx((d.counts + 2.0) / 3)
    assert topology_distance(two, cube) == d


def sig(counts, memories, outcomes):
    """A signature from its parts: one transition per outcome pair (None: an end that reached none)."""
    transitions = [{"ends": list(o), "steps": [1, 1], "why": ["reached"] * 2, "eigenvalue": [2.0, 0.0]}
                   for o in outcomes]
    edges = sorted({tuple(sorted(o)) for o in outcomes if None not in o and o[0] != o[1]})
    return TopologySignature(counts=counts, memories=sorted(memories), edges=[list(e) for e in edges],
                             transitions=transitions)


def test_each_part_of_the_distance_is_a_jaccard_distance():
    a = sig({0: 2, 1: 1}, ["+", "-"], [("+", "-")])
    assert topology_distance(a, a).total == 0.0
    # a repeated memory and a saddle whose ends both fall to it: every part moves, and says by how much
    b = sig({0: 3, 1: 2}, ["+", "-", "-"], [("+", "-"), ("-", "-")])
    d = topology_distance(a, b)
    assert d.counts == pytest.approx(1 - 3 / 5)                # min 2 + 1 over max 3 + 2
    assert d.memories == pytest.approx(1 - 2 / 3)              # {+, -} against {+, -, -}
    assert d.edges == pytest.approx(1 - 1 / 2)                 # {+-} against {+-, --}
    assert b.self_joined == 1 and b.open_ends == 0
    assert "1 whose two ends reach the same memory" in b.summary()
    # an end that reached nothing is an outcome of its own
    c = sig({0: 2, 1: 1}, ["+", "-"], [("+", None)])
    assert c.open_ends == 1 and c.edges == [] and topology_distance(a, c).edges == 1.0
    assert "1 with an end that reaches no stable point" in c.summary()
    for x, y in itertools.product((a, b, c), repeat=2):         # symmetric, in [0, 1], 0 only when equal
        dx, dy = topology_distance(x, y), topology_distance(y, x)
        assert dx == dy
        assert all(0.0 <= v <= 1.0 for v in dx.to_json().values())
        assert (dx.total == 0.0) == (x is y)
    empty = sig({}, [], [])
    assert topology_distance(empty, empty).total == 0.0
    assert topology_distance(empty, a) == TopologyDistance(1.0, 1.0, 1.0)
    assert empty.summary() == "no fixed point found"


def test_the_distance_matrix_of_several_signatures(cube):
    a = sig({0: 2, 1: 1}, ["+", "-"], [("+", "-")])
    m = topology_distances([cube, a, cube])
    assert set(m) == {"counts", "memories", "edges", "total"}
    for v in m.values():
        assert v.shape == (3, 3) and np.allclose(v, v.T) and np.all(np.diag(v) == 0)
    assert m["total"][0, 2] == 0.0 and m["total"][0, 1] == topology_distance(cube, a).total


def test_a_signature_goes_to_json_and_back(cube):
    text = json.dumps(cube.to_json())
    back = TopologySignature.from_json(text)
    assert back == cube and back.summary() == cube.summary()
    assert topology_distance(back, cube).total == 0.0
    assert json.loads(text)["counts"] == {"0": 8, "1": 12, "2": 6, "3": 1}
    with pytest.raises(rnnlab.InputError, match="counts, memories and edges"):
        TopologySignature.from_json({"points": []})


def test_an_end_that_reaches_no_stable_point_says_so():
    """h -> tanh(2 h): stable at +-0.9575, a saddle at 0. Told of the positive point only, the
    negative end settles at a point that is no stable point in the list, and stays unnamed."""
    F = StepMap(ElmanCell("tanh"), np.array([[2.0]]), None, np.zeros(1))
    res = find_fixed_points(F, np.array([[-0.9], [0.01], [0.9]]))
    saddle = [p for p in res.points if p.n_unstable == 1]
    plus = [p for p in res.points if p.n_unstable == 0 and p.point[0] > 0]
    (move,) = follow_saddles(F, saddle, plus, radius=0.1)
    ends = dict(zip(move["why"], move["ends"]))
    assert ends == {"reached": 0, "settled at no stable point": None}
    assert move["eigenvalue"] == pytest.approx([2.0, 0.0])
    (short,) = follow_saddles(F, saddle, plus, radius=0.1, max_steps=2)     # not there yet after 2 steps
    assert short["ends"] == [None, None] and short["why"] == ["still moving"] * 2


def test_a_search_cut_short_says_its_counts_may_be_short():
    short = fixed_point_signature(flip_flop(), flipflop(3), seconds=1e-9)
    assert any("time budget" in n for n in short.notes), short.notes
    assert "the counts may be short" in short.summary()
    assert TopologySignature.from_json(short.to_json()).notes == short.notes


def test_bad_input_is_refused_with_one_sentence():
    task = flipflop(3)
    with pytest.raises(rnnlab.InputError, match="bidirectional"):
        fixed_point_signature(rnnlab.StepRegressor(3, 4, 3, bidirectional=True), task)
    with pytest.raises(rnnlab.InputError, match="bare RNN layer"):
        fixed_point_signature(rnnlab.RNN(3, 4), task)
    with pytest.raises(rnnlab.InputError, match="no recurrent state"):
        fixed_point_signature(rnnlab.Linear(3, 3, rng=np.random.default_rng(0)), task)
    rng = np.random.default_rng(0)
    real = Task.from_arrays(rng.standard_normal((20, 5, 3)), rng.standard_normal((20, 5, 3)))   # no states to name
    with pytest.raises(rnnlab.InputError, match="name no states"):
        fixed_point_signature(rnnlab.StepRegressor(3, 4, 3), real)
    with pytest.raises(rnnlab.InputTypeError, match="rnnlab Task"):
        fixed_point_signature(flip_flop(), "flipflop")
    with pytest.raises(rnnlab.InputTypeError, match="TopologySignature"):
        topology_distance(TopologySignature({}, [], []), {"counts": {}})


@pytest.mark.slow      # about 1 s: trains a 32-unit flip-flop for 10 epochs; runs in CI
def test_a_trained_flip_flop_has_the_same_topology_as_the_hand_built_one(cube):
    trainer = rnnlab.Trainer(config=rnnlab.PRESETS["flipflop"].replace(epochs=10, hidden=32))
    trainer.fit()
    trained = fixed_point_signature(trainer.model, trainer.task)
    assert trained.memories == CORNERS and trained.edges == CUBE_EDGES, trained.summary()
    d = topology_distance(trained, cube)
    assert d.memories == 0.0 and d.edges == 0.0


def test_a_memory_held_by_a_ghost_is_counted_with_where_it_leaks():
    """A 2-bit flip-flop whose first unit, h = tanh(2 h + b), is biased just past its saddle-node
    (b_c = sqrt(2) - atanh(1/sqrt(2))): its '-' stable point and the saddle have annihilated, so
    two stable points and one saddle are left, yet the network still holds all four memories over
    its trials: the '-' ones in the ghost near h = -1/sqrt(2), which creeps for thousands of steps
    and leaks to '+'. The signature names the two ghosts and their leaks, and the edges are the
    saddle's one (++, +-) and the two leaks."""
    model = flip_flop(bits=2)
    b_c = np.sqrt(2.0) - np.arctanh(1.0 / np.sqrt(2.0))
    p = model.state_dict()
    p["rnn.bias_ih_l0"][0] = b_c + 1e-6
    model.load_state_dict(p)
    sig = fixed_point_signature(model, flipflop(2))
    assert sig.counts == {0: 2, 1: 1}, sig.summary()
    assert sig.memories == ["++", "+-", "-+", "--"]
    assert {g["memory"]: g["leaks_to"] for g in sig.ghosts} == {"-+": "++", "--": "+-"}, sig.ghosts
    for g in sig.ghosts:
        assert g["speed"] < 1e-3 and g["steps"] > g["held"], g
    assert sig.edges == [["++", "+-"], ["++", "-+"], ["+-", "--"]], sig.edges
    assert "2 held at a slow point, a ghost of a fixed point" in sig.summary()
    assert TopologySignature.from_json(sig.to_json()).ghosts == sig.ghosts
    # without the ghosts, two memories and one edge: what a fixed-point count alone says
    bare = fixed_point_signature(model, flipflop(2), ghosts=False)
    assert sorted(bare.memories) == ["++", "+-"] and len(bare.edges) == 1 and not bare.ghosts
    assert topology_distance(sig, bare).memories == 0.5
