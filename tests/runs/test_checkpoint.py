import io
import json

import numpy as np
import pytest

from conftest import npz_of
from rnnlab.errors import CheckpointError
from rnnlab.runs.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip_and_no_temporary_files(tmp_path):
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3)}
    save_checkpoint(tmp_path, arrays, {"epoch": 3})
    got, meta = load_checkpoint(tmp_path)
    assert meta["epoch"] == 3 and meta["format"] == "rnnlab-checkpoint"
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
        assert got[k].dtype == arrays[k].dtype
    assert {p.name for p in tmp_path.iterdir()} == {"checkpoint.json", npz_of(tmp_path).name}
    save_checkpoint(tmp_path, {"w": np.zeros(2)}, {"epoch": 4})        # the older file is gone
    assert {p.name for p in tmp_path.iterdir()} == {"checkpoint.json", npz_of(tmp_path).name}
    assert load_checkpoint(tmp_path)[1]["epoch"] == 4


def test_a_crash_before_the_commit_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import rnnlab.runs.checkpoint as ck
    save_checkpoint(tmp_path, {"w": np.ones(3)}, {"epoch": 1})
    real = ck.atomic_write_text

    def crash(path, text):
        raise OSError("killed")
    monkeypatch.setattr(ck, "atomic_write_text", crash)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, {"w": np.zeros(3)}, {"epoch": 2})
    monkeypatch.setattr(ck, "atomic_write_text", real)
    arrays, meta = load_checkpoint(tmp_path)
    assert meta["epoch"] == 1 and np.all(arrays["w"] == 1)


def test_truncated_file_is_detected(tmp_path):
    save_checkpoint(tmp_path, {"w": np.ones(100)}, {})
    npz = npz_of(tmp_path)
    npz.write_bytes(npz.read_bytes()[:-40])
    with pytest.raises(CheckpointError, match="does not match the checksum"):
        load_checkpoint(tmp_path)


def test_pickled_arrays_are_refused_even_with_a_valid_checksum(tmp_path):
    import hashlib
    buf = io.BytesIO()
    np.savez(buf, w=np.array([{"evil": 1}], dtype=object))
    (tmp_path / "checkpoint-x.npz").write_bytes(buf.getvalue())
    meta = {"format": "rnnlab-checkpoint", "version": 1, "file": "checkpoint-x.npz",
            "sha256": hashlib.sha256(buf.getvalue()).hexdigest(), "arrays": {"w": [[1], "object"]}}
    (tmp_path / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        load_checkpoint(tmp_path)


def test_foreign_and_missing(tmp_path):
    with pytest.raises(CheckpointError, match="is missing"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path, {"w": np.ones(2)}, {})
    (tmp_path / "checkpoint.json").write_text(json.dumps({"format": "keras"}))
    with pytest.raises(CheckpointError, match="not an rnnlab checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.json").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path)
