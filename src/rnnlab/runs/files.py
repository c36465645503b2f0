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
FIXED_POINTS_AT_INPUT = "fixed_points_input{}.png"     # the second and later constant inputs' eigenvalues

# Many-run directories (rnnlab sweep, rnnlab compare).
SWEEP_FILES = ("sweep.csv", "sweep.md", "sweep.json", "sweep.html", "sweep_plan.json", "gradient_vs_length.png")
COMPARE_FILES = ("compare.csv", "compare.md", "compare.json", "compare.html")

TENSORBOARD_FILES = ("tensorboard/events.out.tfevents.*", "tensorboard/hparams/events.out.tfevents.*")
# What each kind of run writes (names, and patterns with a *): a --force over a file of the user's
# with one of these names is refused.
RUN_OUTPUTS = (CONFIG, METRICS_LOG, PROBES_LOG, EVENTS_LOG, SUMMARY, f"{CHECKPOINT}.json", f"{CHECKPOINT}-*.npz",
               f"{STATE}.json", f"{STATE}-*.npz", ANALYSIS, DIAGNOSIS, HELDOUT, REPORT, *TRAINING_FIGURES.values(),
               *ANALYSIS_FIGURES.values(), FIXED_POINTS_AT_INPUT.format("*"), *TENSORBOARD_FILES)
SWEEP_OUTPUTS = (*SWEEP_FILES, "metric_vs_*.png", "heatmap_*.png")
# A run or sweep directory written before rnnlab recorded its files (no MANIFEST) is cleared by
# --force by these names (and its leftover temporary files); nothing else is touched.
RUN_FILES = tuple(n for n in (*RUN_OUTPUTS, *SWEEP_OUTPUTS) if "*" not in n)
RUN_PATTERNS = (*(n for n in (*RUN_OUTPUTS, *SWEEP_OUTPUTS) if "*" in n), ".*.tmp*")


def prepare_run_dir(out, force: bool = False, writes=None) -> Path:
    """Create ``out``; refuse a non-empty existing directory unless ``force``, which removes the
    files rnnlab recorded writing there (``MANIFEST``) and nothing else: a file of the user's that
    a run would write over is refused by name, never removed."""
    out = Path(out)
    try:
        str(out.absolute()).encode("utf-8")
    except UnicodeEncodeError:
        raise RunDirError(f"{in_voice('--out', 'run_dir')} {str(out)!r} is not valid UTF-8 text, which the run's "
                          "records and report must hold; choose a name of plain characters") from None
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{in_voice('--out', 'run_dir')} {out} exists and is a file; choose a directory path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise RunDirError(f"output directory {out} already exists and is not empty; choose another "
                          f"{in_voice('--out', 'run_dir')} or pass {in_voice('--force', 'force=True')} to overwrite it")
    out.mkdir(parents=True, exist_ok=True)
    if force:
        remove_run_files(out)
        clash = sorted(p for p in _files(out) if _named_like(p, RUN_OUTPUTS if writes is None else writes))
        if clash:
            raise RunDirError(f"{out / clash[0]} was not written by rnnlab here (it is not in {MANIFEST}) and a run "
                              f"would write over it; move it away or choose another {in_voice('--out', 'run_dir')}")
    _write_manifest(out, {"written": []})
    return out


def remove_run_files(out: Path) -> None:
    """Remove the files rnnlab recorded writing in ``out`` (and nothing else). A run directory from
    before the record was kept (a config.json or sweep_plan.json, no manifest) is cleared by the
    run file names, as it always was."""
    manifest = _read_manifest(out)
    if manifest is not None:
        old = [out / rel for rel in manifest["written"]]
    elif (out / CONFIG).is_file() or (out / "sweep_plan.json").is_file():
        old = [out / n for n in RUN_FILES] + [p for pat in RUN_PATTERNS for p in out.glob(pat)]
    else:
        old = []
    for path in old:
        if path.is_file() and not path.is_symlink():
            path.unlink()
    if manifest is not None:
        _write_manifest(out, {"written": []})


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


def _read_manifest(out: Path) -> dict | None:
    path = Path(out) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None                                   # missing or damaged: nothing is known to be ours
    ok = isinstance(data, dict) and isinstance(data.get("written"), list)
    return {"written": [str(w) for w in data["written"] if isinstance(w, str) and ".." not in w]} if ok else None


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

