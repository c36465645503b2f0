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
  Memoryless baseline cross-entropy: 10 ln(8) / (T + 20).
- ``temporal-order`` (Hochreiter & Schmidhuber 1997, task 6a): random distractors a-d, with X or
  Y at one step in [0.1T, 0.2T) and one in [0.5T, 0.6T); classify XX, XY, YX, YY (chance 25%).
- ``flipflop`` (Sussillo & Barak 2013): K channels of sparse +-1 pulses; K outputs that each hold
  the sign of the last pulse on their channel. Every channel pulses at t = 0, so targets are
  always +-1 and answering 0 scores MSE 1. Fresh sequences for every batch.
- ``charlm``: a text stream (see ``corpus.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

from rnnlab.checks import check_choice, check_int
from rnnlab.errors import InputError, InputTypeError

TARGETS = ("classes", "real", "text")


# ---------------------------------------------------------------- metrics: one registry
@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    label: str

    def format(self, value: float) -> str:
        return f"{100 * value:.2f}%" if self.name == "acc" else f"{value:.4f}"


METRICS = {"acc": Metric("acc", True, "accuracy"),
           "mse": Metric("mse", False, "mean squared error"),
           "bpc": Metric("bpc", False, "bits per character")}
METRIC_OF_TARGETS = {"classes": "acc", "real": "mse", "text": "bpc"}


@dataclass(frozen=True)
class Split:
    """Fixed arrays: X (N, T, D) inputs (or a 1-D id stream for text), y targets, optional lengths."""
    X: np.ndarray
    y: np.ndarray
    lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.X)

    def take(self, idx) -> tuple:
        return self.X[idx], self.y[idx], None if self.lengths is None else self.lengths[idx]


