"""Every built-in task's memoryless baseline is in its metric's own units: the score a constant
answer gets on the held-out split, measured with the metric's own scorer."""

import numpy as np
import pytest

from rnnlab.data.metrics import METRICS
from rnnlab.data.tasks import TASKS, build_task
from rnnlab.training.config import TrainConfig


def best_constant_score(task) -> float:
    """The metric of the best input-blind constant answer (per step where targets are per step)."""
    metric, y = METRICS[task.metric], task.test.y
    if task.targets == "classes":
        K = task.output_size
        scores = []
        for k in range(K):
            out = np.zeros(y.shape + (K,))
            out[..., k] = 1.0
            s, n = metric.score(out, y)
            scores.append(s / n)
        return max(scores)
    mean = y.reshape(-1, y.shape[-1]).mean(axis=0)
    s, n = metric.score(np.broadcast_to(mean, y.shape), y)
    return s / n


@pytest.mark.parametrize("name", [t for t in TASKS if t not in ("charlm", "npz", "neurogym")])
def test_baseline_is_the_metric_of_a_constant_answer(name):
    task = build_task(TrainConfig(task=name, train_size=200, test_size=400))
    best = best_constant_score(task)
    if METRICS[task.metric].higher_is_better:
        assert 0.0 <= task.baseline <= 1.0
        assert task.baseline == pytest.approx(best, abs=0.04), task.baseline_note
    else:
        assert task.baseline >= 0
        assert task.baseline == pytest.approx(best, rel=0.1), task.baseline_note


def test_the_char_lm_baseline_is_bits_per_character(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("abcabcabd" * 500)
    task = build_task(TrainConfig(task="charlm", text=str(text), batch_size=4, window=16))
    counts = np.bincount(task.test.X, minlength=len(task.vocab)) + 0.0
    p = counts / counts.sum()
    assert task.metric == "bpc" and 1.0 < task.baseline < np.log2(len(task.vocab)) + 1e-9
    assert task.baseline == pytest.approx(-(p[p > 0] * np.log2(p[p > 0])).sum(), abs=0.1)
