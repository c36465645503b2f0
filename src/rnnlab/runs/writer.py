"""``RunWriter``: the callback that writes a run directory as training goes."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from rnnlab.processes import interrupts_held
from rnnlab.runs.checkpoint import save_checkpoint
from rnnlab.runs.files import (
    CHECKPOINT,
    CONFIG,
    EVENTS_LOG,
    HELDOUT,
    METRICS_LOG,
    PROBES_LOG,
    STATE,
    SUMMARY,
    read_jsonl,
    record_written,
    write_json,
)
from rnnlab.runs.load import save_heldout
from rnnlab.runs.record import read_record, run_record, trained_task, write_record
from rnnlab.runs.state import trainer_state
from rnnlab.training.loop import Callback


class RunWriter(Callback):
    """Writes the run directory as training goes: the record (config.json) at the start, logs
    appended per epoch, and every ``checkpoint_every`` epochs the full training state
    (``state.json`` + ``state-*.npz``), written after that epoch's logs so a resume never repeats
    or loses a row; at the end the final weights and summary.json. It keeps the probes and events
    it wrote (``probes``, ``events``; a resumed run's earlier ones read back once) so the figures
    are drawn from memory.

    The state is written at the first checkpoint epoch and then at most once per
    ``state_interval`` seconds: a sooner checkpoint epoch's state is kept in memory (replacing
    an older kept one) and written at the first step after the interval has passed, when
    training ends, or when an exception stops it (Ctrl-C, an error; ``rnnlab train`` takes
    SIGTERM as Ctrl-C). An epoch's rows and a state are written with Ctrl-C held
    (``processes.interrupts_held``), so Ctrl-C loses nothing but the epoch under way, a killed process
    (SIGKILL, or SIGTERM where nothing turns it into an exception) at most about
    ``state_interval`` seconds more, and a run of short epochs does not spend a sixth of its
    time writing states (the seed run: 50 states, 0.27 of 1.6 s).

    ``interface`` ("cli" or "python") is recorded so that advice about the run names flags or
    arguments."""

    def __init__(self, run_dir, resuming: bool = False, report: bool | None = None,
                 state_interval: float = 1.0, interface: str = "python"):
        self.run_dir, self.resuming = Path(run_dir), resuming
        self.report, self.interface = report, interface
        self.state_interval = state_interval
        self.probes: list[dict] = []
        self.events: list[dict] = []
        self._unsaved_state = None                          # (arrays, meta) of a checkpoint epoch not yet written
        self._state_written_at = None                       # perf_counter() of the last write; None: none yet
        self.run_id = None                                  # the record's, once training begins

    def on_train_begin(self, trainer):
        if self.resuming:
            self.probes, self.events = read_jsonl(self.run_dir / PROBES_LOG), read_jsonl(self.run_dir / EVENTS_LOG)
            self.run_id = read_record(self.run_dir).run_id
            return
        record_written(self.run_dir, [CONFIG, METRICS_LOG, PROBES_LOG, HELDOUT])    # recorded before writing
        record = run_record(trainer, interface=self.interface, report=self.report)
        self.run_id = record["run_id"]
        write_record(self.run_dir, record)
        if not trainer.from_config["task"]:
            save_heldout(self.run_dir, trained_task(trainer))
        (self.run_dir / METRICS_LOG).write_text("")
        (self.run_dir / PROBES_LOG).write_text("")

    def on_step_end(self, trainer):
        if self._unsaved_state is not None and time.perf_counter() - self._state_written_at >= self.state_interval:
            self._write_state()                             # a kept state, due now

    def on_epoch_end(self, trainer, result):
        with interrupts_held():                             # the epoch's rows and its state, whole
            self._log_epoch(trainer, result)

    def _log_epoch(self, trainer, result):
        record = result.record
        with open(self.run_dir / METRICS_LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if result.probes:
            with open(self.run_dir / PROBES_LOG, "a", encoding="utf-8") as f:
                f.writelines(json.dumps(p) + "\n" for p in result.probes)
            self.probes += result.probes
        if result.events:
            if not self.events:
                record_written(self.run_dir, [EVENTS_LOG])
            with open(self.run_dir / EVENTS_LOG, "a", encoding="utf-8") as f:
                f.writelines(json.dumps(e) + "\n" for e in result.events)
            self.events += result.events
        every = trainer.cfg.checkpoint_every
        if every and record["epoch"] % every == 0:
            arrays, meta = trainer_state(trainer)
            if self.run_id is not None:
                meta["run_id"] = self.run_id                # resume takes only this run's own states
            last = self._state_written_at
            if last is None or time.perf_counter() - last >= self.state_interval:
                self._unsaved_state = (arrays, meta)
                self._write_state()
            else:                                           # copied: training goes on changing them
                self._unsaved_state = copy.deepcopy((arrays, meta))

    def _write_state(self) -> None:
        state, self._unsaved_state = self._unsaved_state, None     # a write that fails is not retried
        if state is not None:
            with interrupts_held():
                save_checkpoint(self.run_dir, *state, name=STATE)
                record_written(self.run_dir, [f"{STATE}.json", f"{STATE}-*.npz"])
            self._state_written_at = time.perf_counter()

    def on_train_stopped(self, trainer):
        self._write_state()                                 # the last checkpoint epoch's, not a half epoch

    def on_train_end(self, trainer, summary):
        self._write_state()
        meta = {"epoch": summary["epochs"], "config": trainer.cfg.to_dict()}
        if trainer.task.vocab:
            meta["vocab"] = "".join(trainer.task.vocab)
        save_checkpoint(self.run_dir, trainer.model.state_dict(), meta)
        write_json(self.run_dir / SUMMARY, summary)
        record_written(self.run_dir, [f"{CHECKPOINT}.json", f"{CHECKPOINT}-*.npz", SUMMARY])
