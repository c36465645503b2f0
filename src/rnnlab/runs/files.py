"""The files of a run directory, named once, and the plain reading and writing of them.

Every module that reads or writes a run's files takes their names from here; ``--force`` removes
exactly these (and never a file of the user's).
"""

from __future__ import annotations

import fnmatch
import json
import math
import time
from pathlib import Path

import numpy as np

from rnnlab.checks import in_voice
from rnnlab.errors import RunDirError
from rnnlab.runs.checkpoint import atomic_write_text

CONFIG = "config.json"            # the run's record: what was trained (runs/record.py)
METRICS_LOG = "metrics.jsonl"         # one row per epoch
PROBES_LOG = "probes.jsonl"           # per-step gradient and hidden-state probes
EVENTS_LOG = "events.jsonl"           # the guard's recoveries
SUMMARY = "summary.json"          # final and best numbers
CHECKPOINT = "checkpoint"         # final weights: checkpoint.json + checkpoint-*.npz
STATE = "state"                   # full training state for --resume: state.json + state-*.npz
ANALYSIS = "analysis.json"        # hidden-state dynamics (rnnlab analyze)
DIAGNOSIS = "diagnosis.json"      # the doctor's verdict, written when training ends
HELDOUT = "heldout.npz"           # a task made in Python: its held-out split, so eval and analyze can reopen it
REPORT = "report.html"
LOGS = (METRICS_LOG, PROBES_LOG, EVENTS_LOG)
LOCK = ".rnnlab.lock"              # held while a process writes the run (runs/lock.py)
MANIFEST = ".rnnlab-files.json"   # every file rnnlab wrote here, recorded as it writes it: all --force removes

# Figures, by what they show.
TRAINING_FIGURES = {"training_curves": "training_curves.png", "grad_norm": "grad_norm.png",
                    "hidden_states": "hidden_states.png", "gradient_flow": "gradient_flow.png",
                    "hidden_norms": "hidden_norms.png"}
ANALYSIS_FIGURES = {"unit_roles": "unit_roles.png", "pca": "pca.png", "fixed_points": "fixed_points.png"}
# the second and later constant inputs' figures, each of its own condition's trials
ANALYSIS_AT_INPUT = {"unit_roles": "unit_roles_input{}.png", "pca": "pca_input{}.png",
                     "fixed_points": "fixed_points_input{}.png"}

# Many-run directories (rnnlab sweep, rnnlab compare).
SWEEP_PLAN = "sweep_plan.json"    # a sweep's grid and base config: what marks a directory as a sweep's
SWEEP_PAGE = "sweep.html"
TRIAL_RESULT = "result.json"      # a sweep trial's row and config in its run directory: its "finished" mark
SWEEP_FILES = ("sweep.csv", "sweep.md", "sweep.json", SWEEP_PAGE, SWEEP_PLAN, "gradient_vs_length.png")
COMPARE_FILES = ("compare.csv", "compare.md", "compare.json", "compare.html")
SIMILARITY_FILES = ("similarity.json", "similarity.png", "similarity_*.csv")

TENSORBOARD_FILES = ("tensorboard/events.out.tfevents.*", "tensorboard/hparams/events.out.tfevents.*")
# What each kind of run writes (names, and patterns with a *): a --force over a file of the user's
# with one of these names is refused.
RUN_OUTPUTS = (CONFIG, METRICS_LOG, PROBES_LOG, EVENTS_LOG, SUMMARY, f"{CHECKPOINT}.json", f"{CHECKPOINT}-*.npz",
               f"{STATE}.json", f"{STATE}-*.npz", ANALYSIS, DIAGNOSIS, HELDOUT, REPORT, *TRAINING_FIGURES.values(),
               *ANALYSIS_FIGURES.values(), *(n.format("*") for n in ANALYSIS_AT_INPUT.values()),
               *TENSORBOARD_FILES)
