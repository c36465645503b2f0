"""--model transformer through the same trainer, run directory, guard, resume, doctor and report."""

import json

from rnnlab.cli import main

SHORT = ["--epochs", "2", "--batches-per-epoch", "3", "--quiet"]


def test_transformer_trains_evaluates_and_reports_on_a_sequence_task(tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["train", "--model", "transformer", "--d-model", "16", "--heads", "2", "--out", str(out), *SHORT]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["class"] == "Transformer" and cfg["config"]["context"] == 0
    assert (out / "report.html").is_file() and not (out / "analysis.json").exists()
    assert main(["eval", str(out)]) == 0 and "test acc" in capsys.readouterr().out
    assert main(["doctor", str(out)]) == 0
    assert main(["analyze", str(out)]) == 2
    assert "which a Transformer has not" in capsys.readouterr().err


def test_transformer_language_model_samples(tmp_path, capsys):
    out = tmp_path / "lm"
    assert main(["train", "--task", "charlm", "--model", "transformer", "--d-model", "16", "--heads", "2",
                 "--corpus-chars", "60000", "--no-report", "--out", str(out), *SHORT]) == 0
    capsys.readouterr()
    assert main(["sample", str(out), "--prime", "def ", "--length", "30"]) == 0
    assert len(capsys.readouterr().out) >= 34


def test_transformer_settings_are_checked(tmp_path, capsys):
    assert main(["train", "--model", "transformer", "--heads", "3", "--out", str(tmp_path / "x")]) == 2
    assert "heads (3) must divide d_model (64); e.g. --heads 4 with --d-model 64" in capsys.readouterr().err
    assert main(["train", "--model", "transformer", "--context", "5", "--out", str(tmp_path / "y")]) == 2
    assert "raise it to --context 20 or more" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
