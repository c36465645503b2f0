"""Tasks: a sequence problem as a value a user can make, and the registry of built-in ones.

A ``Task`` holds how batches are made -- fixed training arrays, or a generator
``fn(rng, batch_size, length) -> (x, y)`` or ``(x, y, lengths)`` drawing fresh sequences -- a
fixed held-out split, what the targets are (classes, real values, or a text stream; one target
per sequence or one per step), and so its metric and the score of a memoryless baseline::

    task = Task.from_generator(my_fn, length=50)          # fresh batches, fixed test set
    task = Task.from_arrays(X, y, lengths=lengths)        # a user's arrays, last 10% held out

Built-in tasks are entries of the same type, made by ``build_task(cfg)`` from ``TASKS``:

- ``mean-sign`` (the seed experiment): X ~ N(0, 1); label 1 if the mean of all T*D values > 0.
- ``tagging``: the same inputs, labelled at every step with the sign of the running mean.
- ``adding`` (Hochreiter & Schmidhuber 1997): channel 0 uniform in [0, 1], channel 1 marks one
  position in each half; target the sum of the two marked values. Always predicting 1.0 gives
  MSE 1/6 ~ 0.167; "solved" is MSE < 0.01.
- ``copy`` (Arjovsky et al. 2016): 10 symbols from 1..8, then T blanks with a delimiter (9) at
  the 10th-last step; reproduce the 10 symbols in the last 10 steps, blanks (0) elsewhere.
  Memoryless baseline: always answering blank scores (T + 10) / (T + 20) accuracy (75% at T = 20).
- ``temporal-order`` (Hochreiter & Schmidhuber 1997, task 6a): random distractors a-d, with X or
  Y at one step in [0.1T, 0.2T) and one in [0.5T, 0.6T); classify XX, XY, YX, YY (chance 25%).
- ``flipflop`` (Sussillo & Barak 2013): K channels of sparse +-1 pulses; K outputs that each hold
  the sign of the last pulse on their channel. Every channel pulses at t = 0, so targets are
  always +-1 and answering 0 scores MSE 1. Fresh sequences for every batch.
- ``charlm``: a text stream (see ``corpus.py``).
- ``neurogym:ENV_ID``: a NeuroGym task, one trial per sequence (see ``neurogym.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import numpy as np

from rnnlab.checks import check_choice, check_int, check_memory, setting
from rnnlab.data.corpus import default_corpus, lm_task, read_text
from rnnlab.data.neurogym import PREFIX as NEUROGYM
from rnnlab.data.npz import file_sha256, load_npz_task
from rnnlab.data.task import Split, Task
from rnnlab.errors import InputError


# ---------------------------------------------------------------- built-in generators
def _fixed(name, make, n_train, n_test, seed, targets, per_step, output_size, baseline, note):
    """A built-in task with fixed, seeded train and test arrays drawn by ``make(rng, n)``."""
    rng = np.random.default_rng(seed)
    train, test = Split(*make(rng, n_train)), Split(*make(rng, n_test))
    return Task(name, targets, per_step, int(train.X.shape[2]), output_size, test, train,
                baseline=baseline, baseline_note=note)


def mean_sign(n_train=5000, n_test=1000, length=20, features=10, seed=0, dtype=np.float32):
    def make(rng, n):
        X = rng.standard_normal((n, length, features)).astype(dtype)
        return X, (X.astype(np.float64).mean(axis=(1, 2)) > 0).astype(np.int64)
    return _fixed("mean-sign", make, n_train, n_test, seed, "classes", False, 2, 0.5, "chance accuracy")


def running_mean_sign(n_train=5000, n_test=1000, length=20, features=10, seed=0, dtype=np.float32):
    def make(rng, n):
        X = rng.standard_normal((n, length, features)).astype(dtype)
        return X, (np.cumsum(X.astype(np.float64).sum(axis=2), axis=1) > 0).astype(np.int64)
    return _fixed("tagging", make, n_train, n_test, seed, "classes", True, 2, 0.5, "chance accuracy")


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
    return _fixed("adding", make, n_train, n_test, seed, "real", False, 1, 1 / 6,
                  "MSE of always predicting 1.0")


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
    return _fixed("copy", make, n_train, n_test, seed, "classes", True, 10, (length + 10) / total,
                  "accuracy of always answering blank")


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
    return _fixed("temporal-order", make, n_train, n_test, seed, "classes", False, 4, 0.25,
                  "chance accuracy")


def flipflop_batch(rng, batch_size: int, length: int, bits: int = 3, pulse_prob: float = 0.05,
                   dtype=np.float32):
    """x (B, T, K) sparse +-1 pulses (every channel pulses at t = 0); y (B, T, K) the sign of the
    last pulse on each channel so far."""
    pulse = rng.random((batch_size, length, bits)) < pulse_prob
    pulse[:, 0, :] = True
    x = np.where(pulse, rng.choice(np.array([-1.0, 1.0]), (batch_size, length, bits)), 0.0)
    steps = np.arange(length)[None, :, None]
    last = np.maximum.accumulate(np.where(pulse, steps, 0), axis=1)   # step of the last pulse
    y = np.take_along_axis(x, last, axis=1)
    return x.astype(dtype), y.astype(dtype)


def flipflop(bits=3, length=100, pulse_prob=0.05, n_test=500, seed=0, dtype=np.float32) -> Task:
    check_int("bits", bits, minimum=1)
    if not 0 < pulse_prob <= 1:
        raise InputError(f"pulse_prob must be in (0, 1], got {pulse_prob}")

    def gen(rng, batch_size, T):
        return flipflop_batch(rng, batch_size, T, bits, pulse_prob, dtype)
    return Task.from_generator(gen, length=length, test_size=n_test, seed=seed, name="flipflop",
                               baseline=1.0, baseline_note="MSE of always answering 0 (targets are +-1)")


# ---------------------------------------------------------------- the registry
@dataclass(frozen=True)
class TaskEntry:
    name: str
    summary: str
    make: Callable      # make(cfg, length) -> Task; cfg is a TrainConfig (duck-typed here)
    reads: tuple = ()   # the config's data fields that make() reads (the rest do nothing for this task)
    size: Callable | None = None    # size(cfg, length) -> numbers make() stores (train + test inputs), if fixed


def _dtype(cfg):
    return np.dtype(cfg.dtype)


_SIZED = ("train_size", "test_size", "length", "data_seed")
_SIZED_F = _SIZED + ("features",)

TASKS: dict[str, TaskEntry] = {e.name: e for e in [
    TaskEntry("mean-sign", "sign of the mean of all inputs (the seed experiment)",
              lambda c, T: mean_sign(c.train_size, c.test_size, T, c.features, c.data_seed, _dtype(c)), _SIZED_F,
              lambda c, T: (c.train_size + c.test_size) * T * c.features),
    TaskEntry("tagging", "sign of the running mean at every step",
              lambda c, T: running_mean_sign(c.train_size, c.test_size, T, c.features, c.data_seed, _dtype(c)),
              _SIZED_F, lambda c, T: (c.train_size + c.test_size) * T * (c.features + 1)),
    TaskEntry("adding", "sum of two marked numbers (Hochreiter & Schmidhuber 1997)",
              lambda c, T: adding(c.train_size, c.test_size, T, c.data_seed, _dtype(c)), _SIZED,
              lambda c, T: (c.train_size + c.test_size) * T * 2),
    TaskEntry("copy", "recall 10 symbols after T blanks (Arjovsky et al. 2016)",
              lambda c, T: copy_memory(c.train_size, c.test_size, T, c.data_seed, _dtype(c)), _SIZED,
              lambda c, T: (c.train_size + c.test_size) * (T + 20) * 11),
    TaskEntry("temporal-order", "order of two marked symbols (Hochreiter & Schmidhuber 1997)",
              lambda c, T: temporal_order(c.train_size, c.test_size, T, c.data_seed, _dtype(c)), _SIZED,
              lambda c, T: (c.train_size + c.test_size) * T * 8),
    TaskEntry("flipflop", "K-bit flip-flop memory (Sussillo & Barak 2013)",
              lambda c, T: flipflop(c.bits, T, c.pulse_prob, min(c.test_size, 500), c.data_seed, _dtype(c)),
              ("bits", "length", "pulse_prob", "test_size", "data_seed"),
              lambda c, T: min(c.test_size, 500) * T * 2 * c.bits),
    TaskEntry("charlm", "character-level language model on a text stream",
              lambda c, T: _text_task(c), ("text", "corpus_chars", "window")),
    TaskEntry("npz", "your own arrays: --data FILE.npz with X, y and optional lengths",
              lambda c, T: _npz_task(c), ("data",)),
    TaskEntry("neurogym", "a NeuroGym task, one trial per sequence: neurogym:ENV_ID (pip install 'rnnlab[neurogym]')",
              lambda c, T: Task.from_neurogym(c.task[len(NEUROGYM):], c.env_kwargs, test_size=c.test_size,
                                              seed=c.data_seed, fixation_weight=c.fixation_weight, dtype=_dtype(c)),
              ("env_kwargs", "fixation_weight", "test_size", "data_seed")),
]}


def task_entry_name(task: str) -> str:
    """The ``TASKS`` entry a config's task names: itself, or "neurogym" for neurogym:ENV_ID."""
    if isinstance(task, str) and task.startswith(NEUROGYM):
        if not task[len(NEUROGYM):]:
            raise InputError(f"{setting('task', 'neurogym:ENV_ID')} needs a task after the colon, e.g. "
                             f"{setting('task', 'neurogym:PerceptualDecisionMaking-v0')}")
        return "neurogym"
    return task