SWEEP_OUTPUTS = (*SWEEP_FILES, "metric_vs_*.png", "heatmap_*.png")
# A run or sweep directory written before rnnlab recorded its files (no MANIFEST) is cleared by
# --force by these names (and its leftover temporary files); nothing else is touched.
RUN_FILES = tuple(n for n in (*RUN_OUTPUTS, *SWEEP_OUTPUTS) if "*" not in n)
RUN_PATTERNS = (*(n for n in (*RUN_OUTPUTS, *SWEEP_OUTPUTS) if "*" in n), ".*.tmp*")


def check_run_dir(out, force: bool = False, writes=None) -> list[Path]:
    """Every refusal ``prepare_run_dir`` makes, made before anything is created, written or
    removed (a stack checks all its members' directories with it first). Returns the files a
    ``force`` would remove: those rnnlab recorded writing there, each checked to lie inside ``out``."""
    out = Path(out)
    try:
        str(out.absolute()).encode("utf-8")
    except UnicodeEncodeError:
        raise RunDirError(f"{in_voice('--out', 'run_dir')} {str(out)!r} is not valid UTF-8 text, which the run's "
                          "records and report must hold; choose a name of plain characters") from None
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{in_voice('--out', 'run_dir')} {out} exists and is a file; choose a directory path")
    if not out.is_dir() or not any(p.name != LOCK for p in out.iterdir()):
        return []                                         # (a killed writer's lock file alone is not content)
    if not force:
        raise RunDirError(f"output directory {out} already exists and is not empty; choose another "
                          f"{in_voice('--out', 'run_dir')} or pass {in_voice('--force', 'force=True')} to overwrite it")
    old = recorded_files(out)
    gone = {str(p.relative_to(out)) for p in old}
    clash = sorted(p for p in _files(out) if p not in gone and _named_like(p, RUN_OUTPUTS if writes is None
                                                                            else writes))
    if clash:
        raise RunDirError(f"{out / clash[0]} was not written by rnnlab here (it is not in {MANIFEST}) and a run "
                          f"would write over it; move it away or choose another {in_voice('--out', 'run_dir')}")
    return old


def prepare_run_dir(out, force: bool = False, writes=None) -> Path:
    """Create ``out``; refuse a non-empty existing directory unless ``force``, which removes the
    files rnnlab recorded writing there (``MANIFEST``) and nothing else: a file of the user's that
    a run would write over is refused by name, never removed. Every check is made first
    (``check_run_dir``), so a refusal leaves the directory as it was."""
    out = Path(out)
    old = check_run_dir(out, force, writes)
    out.mkdir(parents=True, exist_ok=True)
    _remove(old)
    _write_manifest(out, {"written": []})
    return out


def recorded_files(out: Path, extra=()) -> list[Path]:
    """The files rnnlab recorded writing in ``out`` (and ``extra`` names there), each checked to
    resolve inside ``out`` before any is removed: a damaged or foreign record is refused whole. A
    run directory from before the record was kept (a config.json or sweep_plan.json, no manifest)
    is known by the run file names, as it always was."""
    out = Path(out)
    record = out / MANIFEST
    if record.exists() and (record.is_symlink() or not record.is_file()):
        raise RunDirError(f"{record} is not a file (rnnlab keeps the list of files it wrote there in it); move it "
                          f"away, or choose another {in_voice('--out', 'run_dir')}")
    manifest = _read_manifest(out, strict=True)
    if manifest is not None:
        old = [out / rel for rel in manifest["written"]]
    elif (out / CONFIG).is_file() or (out / SWEEP_PLAN).is_file():
        old = [out / n for n in RUN_FILES] + [p for pat in RUN_PATTERNS for p in out.glob(pat)]
    else:
        old = []
    old += [out / n for n in extra]
    root = out.resolve()
    for path in old:
        try:
            path.resolve().relative_to(root)
        except ValueError:
            raise RunDirError(f"{record} names {path}, which is not inside {out}: the record is damaged or not "
                              f"rnnlab's, so nothing was removed; delete {record} and the files you no longer "
                              "want yourself") from None
    return [p for p in old if p.is_file() and not p.is_symlink()]


