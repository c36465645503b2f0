"""Terminal progress: a tqdm bar on an interactive terminal only, and one line per epoch."""

from __future__ import annotations

import sys

from tqdm import tqdm

from .train import Callback


class EpochPrinter(Callback):
    def __init__(self, epochs: int, quiet: bool = False, stream=None):
        self.epochs, self.quiet = epochs, quiet
        self.stream = stream or sys.stdout
        self.bar = None

    def on_train_begin(self, trainer):
        self.bar = tqdm(total=self.epochs, unit="epoch", leave=False, file=sys.stderr,
                        disable=not sys.stderr.isatty())

    def on_epoch_end(self, trainer, r):
        self.bar.update(1)
        self.bar.set_postfix(test_acc=f"{100 * r['test_acc']:.1f}%")
        if not self.quiet:
            w = len(str(self.epochs))
            tqdm.write(f"Epoch {r['epoch']:>{w}}/{self.epochs} | Train Loss: {r['train_loss']:.4f} | "
                       f"Train Acc: {100 * r['train_acc']:.2f}% | Test Loss: {r['test_loss']:.4f} | "
                       f"Test Acc: {100 * r['test_acc']:.2f}% | LR: {r['lr']:.2e}", file=self.stream)

    def on_train_end(self, trainer, summary):
        self.bar.close()
