"""``rnnlab sweep``: a grid over any configuration fields and seeds, and what it says.

``rnnlab sweep --grid lr=1e-3,1e-2 --grid model=rnn,lstm --seeds 3`` trains every combination
for every seed, each trial a normal run directory under ``runs/``, and writes ``sweep.csv`` (one
row per trial), ``sweep.md`` / ``sweep.json`` (mean +- sd over seeds and the fraction of seeds
that learn), figures (the metric against each swept field; a heatmap for two fields; gradient
flow against the length when it is swept), a sensitivity verdict in sentences and
``sweep.html``. ``rnnlab sweep lengths`` is the grid model x length.

Trials run on a backend: a local process pool (default) or Ray (``--backend ray``). Either way a
trial trains in a scratch directory on its worker and ships its run directory back with its
result; the driver writes it under the sweep directory and marks it finished (``result.json``),
so the sweep needs no shared file system and a rerun of an interrupted sweep skips finished
trials and redoes the rest. Local workers die with the driver (Linux parent-death signal, or a
watchdog that sees the driver gone).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import html
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rnnlab.checks import check_int, in_voice
from rnnlab.data.metrics import METRICS
from rnnlab.errors import InputError, RunDirError
from rnnlab.present.html import image, page, table
from rnnlab.present.plots import pyplot, save_figure
from rnnlab.present.tensorboard import TensorBoardWriter
from rnnlab.processes import local_pool
from rnnlab.runs.checkpoint import atomic_write_text
from rnnlab.runs.files import (
    LOCK,
    SWEEP_FILES,
    SWEEP_OUTPUTS,
    SWEEP_PAGE,
    SWEEP_PLAN,
    TENSORBOARD_FILES,
    TRIAL_RESULT,
    check_run_dir,
    clear_trial_dir,
    dumps,
    prepare_run_dir,
    record_written,
    recorded_files,
)
from rnnlab.runs.lock import RunLock
from rnnlab.runs.writer import RunWriter
from rnnlab.training.config import TrainConfig
from rnnlab.training.guards import TrainingDiverged
from rnnlab.training.loop import Trainer
from rnnlab.training.probes import early_to_late_gradient
from rnnlab.training.stack import StackTrainer, config_can_stack, stack_key, stack_pays


# ---------------------------------------------------------------- the grid
def parse_grid(specs: list[str], base: TrainConfig) -> dict[str, list]:
    """['lr=1e-3,1e-2', 'model=rnn,lstm'] -> {'lr': [0.001, 0.01], 'model': ['rnn', 'lstm']},
    typed by the config field and each value checked by building a config with it."""
    if not specs:
        raise InputError("the grid is empty; give at least one --grid FIELD=V1,V2 (e.g. --grid lr=1e-3,1e-2)")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    grid: dict[str, list] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise InputError(f"--grid {spec!r} needs the form FIELD=V1,V2,... (e.g. lr=1e-3,1e-2)")
        if name not in fields:
            raise InputError(f"--grid names unknown field {name!r}; the fields are those of rnnlab train "
                             f"--help, e.g. lr, model, init, clip, hidden, seed")
        if name in grid:
            raise InputError(f"--grid gives {name!r} twice; list all its values in one --grid")
        if name == "seed":
            raise InputError("seeds are swept by --seeds N, not --grid seed=...")
        typ = fields[name].type if isinstance(fields[name].type, str) else fields[name].type.__name__
        parsed = []
        for raw in values.split(","):
            raw = raw.strip()
            try:
                v = {"int": int, "float": float, "str": str,
                     "bool": lambda s: {"true": True, "false": False}[s.lower()]}[typ](raw)
            except (ValueError, KeyError):
                raise InputError(f"--grid {name}: {raw!r} is not a valid {typ}") from None
            base.replace(**{name: v})                             # checks the value itself
            parsed.append(v)
        if len(set(parsed)) != len(parsed):
            raise InputError(f"--grid {name} repeats a value; give each value once")
        grid[name] = parsed
    return grid


def trial_name(setting: dict, seed: int) -> str:
    return ",".join(f"{k}={v}" for k, v in setting.items()) + f",seed={seed}"


def settings(grid: dict) -> list[dict]:
    """Every combination of the grid's values, in the order given."""
    out = [{}]
    for name, values in grid.items():
        out = [dict(s, **{name: v}) for s in out for v in values]
    return out


