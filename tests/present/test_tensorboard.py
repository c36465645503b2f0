"""The TensorBoard callback, checked by reading its event files back with TensorBoard's own reader."""

import builtins
import math
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

from rnnlab.errors import InputError  # noqa: E402
from rnnlab.present.tensorboard import HPARAMS_RUN, MISSING, TensorBoardWriter  # noqa: E402
from rnnlab.training.config import TrainConfig  # noqa: E402
from rnnlab.training.loop import EpochResult, Trainer  # noqa: E402

CFG = dict(batches_per_epoch=4, hidden=8, layers=1, dropout=0.0)


def read(path) -> EventAccumulator:
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def values(acc, tag):
    events = acc.Scalars(tag)
    return [e.step for e in events], [e.value for e in events]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("tb") / "tb"
    trainer = Trainer(config=TrainConfig(epochs=3, **CFG),
                      callbacks=[TensorBoardWriter(log_dir, hparams={"lr": 1e-3, "model": "rnn"})])
    summary = trainer.fit()
    return trainer, summary, log_dir


def test_epoch_and_iteration_scalars_match_the_history(run):
    trainer, _, log_dir = run
    acc, h, m = read(log_dir), trainer.history, trainer.metric
    for key in ("train_loss", "test_loss", f"train_{m}", f"test_{m}", "lr"):
        steps, got = values(acc, f"epoch/{key}")
        assert steps == [1, 2, 3]
        np.testing.assert_allclose(got, [r[key] for r in h], rtol=1e-6)
    for tag, key in (("iter/loss", "iter_loss"), ("iter/grad_norm", "iter_grad_norm")):
        steps, got = values(acc, tag)
        want = [v for r in h for v in r[key]]
        assert steps == list(range(1, 13)) and len(want) == 12
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert "iter/grad_norm_clipped" not in acc.Tags()["scalars"]          # clipping is off


def test_histograms_of_every_weight_and_gradient(run):
    trainer, _, log_dir = run
    acc = read(log_dir)
    tags = set(acc.Tags()["histograms"])
    for name, w in trainer.model.params.items():
        assert {f"weights/{name}", f"grads/{name}"} <= tags
        events = acc.Histograms(f"weights/{name}")
        assert [e.step for e in events] == [1, 2, 3]
        last = events[-1].histogram_value                    # the final weights
        assert last.num == w.size
        assert last.min == pytest.approx(float(w.min())) and last.max == pytest.approx(float(w.max()))
        grads = acc.Histograms(f"grads/{name}")[-1].histogram_value
        assert grads.sum == pytest.approx(float(trainer.model.grads[name].sum()), rel=1e-4, abs=1e-6)


def test_hparams_are_written_with_the_final_metrics_in_their_sub_run(run):
    trainer, summary, log_dir = run
    m = trainer.metric
    acc = read(log_dir / HPARAMS_RUN)                        # add_hparams writes a sub-run
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["lr"].number_value == pytest.approx(1e-3) and hp["model"].string_value == "rnn"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {i.name.tag for i in experiment.metric_infos} >= {f"hparam/final_test_{m}", f"hparam/best_test_{m}"}
    for key in (f"final_test_{m}", f"best_test_{m}"):
        steps, got = values(acc, f"hparam/{key}")
        assert steps == [3] and got == [pytest.approx(summary[key], rel=1e-6)]
    # the main run keeps only the training curves
    assert not any(t.startswith("hparam/") for t in read(log_dir).Tags()["scalars"])


def test_a_resumed_trainer_counts_steps_on_from_its_history(tmp_path):
    log_dir = tmp_path / "tb"
    first = Trainer(config=TrainConfig(epochs=2, **CFG), callbacks=[TensorBoardWriter(log_dir)])
    first.fit()
    # a trainer arriving with two finished epochs (as resume_trainer leaves it) trains only the third
    second = Trainer(config=TrainConfig(epochs=3, clip=0.5, **CFG), callbacks=[TensorBoardWriter(log_dir)])
    second.history = list(first.history)
    second.fit()
    acc = read(log_dir)
    assert values(acc, "epoch/test_loss")[0] == [1, 2, 3]
    steps, got = values(acc, "iter/loss")
    assert steps == list(range(1, 13))
    np.testing.assert_allclose(got[8:], second.history[2]["iter_loss"], rtol=1e-6)
    steps, got = values(acc, "iter/grad_norm_clipped")               # only the clipped epoch has it
    assert steps == [9, 10, 11, 12] and max(got) <= 0.5 + 1e-6
    assert not (log_dir / HPARAMS_RUN).exists()                       # no hparams given, no sub-run


