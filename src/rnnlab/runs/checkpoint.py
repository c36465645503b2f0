"""Checkpoints that never unpickle: arrays in an ``.npz`` (loaded with allow_pickle=False) and
metadata in ``NAME.json``, which holds a format tag, the .npz file's name and its SHA-256.

Crash-consistent: the arrays go to a new, uniquely named ``NAME-<sha>.npz`` first, then
``NAME.json`` is replaced atomically (temporary file, fsync, rename) -- that rename is the
commit -- and only then are older ``NAME-*.npz`` files removed. A crash at any point leaves the
previous checkpoint or the new one, never a mix or a half-written file.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from rnnlab.errors import CheckpointError

FORMAT = "rnnlab-checkpoint"
VERSION = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write through a temporary file and a rename, so a crash never leaves half a file; a failed
    write leaves no temporary file, and an error names the file meant, not the temporary one."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a directory, not a file", str(path))
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)                   # no leftover .NAME.tmpPID (a full disk left them)
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(run_dir, arrays: dict, meta: dict, name: str = "checkpoint") -> Path:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    run_dir = Path(run_dir)
    npz = run_dir / f"{name}-{sha[:16]}.npz"
    atomic_write_bytes(npz, data)
    full = {"format": FORMAT, "version": VERSION, "file": npz.name, "sha256": sha,
            "arrays": {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()}, **meta}
    atomic_write_text(run_dir / f"{name}.json", json.dumps(full, indent=2))   # the commit
    for old in run_dir.glob(f"{name}-*.npz"):
        if old != npz:
            old.unlink(missing_ok=True)
    return npz


def load_checkpoint(run_dir, name: str = "checkpoint") -> tuple[dict, dict]:
    """Return (arrays, metadata); any problem is a CheckpointError naming the file and the fix."""
    run_dir = Path(run_dir)
    meta_path = run_dir / f"{name}.json"
    if not meta_path.is_file():
        raise CheckpointError(f"checkpoint file {meta_path} is missing; train the run again "
                              "(or point at the run directory that has it)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path} is not valid JSON ({e.__class__.__name__}); the "
                              "checkpoint is corrupted, retrain or restore it from a copy") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path} is not an rnnlab checkpoint (no '{FORMAT}' format tag); "
                              "point at a run directory written by rnnlab")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{meta_path} has checkpoint version {meta.get('version')!r}, this "
                              f"rnnlab reads version {VERSION}; use the rnnlab that wrote it")
    file = meta.get("file")
    if not isinstance(file, str) or Path(file).name != file or not file.endswith(".npz"):
        raise CheckpointError(f"{meta_path} names no valid array file; the checkpoint is corrupted, "
                              "retrain or restore it from a copy")
    npz = run_dir / file
    if not npz.is_file():
        raise CheckpointError(f"checkpoint file {npz} is missing; train the run again "
                              "(or point at the run directory that has it)")
    data = npz.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise CheckpointError(f"{npz} does not match the checksum in {meta_path.name} (truncated or "
                              "modified); the checkpoint is corrupted, retrain or restore it")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise CheckpointError(f"{npz} cannot be read safely ({e}); only plain numeric arrays "
                              "are accepted") from None
    expected = meta.get("arrays", {})
    if set(expected) != set(arrays) or any(list(arrays[k].shape) != expected[k][0] for k in arrays):
        raise CheckpointError(f"{npz} holds different arrays than {meta_path.name} lists; "
                              "the checkpoint is corrupted, retrain or restore it")
    return arrays, meta
