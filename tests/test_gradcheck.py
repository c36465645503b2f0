"""Hand-written backward passes against central finite differences, in float64."""

import numpy as np
import pytest

import rnnlab
from rnnlab.nn.gradcheck import gradcheck, numerical_gradient, relative_error

TOL = 1e-6


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def _check_layer(layer, x, h0, reset=lambda: None, seed=0):
    """L = sum(R_out * output) + sum(R_h * h_n) [+ sum(R_c * c_n)]: params, input, h0 gradients."""
    rng = np.random.default_rng(seed)
    reset()
    out, h_n = layer.forward(x, h0)
    R_out = rng.standard_normal(out.shape)
    R_state = tuple(rng.standard_normal(s.shape) for s in _as_tuple(h_n))

    def loss():
        reset()
        o, state = layer.forward(x, h0)
        return float((R_out * o).sum() + sum((R * s).sum() for R, s in zip(R_state, _as_tuple(state))))

    reset()
    layer.forward(x, h0)
    layer.zero_grad()
    dx = layer.backward(R_out, R_state if len(R_state) > 1 else R_state[0])
    d_h0 = _as_tuple(layer.d_h0)
    errors = gradcheck(loss, layer.params, layer.grads)
    errors["input"] = relative_error(dx, numerical_gradient(loss, x))
    if h0 is not None:
        for i, part in enumerate(_as_tuple(h0)):
            errors[f"h0[{i}]"] = relative_error(d_h0[i], numerical_gradient(loss, part))
    bad = {k: v for k, v in errors.items() if not v < TOL}
    assert not bad, f"gradient mismatch: {bad}"


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (1, True), (3, True)])
def test_rnn_layer_gradients(nonlinearity, layers, bidirectional):
    rng = np.random.default_rng(1)
    layer = rnnlab.RNN(3, 4, num_layers=layers, nonlinearity=nonlinearity,
                       bidirectional=bidirectional, dtype=np.float64, seed=2)
    x = rng.standard_normal((2, 5, 3))
    h0 = rng.standard_normal((layers * (2 if bidirectional else 1), 2, 4))
    _check_layer(layer, x, h0)


def test_rnn_without_bias_and_time_major():
    rng = np.random.default_rng(3)
    layer = rnnlab.RNN(3, 4, num_layers=2, bias=False, batch_first=False, dtype=np.float64)
    _check_layer(layer, rng.standard_normal((6, 2, 3)), None)


def test_rnn_dropout_with_fixed_mask(freeze_dropout):
    rng = np.random.default_rng(4)
    layer = rnnlab.RNN(3, 5, num_layers=3, dropout=0.4, bidirectional=True, dtype=np.float64, seed=5)
    x = rng.standard_normal((3, 4, 3))
    _check_layer(layer, x, None, reset=freeze_dropout(layer))
    reset = freeze_dropout(layer)
    reset()
    a, _ = layer.forward(x)
    b, _ = layer.forward(x)
    assert not np.allclose(a, b), "dropout should draw a new mask each forward in training mode"


@pytest.mark.parametrize("init", ["pytorch", "xavier", "orthogonal", "identity"])
def test_every_init_gives_correct_gradients(init):
    rng = np.random.default_rng(6)
    layer = rnnlab.RNN(2, 3, num_layers=2, init=init, nonlinearity="relu" if init == "identity" else "tanh",
                       dtype=np.float64)
    _check_layer(layer, rng.standard_normal((2, 4, 2)), None)


