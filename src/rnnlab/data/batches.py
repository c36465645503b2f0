"""Batch sources: where the training loop's batches come from.

Each source yields one epoch of ``Batch``es, owns its random state (``state_dict`` /
``load_state_dict`` for an exact resume), knows the task whose held-out split the epoch is scored
on (``task``), and says at the end of an epoch whether anything changed (``end_epoch``):

- ``ArrayBatches``: fixed arrays, as random mini-batches or a shuffled full pass;
- ``GeneratorBatches``: fresh sequences from the task's generator for every batch;
- ``TextStream``: consecutive windows of parallel text streams; the model carries its state
  across windows and is told to forget it when the streams start over;
- ``Curriculum``: any of the above at growing sequence lengths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnlab.data.task import Task


@dataclass
class Batch:
    x: np.ndarray
    y: np.ndarray
    lengths: np.ndarray | None = None
    reset_state: bool = False        # a text stream started over: forget the carried state

    @property
    def mask(self) -> np.ndarray | None:
        """(B, T) 1/0 weights of the valid steps of right-padded sequences (None: all valid)."""
        if self.lengths is None:
            return None
        return np.arange(self.x.shape[1])[None, :] < self.lengths[:, None]


class ArrayBatches:
    """``per_epoch`` random mini-batches of distinct sequences, or (0) one shuffled full pass."""

    def __init__(self, task: Task, batch_size: int, per_epoch: int, seed):
        self.task, self.batch_size, self.per_epoch = task, batch_size, per_epoch
        self.rng = np.random.default_rng(seed)

    def epoch(self) -> list[Batch]:
        n, bs = len(self.task.train), self.batch_size
        if self.per_epoch:
            idx = [self.rng.choice(n, bs, replace=False) for _ in range(self.per_epoch)]
        else:
            perm = self.rng.permutation(n)
            idx = [perm[i:i + bs] for i in range(0, n, bs)]
        return [Batch(*self.task.train.take(i)) for i in idx]

    def end_epoch(self, test_metric: float) -> bool:
        return False

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, sd: dict) -> None:
        self.rng.bit_generator.state = sd["rng"]


class GeneratorBatches(ArrayBatches):
    """Fresh sequences for every batch: ``per_epoch`` batches (0: ``fallback`` of them)."""

    def __init__(self, task: Task, batch_size: int, per_epoch: int, seed, fallback: int = 10):
        super().__init__(task, batch_size, per_epoch or fallback, seed)

    def epoch(self) -> list[Batch]:
        return [Batch(*self.task.batch(self.rng, self.batch_size)) for _ in range(self.per_epoch)]


def stream_windows(ids: np.ndarray, rows: int, window: int):
    """Cut a 1-D stream into ``rows`` parallel streams, then consecutive (x, y) windows."""
    length = len(ids) // rows
    grid = ids[:rows * length].reshape(rows, length)            # (B, L)
    return [(grid[:, s:s + window], grid[:, s + 1:s + window + 1])
            for s in range(0, length - window, window)]


class TextStream:
    """``per_epoch`` consecutive windows (0: the rest of the stream); at the streams' end they
    start over and the first window asks the model to forget its carried state."""

    def __init__(self, task: Task, rows: int, window: int, per_epoch: int):
        self.task, self.per_epoch = task, per_epoch
        self.windows = stream_windows(task.train.X, rows, window)
        self.pos = 0

    def epoch(self) -> list[Batch]:
        out = []
        for _ in range(self.per_epoch or len(self.windows) - self.pos):
            reset = self.pos == len(self.windows)
            if reset:
                self.pos = 0
            out.append(Batch(*self.windows[self.pos], reset_state=reset))
            self.pos += 1
        return out

    def end_epoch(self, test_metric: float) -> bool:
        return False

    def state_dict(self) -> dict:
        return {"pos": self.pos}

    def load_state_dict(self, sd: dict) -> None:
        self.pos = int(sd["pos"])


class Curriculum:
    """Train on ``lengths`` in turn (the task's own length last): advance after ``every`` epochs
    in a stage, or once the held-out metric reaches ``target``. ``make_source(task)`` builds the
    source for each stage; all stages draw batches from one random stream."""

    def __init__(self, task: Task, lengths: list[int], make_source, every: int = 0,
                 target: float = 0.0, higher_is_better: bool = True):
        self.lengths, self.every, self.target = list(lengths), every, target
        self.higher = higher_is_better
        self._tasks = {lengths[-1]: task}
        self._make_source = make_source
        self.stage, self.epochs_in_stage = 0, 0
        self.source = make_source(self._task_at(self.lengths[0]))

    def _task_at(self, length: int) -> Task:
        if length not in self._tasks:
            self._tasks[length] = self._tasks[self.lengths[-1]].at_length(length)
        return self._tasks[length]

    @property
    def task(self) -> Task:
        """The task of the stage under way."""
        return self.source.task

    @property
    def final_task(self) -> Task:
        """The task of the last stage (the one the curriculum was made with): what the run trains
        toward, its length and held-out split."""
        return self._tasks[self.lengths[-1]]

    def epoch(self) -> list[Batch]:
        return self.source.epoch()

    def end_epoch(self, test_metric: float) -> bool:
        """Move to the next stage when due; True if the sequences just grew."""
        if self.stage == len(self.lengths) - 1:
            return False
        self.epochs_in_stage += 1
        met = bool(self.target) and (test_metric >= self.target if self.higher else test_metric <= self.target)
        if met or (self.every and self.epochs_in_stage >= self.every):
            self._enter(self.stage + 1)
            return True
        return False

    def enter_length(self, length: int) -> None:
        """Move to the stage of sequences of ``length`` (where a finished run ended)."""
        self._enter(self.lengths.index(length))

    def _enter(self, stage: int) -> None:
        rng_state = self.source.state_dict()
        self.stage, self.epochs_in_stage = stage, 0
        self.source = self._make_source(self._task_at(self.lengths[stage]))
        self.source.load_state_dict(rng_state)       # one random stream across the stages

    def state_dict(self) -> dict:
        return {"stage": self.stage, "epochs_in_stage": self.epochs_in_stage,
                "source": self.source.state_dict()}

    def load_state_dict(self, sd: dict) -> None:
        if sd["stage"] != self.stage:
            self._enter(sd["stage"])
        self.epochs_in_stage = sd["epochs_in_stage"]
        self.source.load_state_dict(sd["source"])
