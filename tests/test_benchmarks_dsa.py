"""benchmarks/dsa_speed.py: rnnlab's DSA and dsa-metric's on the same pairs in one run, the ratio
printed and rnnlab's angle within 2e-3 of dsa-metric's or below it on every pair (no wall-clock
assertions)."""

import pathlib
import re
import subprocess
import sys

import pytest

pytest.importorskip("DSA")

SCRIPT = pathlib.Path(__file__).parent.parent / "benchmarks" / "dsa_speed.py"


@pytest.mark.slow       # dsa-metric's 1500 Adam steps a pair: about 10 s; runs in CI
def test_the_dsa_benchmark_measures_both_peers_and_they_agree():
    r = subprocess.run([sys.executable, str(SCRIPT), "--networks", "3", "--units", "12", "--rank", "6",
                        "--population", "4"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert re.search(r"ratio dsa-metric / rnnlab: [\d.]+x", out), out
    assert "rnnlab within 2e-3 of or below dsa-metric on 3/3 pairs" in out, out
    assert "rnnlab alone, 4 networks (6 pairs):" in out, out
