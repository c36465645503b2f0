"""Resume: an interrupted run continues to exactly the weights and metrics of an uninterrupted one."""

import json
import signal
import threading
import time
import warnings

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.runs.checkpoint import load_checkpoint
from rnnlab.runs.files import read_jsonl
from rnnlab.runs.resume import resume_trainer
from rnnlab.runs.writer import RunWriter
from rnnlab.training.config import PRESETS
from rnnlab.training.loop import Callback, Trainer

TIMING = {"seconds"}


class Crash(Exception):
    pass


class CrashAfter(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, result):
        if result.record["epoch"] == self.epoch:
            raise Crash


def strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def assert_same_run(a_dir, b_dir):
    wa, _ = load_checkpoint(a_dir)
    wb, _ = load_checkpoint(b_dir)
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    for log in ("metrics.jsonl", "probes.jsonl", "events.jsonl"):
        assert strip(read_jsonl(a_dir / log)) == strip(read_jsonl(b_dir / log)), log


@pytest.mark.parametrize("name,cfg", [
    ("seed", PRESETS["seed"].replace(epochs=8, checkpoint_every=3)),
    ("lstm-lm", PRESETS["charlm"].replace(hidden=16, embed=8, batch_size=8, window=16, epochs=6,
                                          batches_per_epoch=7, corpus_chars=60_000, dropout=0.1,
                                          layers=2, checkpoint_every=2)),
    ("curriculum", PRESETS["seed"].replace(curriculum="5,10", curriculum_every=2, epochs=8,
                                           checkpoint_every=1)),
    ("transformer", PRESETS["seed"].replace(model="transformer", d_model=16, heads=2, epochs=6,
                                            checkpoint_every=2)),
    ("flipflop", PRESETS["flipflop"].replace(hidden=16, epochs=6, batches_per_epoch=5,
                                             checkpoint_every=2)),
    ("guarded", PRESETS["seed"].replace(nonlinearity="relu", init="identity", optimizer="sgd",
                                        lr=0.05, epochs=6, max_recoveries=12, checkpoint_every=1)),
])
def test_interrupted_run_resumes_to_identical_results(tmp_path, name, cfg):
    warnings.simplefilter("ignore", RuntimeWarning)
    full, cut = tmp_path / "full", tmp_path / "cut"
    full.mkdir(), cut.mkdir()
    Trainer(config=cfg, callbacks=[RunWriter(full)]).fit()
    # epochs after the last saved state are redone after the resume
    crash_at = {"seed": 5, "lstm-lm": 5, "guarded": 2, "curriculum": 3, "flipflop": 5,
                "transformer": 5}[name]
    with pytest.raises(Crash):
        Trainer(config=cfg, callbacks=[RunWriter(cut), CrashAfter(crash_at)]).fit()
    t = resume_trainer(cut)
    assert len(t.history) == (crash_at // cfg.checkpoint_every) * cfg.checkpoint_every
    t.callbacks = [RunWriter(cut, resuming=True)]
    t.fit()
    assert_same_run(full, cut)
    if name == "guarded":
        assert read_jsonl(full / "events.jsonl")                      # recoveries happened


class InterruptMidEpoch(Callback):
    """Ctrl-C in the middle of an epoch's steps."""
    def __init__(self, at_step):
        self.at_step = at_step

    def on_step_end(self, trainer):
        if trainer.iteration == self.at_step:
            raise KeyboardInterrupt


def test_states_are_written_at_most_once_per_interval_and_when_training_stops(tmp_path, monkeypatch):
    """The first checkpoint epoch's state is written, the later ones only once the interval has
    passed (here: never), and the last one whenever training ends or stops."""
    import rnnlab.runs.writer as rundir
    written = []
    save = rundir.save_checkpoint

    def counted(run_dir, arrays, meta, name="checkpoint"):
        if name == "state":
            written.append(meta["epoch"])
        return save(run_dir, arrays, meta, name)
    monkeypatch.setattr(rundir, "save_checkpoint", counted)
    cfg = PRESETS["seed"].replace(epochs=6, batches_per_epoch=3, checkpoint_every=1)
    for d in ("ends", "all", "crash", "ctrl-c", "whole"):
        (tmp_path / d).mkdir()
    Trainer(config=cfg, callbacks=[RunWriter(tmp_path / "ends", state_interval=1e9)]).fit()
    assert written == [1, 6]
    written.clear()
    Trainer(config=cfg, callbacks=[RunWriter(tmp_path / "all", state_interval=0.0)]).fit()
    assert written == [1, 2, 3, 4, 5, 6]
    written.clear()
    with pytest.raises(Crash):                                  # an error after epoch 4's logs
        Trainer(config=cfg, callbacks=[RunWriter(tmp_path / "crash", state_interval=1e9),
                                       CrashAfter(4)]).fit()
    assert written == [1, 4] and len(resume_trainer(tmp_path / "crash").history) == 4
    written.clear()
    with pytest.raises(KeyboardInterrupt):                      # Ctrl-C during epoch 5's steps
        Trainer(config=cfg.replace(checkpoint_every=2),
                callbacks=[RunWriter(tmp_path / "ctrl-c", state_interval=1e9),
                           InterruptMidEpoch(13)]).fit()
    assert written == [2, 4]                                    # the last whole checkpoint epoch
    t = resume_trainer(tmp_path / "ctrl-c")
    assert len(t.history) == 4
    t.callbacks = [RunWriter(tmp_path / "ctrl-c", resuming=True)]
    t.fit()
    Trainer(config=cfg.replace(checkpoint_every=2), callbacks=[RunWriter(tmp_path / "whole")]).fit()
    assert_same_run(tmp_path / "whole", tmp_path / "ctrl-c")


class ClockJump(Callback):
    """Moves RunWriter's clock forward at the end of one epoch."""
    def __init__(self, epoch, offset):
        self.epoch, self.offset = epoch, offset

    def on_epoch_end(self, trainer, result):
        if result.record["epoch"] == self.epoch:
            self.offset[0] += 10.0


def test_a_kept_state_is_written_at_the_first_step_after_the_interval(tmp_path, monkeypatch):
    import types

    import rnnlab.runs.writer as rundir
    offset = [0.0]
    monkeypatch.setattr(rundir, "time", types.SimpleNamespace(
        perf_counter=lambda: time.perf_counter() + offset[0], strftime=time.strftime))
    written = []
    save = rundir.save_checkpoint

    def counted(run_dir, arrays, meta, name="checkpoint"):
        if name == "state":
            written.append((meta["epoch"], len(read_jsonl(run_dir / "metrics.jsonl"))))
        return save(run_dir, arrays, meta, name)
    monkeypatch.setattr(rundir, "save_checkpoint", counted)
    cfg = PRESETS["seed"].replace(epochs=6, batches_per_epoch=3, checkpoint_every=1)
    (tmp_path / "r").mkdir()
    Trainer(config=cfg, callbacks=[RunWriter(tmp_path / "r", state_interval=5.0),
                                   ClockJump(3, offset)]).fit()
    # state 3 was kept at its epoch's end, then written during epoch 4 (with 3 log rows on disk)
    assert written == [(1, 1), (3, 3), (6, 6)]


def test_a_state_that_cannot_be_written_on_ctrl_c_is_a_warning_not_a_new_error(tmp_path, monkeypatch):
    import rnnlab.runs.writer as rundir
    save = rundir.save_checkpoint
    calls = []

    def full_disk(run_dir, arrays, meta, name="checkpoint"):
        calls.append(meta["epoch"])
        if len(calls) > 1:
            raise OSError(28, "No space left on device", str(run_dir))
        return save(run_dir, arrays, meta, name)
    monkeypatch.setattr(rundir, "save_checkpoint", full_disk)
    cfg = PRESETS["seed"].replace(epochs=6, batches_per_epoch=3, checkpoint_every=1)
    (tmp_path / "r").mkdir()
    with pytest.warns(RuntimeWarning, match="RunWriter could not finish after training stopped: .*No space"):
        with pytest.raises(KeyboardInterrupt):
            Trainer(config=cfg, callbacks=[RunWriter(tmp_path / "r", state_interval=1e9),
                                           InterruptMidEpoch(10)]).fit()
    assert calls == [1, 3]                                      # state 3 tried once, on the way out
    assert len(resume_trainer(tmp_path / "r").history) == 1     # the state on disk is still epoch 1's


def test_ctrl_c_while_an_epoch_is_written_waits_for_its_state(tmp_path, monkeypatch):
    """Ctrl-C right after epoch 1, while its log row and state are being written: both are
    written whole, then training stops, and the run resumes from epoch 1."""
    import rnnlab.runs.writer as rundir
    save = rundir.save_checkpoint

    def ctrl_c_while_saving(run_dir, arrays, meta, name="checkpoint"):
        if name == "state" and meta["epoch"] == 1:
            # to the main thread, where Python runs its handlers (os.kill lets the kernel pick any)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)   # in the middle of the write
            time.sleep(0.05)
        return save(run_dir, arrays, meta, name)
    monkeypatch.setattr(rundir, "save_checkpoint", ctrl_c_while_saving)
    cfg = PRESETS["seed"].replace(epochs=3, batches_per_epoch=3, checkpoint_every=1)
    (tmp_path / "r").mkdir()
    # Ctrl-C as a terminal's process has it: a suite started in the background by a shell inherits
    # SIGINT ignored (bash's rule for asynchronous commands), and there Ctrl-C does nothing at all
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            Trainer(config=cfg, callbacks=[RunWriter(tmp_path / "r")]).fit()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler    # put back
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert json.loads((tmp_path / "r" / "state.json").read_text())["epoch"] == 1
    assert len(read_jsonl(tmp_path / "r" / "metrics.jsonl")) == 1
    assert len(resume_trainer(tmp_path / "r").history) == 1


def test_truncated_state_and_bad_resume_requests(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "--epochs", "3", "--out", str(run), "--quiet"]) == 0
    state = run / json.loads((run / "state.json").read_text())["file"]
    state.write_bytes(state.read_bytes()[:100])
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "checksum" in err and "corrupted" in err and "Traceback" not in err
    assert main(["train", "--resume", str(run), "--lr", "0.1"]) == 2
    assert "drop --lr" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "config.json").write_text((run / "config.json").read_text())
    assert main(["train", "--resume", str(fresh)]) == 2
    assert "no resumable state" in capsys.readouterr().err


