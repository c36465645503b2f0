"""BLAS threads: one where a second would only spin (small products, or cores already busy),
all cores otherwise; training leaves the process's BLAS setting as it found it."""

import numpy as np
from threadpoolctl import threadpool_info

import rnnlab
from rnnlab.training import threads


def test_small_products_get_one_thread_large_ones_all_unless_the_cores_are_busy(monkeypatch):
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "others_running", lambda: 0.0)
    seed = rnnlab.SequenceClassifier(10, 64, 2, 2)                   # 32 x 64 by 64 x 64: 0.26 MFLOP
    lm = rnnlab.CharLM(80, 32, 256, 1)                               # 32 x 256 by 256 x 1024: 16.8 MFLOP
    assert threads.threads_for(seed, 32) == 1
    assert threads.threads_for(seed, 1000) is None                   # the held-out set's products are large
    assert threads.threads_for(lm, 32) is None
    monkeypatch.setattr(threads, "others_running", lambda: 2.0)     # two other processes want the 2 cores
    assert threads.threads_for(lm, 32) == 1
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")                  # the user's own choice wins
    assert threads.threads_for(seed, 32) is None
    assert threads.threads_for(object(), 32) is None


def test_training_restores_the_blas_setting():
    def blas():
        return [(i["internal_api"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]
    before = blas()
    cfg = rnnlab.TrainConfig(epochs=1, batches_per_epoch=2, train_size=100, test_size=20)
    rnnlab.Trainer(config=cfg).fit()
    assert blas() == before and np.ones(3).sum() == 3


def test_the_analysis_keeps_to_one_thread_only_while_the_cores_are_busy(monkeypatch):
    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    before = blas()
    seen = []
    work = threads.one_blas_thread_when_busy(lambda x: seen.append(blas()) or x + 1)
    monkeypatch.setattr(threads, "others_running", lambda: 2.0)          # two busy processes
    assert threads.threads_when_busy() == 1 and work(1) == 2 and seen[-1] == [1] * len(before)
    monkeypatch.setattr(threads, "others_running", lambda: 0.0)          # an idle machine: as it was
    assert threads.threads_when_busy() is None and work(1) == 2 and seen[-1] == before
    monkeypatch.setenv("OMP_NUM_THREADS", "2")                            # the user's choice wins
    monkeypatch.setattr(threads, "others_running", lambda: 2.0)
    assert threads.threads_when_busy() is None
    assert blas() == before


def test_analyze_runs_on_one_thread_beside_busy_processes(monkeypatch):
    from rnnlab.analysis.analyze import analyze
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "others_running", lambda: 2.0)
    t = rnnlab.Trainer(config=rnnlab.TrainConfig(epochs=1, batches_per_epoch=2, train_size=100, test_size=20))
    t.fit()
    during = set()
    analyze(t.model, t.task, fp_starts=8, fp_rounds=1, n_sequences=20,
            progress=lambda *a: during.update(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
    assert during == {1}
