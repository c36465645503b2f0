"""Opening a saved run: its model with the final weights, and its task, rebuilt from the record."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from rnnlab.checks import check_path
from rnnlab.data.task import Split, Task
from rnnlab.data.tasks import build_task
from rnnlab.errors import CheckpointError, InputError, RunDirError
from rnnlab.runs.checkpoint import atomic_write_bytes, load_checkpoint
from rnnlab.runs.files import CHECKPOINT, HELDOUT, METRICS_LOG, STATE, SUMMARY, read_jsonl
from rnnlab.runs.lock import refuse_while_written
from rnnlab.runs.record import read_record
from rnnlab.training.build import build_model, model_from_description
from rnnlab.training.evaluate import evaluate
from rnnlab.training.loop import Trainer
from rnnlab.training.threads import BlasThreads


def refuse_diverged(arrays: dict, what: str) -> None:
    """A diverged run's NaN weights are named as such, not as a checkpoint that does not fit."""
    broken = [k for k, v in arrays.items() if np.issubdtype(np.asarray(v).dtype, np.floating)
              and not np.all(np.isfinite(v))]
    if broken:
        raise CheckpointError(f"{what} holds NaN or infinite values ({broken[0]} first): its training "
                              "diverged; train again with the guard on (drop --no-guard) or a lower --lr")


def save_heldout(run_dir, task: Task) -> None:
    """Keep a task made in Python reopenable: its held-out split (a text task: its ids and vocabulary)."""
    arrays = {"X": task.test.X, "y": task.test.y}
    if task.test.lengths is not None:
        arrays["lengths"] = task.test.lengths
    if task.vocab:
        arrays["vocab"] = np.array(task.vocab)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(Path(run_dir) / HELDOUT, buf.getvalue())


def heldout_task(run_dir, description: dict) -> Task:
    """A task made in Python, reopened from its saved held-out split and its record: enough to
    evaluate and analyse the trained model (it trains no further)."""
    path = Path(run_dir) / HELDOUT
    if not path.is_file():
        raise RunDirError(f"{run_dir} was trained on a task made in Python and holds no {HELDOUT} (deleted, or "
                          "written before runs kept it); in Python, load the weights with "
                          "rnnlab.runs.load.load_weights(run_dir, model), then call "
                          "rnnlab.analysis.analyze.analyze(model, task)")
    try:
        with np.load(path, allow_pickle=False) as f:
            split = Split(f["X"], f["y"], f["lengths"] if "lengths" in f.files else None)
            vocab = tuple(f["vocab"].tolist()) if "vocab" in f.files else ()
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise RunDirError(f"{path} is unreadable ({e.__class__.__name__}); the run directory is damaged") from None
    broken = [name for name, a in (("X", split.X), ("y", split.y))
              if not np.issubdtype(a.dtype, np.number) or
              (np.issubdtype(a.dtype, np.inexact) and not np.isfinite(a).all())]
    if broken:
        raise CheckpointError(f"{path} holds NaN, infinite or non-numeric values in {broken[0]}, which no run "
                              "saves: the run directory is damaged; put the original file back, or train again")
    d = description
    try:
        return Task(d["name"], d["targets"], d["per_step"], d["input_size"], d["output_size"], split, split,
                    baseline=d.get("baseline"), baseline_note=d.get("baseline_note", ""), vocab=vocab)
    except (ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{path} does not fit the run's record ({e.__class__.__name__}); the run directory is "
                          "damaged") from None


def refuse_changed_data(record, task: Task) -> None:
    """A run trained on a --data file is not reopened on other data that happens to fit."""
    recorded = (record.task.get("settings") or {}).get("data_sha256")
    if recorded and task.settings.get("data_sha256") != recorded:
        raise CheckpointError(f"the data in {record.config.data} has changed since {record.run_dir} was trained on "
                              "it (its checksum differs); put the original file back, or train again on this data")


