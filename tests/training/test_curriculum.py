"""Sequence-length curriculum: short sequences first, lengthened on a schedule or a target."""

import pytest

import rnnlab
from rnnlab.training.config import PRESETS, TrainConfig
from rnnlab.training.loop import Trainer


def test_stages_advance_every_n_epochs_and_are_recorded():
    t = Trainer(config=PRESETS["seed"].replace(curriculum="5,10", curriculum_every=2, epochs=7))
    t.fit()
    assert [r["length"] for r in t.history] == [5, 5, 10, 10, 20, 20, 20]
    assert t.task.X_train.shape[1] == 20


@pytest.mark.slow
def test_curriculum_solves_adding_at_100_where_the_same_budget_does_not():
    base = dict(task="adding", length=100, hidden=32, layers=1, dropout=0.0, init="pytorch",
                model="lstm", lr=1e-2, schedule="constant", clip=1.0, batch_size=64,
                batches_per_epoch=50, epochs=16, train_size=10000, test_size=1000)
    plain = Trainer(config=TrainConfig(**base)).fit()
    t = Trainer(config=TrainConfig(curriculum="25,50", curriculum_target=0.01, **base))
    staged = t.fit()
    lengths = [r["length"] for r in t.history]
    assert lengths[0] == 25 and lengths[-1] == 100 and lengths == sorted(lengths)
    assert staged["final_test_mse"] < 0.01 < 0.1 < plain["final_test_mse"]


@pytest.mark.parametrize("changes,match", [
    (dict(curriculum="10,x"), "comma-separated lengths"),
    (dict(curriculum="10,5", curriculum_every=1), "rise strictly"),
    (dict(curriculum="10,20", curriculum_every=1), "below length"),
    (dict(curriculum="5,10"), "needs curriculum_every N"),
    (dict(task="charlm", curriculum="5", curriculum_every=1), "vary window"),
])
def test_bad_curricula(changes, match):
    with pytest.raises(rnnlab.InputError, match=match):
        PRESETS["seed"].replace(**changes)