MAX_TRIALS = 100_000          # a sweep's trials (settings x seeds): far more than a sweep can finish


def plan(base: TrainConfig, grid: dict, seeds: int) -> list[dict]:
    """One job per setting and seed: its config (checked now), name and setting."""
    seeds = check_int("seeds", seeds, minimum=1)
    trials = seeds * math.prod(len(v) for v in grid.values())
    if trials > MAX_TRIALS:
        raise InputError(f"this sweep would train {trials:,} trials ({seeds:,} seed(s) x "
                         f"{trials // seeds:,} setting(s)), more than the {MAX_TRIALS:,} a sweep takes; give fewer "
                         f"{in_voice('--seeds', 'seeds')} or grid values")
    jobs = []
    for setting in settings(grid):
        for seed in range(seeds):
            cfg = base.replace(**setting, seed=seed)              # every combination must be valid
            jobs.append({"name": trial_name(setting, seed), "setting": setting, "seed": seed,
                         "config": cfg.to_dict()})
    return jobs


# ---------------------------------------------------------------- one trial, on any worker
def run_trial(job: dict, tensorboard: bool = False) -> dict:
    """Train one trial in a scratch directory; return its result row and its run directory's
    files (so the driver can write them wherever it is: no shared file system needed)."""
    return run_stack([job], tensorboard)[0]


def run_stack(jobs: list[dict], tensorboard: bool = False) -> list[dict]:
    """Train trials that share one architecture and batch shape (``stack_key``) as one stack
    (``rnnlab.training.stack``; one trial trains alone), each in its own scratch directory with its
    own writer; return each trial's result as ``run_trial`` does."""
    with contextlib.ExitStack() as scratch:
        dirs = [Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix="rnnlab-trial-"))) for _ in jobs]
        writers = [RunWriter(d) for d in dirs]
        trainers = []
        for job, d, writer in zip(jobs, dirs, writers):
            callbacks = [writer]
            if tensorboard:
                callbacks.append(TensorBoardWriter(d / "tensorboard", hparams=dict(job["setting"], seed=job["seed"])))
            trainers.append(Trainer(config=TrainConfig.from_dict(job["config"]), callbacks=callbacks))
        if len(trainers) == 1:
            try:
                outcomes = [trainers[0].fit()]
            except TrainingDiverged as e:  # a diverged run is a result too; any other error stops the sweep
                outcomes = [e]
        else:
            outcomes = StackTrainer(trainers).fit()
        results = []
        for job, d, writer, trainer, got in zip(jobs, dirs, writers, trainers, outcomes):
            if isinstance(got, Exception):
                s, status = trainer.summary(0.0) if trainer.history else {}, f"failed: {got}"
            else:
                s, status = got, "ok"
            m = trainer.metric
            row = {**job["setting"], "seed": job["seed"], "status": status, "metric": m,
                   "final": s.get(f"final_test_{m}"), "best": s.get(f"best_test_{m}"),
                   "baseline": trainer.task.baseline,
                   "early_to_late_gradient": early_to_late_gradient(writer.probes),
                   "seconds": s.get("seconds"), "stacked": len(jobs)}
            files = {str(p.relative_to(d)): p.read_bytes() for p in d.rglob("*") if p.is_file()}
            results.append({"name": job["name"], "row": row, "files": files, "config": job["config"]})
    return results


