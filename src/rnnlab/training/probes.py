"""Training instruments: what a run records so nobody has to add print statements.

Every ``probe_every`` iterations the trainer asks the recurrent stack to keep, from the arrays
its forward and backward loops already produce (``backward(..., record=True)``): the gradient reaching each
time step ||dL/dh_t||, the hidden-state norm at each step (mean and max over the batch), and each
step's share of dL/dW_hh; plus per-parameter gradient norms and the spectral radius and largest
singular value of every recurrent matrix (per gate block). Step records go to ``probes.jsonl``;
the spectra, about ten times per run (they drift slowly), to ``metrics.jsonl``.
"""

from __future__ import annotations

import numpy as np


def recurrent_spectra(rnn) -> dict:
    """Spectral radius and largest singular value of each (H, H) gate block of every W_hh."""
    out, H = {}, rnn.hidden_size
    for name, W in rnn.params.items():
        if not name.startswith("weight_hh"):
            continue
        blocks = [W[g * H:(g + 1) * H].astype(np.float64) for g in range(W.shape[0] // H)]
        if not all(np.isfinite(b).all() for b in blocks):      # a diverged run: say so, never crash
            out[name] = {"spectral_radius": ["nan"] * len(blocks), "sigma_max": ["nan"] * len(blocks)}
            continue
        out[name] = {"spectral_radius": [float(np.abs(np.linalg.eigvals(b)).max()) for b in blocks],
                     "sigma_max": [float(np.linalg.norm(b, 2)) for b in blocks]}
    return out


def probe_record(steps: dict, param_grad_norms: dict, iteration: int, epoch: int, step: dict) -> dict:
    """One probes.jsonl row from a recorded backward pass (``backward(..., record=True)``) and
    the gradient norms before any clipping. (The spectra change slowly; the trainer records
    them ~10 times a run in metrics.jsonl.)"""
    return {"iteration": iteration, "epoch": epoch, "loss": step["loss"],
            "grad_norm": step["grad_norm"], "grad_norm_clipped": step["grad_norm_clipped"],
            "param_grad_norms": param_grad_norms, "steps": steps}


def running(layer_probe: dict, key: str) -> np.ndarray:
    """A per-step series of a layer's probes, NaN at the steps no sequence of the batch reaches
    (all padding: a 0 there is no state and no gradient, and would read as a collapse)."""
    values = np.asarray(layer_probe[key], dtype=np.float64)
    valid = layer_probe.get("valid")
    return values if valid is None else np.where(np.asarray(valid) > 0, values, np.nan)


def reference_step(layer_probe: dict) -> int:
    """The last step (index) that at least half of the batch reaches: the "late" end of gradient
    flow. With every sequence as long as the batch, the last step; with variable lengths, not a
    step that is padding for most sequences (its gradient is theirs: 0)."""
    valid = layer_probe.get("valid")
    if not valid:
        return len(layer_probe["grad_norm"]) - 1
    half = max(valid) / 2
    return max(t for t, v in enumerate(valid) if v >= half)


def early_to_late_gradient(probes: list[dict]) -> float | None:
    """Median over the second half of training of ||dL/dh_1|| / ||dL/dh_T|| in the top layer:
    how much of the loss's gradient still reaches the first step (1 = all, 1e-6 = none)."""
    if not probes or not probes[0]["steps"]:            # no recurrent layer (a transformer)
        return None
    top = sorted(probes[0]["steps"])[-1]
    ratios = []
    for p in probes[len(probes) // 2:]:
        g = p["steps"][top]["grad_norm"]
        last = g[reference_step(p["steps"][top])]
        if last > 0 and np.isfinite(g[0]) and np.isfinite(last):
            ratios.append(g[0] / last)
    return float(np.median(ratios)) if ratios else None
