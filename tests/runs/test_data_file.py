"""A run on a --data file records where the file is and what it held: eval works from another
directory and refuses the file once its content has changed."""

import numpy as np

from rnnlab.cli import main


def save(path, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((120, 6, 3)).astype(np.float32)
    np.savez(path, X=X, y=(X.sum(axis=(1, 2)) > 0).astype(np.int64))


def test_eval_finds_the_data_and_notices_a_change(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    save("mine.npz", 0)
    assert main(["train", "--data", "mine.npz", "--epochs", "1", "--batch-size", "16", "--out", "r", "--quiet",
                 "--no-report"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["eval", str(tmp_path / "r")]) == 0                     # the recorded path is absolute
    save(tmp_path / "mine.npz", 1)                                      # other data, same shapes
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "has changed since" in err and "put the original file back" in err


def test_an_archive_of_plain_text_is_one_sentence(tmp_path, capsys):
    import zipfile
    with zipfile.ZipFile(tmp_path / "plain.npz", "w") as z:
        z.writestr("X.npy", "hello")
        z.writestr("y.npy", "world")
    assert main(["train", "--data", str(tmp_path / "plain.npz"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "member X is not a NumPy array" in err and "Traceback" not in err and not (tmp_path / "r").exists()


def test_an_out_path_that_is_not_utf8_is_refused_before_training(tmp_path, capsys):
    out = str(tmp_path) + "/o\udcff"
    assert main(["train", "--out", out, "--epochs", "1"]) == 2
    assert "is not valid UTF-8 text" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