def refuse_other_task(run_dir, record, task: Task) -> None:
    """A run of a task made in Python is resumed only on that task: the checksum of its data
    (training arrays and held-out split, ``Task.arrays_sha256``) must be the one the run recorded;
    data of the same shape is not enough. A run recorded before checksums compares its held-out
    split with the one it saved (``HELDOUT``), value for value."""
    recorded = record.task.get("arrays_sha256")
    if isinstance(recorded, str):
        if task.arrays_sha256 != recorded:
            raise CheckpointError(f"the task given holds other data than {run_dir} was trained on (its checksum "
                                  "differs from the one the run recorded); resume it with the task it was trained "
                                  "on (the same arrays, or the same generator and seed)")
        return
    if not (Path(run_dir) / HELDOUT).is_file():
        return
    split = heldout_task(run_dir, record.task).test                   # read (and checked) as eval reads it
    saved = [split.X, split.y, split.lengths]
    given = [task.test.X, task.test.y, task.test.lengths]
    same = all((a is None and b is None) or (a is not None and b is not None and np.shape(a) == np.shape(b)
                                             and np.array_equal(a, b, equal_nan=True)) for a, b in zip(saved, given))
    if not same:
        raise CheckpointError(f"the task given holds other held-out data than {run_dir} was trained on (it differs "
                              f"from the run's {HELDOUT}); resume it with the task it was trained on (the same "
                              "arrays, or the same generator and seed)")


def load_run(run_dir):
    """Rebuild a saved run's model (weights from its checkpoint) and its task: (cfg, model, task).
    A task made in Python comes back from its saved held-out split, a model made in Python from its
    own description (an rnnlab model; a class of the user's own cannot be rebuilt here)."""
    record = read_record(run_dir)
    cfg = record.config
    refuse_while_written(run_dir, "open it")
    if not (Path(run_dir) / f"{CHECKPOINT}.json").is_file() and (Path(run_dir) / f"{STATE}.json").is_file():
        raise RunDirError(f"{run_dir} was interrupted before training finished, so it has no final "
                          f"weights yet; continue it with: {record.resume_hint()}")
    arrays, meta = load_checkpoint(run_dir)
    task = heldout_task(run_dir, record.task) if "task" in record.own else build_task(cfg)
    refuse_changed_data(record, task)
    if "vocab" in meta and meta["vocab"] != "".join(task.vocab):
        raise CheckpointError(f"the text behind {run_dir} has changed since training (its characters "
                              "differ from the checkpoint's vocabulary); train again on this text")
    refuse_diverged(arrays, f"the weights in {run_dir}")
    if "model" in record.own:
        model = model_from_description(record.model, task.vocab)
        if model is None:
            raise RunDirError(f"{run_dir} was trained on a {record.model.get('class', 'model')} of your own, "
                              "which rnnlab cannot rebuild; in Python, build the same model, load the weights "
                              "with rnnlab.runs.load.load_weights(run_dir, model), then call "
                              "rnnlab.analysis.analyze.analyze(model, task)")
    else:
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
    arrays, _ = load_checkpoint(check_path("run_dir", run_dir, owner="load_weights"))
    try:
        model.load_state_dict(arrays)
    except InputError as e:
        raise CheckpointError(f"the weights in {run_dir} do not fit this model ({e})") from None
    model.eval()
    return model


def evaluate_run(cfg, model, task) -> tuple[float, float, str]:
    """Held-out loss and metric of a loaded run, evaluated as its training did (on its recorded
    BLAS thread count, so the numbers are the ones it logged), and the metric's name."""
    threads = BlasThreads(cfg.blas_threads)
    threads.apply()
    try:
        return (*evaluate(model, task, streams=cfg.batch_size, window=cfg.window), task.metric)
    finally:
        threads.restore()


def finished_trainer(run_dir) -> Trainer:
    """A Trainer holding a finished run's final weights and its logged history: what drawing the
    figures, the analysis and the report of a run needs when its ending was interrupted."""
    cfg, model, task = load_run(run_dir)
    if cfg.curriculum and task.remake is None:        # a task made in Python: heldout.npz keeps its final
        cfg = cfg.replace(curriculum="")               # stage only, which no curriculum can shorten
    trainer = Trainer(task, model, config=cfg)
    trainer.history = read_jsonl(Path(run_dir) / METRICS_LOG)
    final = json.loads((Path(run_dir) / SUMMARY).read_text(encoding="utf-8")).get("final_length")
    if hasattr(trainer.batches, "enter_length") and final in trainer.batches.lengths:
        trainer.batches.enter_length(final)           # a curriculum run is analysed where it ended
    return trainer
