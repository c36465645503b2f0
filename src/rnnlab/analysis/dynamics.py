"""Hidden-state dynamics, measured rather than eyeballed.

- ``unit_signatures`` / ``assign_roles``: per unit, over held-out sequences: correlation with the
  running mean of the input, autocorrelation decay time, sign-change rate and dominant frequency,
  persistence of the response to a single input impulse, saturation; then a role: transient,
  accumulator, oscillatory, saturated (incl. dead) or mixed, with the scores kept.
- ``pca_trajectories``: principal components of the hidden states of many sequences.
- fixed points of any cell's step map live in ``fixed_points.py``.
"""

from __future__ import annotations

import numpy as np

ROLES = ("accumulator", "transient", "oscillatory", "saturated", "mixed")

# A unit is oscillatory when its fluctuations' dominant non-zero frequency (their power spectrum
# averaged over the analysed sequences) repeats at least twice in the window; the band around it
# (that frequency's bin and its two neighbours, which a period that does not divide the window
# leaks into) holds at least OSC_POWER_SHARE of their power; that frequency has at least
# OSC_OVER_SLOWEST times the power of the slowest one (one cycle per window), so slow noise whose
# spectrum only falls with frequency is not a rhythm; and the window has at least OSC_MIN_STEPS
# steps (below that three bins are most of a spectrum).
OSC_POWER_SHARE = 0.5
OSC_OVER_SLOWEST = 2.0
OSC_MIN_CYCLES = 2
OSC_MIN_STEPS = 12


# ---------------------------------------------------------------- hidden traces
def layer_states(model, X, layer: int = -1, lengths=None) -> np.ndarray:
    """(N, T, S) state of one recurrent layer (forward direction) at every step, in eval mode:
    h (S = H), or h and c side by side for the LSTM (S = 2H)."""
    was = model.training
    model.eval()
    inputs = model.embedding.forward(X) if hasattr(model, "embedding") else X
    _, _, states = model.rnn.forward(inputs, lengths=lengths, return_states=True)
    model.train(was)
    k = (layer % model.rnn.num_layers) * model.rnn.num_directions
    return np.asarray(states[k], dtype=np.float64)


def last_layer_states(model, X, both_directions: bool = False) -> np.ndarray:
    """(N, T, H) hidden states of the last recurrent layer in eval mode: the forward direction,
    or (N, T, dirs*H) with ``both_directions``."""
    was = model.training
    model.eval()
    inputs = model.embedding.forward(X) if hasattr(model, "embedding") else X
    out, _ = model.rnn.forward(inputs)
    model.train(was)
    out = out if both_directions else out[..., :model.rnn.hidden_size]
    return np.asarray(out, dtype=np.float64)


def impulse_responses(model, T: int, D: int) -> np.ndarray:
    """(T, H) change of every last-layer unit after a unit impulse at step 1 (zeros elsewhere)."""
    x = np.zeros((2, T, D), dtype=model.dtype)
    x[1, 0, :] = 1.0 / np.sqrt(D)
    h = last_layer_states(model, x)
    return h[1] - h[0]


# ---------------------------------------------------------------- signatures and roles
def unit_signatures(H: np.ndarray, running: np.ndarray | None, impulse: np.ndarray | None) -> list[dict]:
    """Scores per unit from traces H (N, T, U), the input's running mean (N, T), and the impulse
    response (T, U). Every score is computed for all units at once (a loop over units took 61 of
    the seed run's 350 ms of analysis, this 16; the same numbers to ~1e-15)."""
    N, T, U = H.shape
    running_sd = float(np.std(running)) if running is not None else 0.0
    sd = H.std(axis=(0, 1))                                                      # (U,)
    centred = H - H.mean(axis=1, keepdims=True)                                  # per-sequence fluctuations
    # autocorrelation of the fluctuations at each lag, pooled over sequences; decay = first lag below 1/e
    denom = np.einsum("ntu,ntu->u", centred, centred)
    ac = np.ones((T, U))
    for k in range(1, T):
        lagged = np.einsum("ntu,ntu->u", centred[:, k:], centred[:, :-k])
        ac[k] = np.divide(lagged, denom, out=np.zeros(U), where=denom > 0)
    below = ac < np.exp(-1)
    decay = np.where(below.any(axis=0), below.argmax(axis=0), T)
    signs = np.sign(centred)
    sign_rate = (signs[:, 1:] * signs[:, :-1] < 0).mean(axis=(0, 1)) if T > 1 else np.zeros(U)
    spec = (np.abs(np.fft.rfft(centred, axis=1)) ** 2).mean(axis=0)            # (F, U) power per frequency
    corr = np.zeros(U)
    if running is not None and running_sd > 1e-12:                              # one-hot inputs: a constant mean
        flat = H.reshape(-1, U)
        hc, rc = flat - flat.mean(axis=0), running.ravel() - running.mean()
        norm = np.sqrt(np.einsum("iu,iu->u", hc, hc) * (rc @ rc))
        corr = np.clip(np.divide(rc @ hc, norm, out=np.zeros(U), where=norm > 0), -1.0, 1.0)
        corr[sd <= 1e-8] = 0.0                                       # a constant unit correlates with nothing
    sat = (np.abs(H) > 0.98).mean(axis=(0, 1))
    out = []
    for u in range(U):
        power = spec[:, u]
        peak = int(np.argmax(power[1:]) + 1) if power.size > 1 else 0
        rest = power[1:].sum()
        band = power[max(1, peak - 1):peak + 2].sum()                        # the peak's bin and its neighbours
        peak_frac = float(band / rest) if power.size > 1 and rest > 0 else 0.0
        over_slowest = (float(power[peak] / power[1]) if power[1] > 0 else float("inf")) if peak >= 1 else 0.0
        persistence = 0.0
        if impulse is not None:
            r = np.abs(impulse[:, u])
            persistence = float(r[-1] / r[0]) if r[0] > 1e-12 else (0.0 if r.max() < 1e-12 else 1.0)
        out.append({"unit": u, "std": float(sd[u]), "corr_running_mean": float(corr[u]),
                    "autocorr_decay": int(decay[u]), "sign_change_rate": float(sign_rate[u]),
                    "dominant_period": (T / peak) if peak else None, "cycles_in_window": peak, "steps": T,
                    "peak_power_fraction": peak_frac, "peak_over_slowest": over_slowest,
                    "impulse_persistence": persistence, "saturated_fraction": float(sat[u])})
    return out


