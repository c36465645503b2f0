"""Resuming an interrupted run exactly where its last saved training state left it."""

from __future__ import annotations

import json
from pathlib import Path

from rnnlab.errors import CheckpointError, InputError, RunDirError
from rnnlab.runs.checkpoint import atomic_write_text, load_checkpoint
from rnnlab.runs.files import CONFIG, LOGS, METRICS_LOG, REPORT, STATE, SUMMARY, read_jsonl
from rnnlab.runs.load import refuse_changed_data, refuse_diverged, refuse_other_task
from rnnlab.runs.lock import refuse_while_written
from rnnlab.runs.record import read_record, trained_task
from rnnlab.runs.state import restore_trainer
from rnnlab.training.loop import Trainer


def resume_trainer(run_dir, task=None, model=None, loss=None) -> Trainer:
    """A Trainer positioned exactly where the run's last state checkpoint left it; log rows of
    later epochs (written before a crash) are dropped so they are not duplicated. A run of a
    user's own task and model is resumed by passing them again."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    cfg = record.config
    refuse_while_written(run_dir, "resume it")
    given = {"task": task, "model": model, "loss": loss}
    missing = sorted(part for part in record.own if given.get(part) is None)
    if missing:
        what = " and ".join(missing)
        raise RunDirError(f"{run_dir} was trained on a {what} made in Python, which its record cannot rebuild "
                          f"for training; resume it in Python with the same {what}: "
                          f"rnnlab.resume({str(run_dir)!r}, {', '.join(f'{m}={m}' for m in missing)})")
    if not (run_dir / f"{STATE}.json").is_file():
        raise RunDirError(f"{run_dir} has no resumable state (no epoch finished, or it was trained "
                          "with --checkpoint-every 0); train it again")
    arrays, meta = load_checkpoint(run_dir, STATE)
    refuse_foreign_state(run_dir, record, meta)
    epoch = meta["epoch"]
    if epoch >= cfg.epochs and (run_dir / SUMMARY).is_file():
        raise RunDirError(f"{run_dir} already finished all {cfg.epochs} epochs; nothing to resume (to "
                          "train longer, start a new run with a larger --epochs)")
    logs = {name: read_jsonl(run_dir / name) for name in LOGS}
    history = [r for r in logs[METRICS_LOG] if r["epoch"] <= epoch]
    if [r["epoch"] for r in history] != list(range(1, epoch + 1)):
        raise RunDirError(f"{run_dir / METRICS_LOG} does not hold epochs 1-{epoch} of the saved "
                          "state; the run directory is damaged, train it again")
    refuse_diverged(arrays, f"the training state in {run_dir}")
    trainer = Trainer(task, model, loss, config=cfg)
    refuse_changed_data(record, trainer.task)
    if "task" in record.own:
        refuse_other_task(run_dir, record, trained_task(trainer))
    try:
        restore_trainer(trainer, arrays, meta, history)
    except (InputError, KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        # before any log is trimmed: nothing is lost
        raise CheckpointError(f"the training state in {run_dir} does not fit its config.json ({e}); it "
                              "comes from another run: put this run's own state files back, or train "
                              "again") from None
    for name, rows in logs.items():
        if not (run_dir / name).is_file():           # never written (no guard event yet): nothing to trim,
            continue                                  # and a file made here would be one the run never recorded
        kept = [r for r in rows if r["epoch"] <= epoch]
        atomic_write_text(run_dir / name, "".join(json.dumps(r) + "\n" for r in kept))
    return trainer


def refuse_foreign_state(run_dir: Path, record, meta: dict) -> None:
    """The training state is this run's own (its run id) and its counters are ones this run can
    have, before anything is built from it."""
    where = f"the training state in {run_dir}"
    if record.run_id is not None and meta.get("run_id") != record.run_id:
        raise CheckpointError(f"{where} belongs to another run (its run id is not the one in {CONFIG}); put this "
                              "run's own state files back, or train again")
    counters = {k: meta.get(k) for k in ("epoch", "iteration", "accepted")}
    bad = next((k for k, v in counters.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0), None)
    if bad is None and not 1 <= counters["epoch"] <= record.config.epochs:
        bad = "epoch"
    if bad is not None:
        raise CheckpointError(f"{where} is damaged: its {bad} is {counters[bad]!r}, which this run of "
                              f"{record.config.epochs} epochs cannot have; train it again")


def stopped_before_report(run_dir) -> bool:
    """Training finished, a report was asked for, and the run was stopped before writing it."""
    run_dir = Path(run_dir)
    if not (run_dir / SUMMARY).is_file() or (run_dir / REPORT).is_file():
        return False
    try:
        return json.loads((run_dir / CONFIG).read_text(encoding="utf-8")).get("report") is True
    except (OSError, ValueError):
        return False                                  # resume_trainer says what is wrong with it