def _text_task(cfg) -> Task:
    text = read_text(cfg.text) if cfg.text else default_corpus(cfg.corpus_chars)[0]
    text = text[:cfg.corpus_chars]
    return lm_task(text, min_chars=10 * cfg.batch_size * (cfg.window + 1))


def _npz_task(cfg) -> Task:
    return load_npz_task(cfg.data)


def build_task(cfg, length: int | None = None) -> Task:
    """The task a config names (``cfg.task``, an entry of ``TASKS``) at ``length`` steps."""
    if cfg.text and cfg.task != "charlm":
        raise InputError(f"{setting('text')} only applies to {setting('task', 'charlm')}; drop it or set "
                         f"{setting('task', 'charlm')}")
    entry = TASKS[check_choice("task", task_entry_name(cfg.task), tuple(TASKS))]
    if entry.size is not None:                          # refused before a single array is drawn
        check_memory(entry.size(cfg, length or cfg.length) * 2 * np.dtype(cfg.dtype).itemsize,
                     f"task {cfg.task!r} with {cfg.train_size:,} + {cfg.test_size:,} sequences of "
                     f"{length or cfg.length:,} steps", "lower --train-size, --test-size or --length")
    task = entry.make(cfg, length or cfg.length)
    if task.targets != "text" and task.remake is None and entry.name not in ("npz", "neurogym"):
        task = dataclasses.replace(task, remake=lambda T: build_task(cfg, T))
    settings = {"task": cfg.task, **{f: getattr(cfg, f) for f in entry.reads}}
    if cfg.task == "npz":
        settings["data_sha256"] = file_sha256(cfg.data)      # eval refuses the file once it has changed
    if length is not None and "length" in settings:
        settings["length"] = length
    return dataclasses.replace(task, settings=settings)


def make_task(name, n_train, n_test, length, features, seed, dtype=np.float32) -> Task:
    """A built-in task by name with explicit sizes (for scripts and tests)."""
    check_choice("task", name, tuple(t for t in TASKS if t not in ("charlm", "npz")))
    for field, value in (("train_size", n_train), ("test_size", n_test), ("length", length),
                         ("features", features)):
        check_int(field, value, minimum=1)
    cfg = SimpleNamespace(train_size=n_train, test_size=n_test, features=features, data_seed=seed,
                          dtype=np.dtype(dtype).name, bits=3, pulse_prob=0.05)
    return TASKS[name].make(cfg, length)
