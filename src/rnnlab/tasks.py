"""Synthetic sequence tasks with fixed, seeded train/test splits.

Every task returns a ``Dataset``: inputs (N, T, D) float arrays, targets, and what kind of
problem it is (which head and loss the trainer uses), plus the score of a memoryless baseline.

- ``mean-sign`` (the seed experiment): X ~ N(0, 1); label 1 if the mean of all T*D values > 0.
- ``tagging``: the same inputs, labelled at every step with the sign of the running mean.
- ``adding`` (Hochreiter & Schmidhuber 1997): channel 0 uniform in [0, 1], channel 1 marks one
  position in each half; target the sum of the two marked values. Always predicting 1.0 gives
  MSE 1/6 ~ 0.167; "solved" is MSE < 0.01.
- ``copy`` (Arjovsky et al. 2016): 10 symbols from 1..8, then T blanks with a delimiter (9) at
  the 10th-last step; reproduce the 10 symbols in the last 10 steps, blanks (0) elsewhere.
  Memoryless baseline cross-entropy: 10 ln(8) / (T + 20).
- ``temporal-order`` (Hochreiter & Schmidhuber 1997, task 6a): random distractors a-d, with X or
  Y at one step in [0.1T, 0.2T) and one in [0.5T, 0.6T); classify XX, XY, YX, YY (chance 25%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import check_choice, check_int
from .errors import InputError

KINDS = ("classify", "tag", "regress", "lm")


@dataclass(frozen=True)
class Dataset:
    X_train: np.ndarray      # (N, T, D) inputs; for 'lm' the 1-D training stream of symbol ids
    y_train: np.ndarray      # (N,) classes, (N, T) per-step classes, (N, K) regression targets
    X_test: np.ndarray
    y_test: np.ndarray
    kind: str                # classify | tag | regress | lm
    output_size: int         # classes, regression outputs, or vocabulary size
    baseline: float | None = None      # score of a memoryless predictor, in the task's metric
    baseline_note: str = ""
    vocab: tuple = ()        # 'lm': the characters, index = symbol id

    @property
    def per_step(self) -> bool:
        return self.kind in ("tag", "lm")

    @property
    def input_size(self) -> int:
        return len(self.vocab) if self.kind == "lm" else self.X_train.shape[-1]

    @property
    def num_classes(self) -> int:
        return self.output_size


def _rng_split(seed, n_train, n_test, make):
    rng = np.random.default_rng(seed)
    return make(rng, n_train), make(rng, n_test)


def mean_sign(n_train=5000, n_test=1000, length=20, features=10, seed=0, dtype=np.float32):
    def make(rng, n):
        X = rng.standard_normal((n, length, features)).astype(dtype)
        return X, (X.astype(np.float64).mean(axis=(1, 2)) > 0).astype(np.int64)
    (Xtr, ytr), (Xte, yte) = _rng_split(seed, n_train, n_test, make)
    return Dataset(Xtr, ytr, Xte, yte, "classify", 2, 0.5, "chance accuracy")


def running_mean_sign(n_train=5000, n_test=1000, length=20, features=10, seed=0, dtype=np.float32):
    def make(rng, n):
        X = rng.standard_normal((n, length, features)).astype(dtype)
        return X, (np.cumsum(X.astype(np.float64).sum(axis=2), axis=1) > 0).astype(np.int64)
    (Xtr, ytr), (Xte, yte) = _rng_split(seed, n_train, n_test, make)
    return Dataset(Xtr, ytr, Xte, yte, "tag", 2, 0.5, "chance accuracy")


def adding(n_train=10000, n_test=1000, length=50, seed=0, dtype=np.float32):
    if length < 2:
        raise InputError(f"adding problem needs length >= 2, got {length}")

    def make(rng, n):
        X = np.zeros((n, length, 2), dtype=dtype)
        X[:, :, 0] = rng.random((n, length))
        half = length // 2
        first = rng.integers(0, half, n)
        second = rng.integers(half, length, n)
        rows = np.arange(n)
        X[rows, first, 1] = 1.0
        X[rows, second, 1] = 1.0
        y = (X[rows, first, 0].astype(np.float64) + X[rows, second, 0]).astype(dtype)[:, None]
        return X, y
    (Xtr, ytr), (Xte, yte) = _rng_split(seed, n_train, n_test, make)
    return Dataset(Xtr, ytr, Xte, yte, "regress", 1, 1 / 6, "MSE of always predicting 1.0")


def copy_memory(n_train=10000, n_test=1000, length=50, seed=0, dtype=np.float32):
    """``length`` is the number of blank steps T; sequences are T + 20 long."""
    if length < 1:
        raise InputError(f"copy task needs length >= 1, got {length}")
    total = length + 20

    def make(rng, n):
        sym = np.zeros((n, total), dtype=np.int64)
        sym[:, :10] = rng.integers(1, 9, (n, 10))
        sym[:, length + 9] = 9                                   # delimiter: start recalling
        y = np.zeros((n, total), dtype=np.int64)
        y[:, -10:] = sym[:, :10]
        return np.eye(10, dtype=dtype)[sym], y                   # one-hot inputs (n, T+20, 10)
    (Xtr, ytr), (Xte, yte) = _rng_split(seed, n_train, n_test, make)
    return Dataset(Xtr, ytr, Xte, yte, "tag", 10, 10 * np.log(8) / total,
                   "cross-entropy of a memoryless predictor")


def temporal_order(n_train=10000, n_test=1000, length=100, seed=0, dtype=np.float32):
    if length < 10:
        raise InputError(f"temporal-order needs length >= 10, got {length}")
    lo1, hi1 = int(0.1 * length), max(int(0.2 * length), int(0.1 * length) + 1)
    lo2, hi2 = int(0.5 * length), max(int(0.6 * length), int(0.5 * length) + 1)

    def make(rng, n):
        # symbols: 0-3 distractors a-d, 4 = X, 5 = Y, 6 = start B, 7 = end E
        sym = rng.integers(0, 4, (n, length))
        sym[:, 0], sym[:, -1] = 6, 7
        a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
        rows = np.arange(n)
        sym[rows, rng.integers(lo1, hi1, n)] = 4 + a
        sym[rows, rng.integers(lo2, hi2, n)] = 4 + b
        return np.eye(8, dtype=dtype)[sym], (2 * a + b).astype(np.int64)
    (Xtr, ytr), (Xte, yte) = _rng_split(seed, n_train, n_test, make)
    return Dataset(Xtr, ytr, Xte, yte, "classify", 4, 0.25, "chance accuracy")


# What kind of problem each task is (which head, loss and metric the trainer uses).
TASK_KINDS = {"mean-sign": "classify", "tagging": "tag", "adding": "regress", "copy": "tag",
              "temporal-order": "classify", "charlm": "lm"}

SEQUENCE_TASKS = {"mean-sign": mean_sign, "tagging": running_mean_sign, "adding": adding,
                  "copy": copy_memory, "temporal-order": temporal_order}
TASKS = tuple(SEQUENCE_TASKS) + ("charlm",)


def make_task(name, n_train, n_test, length, features, seed, dtype=np.float32) -> Dataset:
    check_choice("task", name, TASKS)
    for field, value in (("train_size", n_train), ("test_size", n_test), ("length", length),
                         ("features", features)):
        check_int(field, value, minimum=1)
    if name in ("mean-sign", "tagging"):
        return SEQUENCE_TASKS[name](n_train, n_test, length, features, seed, dtype)
    return SEQUENCE_TASKS[name](n_train, n_test, length, seed, dtype)
