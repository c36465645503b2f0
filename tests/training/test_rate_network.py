"""Training a CTRNN: Dale's signs and masks hold through a whole run (after every step, in every
saved checkpoint, in the optimizer's state), penalties are gradient-checked and logged apart."""

import glob
import json

import numpy as np
import pytest

import rnnlab
from rnnlab import TrainConfig, Trainer
from rnnlab.nn.gradcheck import gradcheck
from rnnlab.nn.losses import weight_penalty

BASE = dict(task="flipflop", model="ctrnn", nonlinearity="relu", hidden=20, layers=1, dropout=0.0, lr=1e-2,
            length=30, epochs=4, batches_per_epoch=15, batch_size=16, train_size=64, test_size=32,
            probe_every=0)


def _views(model, flat):
    """A flat optimizer buffer cut into the model's parameters (their order in the flat buffer)."""
    out, off = {}, 0
    for name, p in model.params.items():
        out[name] = flat[off:off + p.size].reshape(p.shape)
        off += p.size
    return out


class Watch(rnnlab.Callback):
    """Checks the signs and the masks after every optimizer step."""
    def __init__(self):
        self.steps = 0
        self.flipped = 0

    def on_step_end(self, trainer):
        m = trainer.model
        W, s = m.params["rnn.weight_hh_l0"], m.rnn.signs["weight_hh_l0"]
        self.flipped += int((W * s < 0).sum())
        for name, mask in m.rnn.masks.items():
            assert np.all(m.params["rnn." + name][mask == 0] == 0)
        self.steps += 1


def test_no_sign_flips_and_masked_weights_stay_zero_through_training(tmp_path):
    cfg = TrainConfig(**BASE, dale=0.8, readout="excitatory", density=0.5, self_connections=False, rec_noise=0.05,
                      input_noise=0.02, checkpoint_every=1)
    watch = Watch()
    trainer = Trainer(config=cfg, callbacks=[watch])
    before = trainer.model.state_dict()
    trainer.fit()
    model = trainer.model
    assert watch.steps == 60 and watch.flipped == 0
    rec = model.rnn.masks["weight_hh_l0"]
    assert rec.mean() < 0.6 and np.all(np.diag(rec) == 0)
    assert not np.allclose(before["rnn.weight_hh_l0"], model.params["rnn.weight_hh_l0"])   # it trained
    # the excitatory-only readout: weights from inhibitory units are exactly 0, others moved
    assert np.all(model.params["fc.weight"][:, 16:] == 0) and np.any(model.params["fc.weight"][:, :16] != 0)
    # optimizer state: the masked weights' Adam moments never left 0
    st = trainer.optimizer.state_dict()["state"]
    for moment in ("m", "v"):
        (buf,) = [s[moment] for s in st.values()]
        views = _views(model, buf)
        assert np.all(views["rnn.weight_hh_l0"][rec == 0] == 0)
        assert np.all(views["fc.weight"][:, 16:] == 0)
        assert np.any(views["rnn.weight_hh_l0"][rec == 1] != 0)


def test_every_saved_checkpoint_keeps_the_signs(tmp_path):
    cfg = TrainConfig(**BASE, dale=0.8, rec_noise=0.05, checkpoint_every=1)
    rnnlab.train(config=cfg, run_dir=tmp_path / "run", report=False)
    files = glob.glob(str(tmp_path / "run" / "*.npz"))
    signs = rnnlab.CTRNN(3, 20, dale=0.8).signs["weight_hh_l0"]
    checked = 0
    for f in files:
        z = np.load(f)
        for key in z.files:
            if key.endswith("rnn.weight_hh_l0"):
                assert np.all(z[key] * signs >= 0), (f, key)
                checked += 1
    assert checked >= 2              # the model's checkpoint and the resume state (with the guard's copies)


def test_weight_penalty_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    params = {"rnn.weight_hh_l0": rng.standard_normal((4, 4)), "fc.weight": rng.standard_normal((2, 4)),
              "fc.bias": rng.standard_normal(2)}
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    weight_penalty(params, grads, l1=0.3, l2=0.7)

    def value():
        return sum(weight_penalty(params, {k: np.zeros_like(v) for k, v in params.items()}, 0.3, 0.7).values())
    errors = gradcheck(value, params, grads)
    assert max(errors.values()) < 1e-8 and np.all(grads["fc.bias"] == 0)


def test_penalties_are_logged_apart_from_the_task_loss(tmp_path):
    cfg = TrainConfig(**{**BASE, "epochs": 2}, rate_l2=0.5, weight_l1=1e-4, weight_l2=1e-3)
    rnnlab.train(config=cfg, run_dir=tmp_path / "run", report=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    pen = rows[-1]["penalties"]
    assert set(pen) == {"rate_l2", "weight_l1", "weight_l2"} and all(v > 0 for v in pen.values())
    # the task loss is the loss alone: the mean of the iterations' task losses
    assert rows[-1]["train_loss"] == pytest.approx(np.mean(rows[-1]["iter_loss"]))


def test_the_rate_penalty_lowers_the_rates():
    rates = {}
    for lam in (0.0, 3.0):
        t = Trainer(config=TrainConfig(**BASE, rate_l2=lam))
        t.fit()
        X = t.task.test.X[:16]
        t.model.eval()
        out, _ = t.model.rnn.forward(X)
        rates[lam] = float(np.mean(out ** 2))
    assert rates[3.0] < 0.5 * rates[0.0]


def test_stacked_ctrnn_members_match_their_runs_alone():
    cfgs = [TrainConfig(**{**BASE, "epochs": 2}, dale=0.8, rec_noise=0.05, rate_l2=0.1, seed=s) for s in (0, 1)]
    alone = [Trainer(config=c) for c in cfgs]
    for t in alone:
        t.fit()
    stacked = rnnlab.StackTrainer([Trainer(config=c) for c in cfgs])
    stacked.fit()
    for a, b in zip(alone, stacked.trainers):
        for k in a.model.params:
            np.testing.assert_array_equal(a.model.params[k], b.model.params[k], err_msg=k)
        assert a.history[-1]["penalties"] == b.history[-1]["penalties"]
