"""Issue 3: embedding/MSE/regressor gradients, streaming == whole sequence, the long-memory
tasks, an LSTM solving the adding problem where a tanh RNN cannot, and a char-LM that learns."""

import numpy as np
import pytest

import rnnlab
from rnnlab.data.corpus import lm_task, unigram_entropy_bits
from rnnlab.data.tasks import adding, copy_memory, temporal_order
from rnnlab.nn.gradcheck import gradcheck, numerical_gradient, relative_error
from rnnlab.nn.heads import CharLM, SequenceRegressor
from rnnlab.nn.losses import mse
from rnnlab.training.config import PRESETS, TrainConfig
from rnnlab.training.evaluate import evaluate_stream
from rnnlab.training.loop import Trainer

TOL = 1e-6


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_charlm_gradients_including_embedding(cell, model_gradient_errors):
    rng = np.random.default_rng(0)
    model = CharLM(7, 3, 4, num_layers=2, cell=cell, dropout=0.2, dtype=np.float64, seed=1)
    ids, y = rng.integers(0, 7, (2, 5)), rng.integers(0, 7, (2, 5))
    errors = model_gradient_errors(model, ids, lambda out: rnnlab.softmax_cross_entropy(out, y),
                                   input_grad=False)
    assert max(errors.values()) < TOL, errors
    assert np.abs(model.grads["embedding.weight"]).sum() > 0


def test_mse_and_regressor_gradients():
    rng = np.random.default_rng(2)
    pred, target = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    _, d = mse(pred, target)
    assert relative_error(d, numerical_gradient(lambda: mse(pred, target)[0], pred)) < TOL
    model = SequenceRegressor(2, 4, 1, num_layers=2, cell="lstm", dtype=np.float64)
    x, y = rng.standard_normal((3, 6, 2)), rng.standard_normal((3, 1))
    _, d = mse(model.forward(x), y)
    model.zero_grad()
    dx = model.backward(d)
    errors = gradcheck(lambda: mse(model.forward(x), y)[0], model.params, model.grads)
    errors["input"] = relative_error(dx, numerical_gradient(lambda: mse(model.forward(x), y)[0], x))
    assert max(errors.values()) < TOL, errors
    with pytest.raises(rnnlab.InputError, match="must match"):
        mse(pred, target[:, :1])


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_streaming_one_step_at_a_time_equals_whole_sequence(cell):
    model = CharLM(11, 5, 8, num_layers=2, cell=cell, dtype=np.float64, seed=3)
    ids = np.random.default_rng(4).integers(0, 11, 30)
    model.eval()
    whole = model.forward(ids[None])[0]                       # (T, V)
    state, stepped = None, []
    for i in ids:
        logits, state = model.step(int(i), state)
        stepped.append(logits)
    np.testing.assert_allclose(np.array(stepped), whole, rtol=1e-12, atol=1e-12)


def test_stateful_windows_equal_one_long_forward():
    """Truncated BPTT carries the state: two windows give the same outputs as one long pass."""
    model = CharLM(6, 4, 5, num_layers=2, cell="lstm", dtype=np.float64)
    ids = np.random.default_rng(5).integers(0, 6, (3, 20))
    model.eval()
    whole = model.forward(ids)
    model.stateful = True
    parts = np.concatenate([model.forward(ids[:, :12]), model.forward(ids[:, 12:])], axis=1)
    np.testing.assert_allclose(parts, whole, rtol=1e-12)


def test_adding_task_and_its_baseline():
    d = adding(n_train=4000, n_test=10, length=30, seed=0)
    X, y = d.X_train, d.y_train
    assert X.shape == (4000, 30, 2) and y.shape == (4000, 1) and d.kind == "regress"
    assert np.all(X[:, :, 1].sum(axis=1) == 2)
    assert np.all(X[:, :15, 1].sum(axis=1) == 1)                  # one marker in each half
    np.testing.assert_allclose(y[:, 0], (X[:, :, 0] * X[:, :, 1]).sum(axis=1), rtol=1e-6)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(d.baseline, abs=0.01)


