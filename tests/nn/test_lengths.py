"""Variable-length (right-padded) batches: ``lengths`` through the stacks, masked losses, heads,
and ``backward(record=True)``; against finite differences and torch's packed sequences (float64)."""

import zlib

import numpy as np
import pytest

import rnnlab
from conftest import twin_layers
from rnnlab.nn.gradcheck import gradcheck, numerical_gradient, relative_error
from rnnlab.nn.heads import CharLM, SequenceClassifier, SequenceRegressor, StepRegressor
from rnnlab.nn.losses import mse, softmax_cross_entropy

TOL = 1e-6
KINDS = ("RNN", "LSTM", "GRU")


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def _public(parts):
    return parts[0] if len(parts) == 1 else tuple(parts)


def _valid(lengths, T):
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]          # (B, T)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_stack_gradients_with_lengths(kind, bidirectional):
    """L = sum(R_out * output) + sum(R * each final state part) with lengths, 2 layers and h0:
    every parameter, x and h0 against central differences; dx is exactly 0 at padded steps."""
    seed = zlib.crc32(repr((kind, bidirectional)).encode())
    rng = np.random.default_rng(seed)
    B, T, D, H = 3, 5, 2, 3
    layer = getattr(rnnlab, kind)(D, H, num_layers=2, bidirectional=bidirectional,
                                  dtype=np.float64, seed=seed)
    L, n = 2 * (2 if bidirectional else 1), 2 if kind == "LSTM" else 1
    lengths = np.array([5, 1, 3])
    x = rng.standard_normal((B, T, D))
    h0 = tuple(rng.standard_normal((L, B, H)) for _ in range(n))
    out, h_n = layer.forward(x, _public(h0), lengths=lengths)
    R_out = rng.standard_normal(out.shape)                              # nonzero on padding too
    R_state = tuple(rng.standard_normal(s.shape) for s in _as_tuple(h_n))

    def loss():
        o, state = layer.forward(x, _public(h0), lengths=lengths)
        return float((R_out * o).sum() + sum((R * s).sum() for R, s in zip(R_state, _as_tuple(state))))

    loss()
    layer.zero_grad()
    dx = layer.backward(R_out, _public(R_state))
    d_h0 = _as_tuple(layer.d_h0)
    errors = gradcheck(loss, layer.params, layer.grads)
    errors["input"] = relative_error(dx, numerical_gradient(loss, x))
    for i, part in enumerate(h0):
        errors[f"h0[{i}]"] = relative_error(d_h0[i], numerical_gradient(loss, part))
    bad = {k: v for k, v in errors.items() if not v < TOL}
    assert not bad, f"gradient mismatch: {bad}"
    assert np.all(dx[~_valid(lengths, T)] == 0)
    assert np.all(out[~_valid(lengths, T)] == 0)


TORCH_CASES = [(kind, layers, bidi) for kind in KINDS for layers in (1, 2) for bidi in (False, True)]


@pytest.mark.parametrize("kind,layers,bidirectional", TORCH_CASES)
def test_lengths_match_torch_packed_sequences(kind, layers, bidirectional):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    seed = zlib.crc32(repr(("packed", kind, layers, bidirectional)).encode())
    rng = np.random.default_rng(seed)
    B, T, D, H = 4, 6, 5, 4
    ours, ref = twin_layers(kind, D, H, layers, bidirectional, seed)
    dirs, n = 2 if bidirectional else 1, 2 if kind == "LSTM" else 1
    L = layers * dirs
    lengths = np.array([3, 6, 1, 4])                                     # unsorted, T and 1 included
    x = rng.standard_normal((B, T, D))
    x[~_valid(lengths, T)] = np.nan                                      # padding must never be read
    h0 = tuple(rng.standard_normal((L, B, H)) for _ in range(n))
    d_out = rng.standard_normal((B, T, dirs * H))
    d_state = tuple(rng.standard_normal((L, B, H)) for _ in range(n))

    out, state = ours.forward(x, _public(h0), lengths=lengths)
    ours.zero_grad()
    dx = ours.backward(d_out, _public(d_state))

    xt = torch.tensor(x, requires_grad=True)
    h0t = tuple(torch.tensor(h, requires_grad=True) for h in h0)
    packed = pack_padded_sequence(xt, torch.from_numpy(lengths), batch_first=True,
                                  enforce_sorted=False)
    out_p, state_t = ref(packed, _public(h0t))
    out_t, _ = pad_packed_sequence(out_p, batch_first=True, total_length=T)
    state_t = _as_tuple(state_t)
    total = (out_t * torch.from_numpy(d_out)).sum()
    total = total + sum((s * torch.from_numpy(d)).sum() for s, d in zip(state_t, d_state))
    total.backward()

    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    for s, st in zip(_as_tuple(state), state_t):
        np.testing.assert_allclose(s, st.detach().numpy(), rtol=1e-10, atol=1e-12)
    grad_x = np.nan_to_num(xt.grad.numpy())      # torch leaves NaN-times-zero there; ours is 0
    np.testing.assert_allclose(dx, grad_x, rtol=1e-9, atol=1e-11)
    for d, ht in zip(_as_tuple(ours.d_h0), h0t):
        np.testing.assert_allclose(d, ht.grad.numpy(), rtol=1e-9, atol=1e-11)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=name)


