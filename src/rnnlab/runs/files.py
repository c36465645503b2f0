"""The files of a run directory, named once, and the plain reading and writing of them.

Every module that reads or writes a run's files takes their names from here; ``--force`` removes
exactly these (and never a file of the user's).
"""

from __future__ import annotations

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

# Figures, by what they show.
TRAINING_FIGURES = {"training_curves": "training_curves.png", "grad_norm": "grad_norm.png",
                    "hidden_states": "hidden_states.png", "gradient_flow": "gradient_flow.png",
                    "hidden_norms": "hidden_norms.png"}
ANALYSIS_FIGURES = {"unit_roles": "unit_roles.png", "pca": "pca.png", "fixed_points": "fixed_points.png"}

# Many-run directories (rnnlab sweep, rnnlab compare).
SWEEP_FILES = ("sweep.csv", "sweep.md", "sweep.json", "sweep.html", "sweep_plan.json", "gradient_vs_length.png")
COMPARE_FILES = ("compare.csv", "compare.md", "compare.json", "compare.html")

# Every file a run (or a sweep) writes: --force removes these, and only these, so nothing of an
# old run is left for the new one to be confused with, and no file of the user's is touched.
RUN_FILES = (CONFIG, METRICS_LOG, PROBES_LOG, EVENTS_LOG, SUMMARY, f"{CHECKPOINT}.json", f"{STATE}.json", ANALYSIS,
             DIAGNOSIS, HELDOUT, REPORT, *TRAINING_FIGURES.values(), *ANALYSIS_FIGURES.values(), *SWEEP_FILES)
RUN_PATTERNS = (f"{CHECKPOINT}-*.npz", f"{STATE}-*.npz", ".*.tmp*", "metric_vs_*.png", "heatmap_*.png",
                "tensorboard/events.out.tfevents.*", "tensorboard/hparams/events.out.tfevents.*")


def prepare_run_dir(out, force: bool = False) -> Path:
    """Create ``out``; refuse a non-empty existing directory unless ``force``, which removes the
    files an earlier run wrote there (and nothing else)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{in_voice('--out', 'run_dir')} {out} exists and is a file; choose a directory path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise RunDirError(f"output directory {out} already exists and is not empty; choose another "
                          f"{in_voice('--out', 'run_dir')} or pass {in_voice('--force', 'force=True')} to overwrite it")
    out.mkdir(parents=True, exist_ok=True)
    if force:
        remove_run_files(out)
    return out


def remove_run_files(out: Path) -> None:
    """Remove the files a run writes (and nothing else) from ``out``."""
    old = [out / n for n in RUN_FILES] + [p for pat in RUN_PATTERNS for p in out.glob(pat)]
    for path in old:
        if path.is_file():
            path.unlink()


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


def _plain(value):
    """NumPy scalars and arrays as Python numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return float(value) if isinstance(value, (int, float)) else str(value)


def write_json(path, obj) -> None:
    """Atomically write ``obj`` as indented JSON (NumPy numbers as plain ones)."""
    atomic_write_text(path, json.dumps(obj, indent=2, default=_plain))


def is_finite_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
