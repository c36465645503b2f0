"""The one training loop (every model and task), its building blocks and callbacks.

What a run writes to disk, and reading it back, lives in ``rundir.py``.
"""

from __future__ import annotations

import time

import numpy as np

from ._alloc import tune_allocator
from .config import TrainConfig
from .errors import InputError
from .losses import mse, softmax_cross_entropy
from .models import CharLM, SequenceClassifier, SequenceRegressor, SequenceTagger
from .guards import Guard, TrainingDiverged
from .probes import probe_record, recurrent_spectra
from .optim import (OPTIMIZERS, CosineLR, Schedule, StepLR, clip_grad_norm, clip_grad_value,
                    global_norm)
from .tasks import Dataset, make_task


# ---------------------------------------------------------------- building blocks from a config
# The metric each kind of task reports, and whether higher is better.
METRICS = {"classify": ("acc", True), "tag": ("acc", True), "regress": ("mse", False),
           "lm": ("bpc", False)}


def load_data(cfg: TrainConfig, length: int | None = None) -> Dataset:
    if cfg.task == "charlm":
        from .corpus import default_corpus, lm_dataset, read_text
        text = read_text(cfg.text) if cfg.text else default_corpus(cfg.corpus_chars)[0]
        text = text[:cfg.corpus_chars]
        need = 10 * cfg.batch_size * (cfg.window + 1)
        return lm_dataset(text, min_chars=need)
    if cfg.text:
        raise InputError("--text only applies to --task charlm; drop it or set --task charlm")
    return make_task(cfg.task, cfg.train_size, cfg.test_size, length or cfg.length, cfg.features,
                     cfg.data_seed, np.dtype(cfg.dtype))


def build_model(cfg: TrainConfig, data: Dataset):
    common = dict(cell=cfg.model, dropout=cfg.dropout, init=cfg.init,
                  forget_bias=cfg.forget_bias if cfg.forget_bias else None,
                  dtype=np.dtype(cfg.dtype), seed=cfg.seed)
    if data.kind == "lm":
        return CharLM(data.output_size, cfg.embed, cfg.hidden, cfg.layers, vocab=data.vocab, **common)
    cls = {"classify": SequenceClassifier, "tag": SequenceTagger, "regress": SequenceRegressor}[data.kind]
    return cls(data.input_size, cfg.hidden, data.output_size, cfg.layers,
               nonlinearity=cfg.nonlinearity, bidirectional=cfg.bidirectional, **common)


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


def task_loss(kind: str, out, y):
    """(mean loss, dL/d(out)) for a task kind: MSE for regression, cross-entropy otherwise."""
    return mse(out, y) if kind == "regress" else softmax_cross_entropy(out, y)


def _score(kind: str, out, y) -> float:
    """Sum whose mean over targets is the metric (correct predictions, or squared errors)."""
    if kind == "regress":
        return float(((out - y) ** 2).sum())
    return float((out.argmax(axis=-1) == y).sum())


def evaluate(model, X, y, kind: str = "classify", batch_size: int = 1000) -> tuple[float, float]:
    """Mean loss and metric (accuracy, or MSE for regression) over (X, y) in eval mode."""
    was_training = model.training
    model.eval()
    total_loss = score = count = 0.0
    for i in range(0, len(X), batch_size):
        out = model.forward(X[i:i + batch_size])
        yb = y[i:i + batch_size]
        loss, _ = task_loss(kind, out, yb)
        total_loss += loss * yb.size
        score += _score(kind, out, yb)
        count += yb.size
    model.train(was_training)
    return total_loss / count, score / count


def stream_windows(ids: np.ndarray, rows: int, window: int):
    """Cut a 1-D stream into ``rows`` parallel streams, then consecutive (x, y) windows."""
    length = len(ids) // rows
    grid = ids[:rows * length].reshape(rows, length)            # (B, L)
    return [(grid[:, s:s + window], grid[:, s + 1:s + window + 1])
            for s in range(0, length - window, window)]


