"""The doctor's verdicts on runs it used to misjudge: a curriculum's planned loss rises, a run that
lost its best epoch, an unfinished run, a run of no epochs."""

import json

import pytest

from rnnlab.analysis.doctor import diagnose
from rnnlab.cli import main
from rnnlab.training.guards import Guard

SHORT = ["--epochs", "4", "--batches-per-epoch", "3", "--train-size", "100", "--test-size", "40", "--quiet",
         "--no-report"]


@pytest.fixture()
def run(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--out", str(out), *SHORT]) == 0
    capsys.readouterr()
    return out


def rewrite(run, **columns):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for key, values in columns.items():
        for row, v in zip(rows, values):
            row[key] = v
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_curriculum_step_up_is_not_a_blow_up(run):
    rewrite(run, train_loss=[0.7, 0.2, 0.9, 0.6], length=[5, 5, 20, 20])
    assert diagnose(run).pattern != "exploding"
    rewrite(run, length=[20, 20, 20, 20])                                  # the same rise at one length is
    assert diagnose(run).pattern == "exploding"


def test_the_guard_judges_spikes_within_a_stage():
    guard = Guard(spike_factor=10.0, window=4)
    for i in range(4):
        guard.accept(0.1, 1.0, i, lambda: ({}, {}))
    assert guard.check(5.0, 1.0) == "loss spike"
    guard.new_stage()
    assert guard.check(5.0, 1.0) is None


def test_a_run_that_lost_its_best_epoch_is_not_healthy(run):
    rewrite(run, test_acc=[0.6, 0.9, 0.7, 0.62])
    d = diagnose(run)
    assert d.pattern == "worse at the end"
    assert "62.00%, against 90.00% at epoch 2" in d.text() and "--epochs 2" in d.text()


def test_an_unfinished_run_says_so(run):
    (run / "summary.json").unlink()
    (run / "checkpoint.json").unlink()
    d = diagnose(run)
    assert d.findings[0].startswith("The run stopped after 4 of 4 epochs") and "final" not in d.text()
    assert f"rnnlab train --resume {run}" in d.findings[0]
    (run / "metrics.jsonl").write_text("")
    assert diagnose(run).pattern == "unfinished"
