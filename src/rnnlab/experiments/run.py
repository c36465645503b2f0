"""One complete run: train, then write everything ``rnnlab train`` writes -- the record, logs,
checkpoints, summary, training figures, the diagnosis, the dynamics analysis with its figures,
and the report -- so ``rnnlab eval | analyze | report | doctor DIR`` work on it, whether it was
started on the command line or in Python::

    summary = rnnlab.train(task, model, config=cfg, run_dir="runs/mine")
    summary = rnnlab.resume("runs/mine", task, model)        # after an interruption
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from rnnlab.analysis.analyze import analyze, analyze_run, write_analysis
from rnnlab.analysis.doctor import write_diagnosis
from rnnlab.analysis.dynamics import hidden_state_view
from rnnlab.checks import check_bool, check_list, check_path
from rnnlab.errors import InputError
from rnnlab.present.analysis_figures import draw_analysis_figures
from rnnlab.present.figure_pool import FigurePool, figure_workers_checked
from rnnlab.present.plots import draw_training_figures
from rnnlab.present.report import write_report
from rnnlab.runs.files import (
    ANALYSIS,
    DIAGNOSIS,
    EVENTS_LOG,
    LOCK,
    MANIFEST,
    PROBES_LOG,
    REPORT,
    TENSORBOARD_FILES,
    check_run_dir,
    default_run_dir,
    prepare_run_dir,
    read_jsonl,
    record_written,
    remove_run_files,
)
from rnnlab.runs.load import finished_trainer
from rnnlab.runs.lock import RunLock, refuse_while_written
from rnnlab.runs.record import read_record
from rnnlab.runs.resume import resume_trainer
from rnnlab.runs.writer import RunWriter
from rnnlab.training.loop import Trainer
from rnnlab.training.stack import StackTrainer


def train(task=None, model=None, loss=None, optimizer=None, *, config=None, run_dir=None, callbacks=(),
          report: bool = True, force: bool = False, figure_workers: int | None = None) -> dict:
    """Train like ``Trainer(task, model, loss, optimizer, config=config).fit()`` and write a complete
    run directory at ``run_dir`` (default ``runs/run-TIMESTAMP``; an existing non-empty one only
    with ``force``); returns the summary. ``report=False`` leaves out the analysis and report."""
    run_dir = None if run_dir is None else check_path("run_dir", run_dir, owner="train")
    callbacks = check_list("callbacks", callbacks, "callbacks (objects with Callback's hooks)", owner="train")
    report, force = check_bool("report", report, owner="train"), check_bool("force", force, owner="train")
    figure_workers_checked(figure_workers)
    trainer = Trainer(task, model, loss, optimizer, config=config)
    out = prepare_run_dir(run_dir if run_dir is not None else default_run_dir("run"), force)
    try:
        return finish(trainer, out, callbacks=callbacks, report=report, figure_workers=figure_workers)
    except BaseException:
        if not trainer.history:              # nothing to resume: leave no half-written run in the way of a retry
            remove_run_files(out)
            for name in (MANIFEST, LOCK):
                (out / name).unlink(missing_ok=True)
            if not any(out.iterdir()):
                out.rmdir()
        raise


def resume(run_dir, task=None, model=None, loss=None, *, callbacks=(), figure_workers: int | None = None) -> dict:
    """Continue an interrupted run where its last saved state left it and end it as ``train``
    does (logs appended, figures, diagnosis, analysis, report); a task, model or loss made in
    Python is passed again. Returns the summary."""
    run_dir = check_path("run_dir", run_dir, owner="resume")
    callbacks = check_list("callbacks", callbacks, "callbacks (objects with Callback's hooks)", owner="resume")
    figure_workers_checked(figure_workers)
    record = read_record(run_dir)                              # a run directory at all, before locking it
    with RunLock(run_dir):                                     # before the logs are trimmed to the state
        trainer = resume_trainer(run_dir, task, model, loss)
        return finish(trainer, run_dir, callbacks=callbacks, report=record.report is not False, resuming=True,
                      interface=record.interface, figure_workers=figure_workers)


def train_stack(configs: list, run_dirs: list | None = None, *, report: bool = True, force: bool = False,
                figure_workers: int | None = None) -> list:
    """Train ``configs`` (one architecture and batch shape: ``training.stack.stack_key``) as one
    stack and write a complete run directory for each, the same files ``train`` writes for it
    alone, each resumable alone (``resume``) after an interruption. Returns each member's summary,
    or the exception a member's guard gave up with."""
    configs = check_list("configs", configs, "TrainConfigs, one per member", owner="train_stack")
    run_dirs = [check_path("run_dirs", d, owner="train_stack")
                for d in check_list("run_dirs", run_dirs, "run directories, one per member", owner="train_stack")] \
        if run_dirs is not None else [default_run_dir(f"stack{k}") for k in range(len(configs))]
    report, force = check_bool("report", report, owner="train_stack"), check_bool("force", force, owner="train_stack")
    figure_workers_checked(figure_workers)
    if len(run_dirs) != len(configs):
        raise InputError(f"train_stack: {len(configs)} configs but {len(run_dirs)} run directories; give one each")
    trainers = [Trainer(config=cfg) for cfg in configs]
    stack = StackTrainer(trainers)                                 # refused before any directory is made
    if len({Path(d).absolute() for d in run_dirs}) != len(run_dirs):
        raise InputError("train_stack: two members were given the same run directory; give each its own")
    for d in run_dirs:                                             # every member's directory checked before
        check_run_dir(d, force)                                    # any is written or cleared
    outs = [prepare_run_dir(d, force) for d in run_dirs]
    with contextlib.ExitStack() as held:
        for out in outs:
            held.enter_context(RunLock(out))
        pool = held.enter_context(FigurePool(figure_workers))
        writers = [RunWriter(out, report=report) for out in outs]
        for trainer, writer in zip(trainers, writers):
            trainer.callbacks = [writer]
        results = stack.fit()
        for trainer, out, writer, got in zip(trainers, outs, writers, results):
            if isinstance(got, Exception) or not trainer.history:
                continue
            record_written(out, TENSORBOARD_FILES)
            write_ending(trainer, out, writer.probes, writer.events, pool, report=report)
    return results


