"""Run directories: what a training run leaves on disk, and reading it back.

``config.json`` (everything needed to re-run it), ``metrics.jsonl`` (one JSON object per epoch),
``probes.jsonl``, ``events.jsonl``, ``summary.json``, ``checkpoint.json`` + ``checkpoint-*.npz``
(final weights), ``state.json`` + ``state-*.npz`` (full training state for ``--resume``), and
the figures. Also: loading a saved run for ``eval``/``sample`` and resuming one.
"""

from __future__ import annotations

import copy
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from rnnlab.runs.checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from rnnlab.training.config import TrainConfig
from rnnlab.errors import CheckpointError, InputError, RunDirError
from rnnlab.runs.state import restore_trainer, trainer_state
from rnnlab.data.tasks import METRICS, build_task
from rnnlab.training.loop import Callback, Trainer, build_model, evaluate, evaluate_stream

# Every file a run (or a sweep) writes: --force removes these, and only these, so nothing of an
# old run is left for the new one to be confused with, and no file of the user's is touched.
RUN_FILES = ("config.json", "metrics.jsonl", "probes.jsonl", "events.jsonl", "summary.json",
             "checkpoint.json", "state.json", "analysis.json", "report.html",
             "training_curves.png", "hidden_states.png", "grad_norm.png", "gradient_flow.png",
             "hidden_norms.png", "unit_roles.png", "pca.png", "fixed_points.png",
             "sweep.csv", "sweep.md", "sweep.json", "sweep.html", "sweep_plan.json", "gradient_vs_length.png")
RUN_PATTERNS = ("checkpoint-*.npz", "state-*.npz", ".*.tmp*", "metric_vs_*.png", "heatmap_*.png",
                "tensorboard/events.out.tfevents.*", "tensorboard/hparams/events.out.tfevents.*")


