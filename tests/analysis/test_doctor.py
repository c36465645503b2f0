"""The doctor names the pattern of runs built to vanish, to explode, and to be healthy."""

import json
import warnings

import pytest

from rnnlab.analysis.doctor import diagnose
from rnnlab.cli import main
from rnnlab.runs.writer import RunWriter
from rnnlab.training.config import PRESETS, TrainConfig
from rnnlab.training.loop import Trainer


def run(tmp_path, cfg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        Trainer(config=cfg, callbacks=[RunWriter(tmp_path)]).fit()
    return diagnose(tmp_path)


def test_vanishing_run(tmp_path):
    cfg = TrainConfig(task="adding", length=100, hidden=32, layers=1, dropout=0.0, lr=1e-3,
                      schedule="constant", clip=1.0, batch_size=64, batches_per_epoch=20,
                      epochs=10, train_size=5000, test_size=500)
    d = run(tmp_path, cfg)
    assert d.pattern == "vanishing"
    assert d.numbers["early_to_late_gradient"] < 1e-2
    assert "gradient reaching step 1" in d.text() and "model='lstm'" in d.text()    # a Python run's words


def test_exploding_run_with_the_guard(tmp_path):
    d = run(tmp_path, PRESETS["seed"].replace(nonlinearity="relu", init="identity", optimizer="sgd",
                                              lr=0.05, epochs=10, max_recoveries=12))
    assert d.pattern == "exploding"
    assert "guard recovered" in d.text() and "clip=" in d.text() and "lr=" in d.text()


def test_exploding_run_without_the_guard(tmp_path):
    d = run(tmp_path, PRESETS["seed"].replace(optimizer="sgd", lr=1.0, epochs=10, guard=False))
    assert d.pattern == "exploding"
    assert "loss jumped" in d.text()


def test_healthy_run(tmp_path):
    d = run(tmp_path, PRESETS["seed"].replace(epochs=15))
    assert d.pattern == "healthy" and not d.advice
    assert "training loss went from" in d.text()


def test_better_preset_is_not_called_erratic(tmp_path):
    assert run(tmp_path, PRESETS["better"].replace(epochs=20)).pattern == "healthy"


def test_doctor_cli(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--epochs", "3", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["doctor", str(out)]) == 0
    assert capsys.readouterr().out.startswith("Diagnosis: ")
    assert main(["doctor", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pattern"] in {"healthy", "vanishing", "exploding", "hypersensitive"}
    assert main(["doctor", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_suggested_clip_follows_the_calm_steps_not_the_blow_up():
    from rnnlab.analysis.doctor import suggested_clip
    nan = float("nan")
    assert suggested_clip([0.1, 0.12, 0.09, 0.11] + [5e11] * 40) == pytest.approx(0.21)
    assert suggested_clip([0.1, 0.12, 0.09, nan] + [0.5] * 40) == pytest.approx(0.2)
    assert suggested_clip([800.0, 700.0, 600.0] + [1e16] * 40) == 1.0        # large from the start: 1
    assert suggested_clip([nan, 1e12]) == 1.0 and suggested_clip([]) == 1.0