def finish(trainer: Trainer, out, *, callbacks=(), report: bool = True, resuming: bool = False,
           interface: str = "python", figure_workers: int | None = None, on_trained=None, progress=None) -> dict:
    """Train ``trainer`` to the end writing ``out``, then draw, diagnose, analyse and report (a
    fresh or a resumed run ends the same way); ``on_trained(summary)`` is called in between, and
    ``progress`` follows the analysis (``analyze``'s).
    Figures are drawn by worker processes that start (and import matplotlib) while training runs
    and draw while the analysis runs (``FigurePool``)."""
    out = Path(out)
    with RunLock(out), FigurePool(figure_workers) as pool:
        writer = RunWriter(out, resuming=resuming, report=report, interface=interface)
        trainer.callbacks = [writer, *callbacks]
        summary = trainer.fit()
        record_written(out, TENSORBOARD_FILES)
        if on_trained is not None:
            on_trained(summary)
        write_ending(trainer, out, writer.probes, writer.events, pool, report=report, progress=progress)
    return summary


def write_ending(trainer: Trainer, out: Path, probes: list[dict], events: list[dict], pool,
                 report: bool = True, progress=None) -> None:
    """What follows training: the training figures from the logs in memory, the diagnosis, and
    (with ``report``) the analysis and its figures, then the report, which only reads files."""
    recurrent = hasattr(trainer.model, "rnn")
    figures = draw_training_figures(out, trainer.history, probes, events, metric=trainer.metric,
                                    baseline=trainer.task.baseline, clip=trainer.cfg.clip, pool=pool,
                                    hidden_view=hidden_state_view(trainer.model, trainer.task) if recurrent else None)
    record_written(out, [*figures, DIAGNOSIS])
    write_diagnosis(out)
    if not report:
        return
    if recurrent:                                              # the dynamics analysis reads recurrent states
        analysis = analyze(trainer.model, trainer.task, progress=progress)
        names = draw_analysis_figures(out, analysis.arrays, pool)
        record_written(out, [*names, ANALYSIS])
        write_analysis(analysis, out, names)
    pool.wait()                                                # the report shows every figure
    record_written(out, [REPORT])
    write_report(out)


def finish_stopped_ending(run_dir, figure_workers: int | None = None, progress=None) -> None:
    """Training finished but was stopped before its figures, analysis and report were written
    (Ctrl-C after the last epoch): write them now, from the final weights and the logs."""
    run_dir = Path(run_dir)
    with RunLock(run_dir), FigurePool(figure_workers) as pool:
        trainer = finished_trainer(run_dir)
        write_ending(trainer, run_dir, read_jsonl(run_dir / PROBES_LOG), read_jsonl(run_dir / EVENTS_LOG), pool,
                     progress=progress)


def analyse_saved_run(run_dir, **kwargs) -> dict:
    """``rnnlab analyze``: analyse a saved run, draw its analysis figures, write analysis.json, and
    write the run's report again when it has one, so the page never shows the analysis it replaced."""
    analysis = analyze_run(run_dir, **kwargs)
    with RunLock(run_dir):
        names = draw_analysis_figures(run_dir, analysis.arrays)
        data = write_analysis(analysis, run_dir, names)
        record_written(run_dir, [*names, ANALYSIS])                # once written: a refused write changes nothing
        if (Path(run_dir) / REPORT).is_file():
            write_report(run_dir)
        return data


def report_run(run_dir) -> Path:
    """``rnnlab report``: the report of a run directory, diagnosing it first if it never was (a run
    written by a bare ``RunWriter``, or before diagnoses were kept)."""
    read_record(run_dir)                                       # a run directory at all, before locking it
    refuse_while_written(run_dir, "report it")
    with RunLock(run_dir):
        if not (Path(run_dir) / DIAGNOSIS).is_file():
            write_diagnosis(run_dir)
            record_written(run_dir, [DIAGNOSIS])
        path = write_report(run_dir)
        record_written(run_dir, [REPORT])                          # once written: a refused report changes nothing
        return path
