"""What a new user hit in their first hour, each pinned by a test that failed before its fix."""

import json
import math
import warnings

import numpy as np
import pytest

import rnnlab
from rnnlab.analysis.doctor import diagnose
from rnnlab.cli import main
from rnnlab.runs.checkpoint import save_checkpoint
from rnnlab.runs.files import read_jsonl

SHORT = ["--epochs", "2", "--batches-per-epoch", "2", "--quiet", "--no-report"]


def _synthetic_run(path, *, clip, norms, losses, events=(), baseline=0.5, test_acc=0.97):
    """A run directory written by hand: what the doctor reads, nothing else."""
    from rnnlab.training.config import PRESETS
    path.mkdir()
    cfg = PRESETS["better"].replace(clip=clip, epochs=len(losses))
    (path / "config.json").write_text(json.dumps({"config": cfg.to_dict()}))
    rows = [{"epoch": i + 1, "train_loss": loss, "test_loss": loss, "train_acc": test_acc, "test_acc": test_acc,
             "lr": 0.01, "seconds": 1.0, "iter_loss": [loss] * 10, "iter_grad_norm": list(norms)}
            for i, loss in enumerate(losses)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (path / "summary.json").write_text(json.dumps({"baseline": baseline}))
    save_checkpoint(path, {"w": np.zeros(2)}, {"epoch": len(losses)})
    return path


def test_doctor_calls_a_recovered_clipped_run_healthy_and_never_advises_a_looser_clip(tmp_path):
    event = {"kind": "loss spike", "grad_norm": 63.0, "lr_before": 0.01, "lr_after": 0.005, "iteration": 190}
    healthy = _synthetic_run(tmp_path / "h", clip=1.0, norms=[4.6] * 10, losses=[0.4, 0.1, 0.05, 0.012],
                             events=[event])
    d = diagnose(healthy)
    assert d.pattern == "healthy" and "caught 1 bad step" in d.findings[0]
    exploding = _synthetic_run(tmp_path / "e", clip=1.0, norms=[4.6] * 10, losses=[0.4, 0.1, 2.0, 3.0],
                               events=[event] * 3)
    d = diagnose(exploding)
    assert d.pattern == "exploding"
    clips = [float(a.split("--clip ")[1].split()[0].rstrip(".")) for a in d.advice if "--clip" in a]
    assert clips and all(c < 1.0 for c in clips)


def test_doctor_says_not_learning_at_the_baseline(tmp_path):
    run = _synthetic_run(tmp_path / "n", clip=0.0, norms=[0.1] * 10, losses=[0.70, 0.69, 0.69],
                         baseline=0.487, test_acc=0.487)
    d = diagnose(run)
    assert d.pattern == "not learning" and "48.70%" in d.findings[0]


def test_a_cut_last_log_line_is_skipped_and_damage_elsewhere_is_named(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert [r["epoch"] for r in read_jsonl(log)] == [1, 2]
    log.write_text('{"epoch": 1}\n{"epo\n{"epoch": 3}\n')
    with pytest.raises(rnnlab.RunDirError, match="line 2 is not valid JSON"):
        read_jsonl(log)


def test_ctrl_c_names_the_resume_command(tmp_path, capsys, ctrl_c_after_epoch):
    disarm = ctrl_c_after_epoch(2)
    out = tmp_path / "r"
    assert main(["train", "--out", str(out), "--epochs", "5", "--batches-per-epoch", "2", "--quiet"]) == 130
    assert f"continue it with: rnnlab train --resume {out}" in capsys.readouterr().err
    disarm()
    assert main(["train", "--resume", str(out), "--quiet", "--no-report"]) == 0
    assert len(read_jsonl(out / "metrics.jsonl")) == 5


def test_ctrl_c_before_any_state_says_how_to_start_again(tmp_path, capsys, ctrl_c_after_epoch):
    disarm = ctrl_c_after_epoch(1)
    out = tmp_path / "r"
    args = ["train", "--out", str(out), "--epochs", "4", "--batches-per-epoch", "2", "--quiet"]
    assert main([*args, "--checkpoint-every", "2"]) == 130
    err = capsys.readouterr().err
    assert (f"there is nothing to resume in {out} yet (the first training state is saved at the end of "
            f"epoch 2): start it again with --out {out} --force") in err
    assert main([*args, "--checkpoint-every", "0", "--force"]) == 130
    assert "(this run saves no training state (--checkpoint-every 0))" in capsys.readouterr().err
    disarm()
    assert main([*args, "--force", "--no-report"]) == 0


def test_a_full_disk_after_a_saved_state_names_the_resume_command(tmp_path, capsys, monkeypatch):
    import rnnlab.runs.writer as rundir
    save = rundir.save_checkpoint

    def full_disk_for_weights(run_dir, arrays, meta, name="checkpoint"):
        if name == "checkpoint":
            raise OSError(28, "No space left on device", str(run_dir / "checkpoint.json"))
        return save(run_dir, arrays, meta, name)
    monkeypatch.setattr(rundir, "save_checkpoint", full_disk_for_weights)
    out = tmp_path / "r"
    assert main(["train", "--out", str(out), *SHORT]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err
    assert f"once there is room, continue it with: rnnlab train --resume {out}" in err
    monkeypatch.setattr(rundir, "save_checkpoint", save)
    assert main(["train", "--resume", str(out), "--quiet", "--no-report"]) == 0


def test_sigterm_stops_training_the_way_ctrl_c_does(tmp_path):
    """docker stop / a scheduler / timeout: the last checkpoint epoch's state is written (so no
    epoch the logs hold is lost), the resume command is named, exit status 143."""
    import signal
    import subprocess
    import sys
    import time
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "train", "--out", str(out), "--epochs", "2000",
                             "--quiet"], stderr=subprocess.PIPE, text=True)
    start = time.time()
    while not ((out / "metrics.jsonl").is_file() and len(read_jsonl(out / "metrics.jsonl")) >= 3):
        assert proc.poll() is None and time.time() - start < 600      # only a hang takes this long
        time.sleep(0.05)
    time.sleep(0.3)                                    # a few more epochs, states kept in memory
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=600)[1]
    assert proc.returncode == 143, err
    assert f"rnnlab: terminated; continue it with: rnnlab train --resume {out}" in err and "Traceback" not in err
    rows = len(read_jsonl(out / "metrics.jsonl"))
    # the state of the last epoch logged (a log row and its state are written with Ctrl-C held)
    assert rows >= 3 and json.loads((out / "state.json").read_text())["epoch"] == rows


