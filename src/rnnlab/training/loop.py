"""The one training loop.

``Trainer(task, model, loss, optimizer)`` trains any model on any ``Task``; every argument left
out is built from ``config`` (a ``TrainConfig``; the seed preset by default; see ``build.py``).
Each epoch ends with an ``EpochResult`` handed to every callback. What a run writes to disk is
``rnnlab.runs``'s; a complete run (training, analysis, figures, report) is ``rnnlab.train``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rnnlab.checks import check_list, setting
from rnnlab.data.batches import Batch
from rnnlab.data.metrics import METRICS
from rnnlab.data.task import Task
from rnnlab.data.tasks import build_task
from rnnlab.errors import InputTypeError, warn_user
from rnnlab.nn.losses import weight_penalty
from rnnlab.nn.optim import clip_grad_norm, clip_grad_value, global_norm
from rnnlab.nn.recurrent import Recurrent
from rnnlab.training.allocator import tune_allocator
from rnnlab.training.build import (
    build_batches,
    build_model,
    build_optimizer,
    build_schedule,
    default_loss,
    ready_compiled_cells,
)
from rnnlab.training.config import DEFAULTS, TrainConfig, unused_fields, warn_doing_nothing
from rnnlab.training.evaluate import evaluate, forward, score, step_mask
from rnnlab.training.guards import Guard, TrainingDiverged
from rnnlab.training.probes import probe_record, recurrent_spectra
from rnnlab.training.threads import BlasThreads


@dataclass
class EpochResult:
    """What one epoch produced, handed to every callback: its metrics.jsonl row, the probes.jsonl
    rows recorded during it and the guard's events (each a whole events.jsonl row)."""
    record: dict
    probes: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


def warn_pointless_settings(cfg: TrainConfig, from_config: dict, task: Task) -> None:
    """Say which config settings a part made in Python makes pointless (a model's own arguments
    set its size and init, a task's own data its length): set, yet doing nothing, they would
    otherwise look like settings of the run."""
    own = {k for k, built in from_config.items() if not built}
    if not own:
        return
    values = cfg.to_dict()
    # a built-in task made from these very settings (rnnlab compare builds its tasks so): they made it
    made_it = {k for k, v in task.settings.items() if values.get(k) == v} if task.source == "built-in" else set()
    pointless = sorted(f for f in unused_fields(values, own, task.describe()) - unused_fields(values)
                       if values[f] != DEFAULTS[f] and f not in made_it)
    what = " and ".join(sorted(own & {"task", "model", "optimizer"}))
    warn_doing_nothing(pointless, f"its {what} {'were' if ' and ' in what else 'was'} made in Python, whose own "
                                  "arguments decide", values)                 # at the user's line


@dataclass
class FitClock:
    """What ``fit`` keeps from its start to its end: when training started (minus time already
    trained, for a resumed run), the BLAS thread setting, the per-step hooks."""
    start: float
    threads: BlasThreads
    step_hooks: list


@dataclass
class EpochSteps:
    """One epoch's accepted steps, probes rows and guard events, as they come."""
    lr: float
    length: int | None
    steps: list = field(default_factory=list)
    probes: list = field(default_factory=list)
    events: list = field(default_factory=list)


# ---------------------------------------------------------------- callbacks
def _nothing(*args) -> None:
    """What a callback without a hook does there: callbacks are duck-typed, any object with the
    hooks it needs will do (``Callback`` is a base that has them all)."""


class Callback:
    """Hooks into ``Trainer.fit``. A callback may also define ``on_step_end(trainer)``, called
    after every training step (left out of this base so that callbacks without it cost nothing
    per step). ``on_train_stopped`` is called instead of ``on_train_end`` when an exception (an
    error, Ctrl-C) leaves the epoch loop; that exception goes on, and one raised by the hook
    itself becomes a warning."""

    def on_train_begin(self, trainer: "Trainer") -> None: ...
    def on_epoch_end(self, trainer: "Trainer", result: EpochResult) -> None: ...
    def on_train_end(self, trainer: "Trainer", summary: dict) -> None: ...
    def on_train_stopped(self, trainer: "Trainer") -> None: ...


