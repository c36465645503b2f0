"""The command line: a run directory end to end, and bad input -> one sentence, exit 2, no damage."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import npz_of
from rnnlab.cli import main

SHORT = ["--epochs", "2", "--quiet"]


def run_cli(*args):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "rnnlab", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def assert_one_line_error(stderr, *fragments):
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in stderr
    assert lines[-1].startswith("rnnlab: error: ")
    for f in fragments:
        assert f in lines[-1], (f, stderr)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r"
    assert main(["train", "--out", str(out), *SHORT]) == 0
    return out


def test_train_writes_a_complete_run_directory(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert any(n.startswith("checkpoint-") and n.endswith(".npz") for n in names)
    assert {"config.json", "metrics.jsonl", "summary.json", "checkpoint.json",
            "training_curves.png", "hidden_states.png", "probes.jsonl", "gradient_flow.png",
            "hidden_norms.png", "grad_norm.png"} <= names
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["config"]["hidden"] == 64 and cfg["config"]["epochs"] == 2 and "numpy" in cfg
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for r in rows:
        assert {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
                "iter_loss", "iter_grad_norm"} <= set(r)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["params"] == 13314
    assert {"final_test_acc", "best_test_acc", "best_epoch", "seconds"} <= set(summary)
    for png in ("training_curves.png", "hidden_states.png", "gradient_flow.png", "hidden_norms.png",
                "grad_norm.png"):
        assert (run_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_reproduces_the_recorded_accuracy(run_dir, capsys):
    assert main(["eval", str(run_dir)]) == 0
    out = capsys.readouterr().out
    acc = json.loads((run_dir / "summary.json").read_text())["final_test_acc"]
    assert f"test acc {100 * acc:.2f}%" in out.splitlines()[0]


def test_flags_override_the_preset(tmp_path):
    out = tmp_path / "o"
    assert main(["train", "--preset", "better", "--epochs", "1", "--hidden", "5", "--no-bidirectional",
                 "--out", str(out), "--quiet"]) == 0
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["hidden"] == 5 and cfg["nonlinearity"] == "relu" and cfg["epochs"] == 1


def test_existing_output_is_not_overwritten_without_force(run_dir):
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    r = run_cli("train", "--out", str(run_dir), *SHORT)
    assert r.returncode == 2
    assert_one_line_error(r.stderr, str(run_dir), "--force")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_force_overwrites(tmp_path):
    out = tmp_path / "f"
    out.mkdir()
    (out / "old.txt").write_text("x")
    assert main(["train", "--out", str(out), "--force", *SHORT]) == 0
    assert (out / "summary.json").is_file()


@pytest.mark.parametrize("args,fragment", [
    (["--hidden", "0"], "hidden must be at least 1"),
    (["--lr", "-1"], "lr must be > 0.0"),
    (["--optimizer", "adamw"], "optimizer must be one of"),
    (["--dropout", "1.5"], "dropout must be < 1.0"),
    (["--batch-size", "99999"], "batch_size (99999) is larger than the 5000 training sequences"),
])
def test_bad_values_exit_2_and_create_nothing(tmp_path, capsys, args, fragment):
    out = tmp_path / "never"
    assert main(["train", "--out", str(out), *args]) == 2
    assert_one_line_error(capsys.readouterr().err, fragment)
    assert not out.exists()


def test_unknown_flag_and_bad_type_exit_2(tmp_path):
    for args in (["train", "--bogus", "1"], ["train", "--epochs", "ten"], ["frobnicate"]):
        r = run_cli(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "error:" in r.stderr


def test_eval_of_missing_or_foreign_directories(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope")]) == 2
    assert_one_line_error(capsys.readouterr().err, "does not exist")
    assert main(["eval", str(tmp_path)]) == 2
    assert_one_line_error(capsys.readouterr().err, "not an rnnlab run directory")


def _copy_run(src, dst):
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_eval_of_a_corrupted_checkpoint(run_dir, tmp_path):
    bad = _copy_run(run_dir, tmp_path / "bad")
    npz = npz_of(bad)
    npz.write_bytes(npz.read_bytes()[: len(npz.read_bytes()) // 2])
    r = run_cli("eval", str(bad))
    assert r.returncode == 2
    assert_one_line_error(r.stderr, "checksum", "corrupted")


def test_eval_of_a_missing_checkpoint_or_broken_config(run_dir, tmp_path, capsys):
    a = _copy_run(run_dir, tmp_path / "a")
    npz_of(a).unlink()
    assert main(["eval", str(a)]) == 2
    assert_one_line_error(capsys.readouterr().err, "is missing")
    b = _copy_run(run_dir, tmp_path / "b")
    (b / "config.json").write_text("{not json")
    assert main(["eval", str(b)]) == 2
    assert_one_line_error(capsys.readouterr().err, "config.json is unreadable")


def test_checkpoint_from_another_configuration_is_refused(run_dir, tmp_path, capsys):
    c = _copy_run(run_dir, tmp_path / "c")
    meta = json.loads((c / "config.json").read_text())
    meta["config"]["hidden"] = 32
    (c / "config.json").write_text(json.dumps(meta))
    assert main(["eval", str(c)]) == 2
    assert_one_line_error(capsys.readouterr().err, "does not fit its config.json")
    assert np.load(npz_of(c))["rnn.weight_hh_l0"].shape == (64, 64)


def test_a_diverged_run_is_called_diverged_not_corrupt(tmp_path, capsys):
    out = tmp_path / "dv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                  # overflow on the way to NaN
        assert main(["train", "--lr", "10", "--nonlinearity", "relu", "--init", "identity", "--epochs", "2",
                     "--batches-per-epoch", "3", "--no-guard", "--out", str(out), "--quiet", "--no-report"]) == 0
    capsys.readouterr()
    for cmd in ("eval", "analyze"):
        assert main([cmd, str(out)]) == 2
        assert_one_line_error(capsys.readouterr().err, "NaN or infinite", "training diverged", "--no-guard")


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    text = root / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400, encoding="utf-8")
    out = root / "run"
    assert main(["train", "--task", "charlm", "--text", str(text), "--hidden", "32", "--layers", "1",
                 "--batch-size", "8", "--window", "20", "--epochs", "2", "--batches-per-epoch", "5",
                 "--out", str(out), "--quiet"]) == 0
    return out


def test_charlm_train_sample_and_eval(lm_run, capsys):
    summary = json.loads((lm_run / "summary.json").read_text())
    assert summary["metric"] == "bpc" and "final_test_bpc" in summary
    capsys.readouterr()
    assert main(["sample", str(lm_run), "--prime", "the ", "--length", "40", "--temperature", "0.7"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("the ") and len(out.rstrip("\n")) == 44
    assert main(["eval", str(lm_run)]) == 0
    assert "test bpc" in capsys.readouterr().out


def test_sample_errors(lm_run, run_dir, capsys):
    assert main(["sample", str(run_dir)]) == 2
    assert_one_line_error(capsys.readouterr().err, "sample needs a run trained with --task charlm")
    assert main(["sample", str(lm_run), "--prime", "QZX"]) == 2
    assert_one_line_error(capsys.readouterr().err, "not in the model's vocabulary")
    assert main(["sample", str(lm_run), "--temperature", "0"]) == 2
    assert_one_line_error(capsys.readouterr().err, "temperature must be a finite number > 0")


@pytest.mark.parametrize("content,fragment", [
    (b"\xff\xfe\x00bad bytes" * 10, "is not UTF-8 text"),
    (b"   \n  ", "is empty"),
    (b"short text", "the language model needs at least"),
])
def test_bad_text_files(tmp_path, capsys, content, fragment):
    f = tmp_path / "t.txt"
    f.write_bytes(content)
    out = tmp_path / "never"
    assert main(["train", "--task", "charlm", "--text", str(f), "--out", str(out)]) == 2
    assert_one_line_error(capsys.readouterr().err, fragment)
    assert not out.exists()


def test_text_needs_charlm_and_must_exist(tmp_path, capsys):
    assert main(["train", "--task", "charlm", "--text", str(tmp_path / "missing.txt")]) == 2
    assert_one_line_error(capsys.readouterr().err, "does not exist")
    f = tmp_path / "t.txt"
    f.write_text("hello " * 1000)
    assert main(["train", "--text", str(f)]) == 2
    assert_one_line_error(capsys.readouterr().err, "--text only applies to --task charlm")


def test_a_run_written_before_the_model_only_checks_still_opens(tmp_path, capsys):
    """Older config.json files could record relu for a gated model (--preset better --model lstm):
    eval/analyze/doctor read them as trained (tanh), not as a flag to drop."""
    run = tmp_path / "old"
    assert main(["train", "--preset", "better", "--model", "lstm", "--epochs", "2", "--out", str(run),
                 "--quiet", "--no-report"]) == 0
    meta = json.loads((run / "config.json").read_text())
    meta["config"]["nonlinearity"] = "relu"                       # as the CLI wrote it before
    (run / "config.json").write_text(json.dumps(meta))
    capsys.readouterr()
    for cmd in ("eval", "doctor"):
        assert main([cmd, str(run)]) == 0, capsys.readouterr().err


def test_empty_paths_pointless_flags_and_run_names(tmp_path, monkeypatch, capsys):
    import numpy as np
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["train", "--out", ""])
    assert e.value.code == 2 and "argument --out: is empty" in capsys.readouterr().err
    assert main(["train", "--data", ""]) == 2
    assert "--data is empty" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5, 2)).astype(np.float32)
    np.savez("mine.npz", X=X, y=(X.sum(axis=(1, 2)) > 0).astype(np.int64))
    assert main(["train", "--data", "mine.npz", "--length", "30", "--epochs", "1", "--batch-size", "8",
                 "--quiet", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "--length does nothing in this run (task npz" in err
    assert [p.name.startswith("mine-") for p in (tmp_path / "runs").iterdir()] == [True]   # named after its data


def test_classes_that_never_occur_are_named():
    import numpy as np

    import rnnlab
    X = np.zeros((20, 3, 2), np.float32)
    with pytest.warns(UserWarning, match=r"numbered up to 5 but 4 of them never occur \(1, 2, 3, 4\)"):
        task = rnnlab.Task.from_arrays(X, np.where(np.arange(20) % 2 == 0, 0, 5))
    assert task.output_size == 6
