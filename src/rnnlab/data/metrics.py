"""Metrics: one registry of what a task is scored by, and how each score is shown and compared.

Every module that prints, plots, tabulates or judges a metric asks its ``Metric`` here (percent or
not, digits, which direction is better, a log axis) instead of testing its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def _count_correct(out, y) -> tuple[float, int]:
    return float((out.argmax(axis=-1) == y).sum()), int(np.size(y))


def _sum_squared_error(out, y) -> tuple[float, int]:
    return float(((out - y) ** 2).sum()), int(np.size(y))


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    label: str                          # in a sentence: "accuracy"
    title: str                          # as a heading: "Accuracy"
    short: str                          # in a progress line: "Acc"
    percent: bool = False               # a fraction shown as a percentage
    log_axis: bool = False              # plotted on a log axis (errors that span decades)
    score: Callable | None = None       # score(outputs, targets) -> (sum, count); None: from the loss
    from_loss: Callable | None = None   # the metric of a mean loss (nats), when it is one
    at_end: bool = False                # per-step targets scored only at each sequence's last valid
    #                                     step: a trial's decision, not the fixation that fills it
    learn_margin: tuple = ("at least 10 points above", lambda v, b: v >= b + 0.10)
    #                                     a run "learns" when its final score passes this test
    #                                     against the memoryless baseline (the sweep's verdicts)

    def learns(self, value: float, baseline: float) -> bool:
        return bool(self.learn_margin[1](value, baseline))

    @property
    def scale(self) -> float:
        """The factor from a stored value to a shown one (100 for a percentage)."""
        return 100.0 if self.percent else 1.0

    @property
    def axis_label(self) -> str:
        return f"{self.label} (%)" if self.percent else self.label

    def format(self, value: float) -> str:
        """Full precision: 93.40% or 0.1234."""
        return f"{100 * value:.2f}%" if self.percent else f"{value:.4f}"

    def format_short(self, value: float) -> str:
        """For tables and figure labels: 93.4% or 0.1234."""
        return f"{100 * value:.1f}%" if self.percent else f"{value:.4g}"

    def format_spread(self, value: float, sd: float) -> str:
        """A mean over seeds with its standard deviation: 93.4 ± 0.5% or 0.1234 ± 0.0012."""
        return f"{100 * value:.1f} ± {100 * sd:.1f}%" if self.percent else f"{value:.4f} ± {sd:.4f}"

    def format_change(self, delta: float) -> str:
        """A difference of two scores: 1.2 points or +0.0012."""
        return f"{100 * delta:.1f} points" if self.percent else f"{delta:+.4g}"

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b

    def worse_by(self, base: float, value: float) -> float:
        """How much worse ``value`` is than ``base`` (accuracy lost, or error gained); < 0 if better."""
        return (base - value) if self.higher_is_better else (value - base)


METRICS = {"acc": Metric("acc", True, "accuracy", "Accuracy", "Acc", percent=True, score=_count_correct),
           "mse": Metric("mse", False, "mean squared error", "MSE", "MSE", log_axis=True,
                         score=_sum_squared_error, learn_margin=("below half of", lambda v, b: v < 0.5 * b)),
           "decision": Metric("decision", True, "decision accuracy", "Decision accuracy", "Dec", percent=True,
                              score=_count_correct, at_end=True),
           "bpc": Metric("bpc", False, "bits per character", "Bits per character", "BPC",
                         from_loss=lambda nats: nats / np.log(2),
                         learn_margin=("below 90% of", lambda v, b: v < 0.9 * b))}
METRIC_OF_TARGETS = {"classes": "acc", "real": "mse", "text": "bpc"}