@dataclass(frozen=True)
class Task:
    name: str
    targets: str                       # classes | real | text
    per_step: bool                     # one target per step (many-to-many) or per sequence
    input_size: int                    # features per step (text: vocabulary size)
    output_size: int                   # classes, real outputs, or vocabulary size
    test: Split                        # held-out data, fixed
    train: Split | None = None         # fixed training data, or None when a generator makes it
    generator: Callable | None = None  # fn(rng, batch_size, length) -> (x, y) or (x, y, lengths)
    length: int | None = None          # sequence length the generator is asked for
    baseline: float | None = None      # score of a memoryless predictor, in the task's metric
    baseline_note: str = ""
    vocab: tuple = ()                  # text: the characters, index = symbol id
    remake: Callable | None = dataclasses.field(default=None, repr=False, compare=False)
    # remake(length) -> the same task at another sequence length (curriculum); None if it can't

    def __post_init__(self):
        check_choice("targets", self.targets, TARGETS, owner="Task")
        if self.train is None and self.generator is None:
            raise InputError(f"Task {self.name!r}: give training arrays or a generator")

    # ---- derived facts
    @property
    def metric(self) -> str:
        return METRIC_OF_TARGETS[self.targets]

    @property
    def kind(self) -> str:
        """Short name of the target kind: classify | tag | regress | regress-steps | lm."""
        if self.targets == "text":
            return "lm"
        if self.targets == "classes":
            return "tag" if self.per_step else "classify"
        return "regress-steps" if self.per_step else "regress"

    @property
    def seq_length(self) -> int | None:
        """Steps per sequence of the held-out data (None for a text stream)."""
        return None if self.targets == "text" else int(self.test.X.shape[1])

    # old names, kept because they read well in analysis code
    X_train = property(lambda self: self.train.X if self.train is not None else None)
    y_train = property(lambda self: self.train.y if self.train is not None else None)
    X_test = property(lambda self: self.test.X)
    y_test = property(lambda self: self.test.y)
    num_classes = property(lambda self: self.output_size)

    def describe(self) -> dict:
        """JSON facts about the task for a run directory (config.json's ``task`` entry)."""
        return {"name": self.name, "targets": self.targets, "per_step": self.per_step,
                "kind": self.kind, "metric": self.metric, "input_size": self.input_size,
                "output_size": self.output_size, "length": self.seq_length,
                "baseline": self.baseline, "baseline_note": self.baseline_note,
                "train_sequences": None if self.train is None else len(self.train),
                "test_sequences": len(self.test), "generator": self.generator is not None}

    def at_length(self, length: int) -> "Task":
        if self.remake is None:
            raise InputError(f"task {self.name!r} cannot make sequences of another length "
                             "(fixed arrays); drop the curriculum or use a generator task")
        return self.remake(length)

    # ---- constructors for a user's own task
    @classmethod
    def from_arrays(cls, X, y, lengths=None, *, test=None, test_fraction: float = 0.1,
                    name: str = "arrays", targets: str | None = None, baseline=None,
                    baseline_note: str = "") -> "Task":
        """A task from fixed arrays: X (N, T, D) float; y (N,) or (N, T) integer classes, or
        (N, K) / (N, T, K) real values; optional lengths (N,). ``test`` = (X, y[, lengths]) to
        hold out, else the last ``test_fraction`` of the sequences."""
        train = _split(X, y, lengths, "")
        _infer_targets(train.y, train.X, targets)                 # judge the arrays as given, before any split
        if test is not None:
            if not isinstance(test, (tuple, list)) or len(test) not in (2, 3):
                raise InputError("test must be (X_test, y_test) or (X_test, y_test, lengths_test)")
            test_split = _split(test[0], test[1], test[2] if len(test) == 3 else None, "test ")
        else:
            if not 0 < test_fraction < 1:
                raise InputError(f"test_fraction must lie between 0 and 1, got {test_fraction}")
            n = len(train)
            n_test = max(1, int(round(n * test_fraction)))
            if n - n_test < 1:
                raise InputError(f"{n} sequence(s) are too few to hold some out for testing; give "
                                 "at least 2, or give a held-out set (X_test, y_test)")
            cut = n - n_test
            test_split = Split(train.X[cut:], train.y[cut:], _slice(train.lengths, cut, None))
            train = Split(train.X[:cut], train.y[:cut], _slice(train.lengths, None, cut))
        targets, per_step, out = _infer_targets(train.y, train.X, targets)
        _infer_targets(test_split.y, test_split.X, targets)
        if test_split.X.shape[2] != train.X.shape[2]:
            raise InputError(f"test inputs have {test_split.X.shape[2]} features but training inputs "
                             f"{train.X.shape[2]}; they must match")
        if targets == "classes":
            out = int(max(train.y.max(), test_split.y.max())) + 1
        elif test_split.y.shape[-1] != out:
            raise InputError(f"test targets have {test_split.y.shape[-1]} outputs but training targets "
                             f"{out}; they must match")
        if baseline is None:
            baseline, baseline_note = constant_baseline(targets, train, test_split, per_step)
        return cls(name, targets, per_step, int(train.X.shape[2]), out, test_split, train,
                   baseline=baseline, baseline_note=baseline_note)

    @classmethod
    def from_generator(cls, fn: Callable, *, length: int, test_size: int = 1000, seed: int = 0,
                       name: str = "generator", targets: str | None = None, baseline=None,
                       baseline_note: str = "") -> "Task":
        """A task whose batches are drawn fresh by ``fn(rng, batch_size, length)``; the held-out
        set is ``test_size`` sequences drawn once from ``seed``."""
        if not callable(fn):
            raise InputTypeError(f"generator must be a function fn(rng, batch_size, length), got {fn!r}")
        length = check_int("length", length, minimum=1)
        test_size = check_int("test_size", test_size, minimum=1)
        test = _split(*call_generator(fn, np.random.default_rng(seed), test_size, length), "generated ")
        targets, per_step, out = _infer_targets(test.y, test.X, targets)
        if targets == "classes":
            out = int(test.y.max()) + 1
        if baseline is None:
            baseline, baseline_note = constant_baseline(targets, test, test, per_step)

        def remake(new_length):
            return cls.from_generator(fn, length=new_length, test_size=test_size, seed=seed, name=name,
                                      targets=targets, baseline=baseline, baseline_note=baseline_note)
        return cls(name, targets, per_step, int(test.X.shape[2]), out, test, None, fn, length,
                   baseline, baseline_note, remake=remake)

    def batch(self, rng, batch_size: int) -> tuple:
        """A fresh batch (x, y, lengths-or-None) from the generator."""
        return call_generator(self.generator, rng, batch_size, self.length)


