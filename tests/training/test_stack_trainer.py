"""Training a stack (rnnlab.training.stack): member k's run is the run its config gives alone --
every epoch's numbers, its probes, its final weights -- including a member whose guard rolls it
back while the others go on, and one whose guard gives up."""

import numpy as np
import pytest

from rnnlab.errors import InputError
from rnnlab.training.config import TrainConfig
from rnnlab.training.loop import Trainer
from rnnlab.training.stack import StackTrainer, stack_key

SMALL = dict(hidden=12, layers=2, epochs=4, batches_per_epoch=5, batch_size=16, train_size=400, test_size=200,
             length=10, features=4, dtype="float64", probe_every=3)


def alone_and_stacked(configs):
    alone = [Trainer(config=c) for c in configs]
    summaries = []
    for t in alone:
        try:
            summaries.append(t.fit())
        except Exception as e:                              # a run that fails alone fails in the stack too
            summaries.append(e)
    members = [Trainer(config=c) for c in configs]
    return alone, summaries, members, StackTrainer(members).fit()


def same_run(a: Trainer, b: Trainer, tol: float) -> None:
    assert len(a.history) == len(b.history)
    for ra, rb in zip(a.history, b.history):
        for key in ("train_loss", "test_loss", "lr"):
            assert ra[key] == pytest.approx(rb[key], rel=tol, abs=tol, nan_ok=True), key
        np.testing.assert_allclose(ra["iter_loss"], rb["iter_loss"], rtol=tol, atol=tol, equal_nan=True)
        assert ra.get("events") == rb.get("events")
    for name, p in a.model.params.items():
        np.testing.assert_allclose(b.model.params[name], p, rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_each_member_trains_as_it_would_alone_float64(model):
    configs = [TrainConfig(model=model, seed=s, lr=lr, dropout=p, clip=clip, weight_decay=wd, **SMALL)
               for s, lr, p, clip, wd in [(0, 1e-2, 0.0, 0.0, 0.0), (1, 3e-3, 0.3, 1.0, 0.0),
                                          (2, 2e-2, 0.1, 0.0, 1e-3)]]
    alone, summaries, members, results = alone_and_stacked(configs)
    for a, s, m, r in zip(alone, summaries, members, results):
        same_run(a, m, 0.0)
        assert r["final_test_acc"] == s["final_test_acc"] and r["best_epoch"] == s["best_epoch"]


def test_float32_members_match_their_runs_alone_to_rounding():
    configs = [TrainConfig(model="lstm", seed=s, **{**SMALL, "dtype": "float32"}) for s in range(3)]
    alone, summaries, members, results = alone_and_stacked(configs)
    for a, m in zip(alone, members):
        same_run(a, m, 0.0)


@pytest.mark.parametrize("model", ["rnn", "gru"])
def test_members_score_a_held_out_set_larger_than_their_share_of_a_pass_as_alone(model):
    """K members share 1000 rows a scoring pass; with 1,100 held-out sequences each (more than
    1000 / K, and more than one pass alone), every epoch's test loss is still the run's alone."""
    sizes = dict(SMALL, dtype="float32", test_size=1100, epochs=2, probe_every=0)
    configs = [TrainConfig(model=model, seed=s, **sizes) for s in range(3)]
    alone, summaries, members, results = alone_and_stacked(configs)
    for a, m in zip(alone, members):
        assert [r["test_loss"] for r in a.history] == [r["test_loss"] for r in m.history]
        same_run(a, m, 0.0)


RELU = dict(SMALL, model="rnn", optimizer="sgd", nonlinearity="relu", init="identity", epochs=6,
            batches_per_epoch=10)


def test_a_member_that_blows_up_recovers_alone_and_the_others_are_untouched():
    configs = [TrainConfig(seed=0, lr=0.01, **RELU), TrainConfig(seed=1, lr=0.2, max_recoveries=30, **RELU),
               TrainConfig(seed=2, lr=0.01, **RELU)]
    alone, summaries, members, results = alone_and_stacked(configs)
    assert sum(r.get("events", 0) for r in members[1].history) > 0       # rolled back, lr cut
    assert all("events" not in r for m in (members[0], members[2]) for r in m.history)
    for a, m in zip(alone, members):
        same_run(a, m, 0.0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")          # the member that overflows
def test_a_member_whose_guard_gives_up_stops_and_the_others_finish():
    configs = [TrainConfig(seed=0, lr=0.01, **RELU), TrainConfig(seed=1, lr=1.0, max_recoveries=0, **RELU)]
    alone, summaries, members, results = alone_and_stacked(configs)
    assert isinstance(summaries[1], Exception) and type(results[1]) is type(summaries[1])
    same_run(alone[0], members[0], 0.0)
    assert results[0]["epochs"] == RELU["epochs"]


def test_what_cannot_be_stacked_is_refused_with_a_reason():
    assert stack_key(TrainConfig(seed=0, lr=1e-3)) == stack_key(TrainConfig(seed=5, lr=1e-2, dropout=0.5))
    assert stack_key(TrainConfig(hidden=8)) != stack_key(TrainConfig(hidden=9))
    with pytest.raises(InputError, match="these differ: hidden 8 against 9"):
        StackTrainer([Trainer(config=TrainConfig(hidden=8)), Trainer(config=TrainConfig(hidden=9))])
    with pytest.raises(InputError, match="CharLM"):
        StackTrainer([Trainer(config=TrainConfig(task="charlm", corpus_chars=20000, batch_size=4, window=20,
                                                 model="lstm", layers=1))])


def test_a_killed_stack_leaves_runs_that_resume_alone_to_the_same_end(tmp_path, monkeypatch):
    """train_stack writes a complete run directory per member; killed in epoch 3, each member's
    directory resumes alone (rnnlab.resume) to what its config gives uninterrupted."""
    import rnnlab
    from rnnlab.training import stack as stack_module
    configs = [TrainConfig(model="gru", seed=s, lr=[1e-2, 3e-3][s], **dict(SMALL, probe_every=0)) for s in range(2)]
    expected = [Trainer(config=c).fit() for c in configs]
    dirs = [tmp_path / f"m{k}" for k in range(2)]
    calls = {"n": 0}
    real = stack_module.StackTrainer._step

    def killed(self, batches, live):
        calls["n"] += 1
        if calls["n"] == 2 * SMALL["batches_per_epoch"] + 3:          # in the middle of epoch 3
            raise KeyboardInterrupt
        return real(self, batches, live)
    monkeypatch.setattr(stack_module.StackTrainer, "_step", killed)
    with pytest.raises(KeyboardInterrupt):
        rnnlab.train_stack(configs, dirs, report=False)
    monkeypatch.setattr(stack_module.StackTrainer, "_step", real)
    for d, want in zip(dirs, expected):
        assert (d / "config.json").is_file() and len((d / "metrics.jsonl").read_text().splitlines()) == 2
        got = rnnlab.resume(d)
        assert got["final_test_loss"] == pytest.approx(want["final_test_loss"], abs=1e-10)
        assert got["best_epoch"] == want["best_epoch"]


def _without_clocks(obj):
    """A record without its wall-clock times (fields, and "0.32 s" inside sentences)."""
    import re
    if isinstance(obj, dict):
        return {k: _without_clocks(v) for k, v in obj.items() if k not in ("seconds", "kernel_seconds")}
    if isinstance(obj, list):
        return [_without_clocks(v) for v in obj]
    return re.sub(r"\d+(\.\d+)? s\b", "N s", obj) if isinstance(obj, str) else obj


@pytest.mark.slow      # four whole runs with analysis and report (7 s); runs in CI
def test_train_stack_writes_what_train_writes_for_each_member(tmp_path):
    """Each member's directory holds its own run: summary, analysis and the report's numbers are
    those ``rnnlab.train`` writes for the same config alone (not another member's)."""
    import json

    import rnnlab
    configs = [TrainConfig(seed=s, lr=lr, **dict(SMALL, dtype="float32")) for s, lr in [(0, 1e-2), (1, 3e-3)]]
    results = rnnlab.train_stack(configs, [tmp_path / "a", tmp_path / "b"])
    for d, r, cfg in zip(("a", "b"), results, configs):
        names = {p.name for p in (tmp_path / d).iterdir()}
        assert {"config.json", "metrics.jsonl", "summary.json", "report.html", "analysis.json"} <= names
        assert r["epochs"] == SMALL["epochs"]
        rnnlab.train(config=cfg, run_dir=tmp_path / f"{d}-alone")
        for name in ("summary.json", "analysis.json"):
            got, want = (_without_clocks(json.loads((tmp_path / x / name).read_text())) for x in (d, f"{d}-alone"))
            assert got == want, (d, name)
    a, b = (json.loads((tmp_path / d / "analysis.json").read_text()) for d in "ab")
    assert _without_clocks(a) != _without_clocks(b)                    # two networks, two analyses


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_stack_whose_every_member_gives_up_reports_each_failure():
    configs = [TrainConfig(seed=s, lr=1.0, max_recoveries=0, **RELU) for s in range(2)]
    results = StackTrainer([Trainer(config=c) for c in configs]).fit()
    assert all(type(r).__name__ == "TrainingDiverged" for r in results)


@pytest.mark.parametrize("where", ["step", "epoch_end"])
def test_an_error_that_is_not_a_guard_giving_up_stops_the_stack_as_it_stops_a_run_alone(where):
    """A full disk in one member's callback or a MemoryError in its step is not that member's
    "result": it stops every member and is raised, as it would be alone."""
    import rnnlab
    configs = [TrainConfig(seed=s, **dict(SMALL, probe_every=0)) for s in range(3)]

    class FullDisk(rnnlab.Callback):
        def on_epoch_end(self, trainer, result):
            if result.record["epoch"] == 2:
                raise OSError(28, "No space left on device")

    stopped = []

    class Stopped(rnnlab.Callback):
        def on_train_stopped(self, trainer):
            stopped.append(trainer.cfg.seed)

    members = [Trainer(config=c, callbacks=[Stopped()]) for c in configs]
    if where == "epoch_end":
        members[1].callbacks.append(FullDisk())
        expected = OSError
    else:
        def out_of_memory():
            raise MemoryError("Unable to allocate")
        members[1].optimizer.step = out_of_memory
        expected = MemoryError
    with pytest.raises(expected):
        StackTrainer(members).fit()
    assert sorted(stopped) == [0, 1, 2]