# ---------------------------------------------------------------- the training loop
class Trainer:
    """Trains ``model`` on ``task`` with ``loss`` and ``optimizer``; ``fit()`` returns a summary.

    Any of them may be left out and is then built from ``config``: ``Trainer(config=cfg)``
    trains a built-in task end to end; ``Trainer(my_task, my_model, my_loss)`` trains a user's
    own. A loss is ``loss(outputs, targets, mask) -> (mean loss, dL/d outputs)``, ``mask``
    (B, T) marking the valid steps of padded per-step targets (None when all count).
    """

    def __init__(self, task: Task | None = None, model=None, loss=None, optimizer=None, *,
                 config: TrainConfig | None = None, callbacks=()):
        tune_allocator()
        if config is not None and not isinstance(config, TrainConfig):
            raise InputTypeError(f"Trainer: config must be a TrainConfig, got {type(config).__name__}; "
                                 "use TrainConfig(...) or TrainConfig.from_dict(...)")
        cfg = self.cfg = config if config is not None else TrainConfig()
        if task is not None and not isinstance(task, Task):
            raise InputTypeError(f"Trainer: task must be an rnnlab Task, got {type(task).__name__}; "
                                 "make one with Task.from_arrays or Task.from_generator (a config goes "
                                 "in config=)")
        if loss is not None and not callable(loss):
            raise InputTypeError(f"Trainer: loss must be a function loss(outputs, targets, mask) -> "
                                 f"(mean, gradient), got {loss!r}; e.g. rnnlab.mse")
        missing = [a for a in ("params", "grads", "forward", "backward", "zero_grad", "state_dict")
                   if model is not None and not hasattr(model, a)]
        if missing:
            raise InputTypeError(f"Trainer: model lacks {', '.join(missing)}; give an rnnlab head (e.g. "
                                 "SequenceClassifier) or a module with the same methods")
        if isinstance(model, Recurrent):
            raise InputTypeError(f"Trainer: model is a bare {type(model).__name__} layer, which returns (outputs, "
                                 "state) rather than predictions; give a head that wraps it, e.g. "
                                 f"rnnlab.SequenceClassifier(input_size, hidden, classes, cell="
                                 f"{type(model).__name__.lower()!r})")
        if optimizer is not None and not (callable(getattr(optimizer, "step", None)) and hasattr(optimizer, "lr")):
            raise InputTypeError(f"Trainer: optimizer must be an optimizer object, e.g. rnnlab.nn.optim.Adam("
                                 f"model.params, model.grads, lr=1e-3), got {optimizer!r}; to choose one by name, "
                                 "set it in the config: TrainConfig(optimizer='adam')")
        callbacks = check_list("callbacks", callbacks, "callbacks (objects with Callback's hooks)", owner="Trainer")
        # what a saved run can rebuild from its config alone (else: the user's own objects)
        self.from_config = {"task": task is None, "model": model is None, "loss": loss is None}
        task = task if task is not None else build_task(cfg)
        self.batches = build_batches(cfg, task)
        self.model = model if model is not None else build_model(cfg, self.batches.task)
        self.loss = loss if loss is not None else default_loss(task)
        self.optimizer = optimizer if optimizer is not None else build_optimizer(cfg, self.model)
        self.schedule = build_schedule(cfg, self.optimizer)
        self.guard = Guard(cfg.spike_factor, 20, cfg.max_recoveries, cfg.lr_cut) if cfg.guard else None
        warn_pointless_settings(cfg, self.from_config, task)
        self.metric = task.metric
        self.higher_is_better = METRICS[self.metric].higher_is_better
        self.callbacks = list(callbacks)
        self.history: list[dict] = []
        self.iteration = 0                                        # steps tried
        self.accepted = 0                                         # steps applied
        self.stop_requested = False                               # set by a callback to end after this epoch
        if task.targets == "text":
            self.model.stateful = True                            # carry state across windows

    @property
    def task(self) -> Task:
        """The task being trained on (at the current curriculum stage's length)."""
        return self.batches.task

    def train_step(self, batch: Batch, record: bool = False) -> dict:
        """One update: forward -> loss -> backward -> guard -> clip -> step. Returns the step's
        numbers (with ``record``, also a probes.jsonl row), or ``{"event": ...}`` if the guard
        refused the step and rolled training back."""
        out, mask, loss, d_out = self.forward_loss(batch)
        model = self.model
        model.zero_grad()                                                              # backward
        steps = model.backward(d_out, input_grad=False, record=True)[1] if record else \
            model.backward(d_out, input_grad=False)
        return self.update(batch, out, mask, loss, steps, record)

    def forward_loss(self, batch: Batch) -> tuple:
        """The step's forward pass and loss: (outputs, mask, loss, dL/d outputs)."""
        if batch.reset_state:
            self.model.reset_state()                              # the text stream started over
        out = forward(self.model, batch.x, batch.lengths)                              # forward
        return (out, *self.loss_of(batch, out))                                        # loss

    def loss_of(self, batch: Batch, out) -> tuple:
        """(mask, loss, dL/d outputs) of ``out``, the outputs for ``batch`` (this model's, or its
        row of a stack's)."""
        mask = step_mask(self.task, batch)
        return (mask, *self._loss(out, batch.y, mask))

    def update(self, batch: Batch, out, mask, loss: float, steps, record: bool, rate_penalty=None) -> dict:
        """The rest of a step once the gradients are in ``model.grads`` (this model's own, or its
        row of a stack): penalties -> masks -> guard -> clip -> optimizer step -> Dale's signs and
        masks, and the step's numbers. ``rate_penalty``: the rate penalty of this model's forward
        (a stack's row of it; read from the model when None)."""
        model, cfg = self.model, self.cfg
        penalties = self.penalties(rate_penalty)                                       # penalties
        if hasattr(model, "constrain_grads"):
            model.constrain_grads()                                                    # masks
        raw_norm = global_norm(model.grads)
        param_norms = {k: float(np.linalg.norm(g)) for k, g in model.grads.items()} if record else None
        if self.guard is not None:                                                     # guard
            problem = self.guard.check(loss, raw_norm)
            if problem:
                return {"event": self._recover(problem, loss, raw_norm)}
        after = raw_norm                                                               # clip
        if cfg.clip_value:
            clip_grad_value(model.grads, cfg.clip_value)
            after = global_norm(model.grads)
        if cfg.clip:
            after = clip_grad_norm(model.grads, cfg.clip, after)[1]
        result = {"loss": loss, "score": score(self.metric, out, batch.y, mask),
                  "grad_norm": raw_norm, "grad_norm_clipped": after}
        if penalties:
            result["penalties"] = penalties
        if record:
            result["probe"] = probe_record(steps, param_norms, self.iteration, len(self.history) + 1, result)
        if self.guard is not None:
            self.guard.accept(loss, raw_norm, self.iteration,
                              lambda: (model.state_dict(), self.optimizer.state_dict()))
        self.optimizer.step()                                                          # step
        if hasattr(model, "constrain_weights"):
            model.constrain_weights()                                                  # Dale, masks
        return result

    def penalties(self, rate_penalty=None) -> dict:
        """The step's penalty terms, apart from the task loss: the rate penalty the CTRNN's forward
        measured (its gradient came with backward) and the weight penalties, whose gradients are
        added here."""
        out = {}
        rnn = getattr(self.model, "rnn", None)
        if getattr(rnn, "rate_l2", 0):
            out["rate_l2"] = float(rnn.penalty if rate_penalty is None else rate_penalty)
        if self.cfg.weight_l1 or self.cfg.weight_l2:
            out.update(weight_penalty(self.model.params, self.model.grads, self.cfg.weight_l1, self.cfg.weight_l2))
        return out

    def _loss(self, out, y, mask):
        result = self.loss(out, y, mask)
        if not (isinstance(result, tuple) and len(result) == 2 and np.shape(result[1]) == np.shape(out)):
            raise InputTypeError("the loss must return (mean loss, gradient with the outputs' shape "
                                 f"{np.shape(out)}), got {type(result).__name__}; see rnnlab.mse for one")
        return float(result[0]), result[1]

    def _recover(self, problem: str, loss: float, grad_norm: float) -> dict:
        """Apply the guard's decision: roll back weights and optimizer, cut the learning rate."""
        rec = self.guard.recover(problem, loss, grad_norm, iteration=self.iteration,
                                 epoch=len(self.history) + 1, accepted=self.accepted,
                                 schedule=self.schedule)
        self.model.load_state_dict(rec.weights)
        self.optimizer.load_state_dict(rec.optimizer_state)
        self.schedule.rescale(rec.lr_factor)
        return rec.event

    def evaluate(self) -> tuple[float, float]:
        return evaluate(self.model, self.task, self.loss, streams=self.cfg.batch_size, window=self.cfg.window)

    def fit(self) -> dict:
        clock = self.begin()
        try:
            for epoch in range(len(self.history) + 1, self.cfg.epochs + 1):
                steps = self.epoch_begin(clock)
                for batch in self.batches.epoch():                                       # batch
                    self.step_done(steps, self.train_step(batch, record=self.probe_due()), clock)
                if self.epoch_end(epoch, steps, clock):
                    break
        except BaseException:                     # Ctrl-C or an error: the callbacks may save what is safe
            self.stopped()
            raise
        finally:
            clock.threads.restore()
        return self.end(clock)

    # ---- fit's parts, in order; a stack of trainers (training.stack) runs them for every member
    def begin(self) -> "FitClock":
        cfg = self.cfg
        for cb in self.callbacks:
            getattr(cb, "on_train_begin", _nothing)(self)
        start = time.perf_counter() - (self.history[-1]["seconds"] if self.history else 0.0)
        threads = BlasThreads(cfg.blas_threads)          # the run's own setting: its bits depend on it
        self.kernel_seconds = ready_compiled_cells(self.model)
        return FitClock(start + self.kernel_seconds, threads,               # compiling is not training time
                        [cb.on_step_end for cb in self.callbacks if hasattr(cb, "on_step_end")])

    def epoch_begin(self, clock: "FitClock") -> "EpochSteps":
        clock.threads.apply()                           # set again each phase: nothing between may change it
        self.model.train()
        return EpochSteps(self.optimizer.lr, self.task.seq_length or self.cfg.window)

    def probe_due(self) -> bool:
        every = self.cfg.probe_every
        return bool(every) and self.iteration % every == 0

    def step_done(self, steps: "EpochSteps", step: dict, clock: "FitClock | None" = None) -> None:
        self.iteration += 1
        for hook in (clock.step_hooks if clock is not None else
                     [cb.on_step_end for cb in self.callbacks if hasattr(cb, "on_step_end")]):
            hook(self)
        if "event" in step:
            steps.events.append(step["event"])
            return
        self.accepted += 1
        if "probe" in step:
            steps.probes.append(step.pop("probe"))
        steps.steps.append(step)

    def epoch_end(self, epoch: int, steps: "EpochSteps", clock: "FitClock", evaluated=None) -> bool:
        """Log the epoch (``evaluated``: its held-out (loss, metric) when already measured) and
        tell the callbacks; True when one asked to stop."""
        if not steps.steps:
            raise TrainingDiverged(f"no step of epoch {epoch} could be applied; lower {setting('lr')} "
                                   f"(now {self.optimizer.lr:.3g}) or set {setting('clip', 1)}")
        self.schedule.step()
        clock.threads.apply()
        test_loss, test_metric = evaluated if evaluated is not None else self.evaluate()     # log
        record = self._epoch_record(epoch, steps.length, steps.lr, steps.steps, test_loss, test_metric,
                                    clock.start, steps.events)
        self.history.append(record)
        if self.batches.end_epoch(test_metric):
            record["next_length"] = self.task.seq_length        # the curriculum moved on
            if self.guard is not None:
                self.guard.new_stage()
        result = EpochResult(record, steps.probes, steps.events)
        for cb in self.callbacks:
            getattr(cb, "on_epoch_end", _nothing)(self, result)
        return self.stop_requested                              # a callback's decision (e.g. a time budget)

    def stopped(self) -> None:
        for cb in self.callbacks:
            try:
                getattr(cb, "on_train_stopped", _nothing)(self)
            except Exception as e:            # the first problem is the one to report
                warn_user(f"{type(cb).__name__} could not finish after training stopped: {e}", RuntimeWarning)

    def end(self, clock: "FitClock") -> dict:
        summary = self.summary(time.perf_counter() - clock.start)
        for cb in self.callbacks:
            getattr(cb, "on_train_end", _nothing)(self, summary)
        return summary

    def _epoch_record(self, epoch, length, lr, steps, test_loss, test_metric, start, events) -> dict:
        m, from_loss = self.metric, METRICS[self.metric].from_loss
        train_loss = float(np.mean([s["loss"] for s in steps]))
        total, count = (sum(s["score"][i] for s in steps) for i in (0, 1))
        record = {"epoch": epoch, "length": length,
                  "train_loss": train_loss,
                  f"train_{m}": from_loss(train_loss) if from_loss else total / count,
                  "test_loss": test_loss, f"test_{m}": test_metric, "lr": lr,
                  "seconds": time.perf_counter() - start,
                  "iter_loss": [s["loss"] for s in steps],
                  "iter_grad_norm": [s["grad_norm"] for s in steps]}
        if self.cfg.clip or self.cfg.clip_value:
            record["iter_grad_norm_clipped"] = [s["grad_norm_clipped"] for s in steps]
        if events:
            record["events"] = len(events)
        if "penalties" in steps[0]:                 # each term's epoch mean, apart from the task loss
            record["penalties"] = {k: float(np.mean([s["penalties"][k] for s in steps])) for k in steps[0]["penalties"]}
        E = self.cfg.epochs
        if self.cfg.probe_every and hasattr(self.model, "rnn") and \
                (epoch in (1, E) or epoch % max(1, E // 10) == 0):
            record["spectra"] = recurrent_spectra(self.model.rnn)   # ~10 times a run: they drift slowly
        return record

    def summary(self, seconds: float) -> dict:
        h, m = self.history, self.metric
        sign = 1 if self.higher_is_better else -1
        full = [r for r in h if r.get("length") == h[-1].get("length")] or h   # best at the final length
        best = max(full, key=lambda r: (sign * r[f"test_{m}"], -r["epoch"]))
        last = h[-1]
        return {"params": self.model.parameter_count(), "epochs": last["epoch"], "metric": m,
                "final_train_loss": last["train_loss"], f"final_train_{m}": last[f"train_{m}"],
                "final_test_loss": last["test_loss"], f"final_test_{m}": last[f"test_{m}"],
                f"best_test_{m}": best[f"test_{m}"], "best_epoch": best["epoch"],
                "baseline": self.task.baseline, "baseline_note": self.task.baseline_note,
                "final_length": last.get("length"), "seconds": seconds,
                "kernel_seconds": getattr(self, "kernel_seconds", 0.0)}
