"""TensorBoard logging: a ``Callback`` that mirrors a run's numbers into TensorBoard event files.

The run directory (``rnnlab.runs``) stays the record of a run; this writer exists so runs can be
watched live and compared side by side in TensorBoard, which people already have open.
``tensorboardX`` writes the files (it needs no TensorFlow or torch); it is an optional extra,
imported only when a ``TensorBoardWriter`` is made.

What ``log_dir`` receives:

* ``epoch/train_loss``, ``epoch/test_loss``, ``epoch/train_<metric>``, ``epoch/test_<metric>``,
  ``epoch/lr`` at global step = epoch;
* ``iter/loss``, ``iter/grad_norm`` (and ``iter/grad_norm_clipped`` when clipping is on) at
  global step = the number of applied steps so far, counted across a resumed run's earlier epochs;
* every ``histograms_every`` epochs, ``weights/<name>`` and ``grads/<name>`` histograms of each
  parameter (the gradient of the epoch's last applied step);
* with ``hparams``, at the end of training, the hyperparameters with the final and best test
  metric, in the sub-run ``log_dir/hparams`` (that is where tensorboardX's ``add_hparams`` puts
  them; TensorBoard's HPARAMS tab reads them from there).

Scalars are written as plain floats, NaN and infinities included (TensorBoard shows them);
non-finite entries are left out of histograms, which cannot bin them.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np

from rnnlab.errors import InputError, InputTypeError
from rnnlab.training.loop import Callback

MISSING = "TensorBoard logging needs the optional extra: pip install 'rnnlab[tensorboard]'"
HPARAMS_RUN = "hparams"                                      # the sub-run add_hparams writes
# tensorboardX names an event file by the second it was opened and the host only, so a second
# writer opened within the same second (a quick resume, a second fit) would overwrite the first
_FILE_NUMBER = itertools.count()


def _float(value) -> float | None:
    """``value`` as a plain float (NaN and infinities kept), or None if it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _hparam(value):
    """A value add_hparams can store: bool, str, int or float as they are, NumPy scalars as
    Python ones, None left out, anything else (a list, a tuple) as its text."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    return str(value)


class TensorBoardWriter(Callback):
    """Writes TensorBoard event files as training goes: ``Trainer(..., callbacks=[
    TensorBoardWriter("runs/tb/my-run", hparams={"lr": 1e-3})])``, then
    ``tensorboard --logdir runs/tb``. ``histograms_every=0`` turns the histograms off."""

    def __init__(self, log_dir, hparams: dict | None = None, histograms_every: int = 1):
        try:
            from tensorboardX import SummaryWriter  # optional extra: rnnlab[tensorboard]
        except ImportError:
            raise InputError(MISSING) from None
        if hparams is not None and not isinstance(hparams, dict):
            raise InputTypeError(f"TensorBoardWriter: hparams must be a dict of names to values, got "
                                 f"{type(hparams).__name__}")
        if isinstance(histograms_every, bool) or not isinstance(histograms_every, (int, np.integer)) \
                or histograms_every < 0:
            raise InputError(f"TensorBoardWriter: histograms_every must be a whole number >= 0 (0 = off), "
                             f"got {histograms_every!r}")
        self.log_dir = Path(log_dir)
        if self.log_dir.exists() and not self.log_dir.is_dir():
            raise InputError(f"TensorBoard log_dir {self.log_dir} exists and is a file; choose a directory path")
        self.hparams = {str(k): _hparam(v) for k, v in hparams.items()} if hparams is not None else None
        self.histograms_every = int(histograms_every)
        self._SummaryWriter = SummaryWriter
        self.writer = None
        self.step = 0                                         # applied steps written so far

    # ------------------------------------------------------------ callback hooks
    def on_train_begin(self, trainer):
        if self.writer is None:                               # (again after a finished fit)
            suffix = f".{os.getpid()}.{next(_FILE_NUMBER):04d}"
            self.writer = self._SummaryWriter(logdir=str(self.log_dir), filename_suffix=suffix)
        # a resumed trainer arrives with the earlier epochs' history: count on from their steps
        self.step = sum(len(r.get("iter_loss") or ()) for r in trainer.history)

    def on_epoch_end(self, trainer, result):
        record = result.record
        w, epoch, m = self.writer, int(record["epoch"]), trainer.metric
        for key in ("train_loss", "test_loss", f"train_{m}", f"test_{m}", "lr"):
            self._scalar(f"epoch/{key}", record.get(key), epoch)
        series = [("iter/loss", record.get("iter_loss") or []),
                  ("iter/grad_norm", record.get("iter_grad_norm") or [])]
        if record.get("iter_grad_norm_clipped") is not None:
            series.append(("iter/grad_norm_clipped", record["iter_grad_norm_clipped"]))
        for tag, values in series:
            for i, value in enumerate(values):
                self._scalar(tag, value, self.step + i + 1)
        self.step += len(record.get("iter_loss") or ())
        every = self.histograms_every
        if every and epoch % every == 0:
            grads = getattr(trainer.model, "grads", {}) or {}
            for name, value in trainer.model.params.items():
                self._histogram(f"weights/{name}", value, epoch)
                if grads.get(name) is not None:
                    self._histogram(f"grads/{name}", grads[name], epoch)
        w.flush()                                             # a crash loses no finished epoch

    def on_train_end(self, trainer, summary):
        if self.writer is None:
            return
        if self.hparams is not None:
            m = summary.get("metric", trainer.metric)
            metrics = {f"hparam/final_test_{m}": _float(summary.get(f"final_test_{m}")),
                       f"hparam/best_test_{m}": _float(summary.get(f"best_test_{m}")),
                       "hparam/final_test_loss": _float(summary.get("final_test_loss"))}
            metrics = {k: v for k, v in metrics.items() if v is not None}
            self.writer.add_hparams(self.hparams, metrics, name=HPARAMS_RUN,
                                    global_step=int(summary.get("epochs") or len(trainer.history)))
        self.close()

    def on_train_stopped(self, trainer):
        self.close()                                          # Ctrl-C or an error: keep what was written

    def close(self) -> None:
        """Flush and close the event file (``on_train_end`` and ``on_train_stopped`` do this)."""
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None

    # ------------------------------------------------------------ writing
    def _scalar(self, tag: str, value, step: int) -> None:
        value = _float(value)
        if value is not None:
            self.writer.add_scalar(tag, value, step)

    def _histogram(self, tag: str, values, step: int) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        if values.size:
            self.writer.add_histogram(tag, values, step)


