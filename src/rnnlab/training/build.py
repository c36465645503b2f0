"""Building a run's parts from a ``TrainConfig`` when the user brings none: the model for a task's
kind, its default loss, the optimizer, the learning-rate schedule and the batch source."""

from __future__ import annotations

import sys
import time

import numpy as np

from rnnlab.checks import check_input_file, check_memory, setting
from rnnlab.data.batches import ArrayBatches, Curriculum, GeneratorBatches, TextStream
from rnnlab.data.metrics import METRICS
from rnnlab.data.task import Task
from rnnlab.errors import InputError
from rnnlab.nn import wiring
from rnnlab.nn.heads import CharLM, SequenceClassifier, SequenceRegressor, SequenceTagger, StepRegressor
from rnnlab.nn.losses import class_weighted_cross_entropy, mse, softmax_cross_entropy
from rnnlab.nn.optim import OPTIMIZERS, CosineLR, Schedule, StepLR
from rnnlab.nn.transformer import Transformer
from rnnlab.training.config import TrainConfig

# The head for each kind of task (rnnlab.checks.KINDS).
HEADS = {"classify": SequenceClassifier, "tag": SequenceTagger, "regress": SequenceRegressor,
         "regress-steps": StepRegressor, "lm": CharLM}


GATES = {"rnn": 1, "gru": 3, "lstm": 4, "ctrnn": 1}


def model_bytes(cfg: TrainConfig, task: Task) -> float:
    """About what training ``build_model(cfg, task)`` takes: its parameters five times (weights,
    gradients, two Adam moments, the guard's snapshot) and one batch's cached activations; an
    estimate to refuse the impossible before allocating, not an accounting."""
    text = task.targets == "text"
    T, B, K = (cfg.window if text else task.seq_length), cfg.batch_size, task.output_size
    if cfg.model == "transformer":
        d = cfg.d_model
        params = cfg.layers * 12 * d * d + (max(T, cfg.context) + task.input_size + K) * d
        activations = B * T * cfg.layers * d * 16
    else:
        G, H, dirs = GATES[cfg.model], cfg.hidden, 2 if cfg.bidirectional else 1
        width = cfg.embed if text else task.input_size
        params = (task.input_size * cfg.embed if text else 0) + (H * dirs + 1) * K
        for layer in range(cfg.layers):
            params += dirs * G * H * ((width if layer == 0 else H * dirs) + H + 2)
        activations = B * T * cfg.layers * dirs * (G + 2) * H + B * T * K
    return np.dtype(cfg.dtype).itemsize * (5 * params + 3 * activations)


def build_model(cfg: TrainConfig, task: Task):
    width = cfg.hidden if cfg.model != "transformer" else cfg.d_model
    check_memory(model_bytes(cfg, task), f"the model ({cfg.model}, {cfg.layers} layer(s) x {width:,} units, "
                 f"{task.output_size:,} outputs)", f"lower {setting('hidden')}, {setting('layers')} or "
                 f"{setting('batch_size')} (or the number of classes in the data)")
    common = dict(cell=cfg.model, dropout=cfg.dropout, init=cfg.init,
                  forget_bias=cfg.forget_bias if cfg.forget_bias else None,
                  dtype=np.dtype(cfg.dtype), seed=cfg.seed)
    if cfg.model == "transformer":
        need = cfg.window if task.targets == "text" else task.seq_length    # positions it must attend over
        if cfg.context and cfg.context < need:
            raise InputError(f"{setting('context', cfg.context)} is shorter than the {need} positions the task "
                             f"feeds; raise it to {setting('context', need)} or more (0 picks it for you)")
        context = cfg.context or (max(cfg.window, 100) if task.targets == "text" else need)
        return Transformer(task.input_size, cfg.d_model, task.output_size, cfg.layers, cfg.heads, context,
                           kind=task.kind, vocab=task.vocab, dropout=cfg.dropout, dtype=np.dtype(cfg.dtype),
                           seed=cfg.seed)
    if cfg.model == "ctrnn":
        common.update(rate_network(cfg, task))
    if task.kind == "lm":                  # the RNN char-LM keeps tanh; a CTRNN's rate function is the config's
        return HEADS["lm"](task.output_size, cfg.embed, cfg.hidden, cfg.layers, vocab=task.vocab,
                           nonlinearity=cfg.nonlinearity if cfg.model == "ctrnn" else None, **common)
    return HEADS[task.kind](
        task.input_size, cfg.hidden, task.output_size, cfg.layers,
        nonlinearity=cfg.nonlinearity, bidirectional=cfg.bidirectional, **common)


def rate_network(cfg: TrainConfig, task: Task) -> dict:
    """A CTRNN head's own arguments from the config: time, noise, Dale's law, the readout, the
    masks (named ones drawn from the run's wiring stream [seed, 3], files read and checked) and
    the rate penalty."""
    H, K = cfg.hidden, task.output_size
    D = cfg.embed if task.kind == "lm" else task.input_size          # the char-LM's cell reads its embedding
    rng = np.random.default_rng([cfg.seed, 3])                   # the wiring stream
    rec = np.ones((H, H))
    if cfg.density < 1:
        rec = rec * wiring.density_mask((H, H), cfg.density, rng)
    if not cfg.self_connections:
        rec = rec * wiring.no_self_connections(H)
    if cfg.areas:
        rec = rec * wiring.area_mask(*cfg.area_layout(), rng)
    masks = {name: load_mask(getattr(cfg, name), name, shape) for name, shape in
             (("rec_mask", (H, H)), ("input_mask", (H, D)), ("output_mask", (K, H))) if getattr(cfg, name)}
    if "rec_mask" in masks:
        rec = rec * masks["rec_mask"]
    rate = dict(dt=cfg.dt, tau=cfg.tau, rec_noise=cfg.rec_noise, input_noise=cfg.input_noise,
                dale=cfg.dale or None, spectral_radius=cfg.spectral_radius or None,
                rec_mask=None if rec.all() else rec, input_mask=masks.get("input_mask"), rate_l2=cfg.rate_l2)
    return {"rate": rate, "readout": cfg.readout, "output_mask": masks.get("output_mask")}