def test_curriculum_stages_are_announced_and_an_unreached_length_is_said(capsys, tmp_path):
    assert main(["train", "--out", str(tmp_path / "c"), "--curriculum", "5,10", "--curriculum-every", "1",
                 "--epochs", "3", "--batches-per-epoch", "2", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "curriculum: from epoch 2 the sequences have 10 steps" in out and "| Length: 5" in out
    assert main(["train", "--out", str(tmp_path / "d"), "--curriculum", "5,10", "--curriculum-target", "0.999",
                 "--epochs", "2", "--batches-per-epoch", "2", "--quiet", "--no-report"]) == 0
    assert "never reached --length 20" in capsys.readouterr().out


def test_charlm_preset_with_another_cell_trains(tmp_path, capsys):
    assert main(["train", "--task", "charlm", "--model", "gru", "--corpus-chars", "60000", "--out",
                 str(tmp_path / "g"), *SHORT]) == 0


def test_temporal_order_analysis_has_no_nan(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert main(["train", "--task", "temporal-order", "--model", "gru", "--out", str(tmp_path / "t"),
                     "--epochs", "1", "--batches-per-epoch", "2", "--quiet"]) == 0
    text = (tmp_path / "t" / "analysis.json").read_text()
    assert "NaN" not in text
    roles = json.loads(text)["role_counts"]
    assert roles["mixed"] < sum(roles.values())                       # not every unit "mixed"


def test_the_readme_names_are_importable_from_rnnlab():
    for name in ("CharLM", "SequenceRegressor", "StepRegressor", "SequenceClassifier", "SequenceTagger",
                 "Adam", "SGD", "RMSprop", "Adagrad", "Trainer", "Task", "TrainConfig", "mse"):
        assert hasattr(rnnlab, name), name


def test_embedding_starts_like_torch():
    e = rnnlab.Embedding(2000, 50, rng=np.random.default_rng(0))
    assert math.isclose(float(e.params["weight"].std()), 1.0, rel_tol=0.02)


@pytest.mark.slow      # a run, killed and resumed through analysis and report (5 s); runs in CI
def test_resumed_runs_end_with_analysis_and_report(tmp_path):
    """A run resumed ends as it would have: with its analysis and report (a --no-report run stays
    without them: tests/runs/test_resume.py)."""
    out = tmp_path / "r"
    assert main(["train", "--out", str(out), "--epochs", "3", "--batches-per-epoch", "2", "--quiet"]) == 0
    for name in ("summary.json", "checkpoint.json", "analysis.json", "report.html"):   # a kill before the end
        (out / name).unlink()
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert (out / "analysis.json").is_file() and (out / "report.html").is_file()


def test_one_layer_figures_have_room_for_their_titles_and_report_headers_are_words(tmp_path):
    import matplotlib.image as mpimg
    out = tmp_path / "b"
    assert main(["train", "--preset", "better", "--out", str(out), "--epochs", "2", "--quiet"]) == 0
    assert mpimg.imread(out / "gradient_flow.png").shape[1] >= 8 * 110        # was 5.5 in: title cut
    assert mpimg.imread(out / "hidden_norms.png").shape[1] >= 8 * 110
    assert mpimg.imread(out / "grad_norm.png").shape[1] >= 12 * 110           # legend beside the trace
    page = (out / "report.html").read_text()
    assert "drop, random group of that size" in page and "random_same_size_drop</th>" not in page


@pytest.mark.parametrize("command", [["train", *SHORT], ["analyze"], ["report"]])
def test_a_read_only_location_is_one_sentence(tmp_path, capsys, monkeypatch, command):
    """Tests run as root here, where chmod does not stop writes: the file system's refusal is
    simulated where every write goes through (atomic writes, figures and directory creation)."""
    import errno
    import pathlib

    import rnnlab.runs.checkpoint as ck
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *SHORT]) == 0
    before = {p: p.read_bytes() for p in run.iterdir()}

    def refuse(path, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(path))
    monkeypatch.setattr(ck, "atomic_write_bytes", refuse)              # the figures are written by it too
    monkeypatch.setattr(pathlib.Path, "mkdir", lambda self, *a, **k: refuse(self))
    argv = command[:1] + (["--out", str(tmp_path / "new")] if command[0] == "train" else [str(run)]) + command[1:]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Read-only file system" in err and "writable location" in err and len(err.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in run.iterdir()} == before


def test_a_stopped_fit_closes_the_progress_bar(monkeypatch):
    """No half-drawn progress bar is left above the "interrupted" line."""
    import io
    import sys

    from rnnlab.present.progress import EpochPrinter
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Callback, Trainer

    terminal = io.StringIO()
    terminal.isatty = lambda: True
    monkeypatch.setattr(sys, "stderr", terminal)
    printer, seen = EpochPrinter(5, quiet=True), []

    class StopAfterEpoch2(Callback):
        def on_epoch_end(self, trainer, result):
            seen.append(printer.bar.disable)
            if result.record["epoch"] == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(config=PRESETS["seed"].replace(epochs=5, batches_per_epoch=2),
                callbacks=[printer, StopAfterEpoch2()]).fit()
    assert seen == [False, False] and printer.bar.disable          # drawn while training, then closed


def test_run_directories_are_named_after_their_task_and_a_sweep_says_whether_it_stacked(tmp_path, monkeypatch,
                                                                                          capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--task", "adding", *SHORT, "--no-report"]) == 0
    assert main(["train", *SHORT, "--no-report"]) == 0
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "runs").iterdir()) == ["adding", "seed"]
    sweep = ["sweep", "--grid", "lr=1e-3,3e-3", "--hidden", "8", "--epochs", "1", "--batches-per-epoch", "1",
             "--train-size", "60", "--test-size", "20", "--jobs", "1"]
    capsys.readouterr()
    assert main([*sweep, "--out", "a"]) == 0
    assert "stacking: 2 of 2 trials trained in stacks of up to 2" in capsys.readouterr().out
    assert main([*sweep, "--out", "b", "--no-stack"]) == 0
    assert "stacking: every trial trained alone (2 run(s))" in capsys.readouterr().out
