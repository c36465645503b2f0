"""One seed, one result, tested where users run: no BLAS thread pin, figure workers on (the rest of
the suite pins both in conftest.py). A run's weights and every logged number but its clock depend
only on its seed and recorded settings: not on figure workers, on a busy machine, on a kill -9
and --resume, on being a member of a stack.

The runs use batch 50: the seed network's weight gradient is then a (64 x 1000) by (1000 x 64)
product, whose bits OpenBLAS changes with its thread count (75% of its entries, 0.3.31 SkylakeX),
so a run whose thread count moved with the machine's state would show it here."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnnlab.runs.checkpoint import load_checkpoint

PINS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "RNNLAB_FIGURE_WORKERS")
SEED_RUN = ["--preset", "seed", "--batch-size", "50", "--seed", "7", "--quiet"]
TIMING = {"seconds", "kernel_seconds", "time", "wall"}


def user_env(**extra) -> dict:
    """The environment a user has: none of the suite's pins."""
    env = {k: v for k, v in os.environ.items() if k not in PINS}
    env.update(extra)
    return env


def rnnlab(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "rnnlab", *map(str, args)], env=env or user_env(),
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r


def rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in path.read_text().splitlines() if line.strip()]


def differences(a: Path, b: Path) -> tuple[float, int]:
    """(max |dW| between the two runs' final weights, metrics.jsonl rows that differ)."""
    wa, _ = load_checkpoint(a)
    wb, _ = load_checkpoint(b)
    assert wa.keys() == wb.keys()
    dw = max(float(np.abs(wa[k].astype(np.float64) - wb[k]).max()) for k in wa)
    ra, rb = rows(a / "metrics.jsonl"), rows(b / "metrics.jsonl")
    assert len(ra) == len(rb)
    return dw, sum(x != y for x, y in zip(ra, rb))


def assert_same_bits(a: Path, b: Path) -> None:
    assert differences(a, b) == (0.0, 0)
    for log in ("probes.jsonl", "events.jsonl"):
        assert rows(a / log) == rows(b / log), log


@pytest.fixture
def busy():
    """One process that keeps a core busy for as long as the test runs."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield hog
    hog.kill()
    hog.wait()


@pytest.mark.slow      # two seed-preset runs as the user starts them (12 s); runs in CI
def test_figure_workers_change_no_bit(tmp_path):
    rnnlab("train", *SEED_RUN, "--out", tmp_path / "workers")
    rnnlab("train", *SEED_RUN, "--out", tmp_path / "alone", env=user_env(RNNLAB_FIGURE_WORKERS="0"))
    assert_same_bits(tmp_path / "workers", tmp_path / "alone")
    assert json.loads((tmp_path / "workers" / "config.json").read_text())["config"]["blas_threads"] == 1


@pytest.mark.slow
def test_a_busy_machine_changes_no_bit(tmp_path, busy):
    rnnlab("train", *SEED_RUN, "--out", tmp_path / "busy")
    busy.kill()
    busy.wait()
    rnnlab("train", *SEED_RUN, "--out", tmp_path / "quiet")
    assert_same_bits(tmp_path / "busy", tmp_path / "quiet")


def _wait_for_epochs(path: Path, n: int, proc, timeout=300) -> None:
    start = time.time()
    while time.time() - start < timeout:
        if len(rows(path)) >= n:
            return
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.02)
    raise AssertionError("training made no progress")


@pytest.mark.slow
def test_kill_9_then_resume_ends_with_the_bits_of_an_uninterrupted_run(tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    rnnlab("train", *SEED_RUN, "--out", full)
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "train", *SEED_RUN, "--out", str(cut)],
                            env=user_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_epochs(cut / "metrics.jsonl", 8, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "summary.json").exists() and 8 <= len(rows(cut / "metrics.jsonl")) < 50
    assert "resuming" in rnnlab("train", "--resume", cut).stdout
    assert_same_bits(full, cut)


def test_a_stacked_sweep_gives_each_trial_its_bits_alone(tmp_path):
    """Four 16-unit trials stack (K = 4), each with 1,000 held-out sequences: more than a member's
    share of a scoring pass (250), so the held-out loss would show a member scored in other sums."""
    grid = ["sweep", "--grid", "lr=1e-3,3e-3", "--seeds", "2", "--hidden", "16", "--epochs", "3", "--jobs", "1"]
    rnnlab(*grid, "--stack", "always", "--out", tmp_path / "stacked")
    rnnlab(*grid, "--no-stack", "--out", tmp_path / "alone")
    trials = sorted(p.name for p in (tmp_path / "alone" / "runs").iterdir())
    assert len(trials) == 4
    assert sorted(p.name for p in (tmp_path / "stacked" / "runs").iterdir()) == trials
    for name in trials:
        stacked_in, alone_in = (json.loads((tmp_path / way / "runs" / name / "result.json").read_text())["row"]
                                ["stacked"] for way in ("stacked", "alone"))
        assert (stacked_in, alone_in) == (4, 1)                # one stack of four against four runs alone
        assert_same_bits(tmp_path / "stacked" / "runs" / name, tmp_path / "alone" / "runs" / name)
