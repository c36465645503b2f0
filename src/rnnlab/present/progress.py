"""Terminal progress: a tqdm bar on an interactive terminal only, and one line per epoch."""

from __future__ import annotations

import sys

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
                       f"LR: {r['lr']:.2e}" + (f" | Length: {r['length']}" if trainer.cfg.curriculum else ""),
                       file=self.stream)
        if "next_length" in r:
            tqdm.write(f"curriculum: from epoch {r['epoch'] + 1} the sequences have {r['next_length']} steps",
                       file=self.stream)

    def on_train_end(self, trainer, summary):
        self.bar.close()

    def on_train_stopped(self, trainer):
        if self.bar is not None:
            self.bar.close()                    # no half-drawn bar above the "interrupted" line
