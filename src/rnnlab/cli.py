"""``rnnlab`` command line: a thin layer over library calls.

Every user error is an ``RnnlabError``: printed as one sentence on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import signal
import sys
import threading
import warnings
from pathlib import Path

from rnnlab.analysis.doctor import diagnose
from rnnlab.analysis.fixed_points import FP_DEFAULTS
from rnnlab.checks import command_line_voice
from rnnlab.data.metrics import METRICS
from rnnlab.errors import InputError, RnnlabError, RunDirError
from rnnlab.experiments.run import analyse_saved_run, finish, finish_stopped_ending, report_run
from rnnlab.nn.cells import FUSED_ENV_PROBLEM
from rnnlab.present.figure_pool import figure_workers_from_env
from rnnlab.present.progress import EpochPrinter, StepProgress
from rnnlab.present.tensorboard import TensorBoardWriter
from rnnlab.runs.files import (
    COMPARE_FILES,
    CONFIG,
    REPORT,
    SIMILARITY_FILES,
    STATE,
    SUMMARY,
    SWEEP_PLAN,
    check_run_dir,
    default_run_dir,
    prepare_run_dir,
)
from rnnlab.runs.load import evaluate_run, load_run
from rnnlab.runs.lock import RunLock
from rnnlab.runs.record import read_record
from rnnlab.runs.resume import resume_trainer, stopped_before_report
from rnnlab.training.config import PRESETS, TrainConfig, warn_doing_nothing
from rnnlab.training.loop import Trainer

MAX_COMPARE_PARAMS = 2_000_000
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (--batch-size for batch_size); default None = keep preset."""
    g = p.add_argument_group("configuration (overrides the preset)")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        typ = _TYPES[f.type if isinstance(f.type, str) else f.type.__name__]
        preset = "charlm" if f.metadata["help"].startswith("charlm:") else "seed"   # where the flag acts
        value = getattr(PRESETS[preset], f.name)
        help_ = f.metadata["help"] + (f" [{preset} preset: {value}]" if value != "" else "")
        if typ is bool:
            g.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:
            g.add_argument(flag, dest=f.name, type=typ, default=None, metavar=f.name.upper(), help=help_)


def _add_fixed_point_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fixed points")
    g.add_argument("--fp-starts", type=int, default=None,
                   help=f"starting states, drawn from visited states (default {FP_DEFAULTS['starts']}, fewer "
                        f"for a state of more than 128 numbers -- an LSTM's is [h, c], twice its hidden size -- as the "
                        f"work grows steeply with it); drawn again each round")
    g.add_argument("--fp-tol", type=float, default=FP_DEFAULTS["tol"],
                   help=f"a start converged when 1/2 ||F(h) - h||^2 < this (default {FP_DEFAULTS['tol']:g})")
    g.add_argument("--fp-input", default=None, metavar="V1,V2,...",
                   help="constant network input to find fixed points at (default: zeros); several separated "
                        "by ';', or 'conditions': each combination of the task's level-coded inputs, the "
                        "others at 0")
    g.add_argument("--fp-layer", type=int, default=-1, help="recurrent layer (default: the last)")
    g.add_argument("--fp-rounds", type=int, default=FP_DEFAULTS["rounds"],
                   help=f"rounds of --fp-starts starts, until the estimate of points still unfound (Chao1) is "
                        f"below one after two rounds in a row (default at most {FP_DEFAULTS['rounds']})")
    g.add_argument("--condition", choices=["matching", "pooled"], default="matching",
                   help="which held-out trials roles, PCA and fixed points come from: those whose inputs held "
                        "through the trial (contexts, cues, levels) match each --fp-input (default), or every "
                        "trial pooled")
    g.add_argument("--fp-seconds", type=float, default=FP_DEFAULTS["seconds"],
                   help=f"time budget of the search at each constant input (--fp-input): starts still "
                        f"running then are stopped and counted; the slow points along the trials get the same "
                        f"again (default {FP_DEFAULTS['seconds']:g})")