def evaluate_stream(model, ids, rows: int, window: int) -> tuple[float, float]:
    """Mean cross-entropy (nats) and bits per character of a CharLM over a whole stream,
    state carried across windows; the model's own training state is left as it was."""
    was_training, saved = model.training, (model.stateful, model.state)
    model.eval()
    model.stateful, model.state = True, None
    total = count = 0.0
    for x, y in stream_windows(ids, min(rows, max(1, len(ids) // (window + 1))), window):
        loss, _ = softmax_cross_entropy(model.forward(x), y)
        total += loss * y.size
        count += y.size
    model.train(was_training)
    model.stateful, model.state = saved
    loss = total / max(count, 1)
    return float(loss), float(loss / np.log(2))


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def _pack_optimizer(sd: dict, prefix: str, arrays: dict) -> dict:
    """Optimizer state_dict -> JSON part (lr, steps, array names); arrays go into ``arrays``."""
    names = {}
    for group, state in sd["state"].items():
        for n, a in state.items():
            arrays[f"{prefix}::{group}::{n}"] = a
            names.setdefault(group, []).append(n)
    return {"lr": sd["lr"], "steps": sd["steps"], "names": names}


def _unpack_optimizer(packed: dict, prefix: str, arrays: dict) -> dict:
    return {"lr": packed["lr"], "steps": packed["steps"],
            "state": {g: {n: arrays[f"{prefix}::{g}::{n}"] for n in ns}
                      for g, ns in packed["names"].items()}}


# ---------------------------------------------------------------- callbacks
class Callback:
    def on_train_begin(self, trainer: "Trainer") -> None: ...
    def on_epoch_end(self, trainer: "Trainer", record: dict) -> None: ...
    def on_train_end(self, trainer: "Trainer", summary: dict) -> None: ...


# ---------------------------------------------------------------- the training loop
class Trainer:
    """Trains ``build_model(cfg)`` on ``cfg.task``; ``fit()`` returns the summary dict.

    The one training loop for every model and task. A batch is either a mini-batch of sequences
    (random, or a shuffled full pass) or, for the language model, the next window of every
    parallel text stream, with the recurrent state carried from the previous window.
    """

    def __init__(self, cfg: TrainConfig, callbacks=(), data: Dataset | None = None):
        tune_allocator()
        self.cfg = cfg
        self.stage, self.epochs_in_stage = 0, 0                   # curriculum position
        self._datasets = {}
        if data is None and cfg.curriculum:
            data = self._stage_data()
        self.data = data if data is not None else load_data(cfg)
        self.kind = self.data.kind
        self.metric, self.higher_is_better = METRICS[self.kind]
        self.model = build_model(cfg, self.data)
        self.optimizer = build_optimizer(cfg, self.model)
        self.schedule = build_schedule(cfg, self.optimizer)
        self.rng = np.random.default_rng([cfg.seed, 1])          # batch order stream
        self.callbacks = list(callbacks)
        self.history: list[dict] = []
        self.iteration = 0                                        # steps tried
        self.accepted = 0                                         # steps applied
        self.guard = Guard(cfg.spike_factor, 20, cfg.max_recoveries, cfg.lr_cut) if cfg.guard else None
        self.events: list[dict] = []                              # guard events of the last epoch
        self.probes: list[dict] = []                              # probes.jsonl rows of the last epoch
        if self.kind == "lm":
            self.model.stateful = True
            self._windows = stream_windows(self.data.X_train, cfg.batch_size, cfg.window)
            self._pos = 0

    def _stage_data(self) -> Dataset:
        length = self.cfg.curriculum_lengths[self.stage]
        if length not in self._datasets:
            self._datasets[length] = load_data(self.cfg, length)
        return self._datasets[length]

    def _advance_curriculum(self, test_metric: float) -> None:
        """Lengthen the sequences after ``curriculum_every`` epochs or once the target is met."""
        cfg = self.cfg
        if not cfg.curriculum or self.stage == len(cfg.curriculum_lengths) - 1:
            return
        self.epochs_in_stage += 1
        target = cfg.curriculum_target
        met = bool(target) and (test_metric >= target if self.higher_is_better else test_metric <= target)
        if met or (cfg.curriculum_every and self.epochs_in_stage >= cfg.curriculum_every):
            self.stage, self.epochs_in_stage = self.stage + 1, 0
            self.data = self._stage_data()

    def epoch_batches(self):
        """(x, y) batches of one epoch."""
        cfg, k = self.cfg, self.cfg.batches_per_epoch
        if self.kind == "lm":
            return self._next_windows(k)
        n, bs = len(self.data.X_train), cfg.batch_size
        if k:   # the seed's epoch: k random mini-batches
            idx = [self.rng.choice(n, bs, replace=False) for _ in range(k)]
        else:
            perm = self.rng.permutation(n)
            idx = [perm[i:i + bs] for i in range(0, n, bs)]
        return [(self.data.X_train[i], self.data.y_train[i]) for i in idx]

    def _next_windows(self, k):
        """Continue the text streams; at their end, start over with a fresh state."""
        out = []
        for _ in range(k or len(self._windows) - self._pos):
            if self._pos == len(self._windows):
                self._pos = 0
                self.model.reset_state()
            out.append(self._windows[self._pos])
            self._pos += 1
        return out

    def train_step(self, xb, yb, probe: bool = False) -> dict:
        """Forward, loss, BPTT, clipping, update. With ``probe``, the result also holds a
        probes.jsonl row read from this step's own forward/backward arrays."""
        model, cfg = self.model, self.cfg
        model.rnn.probe = probe
        out = model.forward(xb)
        loss, d_out = task_loss(self.kind, out, yb)
        model.zero_grad()
        model.backward(d_out, input_grad=False)
        model.rnn.probe = False
        param_norms = {k: float(np.linalg.norm(g)) for k, g in model.grads.items()} if probe else None
        raw_norm = global_norm(model.grads)
        if self.guard is not None and (problem := self.guard.check(loss, raw_norm)):
            return {"event": self.guard.recover(self, problem, loss, raw_norm)}   # nothing applied
        if cfg.clip_value:
            clip_grad_value(model.grads, cfg.clip_value)
        if cfg.clip:
            # after value-clipping the norm has changed; otherwise reuse the one just computed
            after = clip_grad_norm(model.grads, cfg.clip, None if cfg.clip_value else raw_norm)[1]
        else:
            after = global_norm(model.grads) if cfg.clip_value else raw_norm
        before = raw_norm
        result = {"loss": loss, "score": _score(self.kind, out, yb), "count": int(yb.size),
                  "grad_norm": before, "grad_norm_clipped": after}
        if probe:
            result["probe"] = probe_record(model, self.iteration, len(self.history) + 1,
                                           dict(result, param_grad_norms=param_norms))
        if self.guard is not None:
            self.guard.before_update(self, loss, before)
        self.optimizer.step()
        return result

    def evaluate(self) -> tuple[float, float]:
        d = self.data
        if self.kind == "lm":
            return evaluate_stream(self.model, d.X_test, self.cfg.batch_size, self.cfg.window)
        return evaluate(self.model, d.X_test, d.y_test, self.kind)

    def fit(self) -> dict:
        cfg, m = self.cfg, self.metric
        for cb in self.callbacks:
            cb.on_train_begin(self)
        start = time.perf_counter() - (self.history[-1]["seconds"] if self.history else 0.0)
        for epoch in range(len(self.history) + 1, cfg.epochs + 1):
            self.model.train()
            lr = self.optimizer.lr
            steps, self.probes, self.events = [], [], []
            for x, y in self.epoch_batches():
                every = cfg.probe_every
                step = self.train_step(x, y, probe=bool(every) and self.iteration % every == 0)
                self.iteration += 1
                if "event" in step:
                    step["event"]["accepted_steps_before"] = self.accepted
                    self.events.append(step["event"])
                    continue
                self.accepted += 1
                if "probe" in step:
                    self.probes.append(step.pop("probe"))
                steps.append(step)
            if not steps:
                raise TrainingDiverged(f"no step of epoch {epoch} could be applied; lower --lr "
                                       f"(now {self.optimizer.lr:.3g}) or set --clip 1")
            self.schedule.step()
            test_loss, test_metric = self.evaluate()
            n = sum(s["count"] for s in steps)
            train_loss = float(np.mean([s["loss"] for s in steps]))
            train_metric = {"acc": sum(s["score"] for s in steps) / n,
                            "mse": sum(s["score"] for s in steps) / n,
                            "bpc": train_loss / np.log(2)}[m]
            record = {
                "epoch": epoch, "length": self.data.X_train.shape[1] if self.kind != "lm" else cfg.window,
                "train_loss": train_loss, f"train_{m}": train_metric,
                "test_loss": test_loss, f"test_{m}": test_metric, "lr": lr,
                "seconds": time.perf_counter() - start,
                "iter_loss": [s["loss"] for s in steps],
                "iter_grad_norm": [s["grad_norm"] for s in steps],
            }
            if cfg.clip or cfg.clip_value:
                record["iter_grad_norm_clipped"] = [s["grad_norm_clipped"] for s in steps]
            if self.events:
                record["events"] = len(self.events)
            if cfg.probe_every and (epoch in (1, cfg.epochs) or epoch % max(1, cfg.epochs // 10) == 0):
                record["spectra"] = recurrent_spectra(self.model.rnn)   # ~10 times a run: they drift slowly
            self.history.append(record)
            self._advance_curriculum(test_metric)
            for cb in self.callbacks:
                cb.on_epoch_end(self, record)
        summary = self.summary(time.perf_counter() - start)
        for cb in self.callbacks:
            cb.on_train_end(self, summary)
        return summary

    # ---- everything the rest of a run depends on, for an exact resume
    def state_arrays(self) -> tuple[dict, dict]:
        """(arrays, JSON metadata) of the full training state at an epoch boundary."""
        arrays = {f"model::{k}": v for k, v in self.model.params.items()}
        meta = {"epoch": len(self.history), "iteration": self.iteration, "accepted": self.accepted,
                "curriculum": {"stage": self.stage, "epochs_in_stage": self.epochs_in_stage},
                "optimizer": _pack_optimizer(self.optimizer.state_dict(), "opt", arrays),
                "schedule": self.schedule.state_dict(),
                "rng": {"batches": self.rng.bit_generator.state,
                        "modules": [m.rng.bit_generator.state for m in self._rng_modules()]}}
        if self.kind == "lm":
            meta["lm_pos"] = self._pos
            meta["lm_state"] = self.model.state is not None
            if self.model.state is not None:
                for i, a in enumerate(_as_tuple(self.model.state)):
                    arrays[f"lm_state::{i}"] = a
        if self.guard is not None:
            g = self.guard
            snaps = []
            for i, (it, weights, opt) in enumerate(g._snapshots):
                arrays.update({f"guard{i}::model::{k}": v for k, v in weights.items()})
                snaps.append({"iteration": it, "optimizer": _pack_optimizer(opt, f"guard{i}::opt", arrays)})
            meta["guard"] = {"recent_loss": list(g.recent_loss), "recent_norm": list(g.recent_norm),
                             "since": g._since, "base_lr": g._base_lr, "events": g.events,
                             "initial_level": g.initial_level,
                             "snapshots": snaps}
        return arrays, meta

    def restore(self, arrays: dict, meta: dict, history: list[dict]) -> None:
        """Continue from ``state_arrays()`` output and the metrics of the epochs it covers."""
        self.model.load_state_dict({k[len("model::"):]: v for k, v in arrays.items()
                                    if k.startswith("model::")})
        self.optimizer.load_state_dict(_unpack_optimizer(meta["optimizer"], "opt", arrays))
        self.schedule.load_state_dict(meta["schedule"])
        self.rng.bit_generator.state = meta["rng"]["batches"]
        for m, st in zip(self._rng_modules(), meta["rng"]["modules"], strict=True):
            m.rng.bit_generator.state = st
        self.iteration, self.accepted = meta["iteration"], meta["accepted"]
        self.history = list(history)
        self.stage = meta["curriculum"]["stage"]
        self.epochs_in_stage = meta["curriculum"]["epochs_in_stage"]
        if self.cfg.curriculum:
            self.data = self._stage_data()
        if self.kind == "lm":
            self._pos = meta["lm_pos"]
            parts = tuple(arrays[f"lm_state::{i}"] for i in range(self.model.rnn.cell.n_carry))
            self.model.state = (parts if len(parts) > 1 else parts[0]) if meta["lm_state"] else None
        if self.guard is not None and "guard" in meta:
            g, gm = self.guard, meta["guard"]
            g.recent_loss.extend(gm["recent_loss"])
            g.recent_norm.extend(gm["recent_norm"])
            g._since, g._base_lr, g.events = gm["since"], gm["base_lr"], gm["events"]
            g.initial_level = gm["initial_level"]
            for i, snap in enumerate(gm["snapshots"]):
                weights = {k[len(f"guard{i}::model::"):]: v for k, v in arrays.items()
                           if k.startswith(f"guard{i}::model::")}
                g._snapshots.append((snap["iteration"], weights,
                                     _unpack_optimizer(snap["optimizer"], f"guard{i}::opt", arrays)))

    def _rng_modules(self):
        return [m for m in self.model.modules() if isinstance(getattr(m, "rng", None), np.random.Generator)]

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
                "baseline": self.data.baseline, "baseline_note": self.data.baseline_note,
                "seconds": seconds}
