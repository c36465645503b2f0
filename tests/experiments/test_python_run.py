"""A run built in Python: one call writes what `rnnlab train` writes, its record tells what was
trained (not what a config would have built), and the commands work on it."""

import json

import numpy as np
import pytest

import rnnlab
from rnnlab.cli import main


def sine_waves(rng, batch_size, length):
    """A constant input level picks the frequency; the target is the sine at that frequency."""
    level = rng.uniform(0.1, 0.5, (batch_size, 1, 1))
    t = np.arange(length)[None, :, None]
    x = np.broadcast_to(level, (batch_size, length, 1)).astype(np.float32)
    return x, np.sin(2 * np.pi * level * t / 4).astype(np.float32)


@pytest.fixture(scope="module")
def python_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("py") / "sine"
    task = rnnlab.Task.from_generator(sine_waves, length=30, test_size=64, name="sine")
    model = rnnlab.StepRegressor(1, 16, 1, seed=3)                    # PyTorch-style init, its default
    cfg = rnnlab.TrainConfig(epochs=3, batches_per_epoch=5, batch_size=16, lr=1e-2, schedule="cosine", clip=1.0)
    summary = rnnlab.train(task, model, config=cfg, run_dir=run, figure_workers=0)
    return run, summary


def test_one_call_writes_a_complete_run_directory(python_run):
    run, summary = python_run
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "metrics.jsonl", "probes.jsonl", "summary.json", "checkpoint.json", "state.json",
            "analysis.json", "diagnosis.json", "report.html", "heldout.npz", "training_curves.png",
            "hidden_states.png", "gradient_flow.png", "unit_roles.png", "pca.png"} <= names
    assert json.loads((run / "summary.json").read_text())["final_test_mse"] == summary["final_test_mse"]


def test_the_record_describes_the_objects_trained(python_run):
    run, _ = python_run
    record = json.loads((run / "config.json").read_text())
    assert record["interface"] == "python"
    assert record["from_config"] == {"task": False, "model": False, "loss": True}
    assert record["model"]["class"] == "StepRegressor" and record["model"]["init"] == "pytorch"   # not orthogonal
    assert record["model"]["hidden"] == 16 and record["model"]["cell"] == "rnn"
    task = record["task"]
    assert task["name"] == "sine" and task["source"] == "generator" and task["kind"] == "regress-steps"
    assert task["generator"].endswith("sine_waves") and task["settings"] == {}
    # nothing the run did not apply is recorded as its setting
    config = record["config"]
    assert not {"task", "bits", "pulse_prob", "init", "hidden", "model", "length", "test_size"} & set(config)
    assert {"lr", "optimizer", "clip", "epochs", "batch_size", "seed"} <= set(config)
    page = (run / "report.html").read_text()
    assert "flipflop" not in page and "orthogonal" not in page and "pulse_prob" not in page


def test_the_commands_work_on_it(python_run, capsys):
    run, summary = python_run
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    evaluated, recorded = (line.split("test mse ")[1].split()[0] for line in out.splitlines()[:2])
    assert evaluated == recorded == f"{summary['final_test_mse']:.4f}"
    assert main(["analyze", str(run), "--fp-starts", "32"]) == 0
    assert main(["report", str(run)]) == 0
    assert main(["doctor", str(run)]) == 0
    capsys.readouterr()


def test_advice_speaks_the_users_language(python_run, tmp_path, capsys):
    from rnnlab.runs.record import read_record
    assert read_record(python_run[0]).setting("lr", 0.003) == "lr=0.003"
    assert main(["train", "--out", str(tmp_path / "cli"), "--epochs", "1", "--batches-per-epoch", "2",
                 "--train-size", "100", "--test-size", "50", "--no-report", "--quiet"]) == 0
    capsys.readouterr()
    assert read_record(tmp_path / "cli").setting("lr", 0.003) == "--lr 0.003"


def test_a_model_of_the_users_own_class_is_named_when_it_cannot_be_rebuilt(tmp_path, capsys):
    class Mine(rnnlab.SequenceClassifier):
        pass
    task = rnnlab.Task.from_arrays(np.random.default_rng(0).standard_normal((40, 5, 2)).astype(np.float32),
                                   np.arange(40) % 2)
    rnnlab.train(task, Mine(2, 4, 2), config=rnnlab.TrainConfig(epochs=1, batch_size=8), run_dir=tmp_path / "r",
                 report=False, figure_workers=0)
    assert main(["eval", str(tmp_path / "r")]) == 2
    assert "a Mine of your own" in capsys.readouterr().err