def prepare_run_dir(out, force: bool = False) -> Path:
    """Create ``out``; refuse a non-empty existing directory unless ``force``, which removes the
    files an earlier run wrote there (and nothing else)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} exists and is a file; choose a directory path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise RunDirError(f"output directory {out} already exists and is not empty; choose another "
                          "--out or pass --force to overwrite it")
    out.mkdir(parents=True, exist_ok=True)
    if force:
        old = [out / n for n in RUN_FILES] + [p for pat in RUN_PATTERNS for p in out.glob(pat)]
        for path in old:
            if path.is_file():
                path.unlink()
    return out


def default_run_dir(name: str, root: str | Path = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, i = Path(root) / f"{name}-{stamp}", 1
    while path.exists():
        i += 1
        path = Path(root) / f"{name}-{stamp}-{i}"
    return path


def rnnlab_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("rnnlab")
    except PackageNotFoundError:                     # run from a source tree without installing
        return "unknown"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


class RunWriter(Callback):
    """Writes the run directory as training goes: logs appended per epoch, and every
    ``checkpoint_every`` epochs the full training state (``state.json`` + ``state-*.npz``),
    written after that epoch's logs so a resume never repeats or loses a row. At the end it
    draws the training figures, here or on ``pool`` (a ``workers.FigurePool``: the caller waits).

    The state is written at the first checkpoint epoch and then at most once per
    ``state_interval`` seconds: a sooner checkpoint epoch's state is kept in memory (replacing
    an older kept one) and written at the first step after the interval has passed, when
    training ends, or when an exception stops it (Ctrl-C, an error; ``rnnlab train`` takes
    SIGTERM as Ctrl-C). So Ctrl-C loses nothing but the epoch under way, a killed process
    (SIGKILL, or SIGTERM where nothing turns it into an exception) at most about
    ``state_interval`` seconds more, and a run of short epochs does not spend a sixth of its
    time writing states (the seed run: 50 states, 0.27 of 1.6 s)."""

    def __init__(self, run_dir: Path, figures: bool = True, resuming: bool = False, pool=None,
                 report: bool | None = None, state_interval: float = 1.0):
        self.run_dir, self.figures, self.resuming, self.pool = Path(run_dir), figures, resuming, pool
        self.report = report        # said in config.json: a run stopped before its report is finished by --resume
        self.state_interval = state_interval
        self._unsaved_state = None                          # (arrays, meta) of a checkpoint epoch not yet written
        self._state_written_at = None                       # perf_counter() of the last write; None: none yet

    def on_train_begin(self, trainer):
        if self.resuming:
            return
        meta = {"config": trainer.cfg.to_dict(), "task": trainer.task.describe(),
                "model": describe_model(trainer.model), "from_config": trainer.from_config,
                "rnnlab_version": rnnlab_version(),
                "python": platform.python_version(), "numpy": np.__version__,
                "platform": platform.platform(), "git_commit": _git_commit(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if self.report is not None:
            meta["report"] = self.report
        atomic_write_text(self.run_dir / "config.json", json.dumps(meta, indent=2))
        (self.run_dir / "metrics.jsonl").write_text("")
        (self.run_dir / "probes.jsonl").write_text("")

    def on_step_end(self, trainer):
        if self.pool is not None:
            self.pool.poll()                                # BLAS threads back once the workers are ready
        if self._unsaved_state is not None and time.perf_counter() - self._state_written_at >= self.state_interval:
            self._write_state()                             # a kept state, due now

    def on_epoch_end(self, trainer, record):
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if trainer.probes:
            with open(self.run_dir / "probes.jsonl", "a", encoding="utf-8") as f:
                f.writelines(json.dumps(p) + "\n" for p in trainer.probes)
        if trainer.events:
            with open(self.run_dir / "events.jsonl", "a", encoding="utf-8") as f:
                f.writelines(json.dumps(e) + "\n" for e in trainer.events)
        every = trainer.cfg.checkpoint_every
        if every and record["epoch"] % every == 0:
            arrays, meta = trainer_state(trainer)
            last = self._state_written_at
            if last is None or time.perf_counter() - last >= self.state_interval:
                self._unsaved_state = (arrays, meta)
                self._write_state()
            else:                                           # copied: training goes on changing them
                self._unsaved_state = copy.deepcopy((arrays, meta))

    def _write_state(self) -> None:
        state, self._unsaved_state = self._unsaved_state, None     # a write that fails is not retried
        if state is not None:
            save_checkpoint(self.run_dir, *state, name="state")
            self._state_written_at = time.perf_counter()

    def on_train_stopped(self, trainer):
        self._write_state()                                 # the last checkpoint epoch's, not a half epoch

    def on_train_end(self, trainer, summary):
        self._write_state()
        meta = {"epoch": summary["epochs"], "config": trainer.cfg.to_dict()}
        if trainer.task.vocab:
            meta["vocab"] = "".join(trainer.task.vocab)
        save_checkpoint(self.run_dir, trainer.model.state_dict(), meta)
        atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2))
        if self.figures:
            self.draw_training_figures(trainer)

    def draw_training_figures(self, trainer) -> None:
        """The figures of a finished training run: curves, hidden states, gradient traces."""
        from rnnlab.present import plots
        from rnnlab.present.figure_pool import drawer
        draw = drawer(self.pool)
        d = self.run_dir
        draw(plots.plot_training_curves, trainer.history, d / "training_curves.png",
             metric=trainer.metric, baseline=trainer.task.baseline)
        if hasattr(trainer.model, "rnn"):
            draw(plots.plot_hidden_states, plots.hidden_state_view(trainer.model, trainer.task),
                 d / "hidden_states.png")
        draw(plots.plot_grad_norm_trace, trainer.history, d / "grad_norm.png", trainer.cfg.clip,
             read_jsonl(d / "events.jsonl"))
        probes = read_jsonl(d / "probes.jsonl")
        if probes and probes[0]["steps"]:                 # per-step probes exist for recurrent layers
            draw(plots.plot_gradient_flow, probes, d / "gradient_flow.png")
            draw(plots.plot_hidden_norms, probes, d / "hidden_norms.png")


def describe_model(model) -> dict:
    """JSON facts about a model for config.json (class, cell, sizes, parameters)."""
    out = {"class": type(model).__name__, "params": int(model.parameter_count())}
    rnn = getattr(model, "rnn", None)
    if rnn is not None:
        out.update(cell=type(rnn).__name__.lower(), hidden=rnn.hidden_size, layers=rnn.num_layers,
                   bidirectional=rnn.bidirectional,
                   nonlinearity=getattr(rnn, "nonlinearity", "tanh"))
    return out


def read_jsonl(path) -> list[dict]:
    """The rows of a log; a cut last line (what a crash mid-write leaves) is skipped, damage
    anywhere else is an error."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except UnicodeDecodeError:
        raise RunDirError(f"{path} is not UTF-8 text; the run directory is damaged, train it again") from None
    rows = []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break                                  # cut mid-write by a crash: drop it
            raise RunDirError(f"{path} line {i + 1} is not valid JSON; the run directory is damaged, "
                              "train it again") from None
        if not isinstance(row, dict):
            raise RunDirError(f"{path} line {i + 1} is not a JSON object; the run directory is damaged, "
                              "train it again")
        rows.append(row)
    return rows


