"""Scoring and evaluating a model on a task's held-out data: one path for sequences and text."""

from __future__ import annotations

import numpy as np

from rnnlab.data.batches import Batch, stream_windows
from rnnlab.data.metrics import METRICS
from rnnlab.data.task import Task
from rnnlab.errors import InputError
from rnnlab.nn.losses import softmax_cross_entropy
from rnnlab.training.build import default_loss


def score(metric: str, out, y, mask=None) -> tuple[float, int]:
    """(sum, count) whose ratio is the metric over the valid targets: correct predictions for
    accuracy, squared errors for MSE (bits per character come from the loss instead)."""
    scorer = METRICS[metric].score
    if scorer is None:                                           # a metric of the loss (bits per character)
        return 0.0, 0
    if METRICS[metric].at_end:                                   # each sequence's last valid step
        last = np.full(len(y), y.shape[1] - 1) if mask is None else mask.sum(axis=1) - 1
        rows = np.arange(len(y))
        return scorer(out[rows, last], y[rows, last])
    if mask is not None:
        out, y = out[mask], y[mask]                              # valid steps only
    return scorer(out, y)


def forward(model, x, lengths):
    return model.forward(x) if lengths is None else model.forward(x, lengths=lengths)


def step_mask(task: Task, batch: Batch):
    return batch.mask if task.per_step else None


def evaluate(model, task: Task, loss=None, *, streams: int | None = None, window: int | None = None,
             batch_size: int = 1000) -> tuple[float, float]:
    """Mean loss and metric over the task's held-out split, in eval mode: the one evaluation of a
    trained model (training, ``rnnlab eval``, the analysis). A text stream is read as it was
    trained, ``streams`` rows of ``window`` steps with the state carried (``evaluate_stream``);
    sequences in batches of ``batch_size``."""
    if task.targets == "text":
        if streams is None or window is None:
            raise InputError("evaluating a text task needs the streams and window it was trained with "
                             "(the config's batch_size and window)")
        return evaluate_stream(model, task.test.X, streams, window)
    loss = loss or default_loss(task)
    was_training = model.training
    model.eval()
    totals = HeldOutTotals(task, loss)
    for b in held_out_batches(task, batch_size):
        totals.add(forward(model, b.x, b.lengths), b)
    model.train(was_training)
    return totals.result()


def held_out_batches(task: Task, batch_size: int = 1000) -> list[Batch]:
    split = task.test
    return [Batch(*split.take(slice(i, i + batch_size))) for i in range(0, len(split), batch_size)]


class HeldOutTotals:
    """The held-out loss and metric summed batch by batch, in the order ``evaluate`` sums them
    (a stack's members are scored with it one by one, ``evaluate_members``)."""

    def __init__(self, task: Task, loss):
        self.task, self.loss = task, loss
        self.total = self.weight = self.s = self.n = 0.0

    def add(self, out, b: Batch) -> None:
        mask = step_mask(self.task, b)
        value, _ = self.loss(out, b.y, mask)
        part = score(self.task.metric, out, b.y, mask)
        self.total += value * part[1]
        self.weight += part[1]
        self.s, self.n = self.s + part[0], self.n + part[1]

    def result(self) -> tuple[float, float]:
        return self.total / self.weight, self.s / self.n


def stacked_inputs(batches: list[Batch]) -> tuple:
    """K members' batches as one stack's input: x (K, B, T, D) and lengths (K, B) or None."""
    x = np.stack([b.x for b in batches])
    if all(b.lengths is None for b in batches):
        return x, None
    return x, np.stack([b.lengths if b.lengths is not None else np.full(len(b.x), b.x.shape[1]) for b in batches])


def evaluate_members(stack, tasks: list, losses: list, members: list[int], batch_size: int = 1000) -> dict:
    """``evaluate`` for the members of a stack (``rnnlab.nn.stack``) whose held-out splits have one
    shape, giving each member the numbers it gets alone, bit for bit. The K members share
    ``batch_size`` rows a stacked forward pass (so a pass's arrays stay the size one network's
    are, in cache: at K = 64, 1.35 s a seed-preset network instead of 2.09 s); each member's
    outputs are then gathered into the batches ``evaluate`` scores alone, so its loss and metric
    are summed in the same order. Returns {member: (loss, metric)} for ``members``."""
    rows = max(1, batch_size // len(tasks))
    was_training = stack.training
    stack.eval()
    totals = {k: HeldOutTotals(tasks[k], losses[k]) for k in members}
    alone = [held_out_batches(t, batch_size) for t in tasks]          # the batches each is scored in alone
    for i in range(len(alone[0])):
        whole = [c[i] for c in alone]
        outs = {k: [] for k in members}
        for start in range(0, len(whole[0].x), rows):
            sl = slice(start, start + rows)
            part = [Batch(b.x[sl], b.y[sl], None if b.lengths is None else b.lengths[sl]) for b in whole]
            out = stack.forward(*stacked_inputs(part))
            for k in members:
                outs[k].append(out[k])
        for k in members:
            totals[k].add(np.concatenate(outs[k]), whole[k])
    stack.train(was_training)
    return {k: t.result() for k, t in totals.items()}


def evaluate_stream(model, ids, rows: int, window: int) -> tuple[float, float]:
    """Mean cross-entropy (nats) and bits per character of a CharLM over a whole stream,
    state carried across windows; the model's own training state is left as it was."""
    was_training, saved = model.training, (model.stateful, model.state)
    model.eval()
    model.stateful, model.state = True, None
    total = count = 0.0
    for x, y in stream_windows(ids, min(rows, max(1, len(ids) // (window + 1))), window):
        value, _ = softmax_cross_entropy(model.forward(x), y)
        total += value * y.size
        count += y.size
    model.train(was_training)
    model.stateful, model.state = saved
    value = total / max(count, 1)
    return float(value), float(value / np.log(2))