def test_a_python_run_resumes_in_python_and_the_command_line_says_how(tmp_path, capsys):
    from rnnlab.runs.resume import resume_trainer
    task = rnnlab.Task.from_generator(sine_waves, length=20, test_size=32, name="sine")
    cfg = rnnlab.TrainConfig(epochs=4, batches_per_epoch=3, batch_size=8)
    whole = rnnlab.train(task, rnnlab.StepRegressor(1, 8, 1, seed=2), config=cfg, run_dir=tmp_path / "whole",
                         report=False, figure_workers=0)
    cut = tmp_path / "cut"
    rnnlab.train(task, rnnlab.StepRegressor(1, 8, 1, seed=2), config=cfg.replace(epochs=2), run_dir=cut,
                 report=False, figure_workers=0)
    record = json.loads((cut / "config.json").read_text())            # as if it had been asked for 4 epochs
    record["config"]["epochs"] = 4
    (cut / "config.json").write_text(json.dumps(record))
    for name in ("summary.json", "checkpoint.json"):                    # what a kill before the end leaves
        (cut / name).unlink()
    assert main(["train", "--resume", str(cut)]) == 2
    assert f"rnnlab.resume({str(cut)!r}, model=model, task=task)" in capsys.readouterr().err
    assert main(["eval", str(cut)]) == 2                                # no final weights: how to go on
    assert f"continue it with: rnnlab.resume({str(cut)!r}, model=model, task=task)" in capsys.readouterr().err
    assert len(resume_trainer(cut, task, rnnlab.StepRegressor(1, 8, 1, seed=2)).history) == 2
    other = rnnlab.Task.from_generator(sine_waves, length=20, test_size=32, name="sine", seed=99)  # same shapes
    with pytest.raises(rnnlab.errors.CheckpointError, match="holds other data than"):
        rnnlab.resume(cut, other, rnnlab.StepRegressor(1, 8, 1, seed=2), figure_workers=0)
    assert len((cut / "metrics.jsonl").read_text().splitlines()) == 2   # nothing trained or trimmed
    summary = rnnlab.resume(cut, task, rnnlab.StepRegressor(1, 8, 1, seed=2), figure_workers=0)
    assert summary["final_test_mse"] == whole["final_test_mse"]          # bit for bit
    assert len((cut / "metrics.jsonl").read_text().splitlines()) == 4
    written = {p.name for p in cut.iterdir()}
    assert {"summary.json", "checkpoint.json", "diagnosis.json", "training_curves.png"} <= written


def test_settings_a_python_part_makes_pointless_are_named(recwarn):
    task = rnnlab.Task.from_generator(sine_waves, length=10, test_size=16)
    rnnlab.Trainer(task, rnnlab.StepRegressor(1, 8, 1), config=rnnlab.PRESETS["flipflop"])
    messages = [str(w.message) for w in recwarn.list if issubclass(w.category, UserWarning)]
    assert len(messages) == 1
    assert messages[0].startswith("dropout=0.0, init='orthogonal', layers=1, length=100, task='flipflop'")
    assert "model and task were made in Python" in messages[0]
    recwarn.clear()
    rnnlab.Trainer(task, rnnlab.StepRegressor(1, 8, 1), config=rnnlab.TrainConfig(lr=1e-2))   # all applied
    assert not [w for w in recwarn.list if issubclass(w.category, UserWarning)]


def test_a_callback_is_any_object_with_the_hooks_it_needs():
    seen = []

    class Rows:
        def on_epoch_end(self, trainer, result):
            seen.append((result.record["epoch"], len(result.probes), result.events))
    cfg = rnnlab.TrainConfig(epochs=2, batches_per_epoch=3, train_size=100, test_size=20, probe_every=1)
    rnnlab.Trainer(config=cfg, callbacks=[Rows()]).fit()
    assert seen == [(1, 3, []), (2, 3, [])]


def test_a_damaged_heldout_split_is_one_sentence(python_run, tmp_path, capsys):
    import shutil
    run = tmp_path / "copy"
    shutil.copytree(python_run[0], run)
    data = (run / "heldout.npz").read_bytes()
    (run / "heldout.npz").write_bytes(data[:300])                      # cut short
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert "heldout.npz is unreadable" in err and "Traceback" not in err


