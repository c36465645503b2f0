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
    total = weight = s = n = 0.0
    split = task.test
    for i in range(0, len(split), batch_size):
        b = Batch(*split.take(slice(i, i + batch_size)))
        out = forward(model, b.x, b.lengths)
        mask = step_mask(task, b)
        value, _ = loss(out, b.y, mask)
        part = score(task.metric, out, b.y, mask)
        total += value * part[1]
        weight += part[1]
        s, n = s + part[0], n + part[1]
    model.train(was_training)
    return total / weight, s / n


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