def run_model_config(run_dir) -> TrainConfig:
    """The run's config with the model fields the run really had: a model built in Python and
    handed to the Trainer is described in config.json's ``model`` entry, not in its config."""
    cfg = read_run_config(run_dir)
    try:
        meta = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
        m = meta["model"] if not meta.get("from_config", {}).get("model", True) else None
    except (ValueError, KeyError, TypeError):
        m = None
    if not m or "cell" not in m:
        return cfg
    return cfg.replace(model=m["cell"], hidden=m["hidden"], layers=m["layers"],
                       nonlinearity=m.get("nonlinearity", "tanh"), forget_bias=0.0)


def read_run_config(run_dir) -> TrainConfig:
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is a file, not a run directory; pass the --out directory of an "
                          "rnnlab train")
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist; pass the --out of a finished rnnlab train")
    path = run_dir / "config.json"
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not an rnnlab run directory (no config.json); pass the "
                          "--out of a finished rnnlab train")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        return TrainConfig.from_dict(_as_trained(meta["config"]))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise RunDirError(f"{path} is unreadable ({e.__class__.__name__}); the run directory is "
                          "damaged, train it again") from None


def refuse_diverged(arrays: dict, what: str) -> None:
    """A diverged run's NaN weights are named as such, not as a checkpoint that does not fit."""
    broken = [k for k, v in arrays.items() if np.issubdtype(np.asarray(v).dtype, np.floating)
              and not np.all(np.isfinite(v))]
    if broken:
        raise CheckpointError(f"{what} holds NaN or infinite values ({broken[0]} first): its training "
                              "diverged; train again with the guard on (drop --no-guard) or a lower --lr")


def _as_trained(config: dict) -> dict:
    """A config.json as today's checks read it: runs written before those checks could record
    settings their model ignored (relu on a gated model, a bidirectional char-LM); they are set
    to what was actually trained, so old runs still open."""
    if not isinstance(config, dict):
        return config
    c = dict(config)
    if c.get("model", "rnn") != "rnn" or c.get("task") == "charlm":
        c["nonlinearity"] = "tanh"
    if c.get("task") == "charlm":
        c["bidirectional"] = False
    return c


