"""The one training loop (every model and task), its callbacks, and the run directory.

A run directory holds: ``config.json`` (everything needed to re-run it), ``metrics.jsonl`` (one
JSON object per epoch, with per-iteration loss and gradient norms), ``summary.json``,
``checkpoint.npz`` + ``checkpoint.json``, ``training_curves.png`` and ``hidden_states.png``.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from . import __version__
from ._alloc import tune_allocator
from .checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .errors import InputError, RunDirError
from .losses import softmax_cross_entropy
from .models import SequenceClassifier, SequenceTagger
from .optim import OPTIMIZERS, CosineLR, Schedule, StepLR, clip_grad_norm, clip_grad_value
from .tasks import Dataset, make_task


# ---------------------------------------------------------------- building blocks from a config
def load_data(cfg: TrainConfig) -> Dataset:
    return make_task(cfg.task, cfg.train_size, cfg.test_size, cfg.length, cfg.features,
                     cfg.data_seed, np.dtype(cfg.dtype))


def build_model(cfg: TrainConfig, data: Dataset):
    cls = SequenceTagger if data.per_step else SequenceClassifier
    return cls(cfg.features, cfg.hidden, data.num_classes, cfg.layers, cell=cfg.model,
               nonlinearity=cfg.nonlinearity, dropout=cfg.dropout, bidirectional=cfg.bidirectional,
               init=cfg.init, dtype=np.dtype(cfg.dtype), seed=cfg.seed)


def build_optimizer(cfg: TrainConfig, model):
    kw = dict(lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        kw.update(momentum=cfg.momentum, nesterov=cfg.nesterov)
    elif cfg.optimizer == "rmsprop":
        kw.update(momentum=cfg.momentum)
    return OPTIMIZERS[cfg.optimizer](model.params, model.grads, **kw)


def build_schedule(cfg: TrainConfig, opt) -> Schedule:
    if cfg.schedule == "step":
        return StepLR(opt, cfg.lr_step, cfg.lr_gamma)
    if cfg.schedule == "cosine":
        return CosineLR(opt, cfg.epochs)
    return Schedule(opt)


def evaluate(model, X, y, batch_size: int = 1000) -> tuple[float, float]:
    """Mean loss and accuracy over (X, y) in eval mode (no dropout)."""
    was_training = model.training
    model.eval()
    total_loss = correct = count = 0.0
    for i in range(0, len(X), batch_size):
        logits = model.forward(X[i:i + batch_size])
        yb = y[i:i + batch_size]
        loss, _ = softmax_cross_entropy(logits, yb)
        total_loss += loss * yb.size
        correct += float((logits.argmax(axis=-1) == yb).sum())
        count += yb.size
    model.train(was_training)
    return total_loss / count, correct / count


# ---------------------------------------------------------------- callbacks
class Callback:
    def on_train_begin(self, trainer: "Trainer") -> None: ...
    def on_epoch_end(self, trainer: "Trainer", record: dict) -> None: ...
    def on_train_end(self, trainer: "Trainer", summary: dict) -> None: ...


# ---------------------------------------------------------------- the training loop
class Trainer:
    """Trains ``build_model(cfg)`` on ``cfg.task``; ``fit()`` returns the summary dict."""

    def __init__(self, cfg: TrainConfig, callbacks=(), data: Dataset | None = None):
        tune_allocator()
        self.cfg = cfg
        self.data = data if data is not None else load_data(cfg)
        self.model = build_model(cfg, self.data)
        self.optimizer = build_optimizer(cfg, self.model)
        self.schedule = build_schedule(cfg, self.optimizer)
        self.rng = np.random.default_rng([cfg.seed, 1])          # batch order stream
        self.callbacks = list(callbacks)
        self.history: list[dict] = []

    def epoch_batches(self) -> list[np.ndarray]:
        n, bs, k = len(self.data.X_train), self.cfg.batch_size, self.cfg.batches_per_epoch
        if k:   # the seed's epoch: k random mini-batches
            return [self.rng.choice(n, bs, replace=False) for _ in range(k)]
        perm = self.rng.permutation(n)
        return [perm[i:i + bs] for i in range(0, n, bs)]

    def train_step(self, idx) -> dict:
        model, cfg = self.model, self.cfg
        xb, yb = self.data.X_train[idx], self.data.y_train[idx]
        logits = model.forward(xb)
        loss, d_logits = softmax_cross_entropy(logits, yb)
        model.zero_grad()
        model.backward(d_logits, input_grad=False)
        if cfg.clip_value:
            clip_grad_value(model.grads, cfg.clip_value)
        if cfg.clip:
            before, after = clip_grad_norm(model.grads, cfg.clip)
        else:
            before = after = float(np.sqrt(sum(float(np.vdot(g, g)) for g in model.grads.values())))
        self.optimizer.step()
        return {"loss": loss, "correct": int((logits.argmax(axis=-1) == yb).sum()),
                "count": int(yb.size), "grad_norm": before, "grad_norm_clipped": after}

    def fit(self) -> dict:
        cfg, data = self.cfg, self.data
        for cb in self.callbacks:
            cb.on_train_begin(self)
        start = time.perf_counter()
        for epoch in range(1, cfg.epochs + 1):
            self.model.train()
            lr = self.optimizer.lr
            steps = [self.train_step(idx) for idx in self.epoch_batches()]
            self.schedule.step()
            test_loss, test_acc = evaluate(self.model, data.X_test, data.y_test)
            n = sum(s["count"] for s in steps)
            record = {
                "epoch": epoch,
                "train_loss": float(np.mean([s["loss"] for s in steps])),
                "train_acc": sum(s["correct"] for s in steps) / n,
                "test_loss": test_loss,
                "test_acc": test_acc,
                "lr": lr,
                "seconds": time.perf_counter() - start,
                "iter_loss": [s["loss"] for s in steps],
                "iter_grad_norm": [s["grad_norm"] for s in steps],
            }
            if cfg.clip or cfg.clip_value:
                record["iter_grad_norm_clipped"] = [s["grad_norm_clipped"] for s in steps]
            self.history.append(record)
            for cb in self.callbacks:
                cb.on_epoch_end(self, record)
        seconds = time.perf_counter() - start
        summary = self.summary(seconds)
        for cb in self.callbacks:
            cb.on_train_end(self, summary)
        return summary

    def summary(self, seconds: float) -> dict:
        h = self.history
        best = max(h, key=lambda r: (r["test_acc"], -r["epoch"]))
        last = h[-1]
        return {"params": self.model.parameter_count(), "epochs": last["epoch"],
                "final_train_loss": last["train_loss"], "final_train_acc": last["train_acc"],
                "final_test_loss": last["test_loss"], "final_test_acc": last["test_acc"],
                "best_test_acc": best["test_acc"], "best_epoch": best["epoch"],
                "seconds": seconds}


# ---------------------------------------------------------------- run directory
def prepare_run_dir(out, force: bool = False) -> Path:
    """Create ``out``; refuse a non-empty existing directory unless ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} exists and is a file; choose a directory path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise RunDirError(f"output directory {out} already exists and is not empty; choose another "
                          "--out or pass --force to overwrite it")
    out.mkdir(parents=True, exist_ok=True)
    return out


