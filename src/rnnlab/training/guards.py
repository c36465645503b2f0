"""Failure guards: a NaN, an infinity or a loss spike never ruins a run.

Checked after the backward pass and before the update (so a bad step is never applied and
never saved): a non-finite loss or gradient norm, or a loss above ``spike_factor`` x the median
of the last ``window`` accepted losses -- that median floored at a tenth of the median of the
first ``window`` losses, so that a converged run's tiny, heavy-tailed losses (a hard batch at
0.3 after a median of 0.03) are not mistaken for an explosion.

Snapshots (weights and optimizer state) are taken just before an update is applied, every
``window`` applied steps, and the last two are kept. A bad update only shows at the *next* step,
so on an event the guard decides a rollback to the older snapshot, which precedes any recent
damage, and a learning-rate cut by ``lr_cut``; it returns that decision (``Recovery``) for the
training loop to apply, records the event with the norms just before it, and after
``max_recoveries`` events stops with ``TrainingDiverged``.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

import numpy as np

from rnnlab.checks import setting
from rnnlab.errors import RnnlabError
from rnnlab.nn.optim import Schedule


class TrainingDiverged(RnnlabError):
    """Training kept failing after the allowed number of recoveries."""


@dataclass
class Recovery:
    """What the training loop must do after a bad step: load these weights and optimizer
    state, and multiply the learning-rate schedule by ``lr_factor``."""
    weights: dict
    optimizer_state: dict
    lr_factor: float
    event: dict


class Guard:
    def __init__(self, spike_factor: float = 10.0, window: int = 20, max_recoveries: int = 5,
                 lr_cut: float = 0.5):
        self.spike_factor, self.window = spike_factor, window
        self.max_recoveries, self.lr_cut = max_recoveries, lr_cut
        self.recent_loss: deque = deque(maxlen=window)
        self.recent_norm: deque = deque(maxlen=window)
        self.events: list[dict] = []
        self.snapshots: deque = deque(maxlen=2)         # (iteration, weights, optimizer state)
        self.since_snapshot = 0
        self.initial_level = None                       # median of the first `window` losses

    def check(self, loss: float, grad_norm: float) -> str | None:
        """The problem with this step, or None if it may be applied."""
        if not math.isfinite(loss):
            return "nan loss" if math.isnan(loss) else "infinite loss"
        if not math.isfinite(grad_norm):
            return "non-finite gradient"
        if len(self.recent_loss) == self.window:
            # statistics, not NumPy: the same number for 20 floats, 0.5 us instead of ~100 (every step)
            median = max(statistics.median(self.recent_loss), 0.1 * self.initial_level)
            if loss > self.spike_factor * median:
                return "loss spike"
        return None

    def new_stage(self) -> None:
        """The sequences changed length (a curriculum moved on): the loss level changes by design,
        so spikes are judged against the new stage's own losses, not the old ones."""
        self.recent_loss.clear()
        self.recent_norm.clear()
        self.initial_level = None

    def accept(self, loss: float, grad_norm: float, iteration: int, snapshot) -> None:
        """A checked step is about to be applied: remember it, and when a snapshot is due call
        ``snapshot()`` -> (weights, optimizer state), taken before the update."""
        self.recent_loss.append(loss)
        self.recent_norm.append(grad_norm)
        if self.initial_level is None and len(self.recent_loss) == self.window:
            self.initial_level = statistics.median(self.recent_loss)
        if not self.snapshots or self.since_snapshot >= self.window:
            self.snapshots.append((iteration, *snapshot()))
            self.since_snapshot = 0
        self.since_snapshot += 1

    def recover(self, problem: str, loss: float, grad_norm: float, *, iteration: int, epoch: int,
                accepted: int, schedule: Schedule) -> Recovery:
        """Decide the rollback (to the older snapshot: the newer may hold the damage) and the
        learning-rate cut, record the whole event; raise after too many recoveries.

        ``accepted``: the steps applied so far; ``schedule``: the learning-rate schedule the loop
        will ``rescale(lr_factor)`` (read, not changed: the event's ``lr_before`` is its
        optimizer's rate now, ``lr_after`` the rate that rescale will set)."""
        lr = schedule.optimizer.lr
        if not self.snapshots:                         # the very first step: no update to roll back
            raise TrainingDiverged(
                f"the first step of training already gave {problem} (iteration {iteration}, loss {_num(loss)}, "
                f"gradient norm {_num(grad_norm)}), before any update: the initial weights or the targets "
                "overflow; check the targets' scale (rescale them) and the model's initialisation")
        it, weights, opt_state = self.snapshots[0]
        while len(self.snapshots) > 1:
            self.snapshots.pop()
        self.since_snapshot = 0
        event = {"iteration": iteration, "epoch": epoch, "kind": problem,
                 "loss": _num(loss), "grad_norm": _num(grad_norm),
                 "recent_loss_median": _num(np.median(self.recent_loss)) if self.recent_loss else None,
                 "recent_grad_norms": [_num(v) for v in list(self.recent_norm)[-5:]],
                 "rolled_back_to_iteration": it, "lr_before": lr}
        self.events.append(event)
        self.recent_loss.clear()
        self.recent_norm.clear()
        if len(self.events) > self.max_recoveries:
            raise TrainingDiverged(
                f"training failed {len(self.events)} times (last: {problem} at iteration "
                f"{iteration}, loss {event['loss']}, gradient norm {event['grad_norm']}); "
                f"lower {setting('lr')} (it was {lr:.3g}), set {setting('clip', 1)}, or try a gated {setting('model')}")
        event["lr_after"] = schedule.rescaled_lr(self.lr_cut)
        event["accepted_steps_before"] = accepted
        return Recovery(weights, opt_state, self.lr_cut, event)

    def state_dict(self) -> dict:
        return {"recent_loss": list(self.recent_loss), "recent_norm": list(self.recent_norm),
                "since_snapshot": self.since_snapshot, "events": self.events,
                "initial_level": self.initial_level,
                "snapshots": [{"iteration": it, "weights": w, "optimizer": o}
                              for it, w, o in self.snapshots]}

    def load_state_dict(self, sd: dict) -> None:
        self.recent_loss.clear()
        self.recent_loss.extend(sd["recent_loss"])
        self.recent_norm.clear()
        self.recent_norm.extend(sd["recent_norm"])
        self.since_snapshot, self.events = sd["since_snapshot"], list(sd["events"])
        self.initial_level = sd["initial_level"]
        self.snapshots.clear()
        self.snapshots.extend((s["iteration"], s["weights"], s["optimizer"]) for s in sd["snapshots"])


def _num(x) -> float | str:
    x = float(x)
    return x if math.isfinite(x) else str(x)          # JSON has no NaN/inf
