"""A run's record, ``config.json``: what was trained, as the trained objects describe themselves.

The task, model, optimizer, schedule and loss each describe themselves (``describe()``); the
config contributes only the fields that were applied (``training.config.unused_fields`` is the
one predicate for the rest). A run built in Python records its own task and model as built, so
its report and doctor never show a setting that did not apply. The record also says where the
run was made (the command line or Python), so advice names flags or arguments accordingly.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnlab.checks import setting
from rnnlab.data.batches import Curriculum
from rnnlab.errors import RunDirError
from rnnlab.runs.files import CONFIG, write_json
from rnnlab.training.config import DEFAULTS, TrainConfig, unused_fields

PARTS = ("task", "model", "loss", "optimizer")       # what a user may bring instead of the config


def rnnlab_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # start-up time: 15 ms, for a run's record only
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


def describe_loss(loss) -> dict:
    """A loss is a function: its name and where it lives (and its class weights, when it has them)."""
    out = {"name": getattr(loss, "__name__", type(loss).__name__), "module": getattr(loss, "__module__", None)}
    if getattr(loss, "class_weights", None) is not None:
        out["class_weights"] = list(loss.class_weights)
    return out


def trained_task(trainer):
    """The task as the run is defined (a curriculum's last stage, not the stage it starts at):
    what the record describes and ``heldout.npz`` keeps, so eval and analyze use the final length."""
    return trainer.batches.final_task if isinstance(trainer.batches, Curriculum) else trainer.task


def own_parts(from_config: dict) -> set[str]:
    """The parts a user brought (built in Python) instead of having the config build them."""
    return {k for k, built in from_config.items() if not built}


def run_record(trainer, *, interface: str = "python", report: bool | None = None) -> dict:
    """config.json's content for a trainer about to train."""
    task = trained_task(trainer).describe()
    own = own_parts(trainer.from_config)
    unused = unused_fields(trainer.cfg.to_dict(), own, task)
    config = {k: v for k, v in trainer.cfg.to_dict().items() if k not in unused}
    record = {"config": config, "task": task, "model": trainer.model.describe(),
              "optimizer": trainer.optimizer.describe(), "schedule": trainer.schedule.describe(),
              "loss": describe_loss(trainer.loss), "from_config": dict(trainer.from_config),
              "interface": interface, "rnnlab_version": rnnlab_version(),
              "python": platform.python_version(), "numpy": np.__version__,
              "platform": platform.platform(), "git_commit": _git_commit(),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "run_id": uuid.uuid4().hex}          # its training states carry it: resume takes only its own
    if report is not None:
        record["report"] = report        # a run stopped before its report is finished by --resume
    return record


def write_record(run_dir, record: dict) -> None:
    write_json(Path(run_dir) / CONFIG, record)


@dataclass(frozen=True)
class RunRecord:
    """A run directory's config.json, read back: the config the run can be rebuilt from (the
    applied fields; the rest at their defaults, which by definition do nothing) and the parts'
    descriptions as written."""
    run_dir: Path
    config: TrainConfig
    applied: dict                                  # the config fields the run applied, as written
    task: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    optimizer: dict = field(default_factory=dict)
    schedule: dict = field(default_factory=dict)
    loss: dict = field(default_factory=dict)
    from_config: dict = field(default_factory=dict)
    interface: str = "cli"
    report: bool | None = None
    run_id: str | None = None                      # None: a run written before runs had one

    @property
    def own(self) -> set[str]:
        return own_parts(self.from_config)

    def setting(self, name: str, value=...) -> str:
        """Advice in the run's own language: a flag for a command-line run, an argument for a
        Python one."""
        cli = self.interface == "cli"
        if name == "model" and "model" in self.own and not cli:
            name = "cell"                              # the argument of the head the user built
        return setting(name, value, cli=cli)

    def resume_hint(self) -> str:
        """How to continue this run, in its own language."""
        if self.interface == "cli" or not self.own - {"loss"}:
            return f"rnnlab train --resume {self.run_dir}"
        return (f"rnnlab.resume({str(self.run_dir)!r}, " + ", ".join(f"{p}={p}" for p in sorted(self.own)) + ")")

    @property
    def lr(self) -> float:
        """The starting learning rate: the optimizer's as built."""
        return float(self.optimizer.get("lr", self.config.lr))

    @property
    def cell(self) -> str:
        """rnn | lstm | gru, or the model's class for a model without a recurrent stack."""
        return self.model.get("cell") or ("transformer" if self.model.get("class") == "Transformer"
                                          else self.model.get("class", self.config.model))


def read_record(run_dir) -> RunRecord:
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is a file, not a run directory; pass the directory a run wrote "
                          "(rnnlab train --out, rnnlab.train's run_dir)")
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist; pass the directory a run wrote "
                          "(rnnlab train --out, rnnlab.train's run_dir)")
    path = run_dir / CONFIG
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not an rnnlab run directory (no config.json); pass the directory "
                          "a run wrote (rnnlab train --out, rnnlab.train's run_dir)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        raw, from_config = meta["config"], meta.get("from_config") or {}
        if not isinstance(raw, dict) or not isinstance(from_config, dict):
            raise TypeError
        own, task = own_parts(from_config), meta.get("task") or {}
        # runs written before the record kept only applied fields hold every field, some set to
        # what their model ignored (relu on a gated model): the same predicate drops those
        unknown = set(raw) - set(DEFAULTS)
        applied = {k: v for k, v in raw.items() if k not in unused_fields({k: v for k, v in raw.items()
                                                                           if k not in unknown}, own, task)}
        config = TrainConfig.from_dict(applied)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise RunDirError(f"{path} is unreadable ({e.__class__.__name__}); the run directory is "
                          "damaged, train it again") from None
    parts = {k: meta.get(k) if isinstance(meta.get(k), dict) else {}
             for k in ("task", "model", "optimizer", "schedule", "loss")}
    return RunRecord(run_dir, config, applied, from_config=from_config,
                     interface=meta.get("interface", "cli"), report=meta.get("report"),
                     run_id=meta.get("run_id") if isinstance(meta.get("run_id"), str) else None, **parts)


def read_run_config(run_dir) -> TrainConfig:
    """The config a saved run can be rebuilt from."""
    return read_record(run_dir).config