def test_a_state_from_another_run_is_refused_before_any_log_is_trimmed(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", "--epochs", "3", "--out", str(a), "--quiet", "--no-report"]) == 0
    assert main(["train", "--epochs", "2", "--hidden", "8", "--out", str(b), "--quiet", "--no-report"]) == 0
    for f in a.glob("state*"):
        f.unlink()
    for f in b.glob("state*"):                              # b's state (epoch 2) into a (3 epochs logged)
        (a / f.name).write_bytes(f.read_bytes())
    logs = {f.name: f.read_bytes() for f in a.glob("*.jsonl")}
    assert main(["train", "--resume", str(a)]) == 2
    err = capsys.readouterr().err
    assert "belongs to another run" in err and str(a) in err and "Traceback" not in err
    assert {f.name: f.read_bytes() for f in a.glob("*.jsonl")} == logs          # epoch 3 kept


@pytest.mark.parametrize("workers,extra", [
    ("0", []),
    pytest.param("2", [], marks=pytest.mark.slow),          # 5-6 s each, in CI: with figure workers,
    pytest.param("0", ["--curriculum", "10", "--curriculum-every", "1"], marks=pytest.mark.slow)])   # a curriculum
def test_ctrl_c_after_the_last_epoch_is_finished_by_resume(tmp_path, monkeypatch, capsys, workers, extra):
    """Stopped during the analysis: the hint names --resume, and --resume writes the figures,
    analysis and report a finished run has, without training again (a curriculum run at the
    length it ended on)."""
    import rnnlab.experiments.run as an
    monkeypatch.setenv("RNNLAB_FIGURE_WORKERS", workers)
    short = ["--epochs", "2", "--batches-per-epoch", "3", "--train-size", "300", "--test-size", "100", "--quiet",
             *extra]
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert main(["train", "--out", str(whole), *short]) == 0
    real = an.analyze

    def stop(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(an, "analyze", stop)
    assert main(["train", "--out", str(stopped), *short]) == 130
    err = capsys.readouterr().err
    assert f"rnnlab train --resume {stopped}" in err
    assert not (stopped / "report.html").exists() and not (stopped / "analysis.json").exists()
    monkeypatch.setattr(an, "analyze", real)
    metrics = (stopped / "metrics.jsonl").read_text()
    assert main(["train", "--resume", str(stopped)]) == 0
    assert "writing its figures, analysis and report" in capsys.readouterr().out
    assert sorted(p.name for p in stopped.iterdir()) == sorted(p.name for p in whole.iterdir())
    assert (stopped / "metrics.jsonl").read_text() == metrics            # nothing trained again
    done, ref = (json.loads((d / "analysis.json").read_text()) for d in (stopped, whole))
    for r in (done, ref):                                                  # all but the timings
        r.pop("seconds")
        r["fixed_points"].pop("seconds")
        r["fixed_points"].pop("summary")
    assert done == ref
    assert main(["train", "--resume", str(stopped)]) == 2                 # now there is nothing left
    assert "already finished" in capsys.readouterr().err


def test_no_report_runs_stay_finished_and_resume_refuses_no_report_on_a_stopped_one(tmp_path, monkeypatch, capsys):
    import rnnlab.experiments.run as an
    short = ["--epochs", "1", "--batches-per-epoch", "2", "--train-size", "200", "--test-size", "50", "--quiet"]
    plain = tmp_path / "plain"
    assert main(["train", "--out", str(plain), *short, "--no-report"]) == 0
    assert main(["train", "--resume", str(plain)]) == 2
    assert "already finished" in capsys.readouterr().err

    def stop(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(an, "analyze", stop)
    stopped = tmp_path / "stopped"
    assert main(["train", "--out", str(stopped), *short]) == 130
    capsys.readouterr()
    assert main(["train", "--resume", str(stopped), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "drop --no-report" in err and "Traceback" not in err


def test_resuming_a_no_report_run_writes_no_report_and_no_unrecorded_file(tmp_path, ctrl_c_after_epoch):
    """A --no-report run stays one when resumed; resume writes no file the run never recorded (an
    empty events.jsonl made by trimming logs that did not exist), so a later --force can start over."""
    run = tmp_path / "r"
    undo = ctrl_c_after_epoch(2)
    assert main(["train", "--epochs", "4", "--no-report", "--out", str(run), "--quiet"]) == 130
    undo()
    assert not (run / "events.jsonl").exists()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    names = {p.name for p in run.iterdir()}
    assert "summary.json" in names and not names & {"report.html", "analysis.json", "events.jsonl"}
    assert main(["train", "--epochs", "2", "--no-report", "--out", str(run), "--force", "--quiet"]) == 0
    assert len(read_jsonl(run / "metrics.jsonl")) == 2