def load_mask(path: str, name: str, shape) -> np.ndarray:
    """A 0/1 mask from a .npy file, one sentence if it is missing, unreadable, or the wrong shape."""
    check_input_file(path, setting(name), f"give {setting(name)} a .npy file of 0 and 1 with shape {shape}")
    try:
        m = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"{setting(name, path)} is not a readable .npy array ({e}); save the mask with "
                         "numpy.save") from None
    return wiring.check_mask(setting(name), m, shape)


def default_loss(task: Task):
    """loss(outputs, targets, mask) -> (mean loss, dL/d outputs): MSE for real values,
    cross-entropy for classes and text, weighted per class where the task says so."""
    if task.class_weights:
        return class_weighted_cross_entropy(task.class_weights)
    return mse if task.targets == "real" else softmax_cross_entropy


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


def build_batches(cfg: TrainConfig, task: Task):
    """The batch source for a task: text windows, generated batches or mini-batches of arrays,
    behind a length curriculum when the config asks for one."""
    seed = [cfg.seed, 1]                                         # the batch-order stream

    def source(t: Task):
        if t.targets == "text":
            return TextStream(t, cfg.batch_size, cfg.window, cfg.batches_per_epoch)
        if t.generator is not None:
            return GeneratorBatches(t, cfg.batch_size, cfg.batches_per_epoch, seed,
                                    fallback=max(1, cfg.train_size // cfg.batch_size))
        if cfg.batch_size > len(t.train):
            raise InputError(f"batch_size ({cfg.batch_size}) is larger than the {len(t.train)} "
                             f"training sequences; lower {setting('batch_size')} or give more data")
        return ArrayBatches(t, cfg.batch_size, cfg.batches_per_epoch, seed)
    if not cfg.curriculum:
        return source(task)
    if task.seq_length is not None and cfg.curriculum_lengths[-1] != task.seq_length:
        raise InputError(f"the curriculum ends at {setting('length', cfg.curriculum_lengths[-1])} but the task's "
                         f"sequences have {task.seq_length} steps; set {setting('length', task.seq_length)}")
    return Curriculum(task, cfg.curriculum_lengths, source, cfg.curriculum_every,
                      cfg.curriculum_target, METRICS[task.metric].higher_is_better)


def ready_compiled_cells(model) -> float:
    """Make the model's compiled kernels (fused cells, the Transformer's fused passes) ready before
    the training clock starts (a first run on a machine compiles them, ~2.5 s; later runs load them
    from Numba's cache, ~0.5 s), so a run's "seconds" is its training alone and compares across
    models and runs (``rnnlab compare`` gives every model the LSTM's time). Returns the seconds it
    took, 0 without compiled kernels."""
    if not hasattr(model, "modules"):
        return 0.0
    cells = sys.modules.get("rnnlab.nn.cells.fused")
    kinds = () if cells is None else (cells.FusedLSTMCell, cells.FusedGRUCell)
    types = {type(m.cell) for m in model.modules() if isinstance(getattr(m, "cell", None), kinds)}
    dtype = np.dtype(getattr(model, "dtype", np.float32))
    passes = dtype == np.float32 and any(getattr(m, "fused", False) for m in model.modules())   # a Transformer's
    if not types and not passes:
        return 0.0
    start = time.perf_counter()
    if types:
        cells.warm_up(types, dtypes=(dtype.type,))
    if passes:
        sys.modules["rnnlab.nn.transformer_fused"].warm_up()
    return time.perf_counter() - start


def model_from_description(d: dict, vocab=()):
    """An rnnlab model rebuilt from its own ``describe()`` (as a run's record holds it), to load its
    weights into; None for a class rnnlab does not know (a user's own)."""
    dtype, cls = np.dtype(d.get("dtype", "float32")), d.get("class")
    if cls == "Transformer":
        return Transformer(d["input_size"], d["d_model"], d["output_size"], d["layers"], d["heads"], d["context"],
                           kind=d["kind"], vocab=vocab, dropout=d["dropout"], dtype=dtype)
    heads = {h.__name__: h for h in HEADS.values()}
    if cls not in heads or "cell" not in d:
        return None
    common = dict(cell=d["cell"], dropout=d["dropout"], init=d["init"], forget_bias=d.get("forget_bias"),
                  dtype=dtype)
    if d["cell"] == "ctrnn":            # its weights are loaded next: masks live in them (zeros)
        common["rate"] = {k: d[k] for k in ("dt", "tau", "rec_noise", "input_noise", "rate_l2", "dale",
                                            "spectral_radius")}
        common["readout"] = d.get("readout", "all")
    if cls == "CharLM":
        return CharLM(d["input_size"], d["embed"], d["hidden"], d["layers"], vocab=vocab,
                      nonlinearity=d.get("nonlinearity"), **common)
    return heads[cls](d["input_size"], d["hidden"], d["output_size"], d["layers"], bidirectional=d["bidirectional"],
                      nonlinearity=d.get("nonlinearity", "tanh"), **common)