def test_full_lengths_take_the_fixed_length_path_and_time_major_agrees():
    rng = np.random.default_rng(0)
    lstm = rnnlab.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    x, lengths = rng.standard_normal((3, 5, 3)), np.array([2, 5, 4])
    a, (ha, ca) = lstm.forward(x)
    b, (hb, cb) = lstm.forward(x, lengths=[5, 5, 5])                     # a list is fine too
    for u, v in ((a, b), (ha, hb), (ca, cb)):
        np.testing.assert_array_equal(u, v)
    tm = rnnlab.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=False, dtype=np.float64)
    tm.load_state_dict(lstm.state_dict())
    out, (h, c) = lstm.forward(x, lengths=lengths)
    out_tm, (h_tm, c_tm) = tm.forward(x.transpose(1, 0, 2).copy(), lengths=lengths)
    np.testing.assert_allclose(out_tm.transpose(1, 0, 2), out, rtol=1e-13)
    np.testing.assert_allclose(h_tm, h, rtol=1e-13)
    np.testing.assert_allclose(c_tm, c, rtol=1e-13)


@pytest.mark.parametrize("bad,match", [
    (np.array([3, 2]), r"shape \(3,\)"),
    (np.array([[3], [2], [1]]), r"shape \(3,\)"),
    (np.array([3, 0, 2]), r"\[1, 4\]"),
    (np.array([3, 5, 2]), r"\[1, 4\]"),
    (np.array([3.0, 2.0, 1.0]), "must be integers"),
    (np.array([True, True, True]), "must be integers"),
])
def test_bad_lengths_are_explained(bad, match):
    gru = rnnlab.GRU(2, 3, dtype=np.float64)
    with pytest.raises(rnnlab.InputError, match=match):
        gru.forward(np.zeros((3, 4, 2)), lengths=bad)


def test_masked_mse_is_the_mse_of_the_valid_part():
    rng = np.random.default_rng(1)
    B, T, K = 4, 6, 3
    lengths = np.array([6, 2, 4, 1])
    mask = _valid(lengths, T)
    pred, target = rng.standard_normal((B, T, K)), rng.standard_normal((B, T, K))
    target[~mask] = np.nan                                               # padding is never read
    loss, d = mse(pred, target, mask)
    ref_loss, ref_d = mse(pred[mask], target[mask])
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    np.testing.assert_allclose(d[mask], ref_d, rtol=1e-13)
    assert np.all(d[~mask] == 0)
    clean = np.where(mask[..., None], target, 0.0)
    num = numerical_gradient(lambda: mse(pred, clean, mask.astype(float))[0], pred)
    assert relative_error(d, num) < TOL
    with pytest.raises(rnnlab.InputError, match="mask has shape"):
        mse(pred, clean, mask[:, :2])


