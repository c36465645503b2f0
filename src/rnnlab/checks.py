"""Small validators used only at public boundaries (house style rule 5)."""

from __future__ import annotations

import contextlib
import numbers
import os
import stat
from pathlib import Path

import numpy as np

from rnnlab.errors import InputError, InputTypeError

# A task's kind: what its targets are, and so which readout a model needs. The one vocabulary of
# Task.kind (data), the Transformer's readout (nn) and the heads built for a task (training).
KINDS = ("classify", "tag", "regress", "regress-steps", "lm")
PER_STEP_KINDS = ("tag", "regress-steps")                 # one target per step

# Whom advice and errors speak to: the command line's flags (``--lr 0.003``) or a Python user's
# arguments (``lr=0.003``). Set by the entry point (``rnnlab.cli.main``) for the command it runs,
# never by an object.
_VOICE = {"cli": False}


@contextlib.contextmanager
def command_line_voice():
    """Within it, advice and errors name flags; the voice before is restored after (``main``
    may be called from Python, as the tests do)."""
    before, _VOICE["cli"] = _VOICE["cli"], True
    try:
        yield
    finally:
        _VOICE["cli"] = before


def in_voice(flag: str, argument: str, *, cli: bool | None = None) -> str:
    """Words for the command line or for Python: ``in_voice("--out", "run_dir")``."""
    return flag if (_VOICE["cli"] if cli is None else cli) else argument


def setting(name: str, value=..., *, cli: bool | None = None) -> str:
    """A config setting as its user writes it: ``--batch-size 32`` on the command line,
    ``batch_size=32`` in Python. ``cli`` overrides the process's voice (a run's own record says
    whether it was made on the command line)."""
    placeholder = isinstance(value, str) and value.startswith("<")        # "<a metric>": shown bare
    if _VOICE["cli"] if cli is None else cli:
        return f"--{name.replace('_', '-')}" + ("" if value is ... else f" {value}")
    return name + ("" if value is ... else f"={value!r}" if isinstance(value, str) and not placeholder
                   else f"={value}")


def check_input_file(path, flag: str, fix: str):
    """A file to read, named by a flag: a regular file, not a directory, a device, a FIFO or a
    broken or looping link (each said as what it is, not "does not exist")."""
    path = Path(path)
    if str(path) in ("", "."):
        raise InputError(f"{flag} is empty; {fix}")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        kind = "is a broken link" if path.is_symlink() else "does not exist"
        raise InputError(f"{flag} {path} {kind}; {fix}") from None
    except OSError as e:                      # a link loop, a permission, a name too long
        raise InputError(f"{flag} {path} cannot be opened ({e.strerror or e}); {fix}") from None
    if not stat.S_ISREG(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise InputError(f"{flag} {path} is {kind}, not a file; {fix}")
    return path


def available_memory() -> int:
    """Bytes of memory this machine can still give (Linux: MemAvailable), else its physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62                                    # unknown: no refusal


def check_memory(need: float, what: str, fix: str) -> None:
    """Refuse, before allocating, what would need more memory than the machine has: named, sized,
    with what to change (a setting of 10^5 hidden units otherwise asks NumPy for 160 GB)."""
    have = available_memory()
    if need > have:
        raise InputError(f"{what} would need about {_bytes(need)} of memory, more than the {_bytes(have)} this "
                         f"machine has available; {fix}")


def _bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def check_int(name: str, value, *, minimum: int | None = None, owner: str = "") -> int:
    prefix = f"{owner}: " if owner else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{prefix}{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InputError(f"{prefix}{name} must be at least {minimum}, got {value}")
    return int(value)


def check_float(name: str, value, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, owner: str = "") -> float:
    prefix = f"{owner}: " if owner else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"{prefix}{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise InputError(f"{prefix}{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        bound = ">" if low_open else ">="
        raise InputError(f"{prefix}{name} must be {bound} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        bound = "<" if high_open else "<="
        raise InputError(f"{prefix}{name} must be {bound} {high}, got {value}")
    return value


def check_path(name: str, value, *, owner: str = "") -> Path:
    """A path argument: text or a path object (a number or None is a mistake, not a directory)."""
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
        return Path(value)
    prefix = f"{owner}: " if owner else ""
    raise InputTypeError(f"{prefix}{name} must be a path (a str or pathlib.Path), got {_kind(value)}")


def check_bool(name: str, value, *, owner: str = "") -> bool:
    """A switch: True or False (force="no" would be read as yes)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    prefix = f"{owner}: " if owner else ""
    raise InputTypeError(f"{prefix}{name} must be True or False, got {_kind(value)}")


def check_list(name: str, value, of: str, *, owner: str = "") -> list:
    """A list (or tuple) of things; one thing where a list is asked for is named, with the fix."""
    if isinstance(value, (list, tuple)):
        return list(value)
    prefix = f"{owner}: " if owner else ""
    raise InputTypeError(f"{prefix}{name} must be a list of {of}, got {_kind(value)}; wrap one in a list: "
                         f"{name}=[...]")


def _kind(value) -> str:
    return repr(value) if value is None or isinstance(value, (bool, numbers.Number, str, bytes)) \
        else f"a {type(value).__name__}"


def check_choice(name: str, value, choices, *, owner: str = "") -> str:
    prefix = f"{owner}: " if owner else ""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise InputError(f"{prefix}{name} must be one of {options}, got {value!r}")
    return value


def check_array(name: str, x, *, ndim: int, last: int | None = None, owner: str = "",
                hint: str = "") -> np.ndarray:
    """Check an array's rank and (optionally) its last dimension, naming the fix."""
    prefix = f"{owner}: " if owner else ""
    if not isinstance(x, np.ndarray):
        raise InputTypeError(f"{prefix}{name} must be a NumPy array, got {type(x).__name__}")
    if x.ndim != ndim or (last is not None and x.shape[-1] != last):
        want = "(" + ", ".join(["B", "T"][: ndim - 1] + [str(last) if last is not None else "D"]) + ")"
        if ndim == 2:
            want = f"(B, {last if last is not None else 'D'})"
        fix = f"; {hint}" if hint else ""
        raise InputError(f"{prefix}expected {name} of shape {want}, got {tuple(x.shape)}{fix}")
    if not np.issubdtype(x.dtype, np.number):
        raise InputTypeError(f"{prefix}{name} must hold numbers, got dtype {x.dtype}")
    return x


def check_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise InputError(f"dtype must be float32 or float64, got {dt}")
    return dt


def check_lengths(lengths, B: int, T: int, *, owner: str = ""):
    """Per-sequence lengths of a right-padded batch -> int array, or None when every sequence
    fills all T steps (so the fixed-length fast path runs)."""
    if lengths is None:
        return None
    prefix = f"{owner}: " if owner else ""
    arr = np.asarray(lengths)
    if arr.shape != (B,):
        raise InputError(f"{prefix}lengths must have shape ({B},), one length per sequence in "
                         f"the batch, got shape {arr.shape}; pass a 1-D array of B integers")
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{prefix}lengths must be integers (valid steps per sequence), got "
                         f"dtype {arr.dtype}; convert them with .astype(int)")
    if arr.min() < 1 or arr.max() > T:
        raise InputError(f"{prefix}every length must lie in [1, {T}] (the padded length T), got "
                         f"values from {arr.min()} to {arr.max()}; drop empty sequences or pad "
                         "x to the longest one")
    return None if np.all(arr == T) else arr.astype(np.int64)