def stacks(jobs: list[dict], workers: int, always: bool = False) -> list[list[dict]]:
    """The jobs grouped into stacks: trials that share a ``stack_key``, can join a stack and (unless
    ``always``) are small enough for stacking to pay (``stack_pays``), each group cut into about
    ``workers`` stacks so every worker has one; every other trial alone."""
    groups: dict = {}
    for job in jobs:
        cfg = TrainConfig.from_dict(job["config"])
        stacked = config_can_stack(cfg) if always else stack_pays(cfg)
        key = stack_key(cfg) if stacked else ("alone", job["name"])
        groups.setdefault(key, []).append(job)
    out = []
    for group in groups.values():
        parts = max(1, min(workers, len(group)))
        size = -(-len(group) // parts)
        out += [group[i:i + size] for i in range(0, len(group), size)]
    return out


def _run_local(units, jobs_at_once: int, tensorboard: bool):
    """Yield results as trials (or stacks of them) finish, on a ``local_pool``."""
    with local_pool(jobs_at_once) as pool:
        for results in pool.imap_unordered(_stack_with_tb if tensorboard else run_stack, units):
            yield from results


def _stack_with_tb(jobs):
    return run_stack(jobs, tensorboard=True)


def _start_local_ray(cpus: int):
    """A local Ray head owned by this driver, behind a keeper process (experiments/ray_head.py) that
    stops every Ray process when the driver exits or dies, even by kill -9. (``ray.init()`` alone
    leaves its agents running after a killed driver.) Returns (keeper process, address)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    keeper = subprocess.Popen([sys.executable, "-m", "rnnlab.experiments.ray_head", str(os.getpid()), str(port),
                               str(cpus)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return keeper, f"127.0.0.1:{port}"


def reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse a Ray address nothing listens at, in seconds, with a sentence."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--address must be HOST:PORT of a Ray head (e.g. 127.0.0.1:6379), got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise InputError(f"cannot reach a Ray cluster at {address} ({e.strerror or e}); start one with "
                         "'ray start --head' or drop --address") from None


def _run_ray(units, address: str | None, tensorboard: bool, cpus: int):
    """Yield results as trials finish, each trial or stack of trials a Ray task with one CPU."""
    try:
        import ray  # optional extra: rnnlab[ray]
    except ImportError:
        raise InputError("--backend ray needs the optional extra: pip install 'rnnlab[ray]'") from None
    head = None
    if address is None:
        head, address = _start_local_ray(cpus)
    else:
        reachable(address)                                      # ray.init alone retries for minutes
    try:
        for attempt in range(120):                              # the head takes a few seconds to start
            try:
                ray.init(address=address, log_to_driver=False,
                         runtime_env={"env_vars": {"OPENBLAS_NUM_THREADS": "1"}})
                break
            except ConnectionError:
                if head is None or head.poll() is not None or attempt == 119:
                    raise InputError(f"cannot reach a Ray cluster at {address}; start one with "
                                     "'ray start --head' or drop --address") from None
                time.sleep(0.5)
        remote = ray.remote(num_cpus=1, max_retries=0)(run_stack)
        pending = [remote.remote(unit, tensorboard) for unit in units]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield from ray.get(done[0])
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if head is not None:
            head.terminate()                                    # the keeper stops every Ray process
            head.wait(timeout=60)


# ---------------------------------------------------------------- the driver
@contextlib.contextmanager
def locked_sweep_dir(out, base: TrainConfig, grid: dict, seeds: int, force: bool = False):
    """``sweep_dir`` held by this process for as long as the context lasts (``RunLock``): a second
    sweep into the same directory, identical or not, is refused with a sentence instead of training
    every trial again beside the first. Yields (the directory, trials already finished)."""
    out = Path(out)
    with contextlib.ExitStack() as held:
        if force and out.is_dir() and any(p.name != LOCK for p in out.iterdir()):
            held.enter_context(RunLock(out))            # before --force may clear anything (without it,
        #                                                 sweep_dir changes nothing before this is taken)
        out, done = sweep_dir(out, base, grid, seeds, force)
        held.enter_context(RunLock(out))
        yield out, done


def sweep_dir(out, base: TrainConfig, grid: dict, seeds: int, force: bool = False) -> tuple[Path, int]:
    """The sweep directory, and how many of its trials are already finished: a new or empty one,
    or one holding this same sweep (it is continued). ``force`` starts over, removing only what
    rnnlab wrote there (its files and its trials' run directories)."""
    out = Path(out)
    plan_file = out / SWEEP_PLAN
    same = False
    if plan_file.is_file():
        try:
            old = json.loads(plan_file.read_text(encoding="utf-8"))
            same = (old.get("grid") == json.loads(dumps(grid)) and old.get("seeds") == seeds
                    and old.get("base") == base.to_dict())
        except (ValueError, AttributeError):
            if not force:
                raise RunDirError(f"{plan_file} is damaged (not the plan a sweep writes); pass --force to start "
                                  "the sweep in this directory over") from None
            same = False
        if not same and not force:
            raise RunDirError(f"{out} holds a different sweep (other grid, seeds or settings); choose "
                              "another --out, or pass --force to start over")
    if same and not force:
        done = sum(_finished(out / "runs" / job["name"], job) is not None for job in plan(base, grid, seeds))
        return out, done
    trials = []
    if force and (out / "runs").is_dir():                       # only trial directories rnnlab wrote
        trials = [t for t in (out / "runs").iterdir()
                  if t.is_dir() and ((t / TRIAL_RESULT).is_file() or (t / "config.json").is_file())]
        for trial in trials:                                    # every record checked before anything goes
            recorded_files(trial, extra=(TRIAL_RESULT,))
    check_run_dir(out, force, writes=SWEEP_OUTPUTS)
    for trial in trials:
        clear_trial_dir(trial, extra=(TRIAL_RESULT,))          # a file of the user's in it stays
    if force and (out / "runs").is_dir() and not any((out / "runs").iterdir()):
        (out / "runs").rmdir()
    return prepare_run_dir(out, force, writes=SWEEP_OUTPUTS), 0


# ---------------------------------------------------------------- the driver (runs the trials)
def run_sweep(base: TrainConfig, grid: dict, seeds: int, out_dir, *, jobs: int = 2, backend: str = "local",
              address: str | None = None, tensorboard: bool = False, on_trial=None,
              stack: str = "auto") -> list[dict]:
    """Run (or finish) a sweep into ``out_dir``; trials already finished there are skipped.
    ``stack``: "auto", trials that share an architecture and batch shape train as stacks, one per
    worker, where stacking pays (``stacks``); "always"; or "never". Each trial still writes its own
    run directory."""
    out_dir = Path(out_dir)
    todo, rows = [], []
    for job in plan(base, grid, seeds):
        row = _finished(out_dir / "runs" / job["name"], job)
        if row is None:
            todo.append(job)
        else:
            rows.append(row)
    record_written(out_dir, [SWEEP_PLAN])
    atomic_write_text(out_dir / SWEEP_PLAN, dumps(
        {"grid": grid, "seeds": seeds, "base": base.to_dict(), "backend": backend}, indent=2))
    workers = jobs if backend == "ray" else min(jobs, len(todo), os.cpu_count() or 1)   # no idle processes
    units = stacks(todo, workers, always=stack == "always") if stack != "never" else [[job] for job in todo]
    results = (_run_ray(units, address, tensorboard, jobs) if backend == "ray" else
               _run_local(units, min(workers, len(units)) if units else 1, tensorboard))
    for res in results:
        rows.append(_store(out_dir / "runs" / res["name"], res))
        if on_trial is not None:
            on_trial(res["name"], res["row"])
    order = {job["name"]: i for i, job in enumerate(plan(base, grid, seeds))}
    rows.sort(key=lambda r: order[r["trial"]])
    report(rows, grid, out_dir)
    return rows


def _finished(run_dir: Path, job: dict) -> dict | None:
    """The stored row of a trial that finished with this very config, else None (it is redone)."""
    try:
        saved = json.loads((run_dir / TRIAL_RESULT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved["row"] if saved.get("config") == job["config"] else None


def _store(run_dir: Path, res: dict) -> dict:
    """Write a trial's shipped-back run directory, then its result.json (the 'finished' mark)."""
    if run_dir.exists():
        clear_trial_dir(run_dir, extra=(TRIAL_RESULT,))      # an unfinished attempt: what rnnlab wrote goes
    for rel, data in res["files"].items():
        path = run_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    row = dict(res["row"], trial=res["name"], run_dir=str(run_dir))
    record_written(run_dir, [TRIAL_RESULT])
    atomic_write_text(run_dir / TRIAL_RESULT, dumps({"row": row, "config": res["config"]}))
    return row


# ---------------------------------------------------------------- tables, verdict, figures, page
def _mean_sd(values):
    v = [x for x in values if x is not None]
    if not v:
        return None, None
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def learns(row) -> bool:
    if row["final"] is None or row["baseline"] is None or row["status"] != "ok":
        return False
    return METRICS[row["metric"]].learns(row["final"], row["baseline"])


def aggregate(rows, grid: dict) -> list[dict]:
    """One row per setting: runs, mean +- sd of the final metric, seeds that learn, gradient."""
    out = []
    for setting in settings(grid):
        group = [r for r in rows if all(r[k] == v for k, v in setting.items())]
        if not group:
            continue
        final, final_sd = _mean_sd([r["final"] for r in group])
        grads = sorted(r["early_to_late_gradient"] for r in group if r["early_to_late_gradient"] is not None)
        out.append({**setting, "runs": len(group), "metric": group[0]["metric"], "final": final,
                    "final_sd": final_sd, "learned": sum(learns(r) for r in group),
                    "gradient": grads[len(grads) // 2] if grads else None,
                    "failed": sum(r["status"] != "ok" for r in group)})
    return out


def fmt_metric(metric: str, v) -> str:
    return "failed" if v is None else METRICS[metric].format(v)


def verdict(agg: list[dict], grid: dict, baseline) -> list[str]:
    """The doctor across runs: for each swept field, holding the others, where runs learn and
    where they begin to fail, in sentences with the numbers."""
    if not agg:
        return []
    metric = agg[0]["metric"]
    words, _ = METRICS[metric].learn_margin
    lines = [f"A run learns when its final test {metric} is {words} the memoryless baseline "
             f"({fmt_metric(metric, baseline)})."]
    for field, values in grid.items():
        others = [k for k in grid if k != field]
        for rest in settings({k: grid[k] for k in others}):
            seq = [a for a in agg if all(a[k] == v for k, v in rest.items())]
            seq.sort(key=lambda a: values.index(a[field]))
            where = f" (with {', '.join(f'{k} {v}' for k, v in rest.items())})" if rest else ""
            parts = [f"{a[field]}: {a['learned']}/{a['runs']}" for a in seq]
            ok = [a for a in seq if a["learned"] == a["runs"]]
            s = f"{field}{where}: seeds that learn — {'; '.join(parts)}."
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            if numeric and ok and len(ok) < len(seq):
                idx = [seq.index(a) for a in ok]
                lo, hi = min(idx), max(idx)
                edges = []
                if hi + 1 < len(seq):
                    edges.append(f"above {field} {seq[hi][field]} they begin to fail "
                                 f"({seq[hi + 1]['learned']}/{seq[hi + 1]['runs']} at {seq[hi + 1][field]})")
                if lo > 0:
                    edges.append(f"below {field} {seq[lo][field]} they begin to fail "
                                 f"({seq[lo - 1]['learned']}/{seq[lo - 1]['runs']} at {seq[lo - 1][field]})")
                span = (f"at {field} {seq[lo][field]}" if lo == hi else
                        f"from {field} {seq[lo][field]} to {seq[hi][field]}")
                s += f" Every seed learns {span}; " + "; ".join(edges) + "."
            elif not ok:
                s += " No setting learns with every seed."
            else:
                s += " Every setting learns with every seed." if len(ok) == len(seq) else ""
            lines.append(s)
    return lines


def stacking_note(rows) -> str:
    """Whether the trials trained as stacks (``stack_key``), in one sentence."""
    sizes = [r.get("stacked") or 1 for r in rows]
    stacked = sum(1 for k in sizes if k > 1)
    if not stacked:
        return f"stacking: every trial trained alone ({len(rows)} run(s))"
    return (f"stacking: {stacked} of {len(rows)} trials trained in stacks of up to {max(sizes)} (--no-stack trains "
            "each alone; a member's result is the same bit for bit)")


def report(rows, grid: dict, out_dir: Path) -> None:
    fields = list(grid)
    cols = fields + ["seed", "status", "metric", "final", "best", "baseline", "early_to_late_gradient",
                     "seconds", "trial", "run_dir"]
    with open(out_dir / "sweep.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    agg = aggregate(rows, grid)
    metric = rows[0]["metric"] if rows else "acc"
    baseline = next((r["baseline"] for r in rows if r["baseline"] is not None), None)
    cols, cells = results_table(agg, fields, metric)
    sentences = verdict(agg, grid, baseline)
    (out_dir / "sweep.md").write_text("\n".join(markdown_table(cols, cells)) + "\n\n"
                                      + "\n".join(f"- {s}" for s in sentences) + "\n", encoding="utf-8")
    atomic_write_text(out_dir / "sweep.json", dumps({"grid": grid, "settings": agg, "verdict": sentences,
                                                     "stacking": stacking_note(rows)}, indent=2))
    figures = plot_sweep(agg, grid, out_dir)
    write_page(out_dir, cols, cells, sentences, figures)
    record_written(out_dir, [*SWEEP_FILES, *figures, *TENSORBOARD_FILES])


def results_table(agg: list[dict], fields: list[str], metric: str) -> tuple[list[str], list[dict]]:
    """The results table as (column headers, one dict of cell text per setting): made once, so
    sweep.md and sweep.html show the very same cells."""
    cols = fields + ["runs", f"final test {metric} (mean ± sd)", "seeds that learn", "gradient at step 1 / step T"]
    rows = []
    for a in agg:
        val = "failed" if a["final"] is None else METRICS[metric].format_spread(a["final"], a["final_sd"])
        grad = ("n/a" if a["gradient"] is None else
                "0 (below float range: underflow)" if a["gradient"] == 0 else f"{a['gradient']:.1e}")
        rows.append(dict(zip(cols, [str(a[k]) for k in fields]
                             + [str(a["runs"]), val, f"{a['learned']}/{a['runs']}", grad])))
    return cols, rows


def markdown_table(cols: list[str], rows: list[dict]) -> list[str]:
    """The lines of a Markdown table of cell text (what the CLI prints and the .md files hold)."""
    return (["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            + ["| " + " | ".join(r.get(c, "") for c in cols) + " |" for r in rows])


def plot_sweep(agg, grid: dict, out_dir: Path) -> list[str]:
    plt = pyplot()

    if not agg:
        return []
    metric = agg[0]["metric"]
    m = METRICS[metric]
    scale = m.scale
    names = []
    fields = list(grid)
    for field in fields:
        values = grid[field]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        others = [k for k in fields if k != field]
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for rest in settings({k: grid[k] for k in others}):
            pts = sorted((a for a in agg if all(a[k] == v for k, v in rest.items()) and a["final"] is not None),
                         key=lambda a: values.index(a[field]))
            xs = [a[field] if numeric else values.index(a[field]) for a in pts]
            label = ", ".join(f"{k}={v}" for k, v in rest.items()) or None
            ax.errorbar(xs, [scale * a["final"] for a in pts], yerr=[scale * a["final_sd"] for a in pts],
                        marker="o", capsize=3, label=label)
        if numeric and min(values) > 0 and max(values) / min(values) >= 10:
            ax.set_xscale("log")
        if numeric:
            ax.set_xticks(values, [f"{v:g}" for v in values])
            ax.minorticks_off()
        else:
            ax.set_xticks(range(len(values)), [str(v) for v in values])
        if m.log_axis:
            ax.set_yscale("log")
        ax.set(xlabel=field, ylabel=f"final test {metric}" + (" (%)" if m.percent else ""),
               title=f"Result vs {field} (mean ± sd over seeds; {'higher' if m.higher_is_better else 'lower'} "
                     "is better)")
        ax.grid(alpha=0.3)
        if others:
            ax.legend(fontsize=8)
        save_figure(fig, out_dir / f"metric_vs_{field}.png")
        names.append(f"metric_vs_{field}.png")
    if len(fields) == 2:
        f1, f2 = fields
        M = [[next((scale * a["final"] for a in agg if a[f1] == v1 and a[f2] == v2 and a["final"] is not None),
                   float("nan")) for v2 in grid[f2]] for v1 in grid[f1]]
        fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(grid[f2]), 1.4 + 0.6 * len(grid[f1])))
        im = ax.imshow(M, cmap="viridis" if METRICS[metric].higher_is_better else "viridis_r", aspect="auto")
        for i, v1 in enumerate(grid[f1]):
            for j, v2 in enumerate(grid[f2]):
                a = next((a for a in agg if a[f1] == v1 and a[f2] == v2), None)
                if a is not None:                               # dark text on bright cells
                    bright = a["final"] is not None and im.norm(scale * a["final"]) > 0.6
                    bright = bright if METRICS[metric].higher_is_better else not bright
                    ax.text(j, i, f"{fmt_metric(metric, a['final'])}\n{a['learned']}/{a['runs']} learn",
                            ha="center", va="center", fontsize=7, color="black" if bright else "white")
        ax.set_xticks(range(len(grid[f2])), [str(v) for v in grid[f2]])
        ax.set_yticks(range(len(grid[f1])), [str(v) for v in grid[f1]])
        ax.set(xlabel=f2, ylabel=f1, title=f"final test {metric}, mean over seeds")
        fig.colorbar(im, ax=ax)
        save_figure(fig, out_dir / f"heatmap_{f1}_{f2}.png")
        names.append(f"heatmap_{f1}_{f2}.png")
    if "length" in grid:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        others = [k for k in fields if k != "length"]
        for rest in settings({k: grid[k] for k in others}):
            pts = [a for a in agg if all(a[k] == v for k, v in rest.items())
                   and a["gradient"] is not None and a["gradient"] > 0]
            zero = [a["length"] for a in agg if all(a[k] == v for k, v in rest.items()) and a["gradient"] == 0]
            label = (", ".join(f"{k}={v}" for k, v in rest.items()) or "gradient") + (
                f" (0 at T={', '.join(map(str, zero))}: underflow)" if zero else "")
            ax.plot([a["length"] for a in pts], [a["gradient"] for a in pts], marker="o", label=label)
        ax.set(xscale="log", yscale="log", xlabel="sequence length T",
               ylabel="||dL/dh_1|| / ||dL/dh_T|| (top layer)", title="How much gradient reaches the first step")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xticks(grid["length"], [str(t) for t in grid["length"]])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        save_figure(fig, out_dir / "gradient_vs_length.png")
        names.append("gradient_vs_length.png")
    return names


def write_page(out_dir: Path, cols: list[str], rows: list[dict], sentences: list[str], figures: list[str]) -> None:
    """sweep.html in the report's style: the verdict, the table (the cells of ``results_table``)
    and the figures, self-contained."""

    parts = [f"<h1>rnnlab sweep: {html.escape(out_dir.name)}</h1>", "<h2>Sensitivity</h2>",
             '<div class="verdict"><ul>' + "".join(f"<li>{html.escape(s)}</li>" for s in sentences) +
             "</ul></div>", "<h2>Results</h2>", table(rows, cols, headers={}), "<h2>Figures</h2>"]
    parts += [image(out_dir / f, f) for f in figures]
    from rnnlab.experiments.similarity import similarity_section  # start-up time: loads the analysis
    parts.append(similarity_section(out_dir))
    atomic_write_text(out_dir / SWEEP_PAGE, page("rnnlab sweep", parts))
