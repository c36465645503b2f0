"""Terminal progress: tqdm bars on an interactive terminal only, one line per epoch, and a line
for each step after training that may take a while."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from rnnlab.data.metrics import METRICS
from rnnlab.training.loop import Callback


class EpochPrinter(Callback):
    def __init__(self, epochs: int, quiet: bool = False, stream=None):
        self.epochs, self.quiet = epochs, quiet
        self.stream = stream or sys.stdout
        self.bar = None

    def on_train_begin(self, trainer):
        self.bar = tqdm(total=self.epochs, initial=len(trainer.history), unit="epoch", leave=False,
                        file=sys.stderr, disable=not sys.stderr.isatty())

    def on_epoch_end(self, trainer, result):
        r, m = result.record, trainer.metric
        metric = METRICS[m]
        name = metric.short
        self.bar.update(1)
        self.bar.set_postfix({f"test_{m}": metric.format(r[f"test_{m}"])})
        if not self.quiet:
            w = len(str(self.epochs))
            tqdm.write(f"Epoch {r['epoch']:>{w}}/{self.epochs} | Train Loss: {r['train_loss']:.4f} | "
                       f"Train {name}: {metric.format(r[f'train_{m}'])} | Test Loss: "
                       f"{r['test_loss']:.4f} | Test {name}: {metric.format(r[f'test_{m}'])} | "
                       f"LR: {r['lr']:.2e}" + (f" | Length: {r['length']}" if trainer.cfg.curriculum else "")
                       + "".join(f" | {k}: {v:.3g}" for k, v in r.get("penalties", {}).items()),
                       file=self.stream)
        if "next_length" in r:
            tqdm.write(f"curriculum: from epoch {r['epoch'] + 1} the sequences have {r['next_length']} steps",
                       file=self.stream)

    def on_train_end(self, trainer, summary):
        self.bar.close()

    def on_train_stopped(self, trainer):
        if self.bar is not None:
            self.bar.close()                    # no half-drawn bar above the "interrupted" line


class StepProgress:
    """Progress of the work after training (``analyze``'s ``progress``): a line naming each step
    as it starts, and on an interactive terminal a bar for a step that counts its work (the
    fixed-point search's settled starts); ``quiet`` keeps the bar only. Usable as a context
    manager, which closes the bar."""

    def __init__(self, quiet: bool = False, stream=None, bar_stream=None):
        self.quiet, self.stream = quiet, stream or sys.stdout
        self.bar_stream = bar_stream or sys.stderr
        self.step, self.bar, self.drawn = None, None, 0.0

    def __call__(self, step: str, done: int, total: int | None) -> None:
        if step != self.step:
            self.close()
            self.step = step
            if not self.quiet:
                tqdm.write(f"analysing: {step}", file=self.stream)
            if total is not None:
                self.bar = tqdm(total=total, unit="", leave=False, file=self.bar_stream,
                                disable=not self.bar_stream.isatty())
        now = time.monotonic()
        if self.bar is not None and now - self.drawn >= 0.1:   # redrawn (its clock too) ten times a second
            self.bar.n, self.drawn = done, now
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.step, self.bar = None, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