def test_copy_task_targets_and_baseline():
    d = copy_memory(n_train=5, n_test=2, length=15, seed=0)
    sym = d.X_train.argmax(-1)
    assert d.X_train.shape == (5, 35, 10) and d.kind == "tag"
    np.testing.assert_array_equal(d.y_train[:, -10:], sym[:, :10])
    assert np.all(d.y_train[:, :-10] == 0) and np.all(sym[:, 24] == 9)
    assert d.baseline == pytest.approx(25 / 35)                         # always answering blank


def test_temporal_order_labels():
    d = temporal_order(n_train=200, n_test=5, length=40, seed=0)
    sym = d.X_train.argmax(-1)
    for s, label in zip(sym, d.y_train):
        marks = s[(s == 4) | (s == 5)]
        assert len(marks) == 2 and label == 2 * (marks[0] - 4) + (marks[1] - 4)
    assert set(np.unique(d.y_train)) == {0, 1, 2, 3}


@pytest.mark.slow
def test_lstm_solves_adding_at_50_where_tanh_rnn_does_not():
    base = dict(task="adding", length=50, hidden=32, layers=1, dropout=0.0, init="pytorch",
                lr=1e-2, schedule="constant", clip=1.0, batch_size=64, batches_per_epoch=50,
                epochs=20, train_size=10000, test_size=1000)
    lstm = Trainer(config=TrainConfig(model="lstm", **base)).fit()
    rnn = Trainer(config=TrainConfig(model="rnn", **base)).fit()
    assert lstm["final_test_mse"] < 0.01
    assert rnn["final_test_mse"] > 0.1                           # stuck near the 0.167 baseline


def test_short_charlm_run_beats_the_unigram_entropy():
    cfg = PRESETS["charlm"].replace(hidden=64, layers=1, embed=16, batch_size=32, window=50,
                                    lr=1e-2, epochs=4, batches_per_epoch=50,
                                    corpus_chars=300_000, schedule="constant")
    t = Trainer(config=cfg)
    s = t.fit()
    assert s["final_test_bpc"] < 0.75 * t.task.baseline
    assert s["final_test_bpc"] == pytest.approx(
        evaluate_stream(t.model, t.task.X_test, cfg.batch_size, cfg.window)[1])
    text = t.model.generate("def ", 50, temperature=0.5, top_k=5, seed=1)
    assert len(text) == 50 and set(text) <= set(t.task.vocab)


def test_unigram_entropy_and_vocabulary():
    d = lm_task("abab" * 300 + "c" * 10, min_chars=10)
    assert d.vocab == ("a", "b", "c") and d.kind == "lm"
    assert unigram_entropy_bits(np.array([0, 1, 0, 1]), 2) == pytest.approx(1.0)


def test_generate_rejects_bad_input():
    model = CharLM(3, 2, 4, vocab=("a", "b", "c"))
    with pytest.raises(rnnlab.InputError, match="not in the model's vocabulary"):
        model.generate("abz", 5)
    with pytest.raises(rnnlab.InputError, match="temperature must be > 0"):
        model.generate("ab", 5, temperature=0)
    with pytest.raises(rnnlab.InputError, match="priming string is empty"):
        model.generate("", 5)


def test_embedding_backward_sums_repeated_ids_like_a_scatter_add():
    rng = np.random.default_rng(7)
    emb = rnnlab.Embedding(13, 4, rng=rng, dtype=np.float64)
    ids = rng.integers(0, 13, (6, 9))
    ids[0, :5] = 3                                                   # many repeats of one id
    emb.forward(ids)
    dy = rng.standard_normal((6, 9, 4))
    emb.backward(dy)
    expect = np.zeros((13, 4))
    np.add.at(expect, ids.reshape(-1), dy.reshape(-1, 4))
    np.testing.assert_allclose(emb.grads["weight"], expect, rtol=1e-12, atol=1e-12)


def test_cross_entropy_of_integer_logits_is_computed_in_float64():
    from rnnlab.nn.losses import softmax_cross_entropy
    logits = np.array([[2, 0, -1], [0, 0, 0]])
    loss, d = softmax_cross_entropy(logits, np.array([0, 2]))
    ref, d_ref = softmax_cross_entropy(logits.astype(np.float64), np.array([0, 2]))
    assert d.dtype == np.float64 and d.shape == logits.shape
    assert loss == ref and np.array_equal(d, d_ref)
    assert np.isclose(loss, 0.5 * (-np.log(np.exp(2) / (np.exp(2) + 1 + np.exp(-1))) + np.log(3)))
