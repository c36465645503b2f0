"""``Task``: a sequence problem as a value a user can make (see ``Task.from_arrays`` and
``Task.from_generator``), and ``Split``, its fixed arrays.

A ``Task`` holds how batches are made -- fixed training arrays, or a generator
``fn(rng, batch_size, length) -> (x, y)`` or ``(x, y, lengths)`` drawing fresh sequences -- a
fixed held-out split, what the targets are (classes, real values, or a text stream; one target
per sequence or one per step), and so its kind, its metric and the score of a memoryless
baseline::

    task = Task.from_generator(my_fn, length=50)          # fresh batches, fixed test set
    task = Task.from_arrays(X, y, lengths=lengths)        # a user's arrays, last 10% held out
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from rnnlab.checks import check_choice, check_int, check_memory
from rnnlab.data.metrics import METRIC_OF_TARGETS, METRICS
from rnnlab.data.neurogym import FIXATION_WEIGHT, neurogym_parts, parse_env_kwargs
from rnnlab.errors import InputError, InputTypeError, warn_user

TARGETS = ("classes", "real", "text")


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
    settings: dict = dataclasses.field(default_factory=dict, compare=False)
    # what made it: a built-in task's config fields (task, length, bits, ...); empty for a user's own
    scored_by: str = ""                # a metric of rnnlab.data.metrics.METRICS; empty: the targets' own
    class_weights: tuple = ()          # classes: the loss's weight per target class (empty: all 1)

    def __post_init__(self):
        check_choice("targets", self.targets, TARGETS, owner="Task")
        if self.train is None and self.generator is None:
            raise InputError(f"Task {self.name!r}: give training arrays or a generator")
        if self.class_weights and (self.targets != "classes" or len(self.class_weights) != self.output_size
                                   or min(self.class_weights) < 0 or not np.all(np.isfinite(self.class_weights))):
            raise InputError(f"Task {self.name!r}: class_weights needs one weight >= 0 per class "
                             f"({self.output_size}), got {self.class_weights}")
        if self.scored_by:
            check_choice("scored_by", self.scored_by, tuple(METRICS), owner="Task")
            if METRICS[self.scored_by].at_end and not (self.targets == "classes" and self.per_step):
                raise InputError(f"Task {self.name!r}: {self.scored_by!r} scores per-step classes at each "
                                 "sequence's end; this task's targets are not per-step classes")

    # ---- derived facts
    @property
    def metric(self) -> str:
        return self.scored_by or METRIC_OF_TARGETS[self.targets]

    @property
    def kind(self) -> str:
        """The task's kind, one of ``rnnlab.checks.KINDS``: classify | tag | regress | regress-steps | lm."""
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

    @property
    def source(self) -> str:
        """Where its sequences come from: built-in (from a config), generator, arrays or text."""
        if self.settings:
            return "built-in"
        if self.targets == "text":
            return "text"
        return "generator" if self.generator is not None else "arrays"

    @functools.cached_property
    def arrays_sha256(self) -> str:
        """A checksum of the task's fixed data (training arrays, if any, and the held-out split): a
        run made in Python records it, and resume refuses another task's data of the same shape."""
        digest = hashlib.sha256()
        for split in (self.train, self.test):
            for a in (() if split is None else (split.X, split.y, split.lengths)):
                if a is not None:
                    a = np.ascontiguousarray(a)
                    digest.update(f"{a.dtype.str}{a.shape}".encode())
                    digest.update(a.data)
        return digest.hexdigest()

    def describe(self) -> dict:
        """JSON facts about the task as it was trained on (config.json's ``task`` entry): its
        shapes, kind and metric, where its data came from and, for a built-in task, the settings
        that made it."""
        fn = self.generator
        return {"name": self.name, "source": self.source, "kind": self.kind, "targets": self.targets,
                "per_step": self.per_step, "metric": self.metric, "input_size": self.input_size,
                "output_size": self.output_size, "length": self.seq_length,
                "baseline": self.baseline, "baseline_note": self.baseline_note,
                "train_sequences": None if self.train is None else len(self.train),
                "test_sequences": len(self.test),
                "class_weights": list(self.class_weights) or None,
                "generator": None if fn is None else f"{getattr(fn, '__module__', '?')}."
                                                     f"{getattr(fn, '__qualname__', type(fn).__name__)}",
                "settings": dict(self.settings), "arrays_sha256": self.arrays_sha256}

    def at_length(self, length: int) -> "Task":
        if self.remake is None:
            raise InputError(f"task {self.name!r} cannot make sequences of another length "
                             "(fixed arrays); drop the curriculum or use a generator task")
        task = self.remake(length)
        if self.settings and not task.settings:           # a built-in task stays described as one
            task = dataclasses.replace(task, settings={**self.settings, "length": length}
                                       if "length" in self.settings else dict(self.settings))
        return task

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
            check_memory(16.0 * out, f"class labels up to {out - 1:,} ({out:,} outputs)",
                         "number the classes 0, 1, 2, ... without gaps")
            seen = np.union1d(np.unique(train.y), np.unique(test_split.y))
            if 2 <= len(seen) < out and out - len(seen) <= 100:     # a few gaps; one class or a huge label
                missing = np.setdiff1d(np.arange(out), seen)                # is refused elsewhere
                warn_user(f"classes are numbered up to {out - 1} but {len(missing)} of them never occur "
                          f"({', '.join(map(str, missing[:5]))}{', ...' if len(missing) > 5 else ''}): the model "
                          f"gets {out} outputs; number the classes 0, 1, 2, ... without gaps")
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

    @classmethod
    def from_neurogym(cls, env_id: str, env_kwargs: dict | str | None = None, *, test_size: int = 1000, seed: int = 0,
                      fixation_weight: float = FIXATION_WEIGHT, dtype=np.float32, **kwargs) -> "Task":
        """A NeuroGym task (``pip install 'rnnlab[neurogym]'``): one trial per sequence, fixation
        steps weighted ``fixation_weight`` in the loss, scored by decision accuracy; the
        environment's own arguments as ``env_kwargs`` or keywords, e.g.
        ``Task.from_neurogym("ContextDecisionMaking-v0", use_expl_context=True)``."""
        if not isinstance(env_id, str):
            raise InputTypeError(f"Task.from_neurogym: env_id must be a NeuroGym task's name such as "
                                 f"'PerceptualDecisionMaking-v0', got {env_id!r}")
        parts = neurogym_parts(env_id, {**parse_env_kwargs(env_kwargs), **kwargs}, test_size=test_size, seed=seed,
                               fixation_weight=fixation_weight, dtype=dtype)
        test = Split(*parts["test"])
        return cls(parts["name"], "classes", True, int(test.X.shape[2]), parts["output_size"], test, None,
                   parts["generator"], parts["length"], parts["baseline"], parts["baseline_note"],
                   scored_by="decision", class_weights=parts["class_weights"])

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
    if y.ndim == 0:
        raise InputError(f"{what}y is a single number; give one target per sequence, shape ({len(X)},) or more")
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


