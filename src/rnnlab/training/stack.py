"""Many networks trained as one: ``StackTrainer`` over K ``Trainer``s whose models share one
architecture.

Each member stays a whole ``Trainer`` -- its own task and batch stream, loss, optimizer and
learning-rate schedule (so its own learning rate, momentum, weight decay, clipping, dropout rate,
seed), guard, history, probes and callbacks (a member's ``RunWriter`` writes the same run
directory as a run alone). Only the forward and backward passes are shared: the members' models
are stacked (``rnnlab.nn.stack``), every batch of the K members goes through as one batch of
batched products, and each member then takes its own step from its row of the gradients. A
member whose guard rolls it back does so alone; one that fails (its guard gives up) stops while
the others go on. Member k's run is the run its config gives alone, bit for bit in float32 and
float64 (tests/training/test_stack_trainer.py): every product is the one it runs alone, the
recurrent step's batched over members, the fused kernels row by row, and each member's held-out
outputs are scored in the batches it is scored in alone (``evaluate_members``).
"""

from __future__ import annotations

import numpy as np

from rnnlab.checks import check_list
from rnnlab.data.batches import Batch
from rnnlab.errors import InputError, InputTypeError
from rnnlab.nn.stack import stack_models
from rnnlab.training.evaluate import evaluate_members, stacked_inputs
from rnnlab.training.guards import TrainingDiverged
from rnnlab.training.loop import Trainer


def stack_key(cfg) -> tuple:
    """Configs with the same key can be trained as one stack: one architecture and one batch shape
    (what may differ is elementwise: seed, learning rate, momentum, weight decay, clipping, dropout
    rate, schedule, guard settings)."""
    return (cfg.task, cfg.env_kwargs, cfg.data, cfg.text, cfg.model, cfg.hidden, cfg.layers, cfg.nonlinearity,
            cfg.bidirectional, cfg.dtype, cfg.batch_size, cfg.batches_per_epoch, cfg.epochs, cfg.length,
            cfg.features, cfg.bits, cfg.train_size, cfg.test_size, cfg.data_seed, cfg.curriculum, cfg.optimizer,
            cfg.probe_every, cfg.blas_threads)


# Stacking saves the per-operation dispatch of K networks, not their arithmetic: it pays while the
# recurrent products are small. Whole seed-preset runs (50 epochs with held-out scoring), K = 6,
# one BLAS thread, alone / stacked (this machine varies by about 10% run to run): RNN 16 / 64 units
# 1.22x / 0.91x; LSTM 32 / 64 units 1.25x / 1.04x; GRU 32 units 1.05x (64 units, before the
# members' products were made bit-identical: 0.98x).
STACK_PAYS_UP_TO = 32            # hidden units per layer


def config_can_stack(cfg) -> bool:
    """Whether the Trainer this config builds can join a stack (``stackable`` says why not)."""
    return cfg.model in ("rnn", "lstm", "gru") and cfg.task != "charlm" and not cfg.curriculum


def stack_pays(cfg) -> bool:
    """Whether stacking trials of this config is expected to be faster than training them alone."""
    return config_can_stack(cfg) and cfg.hidden <= STACK_PAYS_UP_TO


def stackable(trainer: Trainer) -> str | None:
    """Why this trainer cannot join a stack, or None."""
    if not hasattr(trainer.model, "rnn") or hasattr(trainer.model, "embedding"):
        return f"its model is a {type(trainer.model).__name__} (stacks take recurrent sequence models)"
    if trainer.task.targets == "text":
        return "it trains on a text stream"
    if trainer.cfg.curriculum:
        return "it has a curriculum (its sequences change length)"
    return None