def test_masked_cross_entropy_is_the_cross_entropy_of_the_valid_part():
    rng = np.random.default_rng(2)
    B, T, C = 4, 6, 5
    mask = _valid([6, 2, 4, 1], T)
    logits, y = rng.standard_normal((B, T, C)) * 2, rng.integers(0, C, (B, T))
    loss, d = softmax_cross_entropy(logits, y, mask)
    ref_loss, ref_d = softmax_cross_entropy(logits[mask], y[mask])
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    np.testing.assert_allclose(d[mask], ref_d, rtol=1e-13)
    assert np.all(d[~mask] == 0)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_classifier_with_lengths_equals_each_truncated_sequence(cell):
    """Outputs, and parameter gradients of sum(R * outputs): the padded batch equals the sum of
    the sequences run one by one at their own lengths."""
    rng = np.random.default_rng(3)
    B, T, D = 4, 7, 3
    model = SequenceClassifier(D, 5, 3, num_layers=2, cell=cell, bidirectional=True,
                               dtype=np.float64, seed=4)
    lengths = np.array([7, 3, 1, 5])
    x = rng.standard_normal((B, T, D))
    R = rng.standard_normal((B, 3))
    out = model.forward(x, lengths=lengths)
    model.zero_grad()
    dx = model.backward(R)
    batched = {k: g.copy() for k, g in model.grads.items()}
    model.zero_grad()
    for b, n in enumerate(lengths):
        one = model.forward(x[b:b + 1, :n])
        np.testing.assert_allclose(out[b], one[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dx[b, :n], model.backward(R[b:b + 1])[0], rtol=1e-10, atol=1e-13)
    for k, g in model.grads.items():
        np.testing.assert_allclose(batched[k], g, rtol=1e-10, atol=1e-13, err_msg=k)
    assert np.all(dx[~_valid(lengths, T)] == 0)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_step_regressor_shape_and_gradients_with_lengths_and_mask(cell):
    rng = np.random.default_rng(5)
    B, T, D, K = 3, 5, 2, 4
    model = StepRegressor(D, 3, K, num_layers=2, cell=cell, bidirectional=True, dtype=np.float64,
                          seed=6)
    assert model.output_size == K
    lengths = np.array([5, 2, 4])
    mask = _valid(lengths, T)
    x, y = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, K))
    assert model.forward(x).shape == (B, T, K)

    def loss():
        return mse(model.forward(x, lengths=lengths), y, mask)[0]

    _, d = mse(model.forward(x, lengths=lengths), y, mask)
    model.zero_grad()
    dx = model.backward(d)
    errors = gradcheck(loss, model.params, model.grads)
    errors["input"] = relative_error(dx, numerical_gradient(loss, x))
    assert max(errors.values()) < TOL, errors
    for b, n in enumerate(lengths):                                      # = each sequence alone
        np.testing.assert_allclose(model.forward(x, lengths=lengths)[b, :n],
                                   model.forward(x[b:b + 1, :n])[0], rtol=1e-12, atol=1e-14)


def test_sequence_regressor_with_lengths_gradients():
    rng = np.random.default_rng(7)
    model = SequenceRegressor(2, 4, 1, num_layers=2, cell="lstm", dtype=np.float64)
    x, y, lengths = rng.standard_normal((3, 6, 2)), rng.standard_normal((3, 1)), np.array([2, 6, 4])

    def loss():
        return mse(model.forward(x, lengths=lengths), y)[0]

    _, d = mse(model.forward(x, lengths=lengths), y)
    model.zero_grad()
    dx = model.backward(d)
    errors = gradcheck(loss, model.params, model.grads)
    errors["input"] = relative_error(dx, numerical_gradient(loss, x))
    assert max(errors.values()) < TOL, errors


def _probe_both_ways(rnn, run):
    """(dx without recording, None, dx and the record of backward(..., record=True)); recording
    must not change a single gradient."""
    run_fwd, run_bwd = run
    run_fwd()
    rnn.zero_grad()
    old_dx = run_bwd(record=False)
    old_grads = {k: g.copy() for k, g in rnn.grads.items()}
    run_fwd()
    rnn.zero_grad()
    new_dx, new = run_bwd(record=True)
    for k, g in rnn.grads.items():
        np.testing.assert_array_equal(g, old_grads[k])
    return old_dx, None, new_dx, new