def test_non_finite_numbers_never_crash_the_writer(tmp_path):
    params = {"w": np.array([[np.nan, 1.0], [2.0, np.inf]]), "b": np.full(3, np.nan)}
    trainer = SimpleNamespace(metric="mse", history=[],
                              model=SimpleNamespace(params=params, grads={"w": np.ones((2, 2)), "b": None}))
    tb = TensorBoardWriter(tmp_path / "tb", hparams={"shape": (2, 3), "none": None, "n": np.int64(4)})
    tb.on_train_begin(trainer)
    record = {"epoch": 1, "train_loss": float("nan"), "train_mse": np.float32(np.inf), "test_loss": 1.0,
              "test_mse": None, "lr": 0.1, "iter_loss": [1.0, float("nan")], "iter_grad_norm": [np.inf, 2.0]}
    tb.on_epoch_end(trainer, EpochResult(record))
    tb.on_train_end(trainer, {"metric": "mse", "epochs": 1, "final_test_mse": float("nan"),
                              "best_test_mse": 0.5, "final_test_loss": 1.0})
    acc = read(tmp_path / "tb")
    assert math.isnan(values(acc, "epoch/train_loss")[1][0])
    assert values(acc, "epoch/train_mse")[1] == [math.inf]
    assert "epoch/test_mse" not in acc.Tags()["scalars"]             # not a number: left out
    assert math.isnan(values(acc, "iter/loss")[1][1])
    tags = acc.Tags()["histograms"]
    assert acc.Histograms("weights/w")[0].histogram_value.num == 2   # the finite entries
    assert "weights/b" not in tags and "grads/b" not in tags        # nothing finite to bin
    hp = read(tmp_path / "tb" / HPARAMS_RUN)
    start = plugin_data_pb2.HParamsPluginData.FromString(
        hp.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info.hparams
    assert start["shape"].string_value == "(2, 3)" and start["n"].number_value == 4 and "none" not in start
    assert math.isnan(values(hp, "hparam/final_test_mse")[1][0])


def test_missing_tensorboardx_is_a_one_sentence_input_error(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_tensorboardx(name, *args, **kwargs):
        if name == "tensorboardX" or name.startswith("tensorboardX."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_tensorboardx)
    with pytest.raises(InputError) as e:
        TensorBoardWriter(tmp_path / "tb")
    assert str(e.value) == MISSING == ("TensorBoard logging needs the optional extra: "
                                       "pip install 'rnnlab[tensorboard]'")
    assert not (tmp_path / "tb").exists()


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(InputError, match="histograms_every"):
        TensorBoardWriter(tmp_path, histograms_every=-1)
    with pytest.raises(TypeError, match="hparams must be a dict"):
        TensorBoardWriter(tmp_path, hparams=[("lr", 1)])
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is a file"):
        TensorBoardWriter(tmp_path / "file")


def test_a_stopped_fit_closes_the_event_file_with_its_finished_epochs(tmp_path):
    from rnnlab.training.loop import Callback

    class CrashAfterEpoch2(Callback):
        def on_epoch_end(self, trainer, result):
            if result.record["epoch"] == 2:
                raise KeyboardInterrupt

    tb = TensorBoardWriter(tmp_path / "tb")
    with pytest.raises(KeyboardInterrupt):
        Trainer(config=TrainConfig(epochs=5, **CFG), callbacks=[tb, CrashAfterEpoch2()]).fit()
    assert tb.writer is None                                          # closed by on_train_stopped
    assert values(read(tmp_path / "tb"), "epoch/test_loss")[0] == [1, 2]
