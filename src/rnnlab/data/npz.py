"""A user's own arrays as a task: ``rnnlab train --data FILE.npz``.

The file holds ``X`` (N, T, D) inputs and ``y`` targets -- (N,) or (N, T) integer classes, or
(N, K) / (N, T, K) real values -- and optionally ``lengths`` (N,) for right-padded sequences and
``X_test``, ``y_test`` (and ``lengths_test``) as the held-out set; without them the last 10% of
the sequences are held out. Read with ``allow_pickle=False``: a file of Python objects is refused.
"""

from __future__ import annotations

import hashlib
import zipfile

import numpy as np

from rnnlab.checks import check_input_file, check_memory
from rnnlab.data.task import Task
from rnnlab.errors import InputError

KNOWN = ("X", "y", "lengths", "X_test", "y_test", "lengths_test")


def load_npz_task(path) -> Task:
    path = check_input_file(path, "--data", "pass an .npz file holding arrays X and y")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":                     # every .npz is a zip archive
            raise InputError(f"--data {path} is not a readable .npz file (not a zip archive); "
                             "save it with np.savez(path, X=inputs, y=targets)")
    try:
        with np.load(path, allow_pickle=False) as f:
            names = set(f.files)
            missing = [k for k in ("X", "y") if k not in names]
            if missing:
                raise InputError(f"--data {path} has no array {' or '.join(missing)} (it holds "
                                 f"{', '.join(sorted(names)) or 'nothing'}); save it with "
                                 "np.savez(path, X=inputs, y=targets)")
            unknown = sorted(names - set(KNOWN))
            if unknown:
                raise InputError(f"--data {path} holds unknown array(s) {', '.join(unknown)}; "
                                 f"the known names are {', '.join(KNOWN)}")
            for k in sorted(names):                       # what each array claims, before it is read
                shape, dtype = _header(f, k, path)
                check_memory(2.0 * np.prod(shape, dtype=float) * dtype.itemsize,
                             f"--data {path}: array {k} of shape {shape}", "check the file: it claims more "
                             "numbers than fit in memory")
            arrays = {k: f[k] for k in names}
        plain = sorted(k for k, a in arrays.items() if not isinstance(a, np.ndarray))
        if plain:
            raise InputError(f"--data {path}: its member {plain[0]} is not a NumPy array (plain text or bytes in "
                             "the archive); save the arrays with np.savez(path, X=inputs, y=targets)")
    except InputError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise InputError(f"--data {path} holds Python objects (a pickled object array), which "
                             "rnnlab does not load; save plain numeric arrays, e.g. "
                             "np.asarray(X, dtype=np.float32)") from None
        raise InputError(f"--data {path} cannot be read as .npz ({e}); save it with np.savez") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise InputError(f"--data {path} is not a readable .npz file ({e.__class__.__name__}); "
                         "save it with np.savez(path, X=inputs, y=targets)") from None
    X = _as_float(arrays["X"], "X", path)
    test = None
    if "lengths_test" in arrays and "X_test" not in arrays:
        raise InputError(f"--data {path} has lengths_test but no X_test and y_test; give the held-out arrays it "
                         "belongs to, or drop it (the held-out set is then the last 10% of X)")
    if "X_test" in arrays or "y_test" in arrays:
        if not {"X_test", "y_test"} <= set(arrays):
            raise InputError(f"--data {path} has only one of X_test and y_test; give both or neither")
        test = (_as_float(arrays["X_test"], "X_test", path), _target(arrays["y_test"]),
                arrays.get("lengths_test"))
        if test[2] is None:
            test = test[:2]
    task = Task.from_arrays(X, _target(arrays["y"]), arrays.get("lengths"), test=test, name=path.name)
    if task.targets == "classes" and len(seen := np.unique(task.train.y)) < 2:
        raise InputError(f"--data {path}: every training target is class {seen[0]}, so there is nothing "
                         "to tell apart (a model scores perfectly by ignoring its input); give y at least "
                         "two classes")
    return task


def _header(f, name, path):
    """(shape, dtype) an .npz member's .npy header claims, read without reading its data."""
    try:
        member = f"{name}.npy" if f"{name}.npy" in f.zip.namelist() else name
        with f.zip.open(member) as fp:
            version = np.lib.format.read_magic(fp)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(fp)
    except ValueError:
        raise InputError(f"--data {path}: its member {name} is not a NumPy array (plain text or bytes in the "
                         "archive); save the arrays with np.savez(path, X=inputs, y=targets)") from None
    return shape, dtype


def file_sha256(path) -> str:
    """The checksum a run records of its --data file, to tell when the file has changed since."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _as_float(a, name, path):
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise InputError(f"--data {path}: {name} must hold real numbers, got dtype {a.dtype}")
    return a.astype(np.float32) if a.dtype != np.float64 else a


def _target(y):
    """Integer classes stay integers; every other number is a real-valued target -- except a
    float array of whole numbers shaped like labels, which is almost surely classes saved as
    floats, and is refused with how to save it."""
    if y.dtype == bool:
        return y.astype(np.int64)
    if np.issubdtype(y.dtype, np.floating) and y.ndim in (1, 2) and y.size and np.isfinite(y).all() \
            and np.array_equal(y, np.round(y)):
        raise InputError(f"y holds whole numbers stored as floats, shape {y.shape}: if they are classes, "
                         "save them as integers (y.astype(int)); real-valued targets need shape (N, K) "
                         "or (N, T, K)")
    return y