class StackTrainer:
    """Train K trainers as one stack; ``fit()`` returns their K summaries (a member whose guard gave
    up gets the ``TrainingDiverged`` it raised, and the others go on). Any other exception (a full
    disk, MemoryError, a bug, Ctrl-C) stops every member and is raised, as it is for a run alone."""

    def __init__(self, trainers: list[Trainer]):
        trainers = check_list("trainers", trainers, "Trainers", owner="StackTrainer")
        other = next((t for t in trainers if not isinstance(t, Trainer)), None)
        if other is not None:
            raise InputTypeError(f"StackTrainer: trainers must be Trainers, got a {type(other).__name__}; build "
                                 "each with Trainer(config=cfg), or train configs with rnnlab.train_stack(configs, "
                                 "run_dirs)")
        if not trainers:
            raise InputError("a stack needs at least one trainer")
        for t in trainers:
            why = stackable(t)
            if why:
                raise InputError(f"a trainer cannot join a stack: {why}; train it alone")
        first = trainers[0]
        for t in trainers[1:]:
            if (t.cfg.epochs, t.cfg.batch_size) != (first.cfg.epochs, first.cfg.batch_size):
                raise InputError("stacked members must train for the same epochs with the same batch size")
            if t.cfg.blas_threads != first.cfg.blas_threads:      # one process, one count: each run's bits
                raise InputError(f"stacked members must share blas_threads (a run's bits depend on it), got "
                                 f"{first.cfg.blas_threads} and {t.cfg.blas_threads}; train them apart")
        self.trainers = list(trainers)
        self.model = stack_models([t.model for t in trainers])
        for t in trainers:
            t.optimizer.rebind()                           # its parameters are now row k of the stack

    @property
    def members(self) -> int:
        return len(self.trainers)

    def fit(self) -> list:
        ts = self.trainers
        live = list(range(len(ts)))                     # members still training
        results: list = [None] * len(ts)
        clocks = [t.begin() for t in ts]
        try:
            for epoch in range(len(ts[0].history) + 1, ts[0].cfg.epochs + 1):
                steps = [t.epoch_begin(c) for t, c in zip(ts, clocks)]
                self.model.train()
                epochs = [ts[k].batches.epoch() for k in range(len(ts))]
                if len({len(e) for e in epochs}) != 1:
                    raise InputError("stacked members must draw the same number of batches per epoch")
                for i in range(len(epochs[0])):
                    batches = [e[i] for e in epochs]
                    for k, step in self._step(batches, live).items():
                        if isinstance(step, Exception):     # this member failed (its guard gave up)
                            live.remove(k)
                            results[k] = step
                            ts[k].stopped()
                        else:
                            ts[k].step_done(steps[k], step, clocks[k])
                if not live:                               # every member failed in this epoch
                    break
                clocks[0].threads.apply()                  # the held-out passes: as a run alone scores
                scored = self._evaluate(live)
                for k in list(live):
                    try:
                        if ts[k].epoch_end(epoch, steps[k], clocks[k], scored.get(k)):
                            live.remove(k)
                            results[k] = ts[k].end(clocks[k])
                    except TrainingDiverged as e:       # this member failed (its guard gave up); any
                                                        # other error ends the stack, as it ends a run alone
                        live.remove(k)
                        results[k] = e
                        ts[k].stopped()
                if not live:
                    break
        except BaseException:
            for k in live:
                ts[k].stopped()
            raise
        finally:
            for clock in reversed(clocks):                 # the first member's holds the original limits
                clock.threads.restore()
        for k in live:
            results[k] = ts[k].end(clocks[k])
        return results

    def _evaluate(self, live: list[int]) -> dict:
        """Every live member's held-out (loss, metric), as one stacked pass where the members'
        held-out splits have one shape ({} otherwise: each member evaluates alone)."""
        ts = self.trainers
        if len({t.task.test.X.shape for t in ts}) != 1:
            return {}
        return evaluate_members(self.model, [t.task for t in ts], [t.loss for t in ts], live)

    def _step(self, batches: list[Batch], live: list[int]) -> dict:
        """One step of every live member: a stacked forward and backward, then each member's own
        loss, guard, clipping and optimizer step from its row of the gradients."""
        ts, model = self.trainers, self.model
        out = model.forward(*stacked_inputs(batches))
        d_out = np.zeros_like(out)
        parts = {}
        for k in live:
            mask, loss, d_out[k] = ts[k].loss_of(batches[k], out[k])
            parts[k] = (mask, loss)
        record = [ts[k].probe_due() for k in range(len(ts))]
        model.flat_grads.fill(0)
        got = model.backward(d_out, input_grad=False, record=any(record))
        probes = got[1] if any(record) else None
        results = {}
        for k in live:
            mask, loss = parts[k]
            steps = None if probes is None else {name: p[k] for name, p in probes.items()}
            try:
                rate = getattr(model.rnn, "penalty", None)
                results[k] = ts[k].update(batches[k], out[k], mask, loss, steps, record[k],
                                          None if rate is None or np.ndim(rate) == 0 else rate[k])
            except TrainingDiverged as e:                   # its guard gave up: the others go on
                results[k] = e
        return results