def _remove(paths) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def remove_run_files(out: Path) -> None:
    """Remove the files rnnlab recorded writing in ``out`` (``recorded_files``) and nothing else."""
    out = Path(out)
    _remove(recorded_files(out))
    if (out / MANIFEST).is_file():
        _write_manifest(out, {"written": []})


def clear_trial_dir(trial: Path, extra=()) -> None:
    """Remove what rnnlab wrote in ``trial`` (``recorded_files``), the folders that leaves empty,
    and the directory itself when nothing of the user's is left in it."""
    _remove(recorded_files(trial, extra))
    for name in (MANIFEST, LOCK):
        (trial / name).unlink(missing_ok=True)
    for folder in sorted((p for p in trial.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()
    if not any(trial.iterdir()):
        trial.rmdir()


def record_written(out, names) -> None:
    """Add ``names`` (paths relative to ``out``, or glob patterns there) to the files rnnlab wrote in
    ``out``: what a later ``--force`` may remove. Writers call it as they write."""
    out = Path(out)
    found = set()
    for name in names:
        found |= ({str(p.relative_to(out)) for p in out.glob(name) if p.is_file()} if "*" in name
                  else {name})
    manifest = _read_manifest(out) or {"written": []}
    written = sorted(set(manifest["written"]) | found)
    if written != manifest["written"]:
        _write_manifest(out, {"written": written})


def _read_manifest(out: Path, strict: bool = False) -> dict | None:
    """The record of what rnnlab wrote in ``out``; None when there is none. A damaged one is None
    too, or (``strict``, before removing files by it) refused."""
    path = Path(out) / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ok = isinstance(data, dict) and isinstance(data.get("written"), list) and \
            all(isinstance(w, str) for w in data["written"])
    except (OSError, ValueError):
        ok = False
    if not ok:
        if strict:
            raise RunDirError(f"{path} is damaged (not the list of files rnnlab wrote there), so --force cannot "
                              "tell rnnlab's files from yours; delete it and the files you no longer want "
                              f"yourself, or choose another {in_voice('--out', 'run_dir')}")
        return None
    return {"written": [str(w) for w in data["written"]]}


def _write_manifest(out: Path, data: dict) -> None:
    atomic_write_text(Path(out) / MANIFEST, json.dumps(data, indent=1))


def _files(out: Path) -> list[str]:
    return [str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name not in (MANIFEST, LOCK)]


def _named_like(rel: str, names) -> bool:
    """Whether ``rel`` is one of ``names`` (file names or glob patterns relative to the directory)."""
    return any(fnmatch.fnmatch(rel, name) if "*" in name else rel == name for name in names)


def default_run_dir(name: str, root: str | Path = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, i = Path(root) / f"{name}-{stamp}", 1
    while path.exists():
        i += 1
        path = Path(root) / f"{name}-{stamp}-{i}"
    return path


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


def read_json(path):
    """A JSON file's content, or None when it is missing or unreadable (what a page that shows
    whatever a run holds needs; a command that depends on the file checks it itself)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def plain(value):
    """``value`` as strict JSON holds it: NumPy scalars and arrays as Python numbers and lists,
    tuples as lists, NaN and infinities as None (null; bare NaN is not JSON, and strict parsers
    reject it), anything else unknown as its text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def dumps(obj, indent: int | None = 2) -> str:
    """The one JSON writer of a run's records (config, summary, diagnosis, analysis, sweep and
    compare results): strict JSON, see ``plain``. (The logs, *.jsonl, keep Python's NaN so a
    resumed run reads back exactly the numbers it wrote.)"""
    return json.dumps(plain(obj), indent=indent, allow_nan=False)


def write_json(path, obj) -> None:
    """Atomically write ``obj`` as strict, indented JSON."""
    atomic_write_text(path, dumps(obj))