@pytest.mark.parametrize("lengths", [None, np.array([4, 2, 5])])
def test_record_returns_the_probe_arrays(lengths):
    rng = np.random.default_rng(8)
    rnn = rnnlab.GRU(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    x, d_out = rng.standard_normal((3, 5, 3)), rng.standard_normal((3, 5, 8))
    fwd = lambda: rnn.forward(x, lengths=lengths)
    bwd = lambda record: rnn.backward(d_out, None, record=record)
    old_dx, old, new_dx, new = _probe_both_ways(rnn, (fwd, bwd))
    np.testing.assert_array_equal(old_dx, new_dx)
    assert set(new) == {f"weight_hh_l{k}{s}" for k in (0, 1) for s in ("", "_reverse")}
    for arrays in new.values():
        assert set(arrays) == {"grad_norm", "hidden_norm_mean", "hidden_norm_max", "whh_share"} | \
            (set() if lengths is None else {"valid"})           # how many sequences still run at each step
        assert all(len(v) == 5 and np.all(np.isfinite(v)) for v in arrays.values())
    rnn.forward(x, lengths=lengths)
    assert isinstance(rnn.backward(d_out, None), np.ndarray)             # record=False: dx alone


@pytest.mark.parametrize("lengths", [np.array([4, 2, 5]), np.array([3, 1, 2])])   # the second: 2 steps of padding only
def test_record_with_lengths_counts_each_sequence_at_its_own_steps(lengths):
    """Padded rows add nothing to the probes. At step t, ||dL/dh_t|| is the norm over the rows
    still running, each as that sequence run alone at its own length gives it; the hidden-state
    norms likewise (the mean over the rows still running, ``valid`` of them); a step with one
    row running has that row's dL/dW_hh share; a step beyond every sequence's length records
    exactly 0 everywhere. What x and d_output hold at padded steps is never read."""
    rng = np.random.default_rng(8)
    B, T = len(lengths), 5
    rnn = rnnlab.GRU(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    x, d_out = rng.standard_normal((B, T, 3)), rng.standard_normal((B, T, 8))
    valid = _valid(lengths, T)
    x[~valid], d_out[~valid] = np.nan, np.nan
    rnn.forward(x, lengths=lengths)
    _, batch = rnn.backward(d_out, None, record=True)
    alone = []
    for b, n in enumerate(lengths):
        rnn.forward(x[b:b + 1, :n])
        alone.append(rnn.backward(d_out[b:b + 1, :n], None, record=True)[1])
    assert set(batch) == {f"weight_hh_l{k}{s}" for k in (0, 1) for s in ("", "_reverse")}
    for key, got in batch.items():
        for t in range(T):
            rows = [b for b in range(B) if t < lengths[b]]
            assert got["valid"][t] == len(rows)
            if not rows:                                    # padding in every row
                assert [got[name][t] for name in sorted(got)] == [0.0] * 5, (key, t)
                continue
            g = np.sqrt(sum(alone[b][key]["grad_norm"][t] ** 2 for b in rows))
            h = [alone[b][key]["hidden_norm_max"][t] for b in rows]
            np.testing.assert_allclose(got["grad_norm"][t], g, rtol=1e-12, atol=0)
            np.testing.assert_allclose(got["hidden_norm_max"][t], max(h), rtol=1e-12, atol=0)
            np.testing.assert_allclose(got["hidden_norm_mean"][t], sum(h) / len(rows), rtol=1e-12, atol=0)
            if len(rows) == 1:
                np.testing.assert_allclose(got["whh_share"][t], alone[rows[0]][key]["whh_share"][t],
                                           rtol=1e-12, atol=0)


@pytest.mark.parametrize("head", ["classifier", "tagger", "step", "charlm"])
def test_heads_forward_record(head):
    rng = np.random.default_rng(9)
    if head == "charlm":
        model = CharLM(6, 3, 4, num_layers=2, cell="gru", dtype=np.float64)
        x = rng.integers(0, 6, (2, 5))
    else:
        cls = {"classifier": SequenceClassifier, "tagger": rnnlab.SequenceTagger,
               "step": StepRegressor}[head]
        model = cls(3, 4, 2, num_layers=2, dtype=np.float64)
        x = rng.standard_normal((2, 5, 3))
    lengths = np.array([5, 3])
    out = model.forward(x, lengths=lengths)
    d = rng.standard_normal(out.shape)
    fwd = lambda: model.forward(x, lengths=lengths)
    bwd = lambda record: model.backward(d, record=record)
    old_dx, old, new_dx, new = _probe_both_ways(model.rnn, (fwd, bwd))
    assert len(new) == 2 and all(len(v["grad_norm"]) == 5 for v in new.values())
    if head == "charlm":
        assert old_dx is None and new_dx is None
    else:
        np.testing.assert_array_equal(old_dx, new_dx)


def test_a_copy_of_a_layer_leaves_its_forward_caches_behind():
    """copy.deepcopy / pickle of a layer after a forward pass: same weights and outputs, no
    activations of that pass (backward on the copy asks for a forward first)."""
    import copy
    import pickle
    net = rnnlab.LSTM(3, 5, num_layers=2, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype(np.float32)
    out, _ = net.forward(x)
    for twin in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        with pytest.raises(RuntimeError, match="before forward"):
            twin.backward(np.ones_like(out))
        np.testing.assert_array_equal(twin.forward(x)[0], out)
        twin.backward(np.ones_like(out))                       # after its own forward it works
    net.backward(np.ones_like(out))                            # the original kept its caches


def test_a_copy_of_a_model_carries_no_activations():
    """Every module's forward caches (recurrent layers, Linear, Embedding, Dropout) stay behind:
    a pickled char-LM after a forward pass over a large batch grows by its final state only."""
    import pickle
    lm = CharLM(40, 8, 16, 2, dropout=0.2, cell="lstm", seed=0)
    before = len(pickle.dumps(lm))
    x = np.random.default_rng(0).integers(0, 40, (64, 50))
    lm.forward(x)
    final_state = 2 * 2 * 64 * 16 * 4                           # (h, c), 2 layers, B = 64, H = 16, float32
    assert len(pickle.dumps(lm)) < before + final_state + 4096  # the activations would be megabytes
