"""Fixed points at several constant inputs in one analysis: roles, ablation and PCA once, the
same starts for every input, one result, table and figure per input; and the task's own
conditions (each context with zero evidence) found from its data."""

import json

import numpy as np
import pytest

import rnnlab
from rnnlab.analysis.analyze import analyze, task_conditions


def context_task(seed=0):
    """Two one-hot context inputs (0 or 1, held for a trial, both 0 before it starts) and one
    continuous evidence input: the shape of a context-dependent integration task."""
    rng = np.random.default_rng(seed)
    N, T = 60, 20
    ctx = rng.integers(0, 2, N)
    X = np.zeros((N, T, 3), dtype=np.float32)
    X[np.arange(N), 3:, ctx] = 1.0
    X[:, 3:, 2] = rng.standard_normal((N, T - 3))
    y = (X[..., 2].sum(axis=1) > 0).astype(np.int64)
    return rnnlab.Task.from_arrays(X, y)


def test_the_tasks_conditions_are_its_contexts_with_zero_evidence():
    inputs, why = task_conditions(context_task())
    assert sorted(map(tuple, inputs)) == [(0.0, 0.0, 0.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)]
    assert why == "a condition of the task: inputs 0, 1 at their levels, input 2 at 0"


def test_several_inputs_get_one_result_each_on_their_own_trials(tmp_path):
    from rnnlab.analysis.analyze import write_analysis
    from rnnlab.present.analysis_figures import draw_analysis_figures
    task = context_task()
    model = rnnlab.SequenceClassifier(3, 8, 2, num_layers=1, seed=0)
    a = analyze(model, task, fp_starts=32, fp_input="conditions", n_sequences=40)
    by = a.json["fixed_points_by_input"]
    assert len(by) == 3 and by[0] == a.json["fixed_points"]
    assert {tuple(f["input"]) for f in by} == {(0.0, 0.0, 0.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)}
    assert all(f["input_reason"].startswith("a condition of the task") for f in by)
    conds = a.json["conditions"]                        # each input on the trials of its own context
    levels = task.test.X[:, :, :2].max(axis=1)           # each held-out trial's context, one-hot
    for c, f in zip(conds, by):
        matching = int((levels == np.array(f["input"][:2])).all(axis=1).sum())
        assert (c["trials"], c["pooled"]) == ((matching, False) if matching else (len(levels), True))
    (zero,) = [c for c, f in zip(conds, by) if not any(f["input"])]     # before any context: no trial's condition
    assert zero["pooled"] and "none has the fixed-point input's values (0, 0)" in zero["sentence"]
    assert not all(c["pooled"] for c in conds)
    names = draw_analysis_figures(tmp_path, a.arrays)
    expected = [f"fixed_points_input{k}.png" for k in (2, 3) if a.arrays["fps_by_input"][k - 1].points]
    assert [n for n in names if n.startswith("fixed_points_input")] == expected
    assert {"unit_roles_input2.png", "pca_input2.png", "unit_roles_input3.png", "pca_input3.png"} <= set(names)
    assert all((tmp_path / n).is_file() for n in names)
    write_analysis(a, tmp_path, names)
    assert json.loads((tmp_path / "analysis.json").read_text())["fixed_points_by_input"][2]["input"] == by[2]["input"]


def test_an_input_the_network_ignores_gives_the_same_points_from_the_same_starts():
    task = context_task()
    model = rnnlab.SequenceClassifier(3, 8, 2, num_layers=1, seed=1)
    sd = model.state_dict()
    sd["rnn.weight_ih_l0"][:, 0] = 0.0                    # input 0 reaches nothing
    model.load_state_dict(sd)
    by = analyze(model, task, fp_starts=32, fp_input=[[0, 0, 0], [5, 0, 0]], n_sequences=40).json[
        "fixed_points_by_input"]
    assert by[0]["summary"].split("; max")[0] == by[1]["summary"].split("; max")[0]
    np.testing.assert_allclose([p["point"] for p in by[0]["points"]], [p["point"] for p in by[1]["points"]])


@pytest.mark.slow      # 6 s: a run and three analyses through the command line; runs in CI
def test_the_command_line_takes_several_inputs_and_conditions(tmp_path, capsys):
    from rnnlab.cli import main
    out = tmp_path / "ff"
    assert main(["train", "--task", "flipflop", "--bits", "1", "--hidden", "8", "--epochs", "1",
                 "--batches-per-epoch", "2", "--out", str(out), "--quiet", "--no-report"]) == 0
    capsys.readouterr()
    assert main(["analyze", str(out), "--fp-starts", "16", "--fp-rounds", "1", "--fp-input", "0;1"]) == 0
    printed = capsys.readouterr().out
    assert "fixed points at zero input (given)" in printed
    assert "fixed points at input [1.0] (given)" in printed
    assert main(["analyze", str(out), "--fp-starts", "8", "--fp-rounds", "1", "--fp-input", "conditions"]) == 0
    assert "a condition of the task" in capsys.readouterr().out
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<h4>At input 2:" in page
    assert main(["analyze", str(out), "--fp-input", "1;x"]) == 2
    assert "several inputs separated by ';'" in capsys.readouterr().err


def test_an_input_seen_only_on_padded_steps_is_no_condition():
    """Sequences of different lengths, right-padded with a value (5) that no real step has: the
    padding's input never becomes "a condition of the task"."""
    task = context_task()
    X, y = task.train.X.copy(), task.train.y
    lengths = np.random.default_rng(1).integers(8, 21, len(X))
    for i, n in enumerate(lengths):
        X[i, n:] = 5.0                                                  # padding, never read
    padded = rnnlab.Task.from_arrays(X, y, lengths)
    inputs, _ = task_conditions(padded)
    assert sorted(map(tuple, inputs)) == [(0.0, 0.0, 0.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)]
