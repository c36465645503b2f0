"""Failure guards: a NaN, an infinity or a loss spike never ruins a run.

Checked after the backward pass and before the update (so a bad step is never applied and
never saved): a non-finite loss or gradient norm, or a loss above ``spike_factor`` x the median
of the last ``window`` accepted losses -- that median floored at a tenth of the median of the
first ``window`` losses, so that a converged run's tiny, heavy-tailed losses (a hard batch at
0.3 after a median of 0.03) are not mistaken for an explosion. Snapshots (weights and optimizer state) are taken just
before an update is applied, every ``window`` applied steps, and the last two are kept: a bad
update only shows at the *next* step, so on an event the trainer rolls back to the older one,
which precedes any recent damage. It then multiplies the learning rate by ``lr_cut``, records the event with the norms just before it, and goes on;
after ``max_recoveries`` events it stops with ``TrainingDiverged``.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from .errors import RnnlabError


class TrainingDiverged(RnnlabError):
    """Training kept failing after the allowed number of recoveries."""


class Guard:
    def __init__(self, spike_factor: float = 10.0, window: int = 20, max_recoveries: int = 5,
                 lr_cut: float = 0.5):
        self.spike_factor, self.window = spike_factor, window
        self.max_recoveries, self.lr_cut = max_recoveries, lr_cut
        self.recent_loss: deque = deque(maxlen=window)
        self.recent_norm: deque = deque(maxlen=window)
        self.events: list[dict] = []
        self._snapshots: deque = deque(maxlen=2)
        self._since = 0
        self._base_lr = None
        self.initial_level = None                       # median of the first `window` losses

    def check(self, loss: float, grad_norm: float) -> str | None:
        """The problem with this step, or None if it may be applied."""
        if not math.isfinite(loss):
            return "nan loss" if math.isnan(loss) else "infinite loss"
        if not math.isfinite(grad_norm):
            return "non-finite gradient"
        if len(self.recent_loss) == self.window:
            median = max(float(np.median(self.recent_loss)), 0.1 * self.initial_level)
            if loss > self.spike_factor * median:
                return "loss spike"
        return None

    def before_update(self, trainer, loss: float, grad_norm: float) -> None:
        """A checked step is about to be applied: remember it, and snapshot when due."""
        self.recent_loss.append(loss)
        self.recent_norm.append(grad_norm)
        if self.initial_level is None and len(self.recent_loss) == self.window:
            self.initial_level = float(np.median(self.recent_loss))
        if not self._snapshots or self._since >= self.window:
            self._snapshots.append((trainer.iteration, trainer.model.state_dict(),
                                    trainer.optimizer.state_dict()))
            self._since = 0
        self._since += 1

    def recover(self, trainer, kind: str, loss: float, grad_norm: float) -> dict:
        """Roll back weights and optimizer moments, cut the learning rate (the schedule keeps
        its shape at the lower scale), record the event; raise after too many recoveries."""
        it, weights, opt_state = self._snapshots[0]
        while len(self._snapshots) > 1:                # the newer one may hold the damage
            self._snapshots.pop()
        self._since = 0
        lr_before = trainer.optimizer.lr
        event = {"iteration": trainer.iteration, "epoch": len(trainer.history) + 1, "kind": kind,
                 "loss": _num(loss), "grad_norm": _num(grad_norm),
                 "recent_loss_median": _num(np.median(self.recent_loss)) if self.recent_loss else None,
                 "recent_grad_norms": [_num(v) for v in list(self.recent_norm)[-5:]],
                 "rolled_back_to_iteration": it, "lr_before": lr_before}
        self.events.append(event)
        if self._base_lr is None:
            self._base_lr = trainer.schedule.base_lr
        trainer.model.load_state_dict(weights)
        trainer.optimizer.load_state_dict(opt_state)
        sched = trainer.schedule
        sched.base_lr = self._base_lr * self.lr_cut ** len(self.events)
        trainer.optimizer.lr = sched.lr_at(sched.epoch)
        event["lr_after"] = trainer.optimizer.lr
        self.recent_loss.clear()
        self.recent_norm.clear()
        if len(self.events) > self.max_recoveries:
            raise TrainingDiverged(
                f"training failed {len(self.events)} times (last: {kind} at iteration "
                f"{event['iteration']}, loss {event['loss']}, gradient norm {event['grad_norm']}); "
                f"lower --lr (it was {lr_before:.3g}), set --clip 1, or try a gated --model")
        return event


def _num(x) -> float | str:
    x = float(x)
    return x if math.isfinite(x) else str(x)          # JSON has no NaN/inf