def call_generator(fn, rng, batch_size, length) -> tuple:
    out = fn(rng, batch_size, length)
    if not isinstance(out, tuple) or len(out) not in (2, 3):
        raise InputError("a task generator must return (x, y) or (x, y, lengths)")
    return out if len(out) == 3 else (out[0], out[1], None)


def _slice(a, lo, hi):
    return None if a is None else a[lo:hi]


def _split(X, y, lengths, what: str) -> Split:
    """Validate one split's arrays with sentences that say what to fix."""
    for name, a in (("X", X), ("y", y)) + ((("lengths", lengths),) if lengths is not None else ()):
        if not isinstance(a, np.ndarray):
            raise InputTypeError(f"{what}{name} must be a NumPy array, got {type(a).__name__}")
        if a.dtype == object or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise InputError(f"{what}{name} must hold numbers, got dtype {a.dtype}; convert it, "
                             "e.g. with np.asarray(..., dtype=np.float32)")
    if X.ndim != 3 or 0 in X.shape:
        raise InputError(f"{what}X must have shape (N, T, D) with N, T, D >= 1, got {X.shape}")
    if len(y) != len(X):
        raise InputError(f"{what}X has {len(X)} sequences but y has {len(y)}; give one target row per sequence")
    if not np.isfinite(X).all():
        raise InputError(f"{what}X holds NaN or infinite values; clean the data first")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise InputError(f"{what}y holds NaN or infinite values; clean the data first")
    if lengths is not None:
        if lengths.shape != (len(X),) or not np.issubdtype(lengths.dtype, np.integer):
            raise InputError(f"{what}lengths must be integers of shape ({len(X)},), got "
                             f"{lengths.dtype} {lengths.shape}")
        if lengths.min() < 1 or lengths.max() > X.shape[1]:
            raise InputError(f"{what}lengths must lie in [1, {X.shape[1]}] (the padded length), got "
                             f"{lengths.min()}..{lengths.max()}")
    return Split(X, y, lengths)


def _infer_targets(y, X, targets=None) -> tuple[str, bool, int]:
    """(targets, per_step, outputs) from the shape and dtype of y; see ``Task.from_arrays``."""
    N, T = X.shape[:2]
    integer = np.issubdtype(y.dtype, np.integer) or y.dtype == bool
    kind = targets or ("classes" if integer else "real")
    if kind == "classes":
        if not integer:
            raise InputError(f"class targets must be integers, got dtype {y.dtype}")
        if y.ndim == 1:
            per_step = False
        elif y.ndim == 2 and y.shape[1] == T:
            per_step = True
        else:
            raise InputError(f"class targets y must have shape (N,) or (N, T) = (N, {T}), got {y.shape}")
        if y.size and y.min() < 0:
            raise InputError(f"class targets must be 0, 1, 2, ...; got a minimum of {y.min()}")
        return "classes", per_step, int(y.max()) + 1 if y.size else 1
    if kind != "real":
        raise InputError(f"targets must be 'classes' or 'real' for arrays, got {kind!r}")
    if y.ndim == 2:
        return "real", False, int(y.shape[1])
    if y.ndim == 3 and y.shape[1] == T:
        return "real", True, int(y.shape[2])
    raise InputError(f"real-valued targets y must have shape (N, K) (one row per sequence) or "
                     f"(N, T, K) = (N, {T}, K) (one per step), got {y.shape}; for a single output "
                     "use y[:, None], and save class labels as integers")


