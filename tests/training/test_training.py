"""Training reaches the stated accuracy on small fixed-seed runs."""

import numpy as np
import pytest

from rnnlab.training.config import PRESETS
from rnnlab.training.evaluate import evaluate
from rnnlab.training.loop import Trainer


@pytest.fixture(scope="module")
def seed_run():
    t = Trainer(config=PRESETS["seed"])
    return t, t.fit()


def test_seed_preset_reproduces_the_published_range(seed_run):
    trainer, s = seed_run
    assert s["params"] == 13314
    assert 0.91 <= s["final_test_acc"] <= 0.96
    assert 0.91 <= s["best_test_acc"] <= 0.97
    h = trainer.history
    assert len(h) == 50 and h[0]["train_acc"] < 0.7 and h[9]["train_acc"] > 0.8   # learns in epochs 1-10
    assert h[0]["lr"] == 1e-3 and h[20]["lr"] == 5e-4 and h[40]["lr"] == 2.5e-4     # halved every 20
    assert all(len(r["iter_loss"]) == 10 and len(r["iter_grad_norm"]) == 10 for r in h)


def test_better_preset_beats_the_seed_on_the_same_seed(seed_run):
    _, seed = seed_run
    s = Trainer(config=PRESETS["better"]).fit()
    assert s["params"] <= 13314
    assert s["final_test_acc"] >= 0.97
    assert s["final_test_acc"] > seed["final_test_acc"] and s["best_test_acc"] > seed["best_test_acc"]


def test_training_is_deterministic_for_a_seed():
    cfg = PRESETS["seed"].replace(epochs=3)
    a, b = Trainer(config=cfg), Trainer(config=cfg)
    a.fit(), b.fit()
    for k in a.model.params:
        np.testing.assert_array_equal(a.model.params[k], b.model.params[k])
    assert [r["test_loss"] for r in a.history] == [r["test_loss"] for r in b.history]


def test_tagging_task_learns_per_step_labels():
    cfg = PRESETS["seed"].replace(task="tagging", epochs=8, batches_per_epoch=0, train_size=1000,
                                  test_size=300, lr=3e-3)
    t = Trainer(config=cfg)
    before = evaluate(t.model, t.task)[1]
    s = t.fit()
    assert before < 0.7 and s["final_test_acc"] > 0.85


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.03), ("rmsprop", 3e-3), ("adagrad", 3e-2)])
def test_every_optimizer_trains(optimizer, lr):
    cfg = PRESETS["seed"].replace(optimizer=optimizer, lr=lr, momentum=0.9 if optimizer == "sgd" else 0.0,
                                  epochs=15, clip=1.0)
    assert Trainer(config=cfg).fit()["final_test_acc"] > 0.7


def test_clipping_is_recorded_before_and_after():
    t = Trainer(config=PRESETS["seed"].replace(epochs=2, clip=0.05))
    t.fit()
    for r in t.history:
        assert all(a <= 0.05 * (1 + 1e-5) for a in r["iter_grad_norm_clipped"])
        assert max(r["iter_grad_norm"]) > 0.05
