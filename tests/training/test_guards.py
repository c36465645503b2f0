"""Guards: NaN, infinities and loss spikes are caught before the update and recovered from."""

import json
import math
import warnings

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.experiments.run import finish
from rnnlab.training.config import PRESETS
from rnnlab.training.guards import TrainingDiverged
from rnnlab.training.loop import Trainer

EXPLODING = dict(nonlinearity="relu", init="identity", optimizer="sgd", lr=0.05, epochs=15,
                 max_recoveries=12)


def _poison(trainer, epoch, transform):
    """Make one batch of one epoch bad (the data itself stays clean)."""
    original = trainer.batches.epoch

    def batches():
        out = original()
        if len(trainer.history) + 1 == epoch:
            out[3].x = transform(out[3].x.copy())
        return out
    trainer.batches.epoch = batches


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_injected_nan_is_recovered_and_would_otherwise_ruin_the_run():
    def nan(x):
        x[0, 0, 0] = np.nan
        return x
    runs = {}
    for guard in (True, False):
        t = Trainer(config=PRESETS["seed"].replace(epochs=10, guard=guard))
        _poison(t, 2, nan)
        runs[guard] = (t, t.fit())
    t, s = runs[True]
    assert math.isfinite(s["final_train_loss"]) and s["final_test_acc"] > 0.8
    [event] = t.guard.events
    assert event["kind"] == "nan loss" and event["epoch"] == 2 and event["lr_after"] == 5e-4
    assert all(np.isfinite(p).all() for p in t.model.params.values())
    _, s_off = runs[False]
    assert math.isnan(s_off["final_train_loss"])


def test_injected_loss_spike_is_rolled_back():
    t = Trainer(config=PRESETS["better"].replace(epochs=4))            # ReLU: scaled inputs do spike the loss
    _poison(t, 3, lambda x: x * 100)
    s = t.fit()
    assert [e["kind"] for e in t.guard.events] == ["loss spike"]
    e = t.guard.events[0]
    assert e["loss"] > 10 * e["recent_loss_median"] and e["rolled_back_to_iteration"] < e["iteration"]
    assert s["final_test_acc"] > 0.9


def test_huge_learning_rate_recovers_with_the_guard_and_not_without():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        off = Trainer(config=PRESETS["seed"].replace(guard=False, **EXPLODING)).fit()
        t = Trainer(config=PRESETS["seed"].replace(**EXPLODING))
        on = t.fit()
    assert math.isnan(off["final_train_loss"])
    assert math.isfinite(on["final_train_loss"]) and on["final_test_acc"] > 0.6
    lrs = [e["lr_after"] for e in t.guard.events]
    assert len(lrs) >= 2 and all(b < a for a, b in zip(lrs, lrs[1:]))
    assert t.history[-1]["lr"] == pytest.approx(0.05 * 0.5 ** len(lrs))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_gives_up_with_a_clear_message(tmp_path, capsys):
    with pytest.raises(TrainingDiverged, match="training failed 3 times .* lower lr"):
        Trainer(config=PRESETS["seed"].replace(**dict(EXPLODING, lr=1.0, max_recoveries=2))).fit()
    args = ["train", "--nonlinearity", "relu", "--init", "identity", "--optimizer", "sgd",
            "--lr", "1", "--max-recoveries", "2", "--epochs", "5", "--out", str(tmp_path / "r")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rnnlab: error: training failed 3 times") and "Traceback" not in "".join(err)
    assert (tmp_path / "r" / "config.json").is_file()         # what was written stays


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_events_are_written_and_drawn(tmp_path):
    t = Trainer(config=PRESETS["seed"].replace(**EXPLODING))
    finish(t, tmp_path, report=False, figure_workers=0)
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert len(events) == len(t.guard.events) >= 2
    assert {"iteration", "kind", "loss", "grad_norm", "recent_grad_norms", "lr_before", "lr_after"} <= set(events[0])
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert sum(r.get("events", 0) for r in rows) == len(events)
    assert (tmp_path / "grad_norm.png").stat().st_size > 10_000


def test_a_first_step_that_is_already_non_finite_is_one_sentence_not_an_index_error():
    import rnnlab
    from rnnlab.training.guards import TrainingDiverged
    X = np.random.default_rng(0).standard_normal((40, 5, 2)).astype(np.float32)
    y = np.full((40, 1), 1e30, np.float32)                     # squared errors overflow float32 at once
    task = rnnlab.Task.from_arrays(X, y)
    with pytest.raises(TrainingDiverged, match="the first step of training already gave infinite loss"):
        rnnlab.Trainer(task, config=rnnlab.TrainConfig(epochs=1, batch_size=8)).fit()
