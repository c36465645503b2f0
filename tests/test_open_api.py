"""A user's own task end to end: generator and array tasks, user-built models and losses,
--data FILE.npz (and its errors), analysis on objects, and the flip-flop benchmark."""

import json

import numpy as np
import pytest

import rnnlab
from rnnlab.analysis.analyze import analyze, write_analysis
from rnnlab.cli import main
from rnnlab.data.task import Task
from rnnlab.data.tasks import flipflop_batch
from rnnlab.nn.heads import StepRegressor
from rnnlab.nn.losses import mse
from rnnlab.present.analysis_figures import draw_analysis_figures
from rnnlab.training.config import PRESETS, TrainConfig
from rnnlab.training.evaluate import evaluate
from rnnlab.training.loop import Trainer


def delayed_recall(rng, batch_size, length):
    """Per-step regression of none of the built-ins: output, at every step, the input seen 3
    steps earlier (0 before that); two input channels, two outputs."""
    x = rng.standard_normal((batch_size, length, 2)).astype(np.float32)
    y = np.zeros_like(x)
    y[:, 3:] = x[:, :-3]
    return x, y


def test_user_generator_task_trains_with_a_user_model_and_loss():
    task = Task.from_generator(delayed_recall, length=12, test_size=200, name="delayed recall")
    assert (task.targets, task.per_step, task.input_size, task.output_size) == ("real", True, 2, 2)
    assert task.baseline == pytest.approx(0.75, abs=0.1)             # 3 of 12 steps are exactly 0
    model = StepRegressor(2, 24, 2, cell="gru", seed=0)
    calls = []

    def loss(out, y, mask):                                          # the user's own loss
        calls.append(out.shape)
        return mse(out, y, mask)
    cfg = TrainConfig(epochs=12, batches_per_epoch=20, batch_size=32, lr=1e-2)
    t = Trainer(task, model, loss, config=cfg)
    assert t.model is model
    s = t.fit()
    assert len(calls) == 12 * 20 + 12                                 # every step, and each test pass
    assert s["metric"] == "mse" and s["final_test_mse"] < 0.1 * task.baseline


def test_variable_length_arrays_train_and_padding_never_matters():
    rng = np.random.default_rng(0)
    N, T = 1200, 16
    lengths = rng.integers(3, T + 1, N)
    X = rng.standard_normal((N, T, 1)).astype(np.float32)
    valid = np.arange(T)[None, :] < lengths[:, None]
    y = ((X[..., 0] * valid).sum(axis=1) > 0).astype(np.int64)      # sign of the valid part's sum
    X[~valid] = 1e3                                                 # garbage in the padding
    task = Task.from_arrays(X, y, lengths)
    assert task.kind == "classify" and len(task.test) == 120 and task.test.lengths is not None
    cfg = TrainConfig(hidden=8, layers=1, dropout=0.0, epochs=15, batches_per_epoch=0, lr=1e-2,
                      nonlinearity="relu", init="identity", clip=1.0)
    s = Trainer(task, config=cfg).fit()
    assert s["final_test_acc"] > 0.9


def test_from_arrays_infers_every_target_kind_and_rejects_bad_arrays():
    X = np.zeros((10, 5, 3), np.float32)
    kinds = {(10,): "classify", (10, 5): "tag", (10, 2): "regress", (10, 5, 2): "regress-steps"}
    for shape, kind in kinds.items():
        y = np.zeros(shape, np.int64 if kind in ("classify", "tag") else np.float32)
        assert Task.from_arrays(X, y).kind == kind
    with pytest.raises(rnnlab.InputError, match="X has 10 sequences but y has 9"):
        Task.from_arrays(X, np.zeros(9, np.int64))
    with pytest.raises(rnnlab.InputError, match=r"shape \(N, T, D\)"):
        Task.from_arrays(np.zeros((10, 5)), np.zeros(10, np.int64))
    with pytest.raises(rnnlab.InputError, match="lengths must lie in"):
        Task.from_arrays(X, np.zeros(10, np.int64), np.full(10, 6))
    with pytest.raises(rnnlab.InputError, match="for a single output use y"):
        Task.from_arrays(X, np.zeros(10, np.float32))
    with pytest.raises(rnnlab.InputError, match="generator must return"):
        Task.from_generator(lambda rng, b, t: X, length=5)