def constant_baseline(targets, train: Split, test: Split, per_step: bool) -> tuple[float, str]:
    """Held-out score of the best input-blind constant answer learned from the training targets."""
    def valid(split):                  # (M,) or (M, K): every target that is scored
        if not per_step:
            return split.y
        T = split.y.shape[1]
        lengths = split.lengths if split.lengths is not None else np.full(len(split.y), T)
        return split.y[np.arange(T)[None, :] < lengths[:, None]]
    ytr, yte = valid(train), valid(test)
    if targets == "classes":
        top = np.bincount(ytr.astype(np.int64).ravel()).argmax()
        return float((yte == top).mean()), "accuracy of always answering the most frequent class"
    mean = ytr.astype(np.float64).mean(axis=0)
    return float(((yte - mean) ** 2).mean()), "MSE of always answering the training targets' mean"


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
    return _fixed("copy", make, n_train, n_test, seed, "classes", True, 10, 10 * np.log(8) / total,
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


def _dtype(cfg):
    return np.dtype(cfg.dtype)


_SIZED = ("train_size", "test_size", "length", "data_seed")
_SIZED_F = _SIZED + ("features",)

TASKS: dict[str, TaskEntry] = {e.name: e for e in [
    TaskEntry("mean-sign", "sign of the mean of all inputs (the seed experiment)",
              lambda c, T: mean_sign(c.train_size, c.test_size, T, c.features, c.data_seed, _dtype(c)), _SIZED_F),
    TaskEntry("tagging", "sign of the running mean at every step",
              lambda c, T: running_mean_sign(c.train_size, c.test_size, T, c.features, c.data_seed, _dtype(c)),
              _SIZED_F),
    TaskEntry("adding", "sum of two marked numbers (Hochreiter & Schmidhuber 1997)",
              lambda c, T: adding(c.train_size, c.test_size, T, c.data_seed, _dtype(c)), _SIZED),
    TaskEntry("copy", "recall 10 symbols after T blanks (Arjovsky et al. 2016)",
              lambda c, T: copy_memory(c.train_size, c.test_size, T, c.data_seed, _dtype(c)), _SIZED),
    TaskEntry("temporal-order", "order of two marked symbols (Hochreiter & Schmidhuber 1997)",
              lambda c, T: temporal_order(c.train_size, c.test_size, T, c.data_seed, _dtype(c)), _SIZED),
    TaskEntry("flipflop", "K-bit flip-flop memory (Sussillo & Barak 2013)",
              lambda c, T: flipflop(c.bits, T, c.pulse_prob, min(c.test_size, 500), c.data_seed, _dtype(c)),
              ("bits", "length", "pulse_prob", "test_size", "data_seed")),
    TaskEntry("charlm", "character-level language model on a text stream",
              lambda c, T: _text_task(c), ("text", "corpus_chars", "window")),
    TaskEntry("npz", "your own arrays: --data FILE.npz with X, y and optional lengths",
              lambda c, T: _npz_task(c), ("data",)),
]}


def _text_task(cfg) -> Task:
    from rnnlab.data.corpus import default_corpus, lm_task, read_text
    text = read_text(cfg.text) if cfg.text else default_corpus(cfg.corpus_chars)[0]
    text = text[:cfg.corpus_chars]
    return lm_task(text, min_chars=10 * cfg.batch_size * (cfg.window + 1))


def _npz_task(cfg) -> Task:
    from rnnlab.data.npz import load_npz_task
    return load_npz_task(cfg.data)


def build_task(cfg, length: int | None = None) -> Task:
    """The task a config names (``cfg.task``, an entry of ``TASKS``) at ``length`` steps."""
    if cfg.text and cfg.task != "charlm":
        raise InputError("--text only applies to --task charlm; drop it or set --task charlm")
    check_choice("task", cfg.task, tuple(TASKS))
    task = TASKS[cfg.task].make(cfg, length or cfg.length)
    if task.targets != "text" and task.remake is None and cfg.task != "npz":
        task = dataclasses.replace(task, remake=lambda T: build_task(cfg, T))
    return task


def make_task(name, n_train, n_test, length, features, seed, dtype=np.float32) -> Task:
    """A built-in task by name with explicit sizes (for scripts and tests)."""
    check_choice("task", name, tuple(t for t in TASKS if t not in ("charlm", "npz")))
    for field, value in (("train_size", n_train), ("test_size", n_test), ("length", length),
                         ("features", features)):
        check_int(field, value, minimum=1)
    from types import SimpleNamespace
    cfg = SimpleNamespace(train_size=n_train, test_size=n_test, features=features, data_seed=seed,
                          dtype=np.dtype(dtype).name, bits=3, pulse_prob=0.05)
    return TASKS[name].make(cfg, length)
