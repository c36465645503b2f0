"""One JSON writer for a run's records: NumPy numbers become plain ones, NaN and infinities null,
so strict parsers read every record rnnlab writes."""

import json

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.runs.files import dumps


def strict(text):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))


def test_numpy_numbers_and_non_finite_values():
    obj = {"i": np.int64(3), "f": np.float32(0.5), "nan": float("nan"), "inf": np.float64(np.inf),
           "arr": np.array([1.0, np.nan]), "t": (1, 2), 4: True}
    assert strict(dumps(obj)) == {"i": 3, "f": 0.5, "nan": None, "inf": None, "arr": [1.0, None], "t": [1, 2],
                                  "4": True}


def test_a_diverged_runs_summary_is_strict_json(tmp_path, capsys):
    run = tmp_path / "boom"
    main(["train", "--out", str(run), "--no-guard", "--optimizer", "sgd", "--lr", "1e3", "--nonlinearity", "relu",
          "--init", "identity", "--epochs", "2",
          "--batches-per-epoch", "3", "--train-size", "100", "--test-size", "20", "--quiet", "--no-report"])
    capsys.readouterr()
    summary = strict((run / "summary.json").read_text())
    assert summary["final_test_loss"] is None                          # it was NaN
    for name in ("config.json", "diagnosis.json"):
        strict((run / name).read_text())


def test_a_sweep_of_the_copy_task_writes_its_results(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "--task", "copy", "--length", "5", "--grid", "lr=1e-3,1e-2", "--seeds", "1", "--epochs", "1",
                 "--batches-per-epoch", "1", "--train-size", "40", "--test-size", "20", "--jobs", "1",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    data = strict((out / "sweep.json").read_text())
    assert len(data["settings"]) == 2 and (out / "sweep.html").is_file()
