"""rnnlab compare on a tiny grid writes its table, figures and page; its numbers have the shapes
the argument rests on (equal parameters; constant recurrent state; a KV cache growing linearly)."""

import json

import pytest

from rnnlab.cli import main


@pytest.mark.slow
def test_compare_on_a_tiny_grid(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["compare", "--tasks", "seed", "--seeds", "1", "--params", "8000", "--quick",
                 "--out", str(out)]) == 0
    data = json.loads((out / "compare.json").read_text())
    summ = data["summary"]
    assert [s["model"] for s in summ] == ["rnn", "lstm", "gru", "transformer"]
    counts = [s["params"] for s in summ]
    assert max(counts) / min(counts) < 1.05                                # equal sizes, stated
    assert all(s["equal_updates"] is not None and s["equal_time"] is not None for s in summ)
    stream = {(r["model"], r["position"]): r["state_bytes"] for r in data["streaming"]}
    for cell in ("rnn", "lstm", "gru"):
        assert stream[(cell, 16)] == stream[(cell, 256)] > 0                  # constant state
    kv = [stream[("transformer (kv-cache)", p)] for p in (16, 64, 256)]
    assert kv[1] == 4 * kv[0] and kv[2] == 16 * kv[0]                       # linear in the position
    assert {r["length"] for r in data["throughput"]} == {16, 64, 256}
    page = (out / "compare.html").read_text()
    assert page.count("<img") == 3 and "Streaming inference" in page
    assert "| seed (acc) | transformer |" in (out / "compare.md").read_text()


def test_compare_rejects_unknown_tasks(tmp_path, capsys):
    assert main(["compare", "--tasks", "seed,parity", "--out", str(tmp_path / "x")]) == 2
    assert "unknown parity" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_compare_warns_about_no_setting_the_user_never_gave():
    """The compare builds each task from its own config and hands the task over: the settings
    that made it are not the user's pointless flags (it warned about --test-size 500 it chose)."""
    import warnings

    from rnnlab.data.tasks import build_task
    from rnnlab.experiments.compare import COMMON, TASKS
    from rnnlab.training.config import PRESETS, TrainConfig
    from rnnlab.training.loop import Trainer
    for name in TASKS:
        base = TrainConfig.from_dict({**PRESETS["seed"].to_dict(), **dict(COMMON, **TASKS[name]),
                                      "corpus_chars": 60_000})
        task = build_task(base)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            Trainer(task, config=base)                      # as compare makes them
    with pytest.warns(UserWarning, match="test_size=77 does nothing"):    # a setting that did not make it
        Trainer(build_task(TrainConfig(test_size=500)), config=TrainConfig(test_size=77))