def assign_roles(signatures: list[dict]) -> list[str]:
    """One role per unit from its signature (thresholds documented in each branch)."""
    roles = []
    for s in signatures:
        if s["std"] < 0.01 or s["saturated_fraction"] > 0.9:
            roles.append("saturated")          # dead (no variance) or pinned at +-1
        elif abs(s["corr_running_mean"]) > 0.6 and s["impulse_persistence"] > 0.3:
            roles.append("accumulator")        # tracks the running mean and keeps an impulse
        elif oscillates(s):
            roles.append("oscillatory")        # one frequency dominates its fluctuations, repeated
        elif s["impulse_persistence"] < 0.2 and s["autocorr_decay"] <= 2:
            roles.append("transient")          # reacts to the current input, forgets fast
        else:
            roles.append("mixed")
    return roles


def oscillates(s: dict) -> bool:
    """The oscillatory role's test (the constants above): one cycle over the whole window is a
    drift, not an oscillation, and a spread spectrum is noise, not a rhythm."""
    steps = s.get("steps") or OSC_MIN_STEPS
    return (s["dominant_period"] is not None and s["dominant_period"] >= 2
            and s.get("cycles_in_window", OSC_MIN_CYCLES) >= OSC_MIN_CYCLES
            and s["peak_power_fraction"] >= OSC_POWER_SHARE and steps >= OSC_MIN_STEPS
            and s.get("peak_over_slowest", OSC_OVER_SLOWEST) >= OSC_OVER_SLOWEST)


def running_mean_of_input(X) -> np.ndarray | None:
    """(N, T) running mean of all input values up to each step (what mean-sign integrates)."""
    if X.ndim != 3:
        return None
    X = np.asarray(X, dtype=np.float64)
    return np.cumsum(X.sum(axis=2), axis=1) / (np.arange(1, X.shape[1] + 1) * X.shape[2])


# ---------------------------------------------------------------- PCA
def pca_trajectories(H: np.ndarray, k: int = 3) -> dict:
    """Project all states of H (N, T, U) on their first k principal components."""
    N, T, U = H.shape
    flat = H.reshape(-1, U)
    mean = flat.mean(axis=0)
    centred = flat - mean
    # eigenvectors of the (U, U) covariance, not an SVD of the (N*T, U) states: 3 ms against 34
    # for the seed run's 10,000 x 64, the same components and explained variances to ~1e-15
    var, vecs = np.linalg.eigh(centred.T @ centred / max(len(flat) - 1, 1))
    var, vt = np.maximum(var[::-1], 0.0), vecs[:, ::-1].T                         # largest first
    vt *= np.where(vt[np.arange(U), np.abs(vt).argmax(axis=1)] < 0, -1.0, 1.0)[:, None]   # largest entry > 0
    explained = var / var.sum() if var.sum() > 0 else var
    proj = (centred @ vt[:k].T).reshape(N, T, -1)
    return {"projection": proj, "explained": explained[:k].tolist(),
            "components": vt[:k], "mean": mean}


def hidden_state_view(model, data, index: int = 0) -> dict:
    """What the hidden-states figure (``present.plots.plot_hidden_states``) draws, computed where
    the model is: the last recurrent layer's states over one test sequence (or the first 60
    held-out characters), and what to label them with."""
    x = data.X_test[None, :60] if data.kind == "lm" else data.X_test[index:index + 1]
    if data.kind != "lm" and data.test.lengths is not None:
        x = x[:, :data.test.lengths[index]]                       # its valid steps only
    hs = last_layer_states(model, x, both_directions=True)[0]    # (T, dirs*H)
    T = hs.shape[0]
    view = {"hs": hs, "index": index, "running": None, "chars": None, "label": None}
    if data.name in ("mean-sign", "tagging"):                    # what these tasks integrate
        view["running"] = np.cumsum(x[0].sum(axis=1)) / (np.arange(1, T + 1) * x.shape[2])
    if data.kind == "lm":
        view["chars"] = "".join(data.vocab[i] for i in x[0])
    else:
        view["label"] = np.asarray(data.y_test[index])
    return view
