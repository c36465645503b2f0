"""A small length sweep writes its table and plots."""

import csv

from rnnlab.cli import main


def test_small_sweep_writes_table_and_plots(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "lengths", "--task", "adding", "--models", "rnn,gru", "--lengths", "8,16",
                 "--seeds", "2", "--jobs", "2", "--hidden", "8", "--layers", "1", "--epochs", "2",
                 "--batches-per-epoch", "5", "--train-size", "500", "--test-size", "100",
                 "--lr", "0.01", "--probe-every", "2", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert len(rows) == 8 and {r["status"] for r in rows} == {"ok"}
    assert {(r["model"], r["length"]) for r in rows} == {(m, t) for m in ("rnn", "gru") for t in ("8", "16")}
    assert all(float(r["early_to_late_gradient"]) > 0 for r in rows)
    md = (out / "sweep.md").read_text().splitlines()
    assert md[0].startswith("| model | length | runs | final test mse") and len(md) == 2 + 4
    for png in ("metric_vs_length.png", "gradient_vs_length.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "| gru | 16 | 2 |" in capsys.readouterr().out


def test_sweep_rejects_bad_grids(tmp_path, capsys):
    assert main(["sweep", "lengths", "--lengths", "10,x", "--out", str(tmp_path / "a")]) == 2
    assert "comma-separated integers" in capsys.readouterr().err
    assert main(["sweep", "lengths", "--models", "rnn,transformer", "--out", str(tmp_path / "b")]) == 2
    assert "model must be one of" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
