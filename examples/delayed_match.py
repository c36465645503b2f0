"""Your own task, end to end: delayed match-to-sample, which none of rnnlab's built-ins is.

A stimulus (one of 4) is shown, then a delay of random length, then a probe stimulus; answer 1
if the probe matches the first stimulus. Trials have different lengths (padded, with lengths).

    python examples/delayed_match.py [OUT_DIR]
"""
import json
import sys
from pathlib import Path

import numpy as np

import rnnlab


def trials(rng, batch_size, length):
    """x (B, length, 5): channels 0-3 the stimuli, channel 4 a 'probe now' cue; y (B,) match?"""
    sample, match = rng.integers(0, 4, batch_size), rng.random(batch_size) < 0.5
    probe = np.where(match, sample, (sample + rng.integers(1, 4, batch_size)) % 4)
    lengths = rng.integers(length // 2, length + 1, batch_size)       # delays vary per trial
    x = np.zeros((batch_size, length, 5), np.float32)
    rows = np.arange(batch_size)
    x[rows, 0, sample] = 1.0
    x[rows, lengths - 1, probe] = 1.0
    x[rows, lengths - 1, 4] = 1.0
    return x, match.astype(np.int64), lengths


task = rnnlab.Task.from_generator(trials, length=12, test_size=1000, name="delayed match-to-sample")
model = rnnlab.SequenceClassifier(5, 32, 2, cell="gru", seed=0)
out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/delayed-match")
cfg = rnnlab.TrainConfig(epochs=30, batches_per_epoch=25, batch_size=64, lr=1e-2, dropout=0.0, clip=1.0)
summary = rnnlab.train(task, model, config=cfg, run_dir=out, force=True)     # the whole run directory
print(f"test accuracy {100 * summary['final_test_acc']:.1f}% (chance {100 * task.baseline:.0f}%)")
print("fixed points:", json.loads((out / "analysis.json").read_text())["fixed_points"]["summary"])
print("report:", out / "report.html")
