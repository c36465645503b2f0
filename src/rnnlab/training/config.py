"""Training configuration: one frozen dataclass, validated once, and the named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from rnnlab.checks import check_choice, check_float, check_int, setting
from rnnlab.data.neurogym import FIXATION_WEIGHT, parse_env_kwargs
from rnnlab.data.tasks import TASKS, task_entry_name
from rnnlab.errors import InputError, warn_user
from rnnlab.nn.init import INIT_SCHEMES

MODELS = ("rnn", "lstm", "gru", "ctrnn", "transformer")
OPTIMIZER_NAMES = ("sgd", "adam", "adagrad", "rmsprop")
SCHEDULES = ("step", "cosine", "constant")
MAX_BLAS_THREADS = 256


def _f(default, help: str):
    """A config field with its one-line help (shown by ``rnnlab train --help``)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    task: str = _f("mean-sign", " | ".join(t if t != "neurogym" else "neurogym:ENV_ID" for t in TASKS))
    data: str = _f("", "train on your own arrays: an .npz file with X (N, T, D), y and optional lengths")
    model: str = _f("rnn", "rnn | lstm | gru (recurrent cells), ctrnn (continuous-time rate network) or "
                           "transformer (causal self-attention)")
    hidden: int = _f(64, "hidden units per layer and direction")
    layers: int = _f(2, "stacked recurrent layers")
    nonlinearity: str = _f("tanh", "tanh or relu (vanilla RNN); relu, tanh or softplus (ctrnn's rate function)")
    bidirectional: bool = _f(False, "add a reverse-direction pass per layer")
    d_model: int = _f(64, "transformer: width of every block (--hidden applies to the recurrent cells)")
    heads: int = _f(4, "transformer: attention heads (must divide --d-model)")
    context: int = _f(0, "transformer: longest input it attends over (0 = the task's length, or the LM window)")
    dt: float = _f(20.0, "ctrnn: Euler step, in the unit of --tau (ms)")
    tau: float = _f(100.0, "ctrnn: time constant of every unit (must exceed --dt)")
    rec_noise: float = _f(0.0, "ctrnn: recurrent noise std, continuous-time convention (sqrt(2 tau/dt) per step)")
    input_noise: float = _f(0.0, "ctrnn: input noise std, continuous-time convention")
    dale: float = _f(0.0, "ctrnn: Dale's law with this fraction of excitatory units, e.g. 0.8 (0 = off)")
    spectral_radius: float = _f(0.0, "ctrnn: scale the initial recurrent matrix to this spectral radius "
                                     "(0 = 1.5 under Dale's law, else the init's own)")
    readout: str = _f("all", "ctrnn: all | excitatory (read out from excitatory units only; needs --dale)")
    density: float = _f(1.0, "ctrnn: keep each recurrent connection with this probability (a fixed random mask)")
    self_connections: bool = _f(True, "ctrnn: let a unit connect to itself (--no-self-connections: none does)")
    areas: str = _f("", "ctrnn: units per area, e.g. '48,16' (areas in unit order; with --area-density)")
    area_density: str = _f("", "ctrnn: density into area i from area j, row by row, e.g. '1,0.1,0.3,1'")
    rec_mask: str = _f("", "ctrnn: .npy file of 0/1, (hidden, hidden): recurrent weights that exist")
    input_mask: str = _f("", "ctrnn: .npy file of 0/1, (hidden, inputs): input weights that exist")
    output_mask: str = _f("", "ctrnn: .npy file of 0/1, (outputs, hidden): readout weights that exist")
    rate_l2: float = _f(0.0, "ctrnn: penalty on the mean squared rate, logged apart from the task loss")
    weight_l1: float = _f(0.0, "penalty on the sum of |w| over every weight matrix, logged apart")
    weight_l2: float = _f(0.0, "penalty on the sum of w^2 over every weight matrix, logged apart")
    dropout: float = _f(0.2, "between layers and before the readout")
    init: str = _f("xavier", "pytorch | xavier | orthogonal | identity")
    forget_bias: float = _f(0.0, "LSTM: start the forget-gate bias at this value (0 = leave the init)")
    optimizer: str = _f("adam", "sgd | adam | adagrad | rmsprop")
    lr: float = _f(1e-3, "initial learning rate")
    momentum: float = _f(0.0, "SGD / RMSprop momentum")
    nesterov: bool = _f(False, "Nesterov momentum (SGD)")
    weight_decay: float = _f(0.0, "L2 penalty added to gradients")
    schedule: str = _f("step", "step | cosine | constant (stepped once per epoch)")
    lr_step: int = _f(20, "step schedule: epochs between decays")
    lr_gamma: float = _f(0.5, "step schedule: decay factor")
    clip: float = _f(0.0, "clip gradients to this global L2 norm (0 = off)")
    clip_value: float = _f(0.0, "clamp each gradient entry to +-this (0 = off)")
    epochs: int = _f(50, "training epochs")
    batch_size: int = _f(32, "sequences per mini-batch")
    batches_per_epoch: int = _f(10, "random mini-batches per epoch (0 = one full shuffled pass)")
    train_size: int = _f(5000, "training sequences")
    test_size: int = _f(1000, "held-out test sequences")
    length: int = _f(20, "time steps per sequence (adding/temporal-order: T; copy: blanks T)")
    features: int = _f(10, "input features per step (mean-sign, tagging)")
    bits: int = _f(3, "flipflop: memory channels K (2^K stable states)")
    pulse_prob: float = _f(0.05, "flipflop: chance of a pulse per channel and step")
    curriculum: str = _f("", "train on these shorter lengths first, e.g. '10,20' (then --length)")
    curriculum_every: int = _f(0, "curriculum: epochs per stage (0 = advance on --curriculum-target)")
    curriculum_target: float = _f(0.0, "curriculum: advance once the test metric reaches this")
    env_kwargs: str = _f("", "neurogym: the task's keyword arguments as a JSON object, e.g. '{\"dt\": 100}'")
    fixation_weight: float = _f(FIXATION_WEIGHT, "neurogym: the loss's weight on fixation steps (1 on a choice)")
    text: str = _f("", "charlm: UTF-8 text file (empty = the Python standard library's sources)")
    corpus_chars: int = _f(2_000_000, "charlm: use at most this many characters of the text")
    embed: int = _f(32, "charlm: character embedding size")
    window: int = _f(100, "charlm: truncated-BPTT window (steps per batch)")
    guard: bool = _f(True, "catch NaN/inf and loss spikes: roll back, cut the learning rate, go on")
    spike_factor: float = _f(10.0, "guard: a loss above this x the median of the last 20 is a spike")
    max_recoveries: int = _f(5, "guard: give up after this many recoveries")
    lr_cut: float = _f(0.5, "guard: multiply the learning rate by this at each recovery")
    checkpoint_every: int = _f(1, "save the full training state every N epochs for --resume (0 = never); "
                                  "written at most once a second, the latest always when training ends or stops")
    probe_every: int = _f(10, "record per-step gradient/hidden-state probes every N iterations (0 = off)")
    seed: int = _f(0, "seeds initialisation, dropout masks and batch order")
    data_seed: int = _f(0, "seeds the train/test sequences (a fixed split)")
    dtype: str = _f("float32", "float32 or float64")
    blas_threads: int = _f(1, "BLAS threads for training's and scoring's matrix products; a run's bits "
                              "depend on it, so it is recorded and reused on resume (2 speeds up large "
                              "models on an idle machine)")

    def __post_init__(self):
        check_choice("task", task_entry_name(self.task), tuple(TASKS))
        if self.env_kwargs:
            parse_env_kwargs(self.env_kwargs)
        check_float("fixation_weight", self.fixation_weight, low=0.0, high=1.0)
        if self.data and self.task != "npz":
            raise InputError(f"{setting('data')} trains on your own arrays, so {setting('task')} must be 'npz' "
                             "(or left out), "
                             f"got {self.task!r}")
        if self.task == "npz" and not self.data:
            raise InputError(f"{setting('task', 'npz')} needs {setting('data', 'FILE.npz')} holding arrays X and y")
        check_int("bits", self.bits, minimum=1)
        for name in ("d_model", "heads"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("context", self.context, minimum=0)
        if self.model == "transformer" and self.d_model % self.heads:
            raise InputError(f"heads ({self.heads}) must divide d_model ({self.d_model}); e.g. {setting('heads', 4)} "
                             f"with {setting('d_model', 64)}")
        check_float("pulse_prob", self.pulse_prob, low=0.0, low_open=True, high=1.0)
        check_choice("model", self.model, MODELS)
        check_choice("nonlinearity", self.nonlinearity, ("tanh", "relu", "softplus"))
        if self.nonlinearity == "softplus" and self.model != "ctrnn":
            raise InputError(f"softplus is a rate function of the ctrnn; use {setting('model', 'ctrnn')} or "
                             f"{setting('nonlinearity', 'relu')}")
        self._check_rate_network()
        check_choice("init", self.init, INIT_SCHEMES)
        check_choice("optimizer", self.optimizer, OPTIMIZER_NAMES)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("dtype", self.dtype, ("float32", "float64"))
        for name in ("hidden", "layers", "epochs", "batch_size", "train_size", "test_size",
                     "length", "features", "lr_step", "corpus_chars", "embed", "window"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("batches_per_epoch", self.batches_per_epoch, minimum=0)
        check_int("probe_every", self.probe_every, minimum=0)
        check_int("checkpoint_every", self.checkpoint_every, minimum=0)
        check_int("max_recoveries", self.max_recoveries, minimum=0)
        check_float("spike_factor", self.spike_factor, low=1.0, low_open=True)
        check_float("lr_cut", self.lr_cut, low=0.0, low_open=True, high=1.0, high_open=True)
        check_int("seed", self.seed, minimum=0)
        check_int("data_seed", self.data_seed, minimum=0)
        check_int("blas_threads", self.blas_threads, minimum=1)
        if self.blas_threads > MAX_BLAS_THREADS:
            raise InputError(f"blas_threads must be at most {MAX_BLAS_THREADS}, got {self.blas_threads}; "
                             f"e.g. {setting('blas_threads', 2)}")
        check_float("lr", self.lr, low=0.0, low_open=True)
        check_float("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        check_float("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        check_float("weight_decay", self.weight_decay, low=0.0)
        check_float("lr_gamma", self.lr_gamma, low=0.0, low_open=True, high=1.0)
        check_float("clip", self.clip, low=0.0)
        check_float("clip_value", self.clip_value, low=0.0)
        check_float("forget_bias", self.forget_bias)
        pointless = [f for f in REFUSED_WHEN_UNUSED if f in self.unused_fields()
                     and getattr(self, f) != DEFAULTS[f]]
        if pointless:
            raise InputError(REFUSED_WHEN_UNUSED[pointless[0]](self))
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise InputError(f"nesterov needs optimizer 'sgd' with momentum > 0; set {setting('momentum')} "
                             f"or drop {setting('nesterov')}")
        if self.curriculum:
            try:
                lengths = [int(v) for v in self.curriculum.split(",")]
            except ValueError:
                raise InputError(f"curriculum must be comma-separated lengths like '10,20', got "
                                 f"{self.curriculum!r}") from None
            if self.task == "charlm":
                raise InputError(f"curriculum applies to sequence tasks; for charlm vary {setting('window')} instead")
            if lengths != sorted(set(lengths)) or lengths[0] < 1 or lengths[-1] >= self.length:
                raise InputError(f"curriculum lengths must rise strictly from 1 to below {setting('length')} "
                                 f"({self.length}), got {self.curriculum!r}")
            check_int("curriculum_every", self.curriculum_every, minimum=0)
            check_float("curriculum_target", self.curriculum_target)
            if not self.curriculum_every and not self.curriculum_target:
                raise InputError(f"a curriculum needs {setting('curriculum_every')} N or "
                                 f"{setting('curriculum_target')} X "
                                 "to know when to lengthen the sequences")

    def _check_rate_network(self) -> None:
        """The ctrnn's settings: one sentence per impossible value (the model's own checks repeat
        them for Python users, in their words)."""
        for name in ("dt", "tau"):
            check_float(name, getattr(self, name), low=0.0, low_open=True)
        if not self.tau > self.dt:
            raise InputError(f"{setting('tau', self.tau)} must be larger than {setting('dt', self.dt)}: the "
                             f"Euler step must be shorter than the time constant; e.g. {setting('dt', 20)} "
                             f"with {setting('tau', 100)}")
        for name in ("rec_noise", "input_noise", "spectral_radius", "rate_l2", "weight_l1", "weight_l2"):
            value = getattr(self, name)
            check_float(name, value)
            if value < 0:
                noun = {"rec_noise": "noise std", "input_noise": "noise std",
                        "spectral_radius": "spectral radius"}.get(name, "penalty")
                raise InputError(f"{setting(name, value)} is below zero; a {noun} must be 0 or more")
        check_float("dale", self.dale)
        if self.dale != 0 and not 0 < self.dale < 1:
            raise InputError(f"{setting('dale', self.dale)} is the fraction of excitatory units and must lie "
                             f"strictly between 0 and 1 (0 turns Dale's law off); 0.8 is the usual choice")
        check_choice("readout", self.readout, ("all", "excitatory"))
        if self.readout == "excitatory" and not self.dale:
            raise InputError(f"{setting('readout', 'excitatory')} reads out from the excitatory units, which "
                             f"only Dale's law defines; add {setting('dale', 0.8)}")
        check_float("density", self.density, low=0.0, low_open=True, high=1.0)
        if bool(self.areas) != bool(self.area_density):
            raise InputError(f"areas need both {setting('areas', '48,16')} and {setting('area_density', '1,0.1,0.3,1')}"
                             f" (the density into each area from each area, row by row)")
        if self.areas:
            self.area_layout()

    def area_layout(self) -> tuple[list[int], list[list[float]]]:
        """``areas`` and ``area_density`` as sizes and an A x A table (checked against ``hidden``)."""
        try:
            sizes = [int(v) for v in self.areas.split(",")]
            flat = [float(v) for v in self.area_density.split(",")]
        except ValueError:
            raise InputError(f"areas are comma-separated unit counts and area densities comma-separated numbers, "
                             f"got {self.areas!r} and {self.area_density!r}") from None
        if sum(sizes) != self.hidden or min(sizes) < 1:
            raise InputError(f"the areas' sizes {sizes} must be positive and add up to {setting('hidden', self.hidden)}"
                             f" (they add up to {sum(sizes)})")
        A = len(sizes)
        if len(flat) != A * A or any(not 0 <= v <= 1 for v in flat):
            raise InputError(f"{A} areas need {A * A} densities in [0, 1] (into area i from area j, row by row), "
                             f"got {self.area_density!r}")
        return sizes, [flat[i * A:(i + 1) * A] for i in range(A)]

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build from a plain dict, rejecting unknown keys (config.json, presets, overrides)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown config field(s) {', '.join(unknown)}; "
                             f"known fields are: {', '.join(sorted(known))}")
        return cls(**d)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes``. A change of model drops the old model's own settings that
        ``changes`` does not set (the charlm preset's LSTM forget bias, the better preset's relu),
        so ``--preset charlm --model gru`` or a sweep over models starts from valid settings."""
        if changes.get("model", self.model) != self.model:
            changes = {**{k: v for k, v in MODEL_ONLY_DEFAULTS.items()
                          if k not in changes and getattr(self, k) != v}, **changes}
        return self.from_dict({**dataclasses.asdict(self), **changes})

    @property
    def curriculum_lengths(self) -> list[int]:
        """Sequence length of every stage, the task's own length last."""
        return ([int(v) for v in self.curriculum.split(",")] if self.curriculum else []) + [self.length]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def unused_fields(self, own=(), task: dict | None = None) -> set[str]:
        """Fields whose value does nothing in this run (see ``unused_fields``)."""
        return unused_fields(self.to_dict(), own, task)


DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}
RATE_FIELDS = {"dt", "tau", "rec_noise", "input_noise", "dale", "spectral_radius", "readout", "density",
               "self_connections", "areas", "area_density", "rec_mask", "input_mask", "output_mask", "rate_l2"}
MODEL_FIELDS = {"model", "hidden", "layers", "nonlinearity", "bidirectional", "d_model", "heads", "context",
                "dropout", "init", "forget_bias", "embed"} | RATE_FIELDS
OPTIMIZER_FIELDS = {"optimizer", "lr", "momentum", "nesterov", "weight_decay"}


def unused_fields(values: dict, own=(), task: dict | None = None) -> set[str]:
    """The one predicate for "this setting does nothing in this run": another task's data, another
    model's, optimizer's or schedule's settings, the guard's when it is off, and everything that
    built a part the user brought (``own``: any of "task", "model", "optimizer"). ``task``, the
    trained task's description (``Task.describe()``), tells a task made in Python apart. A run's
    record keeps only the other fields; the config refuses a few of these when set (see
    ``REFUSED_WHEN_UNUSED``)."""
    v = {**DEFAULTS, **values}
    name = task_entry_name(v["task"]) if task_entry_name(v["task"]) in TASKS else None
    text = (task or {}).get("kind") == "lm" if "task" in own or name is None else name == "charlm"
    every_data = {f for entry in TASKS.values() for f in entry.reads} | {"text", "data"}
    unused = set(every_data) - (set() if "task" in own else set(TASKS[name].reads if name else ()))
    if "task" in own:
        unused |= {"task", "dtype"} if "model" in own else {"task"}
        if v["curriculum"]:
            unused.discard("length")                      # the curriculum ends at the task's length
        if text:
            unused.discard("window")
        if (task or {}).get("source") == "generator" and v["batches_per_epoch"] == 0:
            unused.discard("train_size")                  # a generator's epoch: train_size sequences
    if v["batches_per_epoch"] == 0 and "task" not in own:
        unused.discard("train_size")                      # one pass over train_size sequences per epoch
    if "model" in own:
        unused |= MODEL_FIELDS
    else:
        transformer = v["model"] == "transformer"
        unused |= {"hidden", "nonlinearity", "bidirectional", "forget_bias", "embed", "init"} if transformer \
            else {"d_model", "heads", "context"}
        unused |= {"embed"} if not text else set()
        unused |= {"forget_bias"} if v["model"] != "lstm" else set()
        unused |= {"nonlinearity"} if v["model"] not in ("rnn", "ctrnn") or (text and v["model"] == "rnn") else set()
        unused |= RATE_FIELDS if v["model"] != "ctrnn" else set()
        unused |= {"bidirectional"} if text else set()
    if "optimizer" in own:
        unused |= OPTIMIZER_FIELDS
    else:
        unused |= {"momentum"} if v["optimizer"] not in ("sgd", "rmsprop") else set()
        unused |= {"nesterov"} if v["optimizer"] != "sgd" else set()
    unused |= {"lr_step", "lr_gamma"} if v["schedule"] != "step" else set()
    unused |= {"curriculum_every", "curriculum_target"} if not v["curriculum"] else set()
    unused |= {"spike_factor", "max_recoveries", "lr_cut"} if not v["guard"] else set()
    return unused


def warn_doing_nothing(names, why: str, values: dict | None = None) -> None:
    """One warning naming settings that were set yet do nothing in this run, and why (with their
    values when ``values`` is given): the command line's pointless flags, a config's settings that a
    part made in Python overrides."""
    if names:
        shown = ", ".join(setting(n) if values is None else setting(n, values[n]) for n in names)
        one = len(names) == 1
        warn_user(f"{shown} {'does' if one else 'do'} nothing in this run ({why}); drop "
                  f"{'it' if one else 'them'}")


# Settings a config refuses when they would do nothing (a user who sets them expects an effect),
# with the sentence that says so; the others are only left out of the run's record.
REFUSED_WHEN_UNUSED = {
    "forget_bias": lambda c: f"forget_bias applies to the LSTM only (model is {c.model!r}); drop "
                             f"{setting('forget_bias')} or use {setting('model', 'lstm')}",
    "nonlinearity": lambda c: f"nonlinearity applies to the vanilla RNN outside the char-LM and to the ctrnn "
                              f"(here model {c.model!r}, task {c.task!r}, which keep tanh); "
                              f"drop {setting('nonlinearity')}",
    "bidirectional": lambda c: ("a causal transformer" if c.model == "transformer" else
                                "a character LM predicts each character from the ones before it, so it")
    + f" reads left to right only; drop {setting('bidirectional')}",
    **{name: (lambda c, name=name: f"{setting(name)} belongs to the continuous-time rate network (model is "
                                   f"{c.model!r}, which has no " + ("noise" if "noise" in name else "such setting") +
                                   f"); use {setting('model', 'ctrnn')} or drop {setting(name)}")
       for name in sorted(RATE_FIELDS)},
    "env_kwargs": lambda c: f"env_kwargs applies to NeuroGym tasks only (task is {c.task!r}); drop "
                            f"{setting('env_kwargs')} or use {setting('task', 'neurogym:ENV_ID')}",
}


# Settings that belong to one model, at the values every other model needs (see replace).
MODEL_ONLY_DEFAULTS = {"forget_bias": 0.0, "nonlinearity": "tanh"}

PRESETS: dict[str, TrainConfig] = {
    # The published seed experiment (REFERENCE.md): 2-layer tanh RNN, 13,314 parameters,
    # Adam 1e-3 halved every 20 epochs, 50 epochs of 10 random batches of 32.
    "seed": TrainConfig(),
    # A better recipe on the same 5,000 sequences. Every 13k-parameter variant tried reaches 100%
    # train accuracy and memorises; the task only needs an integrator, so a tiny identity-initialised
    # ReLU RNN (IRNN, Le et al. 2015; 178 parameters) generalises far better: ~99.0% test.
    "better": TrainConfig(layers=1, hidden=8, nonlinearity="relu", init="identity", dropout=0.0,
                          lr=1e-2, schedule="cosine", clip=1.0, epochs=60, batch_size=64,
                          batches_per_epoch=0),
    # Character-level language model on the default corpus: 1-layer LSTM-256, 64-step windows of
    # 32 parallel streams, 100 windows per epoch (204,800 characters). On a 100-second budget this
    # beat a 2-layer LSTM-256 at lr 2e-3 (3.58 vs 2.09 bits/char) and a 2-layer LSTM-128 (2.16).
    "charlm": TrainConfig(task="charlm", model="lstm", hidden=256, layers=1, embed=32,
                          dropout=0.0, init="pytorch", forget_bias=1.0, optimizer="adam", lr=5e-3,
                          schedule="cosine", clip=1.0, epochs=30, batch_size=32,
                          batches_per_epoch=100, window=64),
    # The 3-bit flip-flop (Sussillo & Barak 2013): a 1-layer tanh RNN trained on fresh batches;
    # its fixed points at zero input are the 2^K memory states and the saddles between them.
    # Orthogonal init: with xavier, seed 1 of 4 stored its memories as period-2 cycles (an
    # eigenvalue of -1.57 at every memory point), so no stable fixed point; orthogonal: 4 of 4.
    "flipflop": TrainConfig(task="flipflop", hidden=64, layers=1, dropout=0.0, lr=1e-2,
                            init="orthogonal",
                            schedule="cosine", clip=1.0, epochs=30, batch_size=64,
                            batches_per_epoch=20, length=100, test_size=500),
}
