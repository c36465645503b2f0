"""Synthetic sequence tasks with fixed, seeded train/test splits.

``mean-sign`` (the seed experiment): X ~ N(0, 1) of shape (N, T, D); label 1 if the mean of all
T*D values is > 0, else 0. ``tagging``: the same inputs, labelled at every step t with the sign
of the running mean over steps 1..t (a many-to-many version of the same computation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import check_choice, check_int


@dataclass(frozen=True)
class Dataset:
    X_train: np.ndarray      # (N, T, D)
    y_train: np.ndarray      # (N,) for classification, (N, T) for tagging
    X_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    per_step: bool           # True: one label per step (tagger); False: one per sequence


def _gaussian_split(n_train, n_test, length, features, seed, dtype):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_train + n_test, length, features)).astype(dtype)
    return X[:n_train], X[n_train:]


def mean_sign(n_train=5000, n_test=1000, length=20, features=10, seed=0, dtype=np.float32):
    Xtr, Xte = _gaussian_split(n_train, n_test, length, features, seed, dtype)
    label = lambda X: (X.astype(np.float64).mean(axis=(1, 2)) > 0).astype(np.int64)
    return Dataset(Xtr, label(Xtr), Xte, label(Xte), 2, False)


def running_mean_sign(n_train=5000, n_test=1000, length=20, features=10, seed=0, dtype=np.float32):
    Xtr, Xte = _gaussian_split(n_train, n_test, length, features, seed, dtype)
    label = lambda X: (np.cumsum(X.astype(np.float64).sum(axis=2), axis=1) > 0).astype(np.int64)
    return Dataset(Xtr, label(Xtr), Xte, label(Xte), 2, True)


TASKS = {"mean-sign": mean_sign, "tagging": running_mean_sign}


def make_task(name, n_train, n_test, length, features, seed, dtype=np.float32) -> Dataset:
    check_choice("task", name, tuple(TASKS))
    for field, value in (("train_size", n_train), ("test_size", n_test), ("length", length),
                         ("features", features)):
        check_int(field, value, minimum=1)
    return TASKS[name](n_train, n_test, length, features, seed, dtype)