def test_analyze_takes_a_model_and_a_task_in_memory(tmp_path):
    task = Task.from_generator(delayed_recall, length=12, test_size=100)
    model = StepRegressor(2, 8, 2, cell="lstm", seed=1)
    r = analyze(model, task, n_sequences=50, fp_starts=32)
    fp = r.json["fixed_points"]
    assert fp["rounds"][0]["starts"] == 32 and fp["counts"]["starts"] == 32 * len(fp["rounds"])
    assert fp["counts"]["converged"] + fp["counts"]["dropped_not_converged"] == fp["counts"]["starts"]
    assert len(fp["points"][0]["point"]) == 16                     # LSTM state (h, c)
    write_analysis(r, tmp_path, draw_analysis_figures(tmp_path, r.arrays))
    saved = json.loads((tmp_path / "analysis.json").read_text())
    assert saved["figures"] == ["unit_roles.png", "pca.png", "fixed_points.png"]
    assert saved["fixed_points"]["summary"] == fp["summary"] and (tmp_path / "pca.png").is_file()


def test_a_large_state_gets_fewer_fixed_point_starts_unless_asked(monkeypatch):
    from rnnlab.analysis import analyze as A
    assert [A.default_fp_starts(S) for S in (64, 128, 256, 512, 4096)] == [512, 512, 64, 8, 8]
    task = Task.from_generator(delayed_recall, length=12, test_size=100)
    model = StepRegressor(2, 8, 2, cell="lstm", seed=1)               # state [h, c]: 16 numbers
    monkeypatch.setattr(A, "FP_WORK", 20 * 16 ** 3)                  # as if the state were large
    fp = analyze(model, task, n_sequences=50).json["fixed_points"]
    assert fp["rounds"][0]["starts"] == 20
    assert any("20 starts instead of 512" in n and "fp_starts" in n for n in fp["notes"])   # a Python call: an argument
    fp = analyze(model, task, n_sequences=50, fp_starts=24).json["fixed_points"]   # asked for: honoured
    assert fp["rounds"][0]["starts"] == 24 and not any("starts instead" in n for n in fp["notes"])


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_train_on_user_arrays_from_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 10, 4)).astype(np.float32)
    data = _npz(tmp_path / "mine.npz", X=X, y=(X.sum(axis=(1, 2)) > 0).astype(np.int64),
                lengths=rng.integers(5, 11, 300))
    out = tmp_path / "run"
    assert main(["train", "--data", data, "--epochs", "3", "--batch-size", "16", "--hidden", "8",
                 "--layers", "1", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "on mine.npz" in text and (out / "report.html").is_file()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["task"] == "npz" and cfg["task"]["test_sequences"] == 30
    assert main(["eval", str(out)]) == 0 and "30 sequences" in capsys.readouterr().out
    assert main(["analyze", str(out), "--fp-starts", "16"]) == 0
    assert "16 starts" in capsys.readouterr().out


@pytest.mark.parametrize("arrays,fragment", [
    ({"X": np.zeros((5, 3, 2))}, "has no array y"),
    ({"X": np.zeros((5, 3)), "y": np.zeros(5, np.int64)}, "shape (N, T, D)"),
    ({"X": np.zeros((5, 3, 2)), "y": np.zeros(4, np.int64)}, "X has 5 sequences but y has 4"),
    ({"X": np.zeros((5, 3, 2)), "y": np.array([None] * 5, dtype=object)}, "Python objects"),
    ({"X": np.zeros((5, 3, 2)), "y": np.zeros(5, np.int64), "lengths": np.full(5, 9)}, "lengths must lie in"),
    ({"X": np.zeros((5, 3, 2)), "y": np.zeros(5, np.int64), "w": np.zeros(2)}, "unknown array(s) w"),
])
def test_bad_data_files_get_one_sentence_and_exit_2(tmp_path, capsys, arrays, fragment):
    data = _npz(tmp_path / "bad.npz", **arrays)
    out = tmp_path / "never"
    assert main(["train", "--data", data, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and fragment in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_missing_or_non_npz_data_file(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    assert main(["train", "--data", str(junk)]) == 2
    assert "not a readable .npz" in capsys.readouterr().err
    assert main(["train", "--data", str(junk), "--task", "adding"]) == 2
    assert "--task must be 'npz'" in capsys.readouterr().err


def test_flipflop_targets_hold_the_last_pulse():
    x, y = flipflop_batch(np.random.default_rng(0), 50, 40, bits=3, pulse_prob=0.1)
    assert set(np.unique(y)) == {-1.0, 1.0} and np.all(x[:, 0] != 0)
    for b in range(5):
        for k in range(3):
            last = 0.0
            for t in range(40):
                last = x[b, t, k] if x[b, t, k] else last
                assert y[b, t, k] == last


@pytest.mark.slow
def test_flipflop_network_has_all_eight_memories_at_default_settings():
    """The preset trains in a few seconds; analysis at default settings finds the 2^3 stable
    points, each decoding to a different 3-bit state, and the saddles of the cube between them."""
    t = Trainer(config=PRESETS["flipflop"])
    s = t.fit()
    assert s["final_test_mse"] < 0.01                                 # baseline: 1.0
    fp = analyze(t.model, t.task).json["fixed_points"]
    types = fp["counts"]["types"]
    assert types["stable"] == 8
    assert fp["decoded"]["distinct_states"] == 8 == fp["decoded"]["possible_states"]
    assert types.get("saddle index 1", 0) == 12
    assert evaluate(t.model, t.task)[1] == pytest.approx(s["final_test_mse"])


@pytest.mark.slow
def test_example_script_trains_analyses_and_reports(tmp_path):
    import pathlib
    import subprocess
    import sys
    script = pathlib.Path(__file__).parent.parent / "examples" / "delayed_match.py"
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "dms")], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    acc = float(r.stdout.split("test accuracy ")[1].split("%")[0])
    assert acc > 80 and (tmp_path / "dms" / "report.html").is_file()
    assert "starts" in r.stdout and (tmp_path / "dms" / "analysis.json").is_file()


def test_analyze_flags_pick_layer_input_and_budget(tmp_path, capsys):
    out = tmp_path / "ff"
    assert main(["train", "--task", "flipflop", "--model", "lstm", "--layers", "2", "--hidden", "8",
                 "--epochs", "2", "--batches-per-epoch", "3", "--out", str(out), "--quiet",
                 "--no-report"]) == 0
    assert main(["analyze", str(out), "--fp-starts", "20", "--fp-tol", "1e-10", "--fp-input", "1,0,-1",
                 "--fp-layer", "0"]) == 0
    assert "20 starts" in capsys.readouterr().out
    fp = json.loads((out / "analysis.json").read_text())["fixed_points"]
    assert fp["layer"] == 0 and fp["input"] == [1.0, 0.0, -1.0] and fp["settings"]["tol"] == 1e-10
    assert fp["rounds"][0]["starts"] == 20
    assert fp["counts"]["converged"] + fp["counts"]["dropped_not_converged"] == fp["counts"]["starts"]
    assert "decoded" not in fp                                       # layer 0 is not read out
    assert main(["analyze", str(out), "--fp-starts", "20", "--fp-layer", "0"]) == 0
    fp = json.loads((out / "analysis.json").read_text())["fixed_points"]
    assert len(fp["points"][0]["point"]) == 16                      # (h, c) of layer 0
    assert main(["analyze", str(out), "--fp-input", "1,0"]) == 2
    assert "needs 3 values" in capsys.readouterr().err
    assert main(["analyze", str(out), "--fp-input", "a,b,c"]) == 2
    assert "comma-separated numbers" in capsys.readouterr().err
    before = (out / "analysis.json").read_bytes()
    for flags, fragment in ((["--fp-starts", "0"], "--fp-starts must be at least 1"),
                            (["--fp-tol", "-1"], "--fp-tol must be > 0"),
                            (["--fp-layer", "2"], "0..1 or -1 for the last, got 2")):
        assert main(["analyze", str(out), *flags]) == 2
        assert fragment in capsys.readouterr().err
    assert (out / "analysis.json").read_bytes() == before            # nothing overwritten