def resume_trainer(run_dir, task=None, model=None, loss=None) -> Trainer:
    """A Trainer positioned exactly where the run's last state checkpoint left it; log rows of
    later epochs (written before a crash) are dropped so they are not duplicated. A run of a
    user's own task and model is resumed by passing them again."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    if not (run_dir / "state.json").is_file():
        raise RunDirError(f"{run_dir} has no resumable state (no epoch finished, or it was trained "
                          "with --checkpoint-every 0); train it again")
    arrays, meta = load_checkpoint(run_dir, "state")
    epoch = meta["epoch"]
    if epoch >= cfg.epochs and (run_dir / "summary.json").is_file():
        raise RunDirError(f"{run_dir} already finished all {cfg.epochs} epochs; nothing to resume (to "
                          "train longer, start a new run with a larger --epochs)")
    logs = {name: read_jsonl(run_dir / name) for name in ("metrics.jsonl", "probes.jsonl", "events.jsonl")}
    history = [r for r in logs["metrics.jsonl"] if r["epoch"] <= epoch]
    if [r["epoch"] for r in history] != list(range(1, epoch + 1)):
        raise RunDirError(f"{run_dir / 'metrics.jsonl'} does not hold epochs 1-{epoch} of the saved "
                          "state; the run directory is damaged, train it again")
    refuse_diverged(arrays, f"the training state in {run_dir}")
    trainer = Trainer(task, model, loss, config=cfg)
    try:
        restore_trainer(trainer, arrays, meta, history)
    except InputError as e:                          # before any log is trimmed: nothing is lost
        raise CheckpointError(f"the training state in {run_dir} does not fit its config.json ({e}); it "
                              "comes from another run: put this run's own state files back, or train "
                              "again") from None
    for name, rows in logs.items():
        kept = [r for r in rows if r["epoch"] <= epoch]
        atomic_write_text(run_dir / name, "".join(json.dumps(r) + "\n" for r in kept))
    return trainer


def stopped_before_report(run_dir) -> bool:
    """Training finished, a report was asked for, and the run was stopped before writing it."""
    run_dir = Path(run_dir)
    if not (run_dir / "summary.json").is_file() or (run_dir / "report.html").is_file():
        return False
    try:
        return json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("report") is True
    except (OSError, ValueError):
        return False                                  # resume_trainer says what is wrong with it


def finished_trainer(run_dir) -> Trainer:
    """A Trainer holding a finished run's final weights and its logged history: what drawing the
    figures, the analysis and the report of a run needs when its ending was interrupted."""
    cfg, model, task = load_run(run_dir)
    trainer = Trainer(task, model, config=cfg)
    trainer.history = read_jsonl(Path(run_dir) / "metrics.jsonl")
    final = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8")).get("final_length")
    if hasattr(trainer.batches, "enter_length") and final in trainer.batches.lengths:
        trainer.batches.enter_length(final)           # a curriculum run is analysed where it ended
    return trainer


def load_run(run_dir):
    """Rebuild a saved run's model (weights from its checkpoint) and its task: (cfg, model, task)."""
    cfg = read_run_config(run_dir)
    made = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8")).get("from_config", {})
    if not (made.get("task", True) and made.get("model", True)):
        what = " and ".join(k for k in ("task", "model") if not made.get(k, True))
        raise RunDirError(f"{run_dir} was trained on a {what} made in Python, which its config cannot "
                          "rebuild; in Python, build the same model, load the weights with "
                          "rnnlab.runs.rundir.load_weights(run_dir, model), then call "
                          "rnnlab.analysis.analyze.analyze(model, task)")
    if not (Path(run_dir) / "checkpoint.json").is_file() and (Path(run_dir) / "state.json").is_file():
        raise RunDirError(f"{run_dir} was interrupted before training finished, so it has no final "
                          f"weights yet; continue it with: rnnlab train --resume {run_dir}")
    arrays, meta = load_checkpoint(run_dir)
    task = build_task(cfg)
    if "vocab" in meta and meta["vocab"] != "".join(task.vocab):
        raise CheckpointError(f"the text behind {run_dir} has changed since training (its characters "
                              "differ from the checkpoint's vocabulary); train again on this text")
    refuse_diverged(arrays, f"the weights in {run_dir}")
    model = build_model(cfg, task)
    try:
        model.load_state_dict(arrays)
    except InputError as e:
        raise CheckpointError(f"checkpoint in {run_dir} does not fit its config.json ({e})") from None
    model.eval()
    return cfg, model, task


def load_weights(run_dir, model):
    """Put a finished run's final weights into ``model`` (built the same way as for training) and
    return it in eval mode: how a run of a model or task made in Python is reopened."""
    arrays, _ = load_checkpoint(run_dir)
    try:
        model.load_state_dict(arrays)
    except InputError as e:
        raise CheckpointError(f"the weights in {run_dir} do not fit this model ({e})") from None
    model.eval()
    return model


def evaluate_run(cfg, model, task) -> tuple[float, float, str]:
    """Held-out loss and metric of a loaded run, and the metric's name."""
    if task.targets == "text":
        return (*evaluate_stream(model, task.test.X, cfg.batch_size, cfg.window), task.metric)
    return (*evaluate(model, task), task.metric)


def format_metric(metric: str, value: float) -> str:
    return METRICS[metric].format(value)