def _directory(text: str) -> Path:
    """An --out path: not empty (an empty one would mean the current directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a directory path")
    return Path(text)


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (and where to find help), not the whole usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rnnlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    parser.subcommands = sub.choices

    tr = sub.add_parser("train", help="train a model and write its run directory",
                        description="Train a model. With no arguments: the seed experiment.")
    tr.add_argument("--preset", default=None, choices=sorted(PRESETS),
                    help="starting configuration (default: seed; charlm when --task charlm)")
    tr.add_argument("--out", type=_directory, default=None,
                    help="run directory (default: runs/PRESET-TIMESTAMP)")
    tr.add_argument("--force", action="store_true", help="write into a non-empty --out")
    tr.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    tr.add_argument("--no-report", action="store_true", help="skip report.html at the end")
    tr.add_argument("--tensorboard", action="store_true",
                    help="also write TensorBoard events to RUN_DIR/tensorboard (pip install 'rnnlab[tensorboard]')")
    tr.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                    help="continue an interrupted run from its last saved state (its own config)")
    _add_config_flags(tr)

    ev = sub.add_parser("eval", help="re-evaluate a saved run from its checkpoint")
    ev.add_argument("run_dir", type=Path)

    sw = sub.add_parser("sweep", help="run a grid of trainings and tabulate/plot the results",
                        description="Train every combination of --grid values for every seed; "
                                    "'sweep lengths' is the grid --models x --lengths. Rerun the same "
                                    "command to finish an interrupted sweep.")
    sw.add_argument("kind", nargs="?", choices=["lengths"], help="shortcut: the grid model x length")
    sw.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                    help="a configuration field and its values (repeat for more fields)")
    sw.add_argument("--models", default=None, help="sweep lengths: comma-separated cells [rnn,lstm,gru]")
    sw.add_argument("--lengths", default=None, help="sweep lengths: comma-separated lengths [20,50,100,200,500]")
    sw.add_argument("--seeds", type=int, default=1, help="seeds per setting")
    sw.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel trials (local backend)")
    sw.add_argument("--backend", default="local", choices=["local", "ray"],
                    help="local process pool, or Ray tasks (pip install 'rnnlab[ray]')")
    sw.add_argument("--address", default=None, metavar="HOST:PORT",
                    help="Ray cluster to join (default: start a local one)")
    sw.add_argument("--tensorboard", action="store_true",
                    help="also write TensorBoard events per trial, with its hyperparameters")
    sw.add_argument("--stack", default="auto", choices=["auto", "always", "never"],
                    help="train trials that share an architecture and batch shape as one stack per worker "
                         "(the same runs, batched products): auto = where it pays (small recurrent products)")
    sw.add_argument("--no-stack", dest="stack", action="store_const", const="never",
                    help="train every trial alone (same as --stack never)")
    sw.add_argument("--preset", default=None, choices=sorted(PRESETS), help="base configuration")
    sw.add_argument("--out", type=_directory, default=None, help="sweep directory (default: runs/sweep-TIMESTAMP)")
    sw.add_argument("--force", action="store_true", help="start the sweep in --out over")
    _add_config_flags(sw)

    co = sub.add_parser("compare", help="RNN vs LSTM vs GRU vs Transformer on the same tasks and budgets",
                        description="Equal parameter counts, equal updates and equal wall time, several seeds; "
                                    "training throughput against length and streaming cost against position.")
    co.add_argument("--tasks", default="seed,adding-50,adding-100,adding-200,copy,flipflop,charlm",
                    help="comma-separated: seed, adding-50, adding-100, adding-200, copy, flipflop, charlm")
    co.add_argument("--seeds", type=int, default=2, help="seeds per model and task")
    co.add_argument("--params", type=int, default=20000, help="parameter count every model is sized to")
    co.add_argument("--quick", action="store_true", help="a tenth of every budget, short streams (a smoke test)")
    co.add_argument("--out", type=_directory, default=None, help="output directory (default: runs/compare-TIMESTAMP)")
    co.add_argument("--force", action="store_true", help="write into a non-empty --out")

    si = sub.add_parser("similarity", help="do networks trained on one task compute the same way? (geometry, "
                                           "dynamics, fixed-point topology)",
                        description="Distances between every pair of networks on the same probe trials: CCA and "
                                    "Procrustes shape (geometry), DSA (dynamics), fixed-point signatures "
                                    "(topology); matrices as CSV and JSON, and a figure with their MDS maps.")
    si.add_argument("paths", nargs="+", type=Path, metavar="RUN_OR_SWEEP",
                    help="finished run directories, or sweep directories (each of their runs counts)")
    si.add_argument("--probe-trials", type=int, default=64, help="held-out trials every network is fed")
    si.add_argument("--rank", type=int, default=None, help="DSA: rank of the fitted operator (default min(10, H))")
    si.add_argument("--delays", type=int, default=1, help="DSA: states stacked per delay-embedded state")
    si.add_argument("--color-by", default="model", help="what colours the MDS maps: model, or a swept field")
    si.add_argument("--no-topology", action="store_true", help="skip the fixed-point signatures")
    si.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="worker processes seeking the fixed-point signatures (the same result for any number)")
    si.add_argument("--out", type=_directory, default=None,
                    help="output directory (default: similarity/ in the sweep, or beside the first run)")
    si.add_argument("--force", action="store_true", help="write into a non-empty --out")

    an = sub.add_parser("analyze", help="measure hidden-state dynamics of a run (writes analysis.json)")
    an.add_argument("run_dir", type=Path)
    _add_fixed_point_flags(an)
    an.add_argument("--cell-regex", default=None, metavar="REGEX",
                    help="a character model: also score units against the characters inside matches of REGEX")
    rp = sub.add_parser("report", help="write RUN_DIR/report.html: figures, numbers and analysis")
    rp.add_argument("run_dir", type=Path)

    do = sub.add_parser("doctor", help="say which training failure pattern a run shows, and what to try")
    do.add_argument("run_dir", type=Path)
    do.add_argument("--json", action="store_true", help="print the diagnosis as JSON")

    sa = sub.add_parser("sample", help="generate text from a trained character-level model")
    sa.add_argument("run_dir", type=Path)
    sa.add_argument("--prime", default="def ", help="text to start from (default: 'def ')")
    sa.add_argument("--length", type=int, default=300, help="characters to generate")
    sa.add_argument("--temperature", type=float, default=0.8, help="> 0; lower is more conservative")
    sa.add_argument("--top-k", type=int, default=0, help="sample only from the k likeliest (0 = all)")
    sa.add_argument("--seed", type=int, default=0)
    return parser


def config_from_args(args) -> TrainConfig:
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                 if getattr(args, f.name) is not None}
    for name in ("data", "text"):
        if name in overrides and not overrides[name].strip():
            raise InputError(f"--{name} is empty; give a file path" + (" (an .npz file with X and y)" if name == "data"
                                                                         else " (a UTF-8 text file)"))
    if overrides.get("data") and "task" not in overrides:
        overrides["task"] = "npz"                               # the arrays decide the task
    for name in ("data", "text"):                               # so eval and resume work from another directory
        if overrides.get(name):
            overrides[name] = str(Path(overrides[name]).absolute())
    if args.preset is None:                                     # a task's own preset, if it has one
        task = overrides.get("task", "seed")
        args.preset = task if task in PRESETS else "seed"
    cfg = PRESETS[args.preset].replace(**overrides)             # drops the preset's other-model settings
    pointless = sorted(set(overrides) & cfg.unused_fields() - {"task", "data", "text"})   # those: refused
    warn_doing_nothing(pointless, f"task {cfg.task}, model {cfg.model}, optimizer {cfg.optimizer}, schedule "
                                  f"{cfg.schedule}")               # asked for, yet it would change nothing
    return cfg


def cmd_resume(args) -> int:
    given = [f.name for f in dataclasses.fields(TrainConfig) if getattr(args, f.name) is not None]
    if given or args.preset or args.out or args.force:
        extra = ", ".join("--" + g.replace("_", "-") for g in given) or "--preset/--out/--force"
        raise RunDirError(f"--resume continues a run with its own saved config; drop {extra}")
    workers = figure_workers_from_env()
    if stopped_before_report(args.resume):
        if args.no_report:
            raise RunDirError(f"{args.resume} finished training and was stopped before its report; --resume "
                              "writes that report, so drop --no-report")
        args.run_dir_in_use = args.resume
        print(f"rnnlab: {args.resume} finished training before it was stopped; writing its figures, analysis "
              "and report")
        with StepProgress(quiet=args.quiet) as progress:
            finish_stopped_ending(args.resume, workers, progress=progress)
        print(f"report: {Path(args.resume) / REPORT}")
        return 0
    record = read_record(args.resume)                          # a run directory at all, before locking it
    report = record.report is not False and not args.no_report   # a --no-report run stays one
    with RunLock(args.resume):                                 # before the logs are trimmed to the state
        trainer = resume_trainer(args.resume)
        args.run_dir_in_use = args.resume
        cfg, done = trainer.cfg, len(trainer.history)
        callbacks = [EpochPrinter(cfg.epochs, quiet=args.quiet)]
        if (Path(args.resume) / "tensorboard").is_dir():       # keep logging where the run began
            callbacks.append(TensorBoardWriter(Path(args.resume) / "tensorboard"))
        print(f"rnnlab: resuming {args.resume} after epoch {done} of {cfg.epochs}")
        _finish(trainer, Path(args.resume), args, callbacks, workers, report=report, resuming=True)
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM (``docker stop``, a batch scheduler, ``timeout``) taken the way Ctrl-C is: the
    training state of the last checkpoint epoch is written and the run can be resumed."""


