"""Which held-out trials an analysis is of: one condition at a time, not every trial pooled.

Fixed points are sought at one constant input; the roles and the PCA that explain them must come
from the trials that input stands for. On a sine generator whose constant input picks one of six
frequencies, roles pooled over every trial named 10 oscillatory units; on the trials of the chosen
input alone 67-79 oscillate. So each constant input of the analysis is paired with the trials
that match it:

- by default, the trials whose *condition inputs* equal the fixed-point input's values there. A
  condition input holds one level in every trial (one value other than 0, over one unbroken
  stretch of at least half the trial: it may start after a fixation period) and takes 2 to
  ``MOST_LEVELS`` levels across trials: a context, a cue,
  a level that selects a frequency. Inputs that change within a trial (evidence, noise), come as
  pulses, or are the same in every trial (a fixation cue) split no trials.
- ``condition="pooled"``: every trial, and the analysis says so;
- ``condition=f`` (or a list, one per constant input): the trials for which ``f(x)`` is true,
  ``x`` a trial's inputs (T, D).

Where the task has no condition input, or no trial matches, the analysis pools and says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnlab.checks import setting
from rnnlab.errors import InputError, InputTypeError

__all__ = ["MOST_LEVELS", "Condition", "condition_inputs", "conditions_for"]

MOST_LEVELS = 16


@dataclass
class Condition:
    trials: np.ndarray          # (N,) bool: the held-out trials this condition holds
    pooled: bool                # every trial, whatever its input
    sentence: str               # which trials, and why

    def to_json(self) -> dict:
        return {"trials": int(self.trials.sum()), "of": int(self.trials.size), "pooled": self.pooled,
                "sentence": self.sentence}


def trial_levels(X) -> np.ndarray:
    """Each trial's level on each input (N, D): the one value other than 0 it holds in the trial,
    over one unbroken stretch of at least half its steps (0 if it is 0 throughout); NaN where it
    takes several values (evidence, noise, pulses of either sign) or is not held (pulses)."""
    X = np.asarray(X, dtype=np.float64)
    T = X.shape[1]
    nz = X != 0
    count = nz.sum(axis=1)                                           # (N, D)
    first = np.argmax(nz, axis=1)
    last = T - 1 - np.argmax(nz[:, ::-1], axis=1)
    held = (last - first + 1 == count) & (2 * count >= T)
    top = np.where(nz, X, -np.inf).max(axis=1)
    low = np.where(nz, X, np.inf).min(axis=1)
    return np.where(count == 0, 0.0, np.where((top == low) & held, top, np.nan))


def condition_inputs(X) -> list[int]:
    """The inputs of X (N, T, D) that hold one level through each trial (a context switched on
    after a fixation period still holds one: its value other than 0) and take 2 to
    ``MOST_LEVELS`` levels across trials."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3 or X.shape[1] == 0:
        return []
    levels = trial_levels(X)
    return [d for d in range(X.shape[2])
            if not np.isnan(levels[:, d]).any() and 2 <= np.unique(levels[:, d]).size <= MOST_LEVELS]


def _listing(dims) -> str:
    return f"input{'s' if len(dims) != 1 else ''} {', '.join(map(str, dims))}"


def conditions_for(X, inputs: list, condition=None, text: bool = False) -> list[Condition]:
    """One ``Condition`` per constant input (each (D,) or None for zeros), over held-out trials
    X (N, T, D): see the module's docstring for ``condition``."""
    N = len(X)
    everyone = np.ones(N, dtype=bool)
    if isinstance(condition, str):
        if condition != "pooled":
            raise InputError(f"{setting('condition')} takes 'pooled' or a function of a trial's inputs, got "
                             f"{condition!r}")
        return [Condition(everyone, True, f"pooled, as asked: all {N} held-out trials, whatever their input")
                for _ in inputs]
    if condition is not None:
        tests = list(condition) if isinstance(condition, (list, tuple)) else [condition] * len(inputs)
        if len(tests) != len(inputs) or not all(callable(t) for t in tests):
            raise InputTypeError(f"{setting('condition')} must be a function of a trial's inputs (T, D) returning "
                                 f"True for the trials to analyse, or a list of {len(inputs)} such functions (one "
                                 "per constant input)")
        out = []
        for k, test in enumerate(tests):
            mask = np.array([bool(test(x)) for x in X])
            if not mask.any():
                raise InputError(f"the condition given for constant input {k + 1} holds for none of the {N} held-out "
                                 "trials; check the function, or analyse with condition='pooled'")
            out.append(Condition(mask, False, f"the {int(mask.sum())} of {N} held-out trials for which the given "
                                              "condition holds"))
        return out
    if text:
        return [Condition(everyone, True, "pooled: a text has no conditions") for _ in inputs]
    dims = condition_inputs(X)
    if not dims:
        return [Condition(everyone, True, f"pooled over all {N} held-out trials: no input of this task holds one "
                                          "value through each trial, so its trials fall into no conditions; name "
                                          f"one with {setting('condition')}") for _ in inputs]
    values = trial_levels(X)[:, dims]                                  # (N, len(dims))
    out = []
    for x in inputs:
        x = np.zeros(X.shape[2]) if x is None else np.asarray(x, dtype=np.float64)
        mask = np.all(np.isclose(values, x[dims]), axis=1)
        want = ", ".join(f"{v:g}" for v in x[dims])
        if mask.any():
            out.append(Condition(mask, False, f"the {int(mask.sum())} of {N} held-out trials whose condition "
                                              f"{_listing(dims)} (one level through each trial) equal the "
                                              f"fixed-point input's ({want})"))
        else:
            out.append(Condition(everyone, True, f"pooled over all {N} held-out trials: none has the fixed-point "
                                                 f"input's values ({want}) on the condition {_listing(dims)}"))
    return out
