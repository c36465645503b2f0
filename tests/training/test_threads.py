"""BLAS threads have one owner: a run's own ``blas_threads`` setting, applied at every phase
(steps, held-out scoring), whatever else changed them meanwhile; training and the analysis leave
the process's setting as they found it."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import rnnlab

SMALL = dict(epochs=3, batches_per_epoch=3, train_size=100, test_size=40, hidden=16)


def blas():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


class Meddler(rnnlab.Callback):
    """Changes the BLAS threads before training and after each epoch (as a figure pool or a user's
    library might between phases) and notes the count every step and every scoring pass ran on."""

    def __init__(self, to: int):
        self.to, self.steps, self.scoring, self._limits = to, set(), set(), []

    def on_train_begin(self, trainer):
        self._limits.append(threadpool_limits(self.to, user_api="blas"))
        self._evaluate = trainer.evaluate
        trainer.evaluate = lambda: (self.scoring.update(blas()), self._evaluate())[1]

    def on_step_end(self, trainer):
        self.steps.update(blas())

    def on_epoch_end(self, trainer, result):
        self._limits.append(threadpool_limits(self.to, user_api="blas"))

    def on_train_end(self, trainer, summary):
        for limit in reversed(self._limits):
            limit.restore_original_limits()


@pytest.mark.parametrize("n, meddle", [(1, 2), (2, 1)])
def test_every_step_and_every_scoring_pass_runs_on_the_runs_own_count(n, meddle):
    with threadpool_limits(2, user_api="blas"):
        if max(blas()) < 2:
            pytest.skip("this BLAS runs one thread only")
    before = blas()
    meddler = Meddler(meddle)
    t = rnnlab.Trainer(config=rnnlab.TrainConfig(**SMALL, blas_threads=n), callbacks=[meddler])
    t.fit()
    assert meddler.steps == {n} and meddler.scoring == {n}
    assert blas() == before and np.ones(3).sum() == 3


class Fails(rnnlab.Callback):
    def on_epoch_end(self, trainer, result):
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("how", ["alone", "failing", "stack"])
def test_training_puts_back_the_processs_own_count(how):
    """Whatever the run's count, the process has its own back after fit(): when it ends, when an
    error stops it, and after a stack."""
    from rnnlab.training.stack import StackTrainer
    cfg = rnnlab.TrainConfig(**SMALL, blas_threads=1)
    with threadpool_limits(2, user_api="blas"):
        if max(blas()) < 2:
            pytest.skip("this BLAS runs one thread only")
        seen = Meddler(1)                                # notes the count the steps ran on
        if how == "alone":
            rnnlab.Trainer(config=cfg, callbacks=[NoteSteps(seen)]).fit()
        elif how == "failing":
            with pytest.raises(OSError):
                rnnlab.Trainer(config=cfg, callbacks=[NoteSteps(seen), Fails()]).fit()
        else:
            StackTrainer([rnnlab.Trainer(config=cfg.replace(seed=s), callbacks=[NoteSteps(seen)])
                          for s in range(2)]).fit()
        assert seen.steps == {1} and max(blas()) == 2


class NoteSteps(rnnlab.Callback):
    def __init__(self, into):
        self.into = into

    def on_step_end(self, trainer):
        self.into.steps.update(blas())


def test_a_stack_refuses_members_with_different_counts():
    from rnnlab.errors import InputError
    from rnnlab.training.stack import StackTrainer
    with pytest.raises(InputError, match="stacked members must share blas_threads"):
        StackTrainer([rnnlab.Trainer(config=rnnlab.TrainConfig(**SMALL, blas_threads=n)) for n in (1, 2)])


def test_the_count_is_recorded_and_checked():
    from rnnlab.errors import InputError
    assert rnnlab.TrainConfig().blas_threads == 1
    assert rnnlab.TrainConfig.from_dict({"blas_threads": 2}).blas_threads == 2
    with pytest.raises(InputError, match="blas_threads must be at least 1"):
        rnnlab.TrainConfig(blas_threads=0)


def test_the_analysis_runs_on_one_thread_whatever_was_set():
    from rnnlab.analysis.analyze import analyze
    t = rnnlab.Trainer(config=rnnlab.TrainConfig(epochs=1, batches_per_epoch=2, train_size=100, test_size=20))
    t.fit()
    with threadpool_limits(2, user_api="blas"):
        if max(blas()) < 2:
            pytest.skip("this BLAS runs one thread only")
        during = set()
        analyze(t.model, t.task, fp_starts=8, fp_rounds=1, n_sequences=20,
                progress=lambda *a: during.update(blas()))
        assert during == {1} and max(blas()) == 2


def test_a_resumed_run_keeps_its_recorded_count(tmp_path, ctrl_c_after_epoch):
    import json

    from rnnlab.cli import main
    from rnnlab.runs.resume import resume_trainer
    run = tmp_path / "r"
    undo = ctrl_c_after_epoch(1)
    assert main(["train", "--epochs", "3", "--blas-threads", "2", "--no-report", "--out", str(run), "--quiet"]) == 130
    undo()
    assert json.loads((run / "config.json").read_text())["config"]["blas_threads"] == 2
    assert resume_trainer(run).cfg.blas_threads == 2