@contextlib.contextmanager
def _sigterm_as_ctrl_c():
    """A context in which SIGTERM raises ``Terminated`` (main thread only; restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_name(cfg, preset: str) -> str:
    """What a run directory is named after: a --data run its file, a run of the seed task its preset
    (seed, better), any other its task (adding, flipflop, neurogym-PerceptualDecisionMaking-v0)."""
    if cfg.task == "npz":
        return Path(cfg.data).stem
    if cfg.task == "mean-sign":
        return preset
    return re.sub(r"[^A-Za-z0-9._-]+", "-", cfg.task).strip("-") or preset


def cmd_train(args) -> int:
    if args.resume is not None:
        return cmd_resume(args)
    cfg = config_from_args(args)
    workers = figure_workers_from_env()
    trainer = Trainer(config=cfg)               # builds task and model: any config error stops here
    name = run_name(cfg, args.preset)
    out = Path(args.out if args.out else default_run_dir(name))
    extra = []
    if args.tensorboard:                                        # checked before anything is created
        extra.append(TensorBoardWriter(out / "tensorboard"))
    out = prepare_run_dir(out, args.force)
    args.run_dir_in_use = out
    task, metric = trainer.task, METRICS[trainer.metric]
    print(f"rnnlab: training {cfg.model} ({trainer.model.parameter_count():,} parameters) on "
          f"{task.name}; run directory {out}")
    if task.baseline is not None:
        print(f"memoryless baseline: {metric.format(task.baseline)} {trainer.metric} ({task.baseline_note})")
    _finish(trainer, out, args, [EpochPrinter(cfg.epochs, quiet=args.quiet), *extra], workers,
            report=not args.no_report)
    return 0


def _finish(trainer, out, args, callbacks, figure_workers: int, report: bool, resuming: bool = False) -> None:
    """Train to the end, say how it went, then draw, diagnose, analyse and report."""
    cfg = trainer.cfg

    def say_how_it_went(s):
        m = METRICS[s["metric"]]
        print(f"final test {m.name} {m.format(s[f'final_test_{m.name}'])} (loss {s['final_test_loss']:.4f}), "
              f"best {m.format(s[f'best_test_{m.name}'])} at epoch {s['best_epoch']}, "
              f"{s['seconds']:.2f} s{_kernel_note(s)}; wrote {out}")
        if cfg.curriculum and s["final_length"] != cfg.length:
            print(f"note: the curriculum never reached --length {cfg.length}; these results are at length "
                  f"{s['final_length']} (rnnlab eval scores the final weights at length {cfg.length})")
    with StepProgress(quiet=args.quiet) as progress:
        finish(trainer, out, callbacks=callbacks, report=report, resuming=resuming, interface="cli",
               figure_workers=figure_workers, on_trained=say_how_it_went, progress=progress)
    if report:
        print(f"report: {Path(out) / REPORT}")


def _kernel_note(summary) -> str:
    k = summary.get("kernel_seconds") or 0.0
    return f" (+{k:.2f} s to load the compiled kernels)" if k >= 0.01 else ""


def cmd_analyze(args) -> int:
    fp_input = args.fp_input
    if fp_input is not None and fp_input != "conditions":
        try:
            inputs = [[float(v) for v in one.split(",")] for one in fp_input.split(";")]
        except ValueError:
            raise InputError(f"--fp-input must be comma-separated numbers (several inputs separated by ';'), "
                             f"or 'conditions'; got {args.fp_input!r}") from None
        fp_input = inputs[0] if len(inputs) == 1 else inputs
    r = analyse_saved_run(args.run_dir, fp_starts=args.fp_starts, fp_tol=args.fp_tol, fp_input=fp_input,
                          fp_seconds=args.fp_seconds, fp_rounds=args.fp_rounds, fp_layer=args.fp_layer,
                          cell_regex=args.cell_regex, condition="pooled" if args.condition == "pooled" else None,
                          progress=StepProgress())
    print(f"trials analysed: {r['condition']['sentence']}")
    print(f"unit roles: {', '.join(f'{k} {v}' for k, v in r['role_counts'].items() if v)}")
    if "dale" in r:
        print(r["dale"]["sentence"])
    for a in r.get("ablation", [])[1:]:
        m = METRICS[a["metric"]]
        control = a["random_same_size_drop"]
        versus = ("no control: the group is every unit" if control is None
                  else f"a random group of that size: {m.format_change(control)}")
        print(f"silencing {a['group']} ({a['units']} units): test {m.name} {m.format(a['value'])} "
              f"(worse by {m.format_change(a['drop'])}; {versus})")
    for h in r.get("interpretable_cells", {}).get("hypotheses", []):
        print(f"cells: {h['sentence']}")
    print(f"PCA: first 3 components explain {', '.join(f'{100 * e:.1f}%' for e in r['pca_explained'])}")
    for k, fp in enumerate(r.get("fixed_points_by_input") or [r.get("fixed_points")]):
        if not fp:
            continue
        where = f"input {fp['input']}" if any(fp["input"]) else "zero input"
        print(f"fixed points at {where} ({fp.get('input_reason', 'given')}): {fp['summary']}")
        if "fixed_points_by_input" in r:
            c = r["conditions"][k]
            print(f"  its trials: {c['sentence']}; roles: "
                  + ", ".join(f"{k} {v}" for k, v in c["role_counts"].items() if v))
        if len(fp.get("rounds", [])) > 1:
            print("new points per round of starts: " + ", ".join(str(r["new_points"]) for r in fp["rounds"]))
        for note in fp.get("notes", []):
            print(f"note: {note}")
        if fp.get("counts", {}).get("slow_points"):
            print(f"slow points (stopped short with 1/2 ||F(h) - h||^2 < {fp['settings']['slow_tol']:g}): "
                  f"{fp['counts']['slow_points']}")
        if fp.get("oscillation"):
            print(f"rotation: {fp['oscillation']['sentence']}")
        if fp.get("decoded"):
            n = fp['decoded']['distinct_states']
            print(f"the stable points decode to {n} distinct output state{'' if n == 1 else 's'} "
                  f"(of {fp['decoded']['possible_states']} possible)")
        ca = fp["continuous_attractor"]
        print(f"continuous attractor: {ca['kind'] or 'none'}: {ca['reason']}")
        if fp.get("selection"):
            print(f"selection: {fp['selection']['sentence']}")
    report = Path(args.run_dir) / REPORT
    print(f"analysis took {r['seconds']:.1f} s; wrote {Path(args.run_dir) / 'analysis.json'}"
          + (f" and {report} again" if report.is_file() else " (the run has no report: rnnlab report writes one)"))
    return 0


def cmd_report(args) -> int:
    print(f"wrote {report_run(args.run_dir)}")
    return 0


def cmd_eval(args) -> int:

    cfg, model, task = load_run(args.run_dir)
    loss, value, m = evaluate_run(cfg, model, task)
    what = (f"{len(task.test):,} characters" if task.kind == "lm" else
            f"{len(task.test):,} sequences of {task.seq_length} steps")
    print(f"{args.run_dir}: test loss {loss:.4f}, test {m} {METRICS[m].format(value)} "
          f"on {what} ({model.parameter_count():,} parameters)")
    summary = Path(args.run_dir) / "summary.json"
    if summary.is_file():
        try:
            saved = json.loads(summary.read_text())[f"final_test_{m}"]
            print(f"recorded at the end of training: test {m} {METRICS[m].format(saved)}")
        except (ValueError, KeyError, TypeError):
            pass
    return 0


def cmd_sample(args) -> int:

    if args.length < 1:
        raise InputError(f"--length must be at least 1, got {args.length}")
    if not (0 < args.temperature < float("inf")):
        raise InputError(f"--temperature must be a finite number > 0, got {args.temperature}")
    if args.top_k < 0:
        raise InputError(f"--top-k must be 0 (all characters) or a positive count, got {args.top_k}")
    if args.seed < 0:
        raise InputError(f"--seed must be 0 or a positive integer, got {args.seed}")
    cfg, model, task = load_run(args.run_dir)
    if task.kind != "lm":
        raise InputError(f"{args.run_dir} holds a {cfg.task} model; sample needs a run trained "
                         "with --task charlm")
    text = model.generate(args.prime, args.length, args.temperature, args.top_k, args.seed)
    print(args.prime + text)
    return 0


def cmd_sweep(args) -> int:
    from rnnlab.experiments.sweep import (  # start-up time: sweep only
        locked_sweep_dir,
        parse_grid,
        plan,
        reachable,
        run_sweep,
        stacking_note,
    )


    base = config_from_args(args)
    specs = list(args.grid)
    if args.kind == "lengths":
        if specs:
            raise InputError("sweep lengths sweeps --models x --lengths; drop --grid, or drop 'lengths'")
        lengths = args.lengths or "20,50,100,200,500"
        if not all(v.strip().lstrip("-").isdigit() for v in lengths.split(",")):
            raise InputError(f"--lengths must be comma-separated integers, got {lengths!r}")
        specs = [f"model={args.models or 'rnn,lstm,gru'}", f"length={lengths}"]
    elif args.models or args.lengths:
        raise InputError("--models and --lengths belong to 'rnnlab sweep lengths'; otherwise use "
                         "--grid model=... --grid length=...")
    grid = parse_grid(specs, base)
    if args.seeds < 1 or args.jobs < 1:
        raise InputError("--seeds and --jobs must be at least 1")
    jobs = plan(base, grid, args.seeds)                         # every combination checked up front
    if args.backend == "ray" and args.address:
        reachable(args.address)                                 # before the sweep directory is made
    def progress(name, row):
        value = "-" if row["final"] is None else METRICS[row["metric"]].format(row["final"])
        print(f"  {name}: {row['status']}, final test {row['metric']} {value}", flush=True)
    with locked_sweep_dir(args.out if args.out else default_run_dir("sweep"), base, grid, args.seeds,
                          force=args.force) as (out, done):
        args.sweep_dir_in_use = out
        what = " x ".join(f"{k} {grid[k]}" for k in grid)
        print(f"rnnlab: sweeping {what} x {args.seeds} seed(s) = {len(jobs)} trials on the {args.backend} backend"
              + (f" ({done} already finished)" if done else "") + f"; writing {out}")
        rows = run_sweep(base, grid, args.seeds, out, jobs=args.jobs, backend=args.backend, address=args.address,
                         tensorboard=args.tensorboard, on_trial=progress, stack=args.stack)
    print((out / "sweep.md").read_text(), end="")
    print(stacking_note(rows))
    print(f"wrote {out / 'sweep.csv'}, sweep.md, sweep.json, sweep.html and the figures")
    return 0


def cmd_compare(args) -> int:
    from rnnlab.experiments.compare import TASKS as COMPARE_TASKS  # start-up time: compare only
    from rnnlab.experiments.compare import run_compare  # start-up time: compare only


    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in COMPARE_TASKS]
    if unknown or not tasks:
        raise InputError(f"--tasks: unknown {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(COMPARE_TASKS)}")
    if args.seeds < 1 or not 100 <= args.params <= MAX_COMPARE_PARAMS:
        raise InputError(f"--seeds must be at least 1 and --params from 100 to {MAX_COMPARE_PARAMS:,} (every model "
                         f"of every task and seed trains on this CPU; the default 20,000 takes minutes), got "
                         f"--seeds {args.seeds} --params {args.params:,}")
    out = prepare_run_dir(args.out if args.out else default_run_dir("compare"), args.force, writes=COMPARE_FILES)
    print(f"rnnlab: comparing rnn, lstm, gru, transformer (~{args.params:,} parameters each) on "
          f"{', '.join(tasks)} x {args.seeds} seed(s); writing {out}")

    def progress(r):
        fmt = (lambda v: "-" if v is None else METRICS[r["metric"]].format(v))
        print(f"  {r['task']} {r['model']} ({r['params']:,} params) seed {r['seed']}: equal updates "
              f"{fmt(r['equal_updates'])}, equal time {fmt(r['equal_time'])}", flush=True)
    run_compare(tasks, args.seeds, args.params, out, scale=0.1 if args.quick else 1.0,
                positions=(16, 64, 256) if args.quick else (16, 256, 4096), on_cell=progress)
    print((out / "compare.md").read_text(), end="")
    print(f"wrote {out / 'compare.html'}")
    return 0


def cmd_similarity(args) -> int:
    from rnnlab.experiments.similarity import compare_networks, write_similarity  # start-up time

    first = args.paths[0]
    default = first / "similarity" if (first / SWEEP_PLAN).is_file() else first.parent / "similarity"
    for flag, value in (("--probe-trials", args.probe_trials), ("--delays", args.delays), ("--jobs", args.jobs),
                        ("--rank", args.rank)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be at least 1, got {value}")
    out = Path(args.out if args.out else default)
    if (out / CONFIG).is_file() or (out / SWEEP_PLAN).is_file():
        raise InputError(f"--out {out} is a run or sweep directory, which --force would empty; write the comparison "
                         "into a directory of its own (by default SWEEP/similarity, or similarity/ beside the runs)")
    check_run_dir(out, args.force, writes=SIMILARITY_FILES)          # refused before minutes of work, not after
    with StepProgress() as steps:
        sim = compare_networks(args.paths, probe=args.probe_trials, rank=args.rank, n_delays=args.delays,
                               topology=not args.no_topology, colour_by=args.color_by, jobs=args.jobs,
                               progress=steps)
    out = prepare_run_dir(out, args.force, writes=SIMILARITY_FILES)
    written = write_similarity(sim, out, args.color_by)
    summary = json.loads((out / "similarity.json").read_text())
    print(f"{len(sim.names)} networks, {sim.settings['probe_trials']} probe trials of {sim.settings['steps']} steps")
    for name, acc in summary["separation"].items():
        print(f"  {name}: nearest network has the same {args.color_by} for {100 * acc:.0f}% of them")
    for note in sim.notes:
        print(f"note: {note}")
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def cmd_doctor(args) -> int:

    d = diagnose(args.run_dir)
    print(json.dumps(d.to_dict(), indent=2) if args.json else d.text())
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "sample": cmd_sample, "doctor": cmd_doctor,
            "sweep": cmd_sweep, "analyze": cmd_analyze, "report": cmd_report, "compare": cmd_compare,
            "similarity": cmd_similarity}


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"rnnlab: warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    warnings.showwarning = _one_line_warning        # a warning is a sentence, not a source listing
    if FUSED_ENV_PROBLEM:
        warnings.warn(FUSED_ENV_PROBLEM, RuntimeWarning, stacklevel=1)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:                                     # said by the subcommand, whose --help lists its flags
        parser.subcommands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        with command_line_voice(), _sigterm_as_ctrl_c():    # advice names flags; `kill` stops cleanly
            return COMMANDS[args.command](args)
    except RnnlabError as e:
        print(f"rnnlab: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:                      # read-only location, a path under a file, disk full
        where = f" {e.filename}" if e.filename else ""
        print(f"rnnlab: error: cannot use{where}: {e.strerror or e}; choose a writable location "
              f"(e.g. another --out) and run the command again{_what_now(args, 'once there is room')}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        print(f"rnnlab: {'terminated' if terminated else 'interrupted'}{_what_now(args)}", file=sys.stderr)
        return 143 if terminated else 130                 # 128 + the signal's number, as a shell reports it


def _what_now(args, when: str = "") -> str:
    """What the user can do with the run directory a stopped command was writing: resume it
    (``when`` it can be), or, after Ctrl-C before any training state was saved, start it again."""
    sweep = getattr(args, "sweep_dir_in_use", None)
    if sweep is not None:
        return f"; the trials finished in {sweep} are kept: run the same command again to finish the sweep"
    run = getattr(args, "run_dir_in_use", None)
    if run is None:
        return ""
    run = Path(run)
    if ((run / f"{STATE}.json").is_file() and not (run / SUMMARY).is_file()) or stopped_before_report(run):
        return f"; {when + ', ' if when else ''}continue it with: rnnlab train --resume {run}"
    if when or (run / SUMMARY).is_file() or not (run / CONFIG).is_file():
        return ""
    try:
        every = read_record(run).config.checkpoint_every
    except (RnnlabError, OSError):                          # a damaged record: no advice beats a wrong one
        return ""
    saved = ("this run saves no training state (--checkpoint-every 0)" if every == 0
             else f"the first training state is saved at the end of epoch {every}")
    return f"; there is nothing to resume in {run} yet ({saved}): start it again with --out {run} --force"


if __name__ == "__main__":
    sys.exit(main())