@pytest.mark.parametrize("head", ["classifier", "tagger"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_heads_with_loss(head, bidirectional, model_gradient_errors):
    rng = np.random.default_rng(7)
    cls = rnnlab.SequenceClassifier if head == "classifier" else rnnlab.SequenceTagger
    model = cls(3, 4, 3, num_layers=2, dropout=0.3, bidirectional=bidirectional, dtype=np.float64, seed=8)
    x = rng.standard_normal((4, 5, 3))
    y = rng.integers(0, 3, (4,) if head == "classifier" else (4, 5))
    errors = model_gradient_errors(model, x, lambda out: rnnlab.softmax_cross_entropy(out, y))
    assert max(errors.values()) < TOL, errors


def test_cross_entropy_gradient_and_mask():
    rng = np.random.default_rng(9)
    logits = rng.standard_normal((3, 4, 5)) * 3
    y = rng.integers(0, 5, (3, 4))
    mask = (rng.random((3, 4)) > 0.3).astype(float)
    _, d = rnnlab.softmax_cross_entropy(logits, y, mask)
    num = numerical_gradient(lambda: rnnlab.softmax_cross_entropy(logits, y, mask)[0], logits)
    assert relative_error(d, num) < TOL
    assert np.all(d[mask == 0] == 0)


def test_class_weighted_cross_entropy_gradient_and_torch_parity():
    """Weights per target class (NeuroGym's fixation weight), the mean over the weights: equal to
    torch's CrossEntropyLoss(weight=...) and to finite differences, padding still masked."""
    torch = pytest.importorskip("torch")
    from rnnlab.nn.losses import class_weighted_cross_entropy
    rng = np.random.default_rng(11)
    logits = rng.standard_normal((3, 4, 3)) * 2
    y = rng.integers(0, 3, (3, 4))
    loss_fn = class_weighted_cross_entropy([0.05, 1.0, 2.0])
    value, d = loss_fn(logits, y)
    num = numerical_gradient(lambda: loss_fn(logits, y)[0], logits)
    assert relative_error(d, num) < TOL
    ref = torch.nn.functional.cross_entropy(torch.tensor(logits.reshape(-1, 3)), torch.tensor(y.reshape(-1)),
                                            weight=torch.tensor([0.05, 1.0, 2.0], dtype=torch.float64))
    assert value == pytest.approx(float(ref), rel=1e-12)
    mask = np.ones((3, 4))
    mask[0, 2:] = 0
    _, dm = loss_fn(logits, y, mask)
    assert np.all(dm[0, 2:] == 0) and loss_fn.class_weights == (0.05, 1.0, 2.0)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1000.0, -1000.0], [-1e4, 1e4]])
    loss, d = rnnlab.softmax_cross_entropy(logits, np.array([0, 1]))
    assert np.isfinite(loss) and loss == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.isfinite(d))


def test_input_grad_false_skips_dx_but_keeps_parameter_grads():
    rng = np.random.default_rng(10)
    model = rnnlab.SequenceClassifier(3, 4, 2, num_layers=2, dtype=np.float64)
    x, y = rng.standard_normal((4, 5, 3)), rng.integers(0, 2, 4)
    _, d = rnnlab.softmax_cross_entropy(model.forward(x), y)
    model.zero_grad()
    assert model.backward(d).shape == x.shape
    full = {k: v.copy() for k, v in model.grads.items()}
    model.zero_grad()
    assert model.backward(d, input_grad=False) is None
    for k in full:
        np.testing.assert_array_equal(model.grads[k], full[k])


def test_dropout_mask_keeps_the_right_fraction_and_scale():
    from rnnlab.nn.modules import dropout_mask
    m = dropout_mask(np.random.default_rng(0), (200, 501), 0.3, np.dtype(np.float32))
    values = np.unique(m)
    assert m.dtype == np.float32 and len(values) == 2 and values[0] == 0.0
    assert values[1] == pytest.approx(1 / 0.7, rel=2e-5)          # p quantised to 2**-16
    assert (m > 0).mean() == pytest.approx(0.7, abs=0.005)
    assert m.mean() == pytest.approx(1.0, abs=0.01)
    assert dropout_mask(np.random.default_rng(0), (3, 4), 0.0, np.dtype(np.float64)).min() == 1.0


@pytest.mark.parametrize("cls", [rnnlab.LSTM, rnnlab.GRU])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (1, True), (2, True)])
def test_gated_layer_gradients(cls, layers, bidirectional):
    rng = np.random.default_rng(11)
    layer = cls(3, 4, num_layers=layers, bidirectional=bidirectional, dtype=np.float64, seed=12)
    L = layers * (2 if bidirectional else 1)
    n_state = 2 if cls is rnnlab.LSTM else 1
    h0 = tuple(rng.standard_normal((L, 2, 4)) for _ in range(n_state))
    _check_layer(layer, rng.standard_normal((2, 5, 3)), h0 if n_state == 2 else h0[0])


