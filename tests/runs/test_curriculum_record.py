"""A task made in Python and trained with a length curriculum: the run's record (config.json's task,
heldout.npz) is its final stage, so eval, analyze and resume use the final length and held-out set,
not the first stage's."""

import json

import numpy as np
import pytest

import rnnlab
from rnnlab.analysis.analyze import analyze_run
from rnnlab.cli import main
from rnnlab.runs.checkpoint import load_checkpoint
from rnnlab.runs.load import evaluate_run, load_run
from rnnlab.runs.resume import resume_trainer
from rnnlab.runs.writer import RunWriter
from rnnlab.training.loop import Callback, Trainer

FIRST, FINAL = 6, 12


def running_mean(rng, batch_size, length):
    """Noise in; the target at each step is the mean of the inputs so far."""
    x = rng.normal(size=(batch_size, length, 1)).astype(np.float32)
    return x, (np.cumsum(x, axis=1) / np.arange(1, length + 1)[None, :, None]).astype(np.float32)


def make_task():
    return rnnlab.Task.from_generator(running_mean, length=FINAL, test_size=16, seed=5, name="mean")


CFG = rnnlab.TrainConfig(hidden=8, epochs=4, batches_per_epoch=2, batch_size=8, seed=0, length=FINAL,
                         curriculum=str(FIRST), curriculum_every=2, checkpoint_every=1)


@pytest.fixture(scope="module")
def curriculum_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("curriculum") / "run"
    task = make_task()
    summary = rnnlab.train(task, config=CFG, run_dir=run, report=False, figure_workers=0)
    return run, task, summary


def test_the_record_and_heldout_split_are_the_final_stage(curriculum_run):
    run, task, summary = curriculum_run
    assert summary["final_length"] == FINAL
    assert json.loads((run / "config.json").read_text())["task"]["length"] == FINAL
    with np.load(run / "heldout.npz") as saved:
        np.testing.assert_array_equal(saved["X"], task.test.X)            # (16, FINAL, 1), not the first stage's
        np.testing.assert_array_equal(saved["y"], task.test.y)


def test_eval_scores_the_final_length_on_the_final_heldout_set(curriculum_run, capsys):
    run, task, summary = curriculum_run
    cfg, model, reopened = load_run(run)
    assert reopened.seq_length == FINAL
    np.testing.assert_array_equal(reopened.test.X, task.test.X)
    loss, mse, _ = evaluate_run(cfg, model, reopened)
    assert mse == pytest.approx(summary["final_test_mse"], rel=1e-6)      # the number training logged
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"on 16 sequences of {FINAL} steps" in out
    assert f"test mse {summary['final_test_mse']:.4f}" in out.splitlines()[0]


def test_analyze_uses_the_final_length(curriculum_run):
    run, _, _ = curriculum_run
    assert analyze_run(run, fp_seconds=0.5, fp_rounds=1).json["steps_analysed"] == FINAL


class CrashAfter(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, result):
        if result.record["epoch"] == self.epoch:
            raise RuntimeError("stopped")


def test_an_interrupted_run_resumes_to_the_same_weights(curriculum_run, tmp_path):
    """Stopped in the first stage, resumed with the same task: it ends where the whole run did."""
    run, _, _ = curriculum_run
    cut = tmp_path / "cut"
    cut.mkdir()
    task = make_task()
    with pytest.raises(RuntimeError):
        Trainer(task, config=CFG, callbacks=[RunWriter(cut), CrashAfter(1)]).fit()
    trainer = resume_trainer(cut, task=task)
    assert len(trainer.history) == 1 and trainer.task.seq_length == FIRST
    trainer.callbacks = [RunWriter(cut, resuming=True)]
    trainer.fit()
    whole, _ = load_checkpoint(run)
    resumed, _ = load_checkpoint(cut)
    for k in whole:
        np.testing.assert_array_equal(resumed[k], whole[k], err_msg=k)
    assert load_run(cut)[2].seq_length == FINAL


def test_resume_writes_the_ending_of_a_run_stopped_before_its_report(tmp_path, monkeypatch, capsys):
    """Ctrl-C after the last epoch: --resume reopens the run from heldout.npz (the final stage only,
    which no curriculum can shorten) and writes the analysis at the final length."""
    import rnnlab.experiments.run as an
    run = tmp_path / "stopped"

    def stop(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(an, "analyze", stop)
    with pytest.raises(KeyboardInterrupt):
        rnnlab.train(make_task(), config=CFG.replace(epochs=2, curriculum_every=1), run_dir=run, figure_workers=0)
    monkeypatch.undo()
    assert main(["train", "--resume", str(run)]) == 0
    assert "writing its figures, analysis and report" in capsys.readouterr().out
    assert json.loads((run / "analysis.json").read_text())["steps_analysed"] == FINAL
    assert (run / "report.html").is_file()