def default_run_dir(name: str, root: str | Path = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, i = Path(root) / f"{name}-{stamp}", 1
    while path.exists():
        i += 1
        path = Path(root) / f"{name}-{stamp}-{i}"
    return path


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


class RunWriter(Callback):
    """Writes the run directory as training goes (metrics appended and flushed per epoch)."""

    def __init__(self, run_dir: Path, figures: bool = True):
        self.run_dir, self.figures = Path(run_dir), figures

    def on_train_begin(self, trainer):
        meta = {"config": trainer.cfg.to_dict(), "rnnlab_version": __version__,
                "python": platform.python_version(), "numpy": np.__version__,
                "platform": platform.platform(), "git_commit": _git_commit(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_text(self.run_dir / "config.json", json.dumps(meta, indent=2))
        (self.run_dir / "metrics.jsonl").write_text("")

    def on_epoch_end(self, trainer, record):
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def on_train_end(self, trainer, summary):
        save_checkpoint(self.run_dir, trainer.model.state_dict(),
                        {"epoch": summary["epochs"], "config": trainer.cfg.to_dict()})
        atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2))
        if self.figures:
            from .plots import plot_hidden_states, plot_training_curves
            plot_training_curves(trainer.history, self.run_dir / "training_curves.png")
            plot_hidden_states(trainer.model, trainer.data, self.run_dir / "hidden_states.png")


def read_run_config(run_dir) -> TrainConfig:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist; pass the --out of a finished rnnlab train")
    path = run_dir / "config.json"
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not an rnnlab run directory (no config.json); pass the "
                          "--out of a finished rnnlab train")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        return TrainConfig.from_dict(meta["config"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise RunDirError(f"{path} is unreadable ({e.__class__.__name__}); the run directory is "
                          "damaged, train it again") from None


def load_run(run_dir):
    """Rebuild a saved run's model (weights from its checkpoint) and its data."""
    cfg = read_run_config(run_dir)
    arrays, _ = load_checkpoint(run_dir)
    data = load_data(cfg)
    model = build_model(cfg, data)
    try:
        model.load_state_dict(arrays)
    except InputError as e:
        from .errors import CheckpointError
        raise CheckpointError(f"checkpoint in {run_dir} does not fit its config.json ({e})") from None
    model.eval()
    return cfg, model, data