@pytest.mark.parametrize("cls", [rnnlab.LSTM, rnnlab.GRU])
def test_gated_layers_with_dropout_and_no_bias(cls, freeze_dropout):
    rng = np.random.default_rng(13)
    layer = cls(3, 4, num_layers=3, dropout=0.3, dtype=np.float64, seed=14)
    _check_layer(layer, rng.standard_normal((3, 4, 3)), None, reset=freeze_dropout(layer))
    layer = cls(3, 4, num_layers=2, bias=False, dtype=np.float64)
    _check_layer(layer, rng.standard_normal((3, 4, 3)), None)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_heads_with_loss(cell, model_gradient_errors):
    rng = np.random.default_rng(15)
    model = rnnlab.SequenceClassifier(3, 4, 3, num_layers=2, cell=cell, dropout=0.2,
                                      bidirectional=True, dtype=np.float64, seed=16)
    x, y = rng.standard_normal((4, 5, 3)), rng.integers(0, 3, 4)
    errors = model_gradient_errors(model, x, lambda out: rnnlab.softmax_cross_entropy(out, y))
    assert max(errors.values()) < TOL, errors


def test_lstm_forget_bias():
    lstm = rnnlab.LSTM(3, 4, num_layers=2, bidirectional=True, init="xavier", forget_bias=1.0)
    for name, b in lstm.params.items():
        if name.startswith("bias_ih"):
            np.testing.assert_array_equal(b[4:8], 1.0)
            np.testing.assert_array_equal(np.delete(b, range(4, 8)), 0.0)
        elif name.startswith("bias_hh"):
            np.testing.assert_array_equal(b[4:8], 0.0)


def test_decayed_float32_gradients_are_flushed_not_subnormal():
    """A contractive tanh recurrence at T=300: the gradient reaching early steps decays below 1e-30
    and is flushed to 0 in float32 (subnormals are slow), while every weight gradient still equals
    the float64 computation to float32 precision."""
    import rnnlab
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 300, 3))
    grads = {}
    for dt in (np.float32, np.float64):
        rnn = rnnlab.RNN(3, 16, dtype=dt, seed=1)
        rnn.params["weight_hh_l0"] *= 0.3                       # strongly contractive
        _, h_n = rnn.forward(x.astype(dt))
        rnn.zero_grad()
        rnn.backward(None, np.ones_like(h_n))
        grads[dt] = {k: g.astype(np.float64) for k, g in rnn.grads.items()}
        if dt is np.float32:
            assert not np.any(rnn.d_h0)                          # flushed to exactly 0
            tiny = np.finfo(np.float32).tiny
            assert not any(np.any((g != 0) & (np.abs(g) < tiny)) for g in rnn.grads.values())
    for k in grads[np.float64]:
        np.testing.assert_allclose(grads[np.float32][k], grads[np.float64][k], rtol=1e-4, atol=1e-6)


def test_bptt_never_produces_subnormal_float32_gradients():
    """dL/dh halves at every step of h = tanh(0.5 h): after ~100 steps it is below 1e-30 and is
    flushed to 0, instead of spending ~25 steps in the slow subnormal range (1e-38..1e-45)."""
    from rnnlab.nn.cells import ElmanCell
    from rnnlab.nn.recurrent import scan_backward, scan_forward
    cell, T, B, H = ElmanCell("tanh"), 300, 2, 4
    W, b = (0.5 * np.eye(H)).astype(np.float32), np.zeros(H, np.float32)
    hs, _, caches = scan_forward(cell, W, b, np.zeros((T, B, H), np.float32), (np.zeros((B, H), np.float32),))
    dXP, _, d0 = scan_backward(cell, W, caches, hs[1:], None, (np.ones((B, H), np.float32),), dtype=np.float32)
    tiny = np.finfo(np.float32).tiny
    assert dXP[-1, 0, 0] == 1.0 and dXP[-100, 0, 0] == np.float32(0.5 ** 99)    # exact halving until then
    assert not np.any((dXP != 0) & (np.abs(dXP) < tiny)) and not np.any(d0[0])
