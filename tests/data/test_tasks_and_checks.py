"""Tasks give the stated labels on fixed splits; public boundaries reject bad input clearly."""

import numpy as np
import pytest

import rnnlab
from rnnlab.data.tasks import make_task
from rnnlab.training.config import TrainConfig


def test_mean_sign_labels_and_fixed_split():
    d = make_task("mean-sign", 50, 20, 7, 3, seed=4)
    assert d.X_train.shape == (50, 7, 3) and d.X_test.shape == (20, 7, 3)
    np.testing.assert_array_equal(d.y_train, d.X_train.astype(np.float64).mean(axis=(1, 2)) > 0)
    again = make_task("mean-sign", 50, 20, 7, 3, seed=4)
    np.testing.assert_array_equal(d.X_test, again.X_test)
    assert not np.array_equal(d.X_train, make_task("mean-sign", 50, 20, 7, 3, seed=5).X_train)
    assert 0.3 < d.y_train.mean() < 0.7


def test_tagging_labels_are_running_mean_signs():
    d = make_task("tagging", 10, 5, 6, 2, seed=0)
    assert d.per_step and d.y_train.shape == (10, 6)
    x = d.X_train[3].astype(np.float64)
    expect = [x[: t + 1].mean() > 0 for t in range(6)]
    np.testing.assert_array_equal(d.y_train[3], expect)
    np.testing.assert_array_equal(d.y_train[:, -1], d.X_train.astype(np.float64).mean(axis=(1, 2)) > 0)


def test_seed_model_has_13314_parameters():
    cfg = TrainConfig()
    m = rnnlab.SequenceClassifier(cfg.features, cfg.hidden, 2, cfg.layers, dropout=cfg.dropout,
                                  init=cfg.init)
    assert m.parameter_count() == 13314


def test_wrong_input_shape_names_the_fix():
    rnn = rnnlab.RNN(10, 8)
    expected = r"expected input of shape \(B, T, 10\), got \(32, 20, 12\); set input_size=12"
    with pytest.raises(rnnlab.InputError, match=expected):
        rnn.forward(np.zeros((32, 20, 12), np.float32))
    with pytest.raises(rnnlab.InputError, match="expected input of shape"):
        rnn.forward(np.zeros((20, 10), np.float32))
    with pytest.raises(rnnlab.InputTypeError, match="NumPy array"):
        rnn.forward([[[0.0] * 10]])
    with pytest.raises(rnnlab.InputError, match=r"h0 of shape .* \(1, 2, 8\), got \(2, 2, 8\)"):
        rnn.forward(np.zeros((2, 3, 10), np.float32), np.zeros((2, 2, 8), np.float32))


@pytest.mark.parametrize("kwargs,match", [
    (dict(hidden_size=0), "hidden_size must be at least 1"),
    (dict(num_layers=1.5), "num_layers must be an integer"),
    (dict(dropout=1.0), "dropout must be < 1.0"),
    (dict(nonlinearity="sigmoid"), "nonlinearity must be one of"),
    (dict(init="he"), "init must be one of"),
    (dict(dtype=np.int32), "dtype must be float32 or float64"),
    (dict(bidirectional="yes"), "bidirectional must be True or False"),
])
def test_bad_layer_arguments(kwargs, match):
    args = dict(input_size=3, hidden_size=4) | kwargs
    with pytest.raises((rnnlab.InputError, rnnlab.InputTypeError), match=match):
        rnnlab.RNN(**args)


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match="does nothing with num_layers=1"):
        rnnlab.RNN(3, 4, dropout=0.5)


@pytest.mark.parametrize("changes,match", [
    (dict(lr=0.0), "lr must be > 0.0"),
    (dict(task="parity"), "task must be one of"),
    (dict(nesterov=True), "nesterov needs optimizer 'sgd'"),
    (dict(epochs=0), "epochs must be at least 1"),
])
def test_bad_config_values(changes, match):
    with pytest.raises(rnnlab.InputError, match=match):
        TrainConfig().replace(**changes)


def test_changing_model_drops_the_old_models_own_settings():
    """The charlm preset's LSTM forget bias and the better preset's relu go when the model
    changes (CLI --model, sweep grids); set explicitly with the wrong model, they are refused."""
    from rnnlab.training.config import PRESETS
    gru = PRESETS["charlm"].replace(model="gru")
    assert gru.forget_bias == 0.0 and gru.window == PRESETS["charlm"].window
    lstm = PRESETS["better"].replace(model="lstm")
    assert lstm.nonlinearity == "tanh" and lstm.init == PRESETS["better"].init
    assert PRESETS["better"].replace(lr=0.5).nonlinearity == "relu"          # same model: kept
    assert lstm.replace(model="rnn", nonlinearity="relu").nonlinearity == "relu"
    with pytest.raises(rnnlab.InputError, match="nonlinearity applies to the vanilla RNN"):
        PRESETS["seed"].replace(model="lstm", nonlinearity="relu")
    with pytest.raises(rnnlab.InputError, match="forget_bias applies to the LSTM only"):
        PRESETS["charlm"].replace(model="gru", forget_bias=1.0)
    with pytest.raises(rnnlab.InputError, match="left to right only"):
        PRESETS["charlm"].replace(bidirectional=True)


def test_unknown_config_key_is_rejected():
    with pytest.raises(rnnlab.InputError, match="unknown config field.*hiden"):
        TrainConfig.from_dict({"hiden": 3})


def test_load_state_dict_mismatch_is_explained():
    a, b = rnnlab.RNN(3, 4), rnnlab.RNN(3, 5)
    before = a.state_dict()
    with pytest.raises(rnnlab.InputError, match=r"weight_ih_l0 has shape \(5, 3\), expected \(4, 3\)"):
        a.load_state_dict(b.state_dict())
    bad = a.state_dict()
    bad["weight_hh_l0"][0, 0] = np.nan
    bad["bias_ih_l0"] += 1
    with pytest.raises(rnnlab.InputError, match="NaN or infinite"):
        a.load_state_dict(bad)
    for k, v in a.state_dict().items():                  # nothing was half-loaded
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(rnnlab.InputError, match="keys do not match"):
        a.load_state_dict({"weight": np.zeros(3)})


def test_batch_larger_than_the_training_set_is_refused_before_training():
    from rnnlab.training.loop import Trainer
    with pytest.raises(rnnlab.InputError, match=r"batch_size \(6000\) is larger than the 5000 training"):
        Trainer(config=TrainConfig(batch_size=6000))


def test_unused_fields_follow_task_model_and_optimizer():
    from rnnlab.training.config import PRESETS
    npz = PRESETS["seed"].replace(task="npz", data="x.npz").unused_fields()
    assert {"train_size", "test_size", "length", "features", "window", "bits"} <= npz and "data" not in npz
    lm = PRESETS["charlm"].unused_fields()
    assert {"window", "embed", "forget_bias", "text"}.isdisjoint(lm) and {"train_size", "nonlinearity"} <= lm
    sgd = PRESETS["seed"].replace(optimizer="sgd", momentum=0.9, nesterov=True, guard=False).unused_fields()
    assert {"momentum", "nesterov"}.isdisjoint(sgd) and {"spike_factor", "lr_cut"} <= sgd
    assert {"hidden", "nonlinearity"} <= PRESETS["seed"].replace(model="transformer").unused_fields()