def test_a_run_that_fails_before_its_first_epoch_leaves_nothing_in_the_way(tmp_path):
    task = rnnlab.Task.from_generator(sine_waves, length=10, test_size=16)
    run = tmp_path / "r"
    with pytest.raises(rnnlab.InputError, match="expected input of shape"):
        rnnlab.train(task, rnnlab.StepRegressor(3, 8, 1), run_dir=run, figure_workers=0)   # 3 inputs, not 1
    assert not run.exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(rnnlab.InputError):
        rnnlab.train(task, rnnlab.StepRegressor(3, 8, 1), run_dir=mine, force=True, figure_workers=0)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]              # the user's file stays
    rnnlab.train(task, rnnlab.StepRegressor(1, 8, 1), config=rnnlab.TrainConfig(epochs=1), run_dir=run,
                 report=False, figure_workers=0)
    assert (run / "summary.json").is_file()


def test_warnings_point_at_the_users_line_whatever_rnnlab_calls_lie_between(tmp_path):
    task = rnnlab.Task.from_generator(sine_waves, length=10, test_size=16)
    with pytest.warns(UserWarning, match="length=7 does nothing") as got:
        rnnlab.train(task, config=rnnlab.TrainConfig(epochs=1, batches_per_epoch=1, length=7, batch_size=8),
                     run_dir=tmp_path / "r", report=False, figure_workers=0)
    with pytest.warns(UserWarning, match="dropout=0.5 does nothing with num_layers=1") as layer:
        rnnlab.GRU(2, 4, dropout=0.5)
    assert {w.filename for w in [*got, *layer]} == {__file__}


def test_resume_refuses_other_training_arrays_behind_the_same_held_out_split(tmp_path):
    rng = np.random.default_rng(0)
    X, X_test = rng.standard_normal((80, 6, 2)).astype(np.float32), rng.standard_normal((20, 6, 2)).astype(np.float32)
    label = lambda a: (a.sum(axis=(1, 2)) > 0).astype(np.int64)           # noqa: E731
    task = rnnlab.Task.from_arrays(X, label(X), test=(X_test, label(X_test)))
    cfg = rnnlab.TrainConfig(epochs=2, batch_size=8, hidden=4, layers=1, dropout=0.0)
    run = tmp_path / "r"
    rnnlab.train(task, config=cfg.replace(epochs=1), run_dir=run, report=False, figure_workers=0)
    record = json.loads((run / "config.json").read_text())
    record["config"]["epochs"] = 2                                       # as if killed after epoch 1
    (run / "config.json").write_text(json.dumps(record))
    for name in ("summary.json", "checkpoint.json"):
        (run / name).unlink()
    other = rnnlab.Task.from_arrays(-X, label(-X), test=(X_test, label(X_test)))   # same shapes, same test
    with pytest.raises(rnnlab.errors.CheckpointError, match="holds other data than"):
        rnnlab.resume(run, other, figure_workers=0)
    assert rnnlab.resume(run, task, figure_workers=0)["epochs"] == 2


def test_a_run_recorded_before_checksums_is_checked_by_its_saved_held_out_split(tmp_path):
    task = rnnlab.Task.from_generator(sine_waves, length=10, test_size=16, name="sine")
    cfg = rnnlab.TrainConfig(epochs=2, batches_per_epoch=2, batch_size=8)
    run = tmp_path / "r"
    rnnlab.train(task, rnnlab.StepRegressor(1, 4, 1), config=cfg.replace(epochs=1), run_dir=run, report=False,
                 figure_workers=0)
    record = json.loads((run / "config.json").read_text())
    record["config"]["epochs"] = 2
    del record["task"]["arrays_sha256"]                                  # as runs were written before
    (run / "config.json").write_text(json.dumps(record))
    for name in ("summary.json", "checkpoint.json"):
        (run / name).unlink()
    other = rnnlab.Task.from_generator(sine_waves, length=10, test_size=16, name="sine", seed=5)
    with pytest.raises(rnnlab.errors.CheckpointError, match="holds other held-out data than"):
        rnnlab.resume(run, other, rnnlab.StepRegressor(1, 4, 1), figure_workers=0)
    assert rnnlab.resume(run, task, rnnlab.StepRegressor(1, 4, 1), figure_workers=0)["epochs"] == 2
