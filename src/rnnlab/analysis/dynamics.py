"""Hidden-state dynamics, measured rather than eyeballed.

- ``unit_signatures`` / ``assign_roles``: per unit, over held-out sequences: correlation with the
  running mean of the input, autocorrelation decay time, sign-change rate and dominant frequency,
  persistence of the response to a single input impulse, saturation; then a role: transient,
  accumulator, oscillatory, saturated (incl. dead) or mixed, with the scores kept.
- ``ablate_roles``: silence each role's units at test time (their outgoing weights zeroed: the
  recurrence and the readout no longer see them) and report the accuracy drop, next to a random
  group of the same size.
- ``pca_trajectories``: principal components of the hidden states of many sequences.
- ``find_fixed_points``: approximate fixed points of h -> F(h) (the recurrent map with a constant
  input) by minimising ||F(h) - h||^2 from many starts, clustered, with Jacobian eigenvalues.
"""

from __future__ import annotations

import numpy as np

ROLES = ("accumulator", "transient", "oscillatory", "saturated", "mixed")


# ---------------------------------------------------------------- hidden traces
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
    response (T, U)."""
    N, T, U = H.shape
    out = []
    for u in range(U):
        h = H[:, :, u]
        sd = float(h.std())
        centred = h - h.mean(axis=1, keepdims=True)
        # autocorrelation of the per-sequence fluctuations, averaged over sequences
        denom = (centred ** 2).sum()
        ac = [1.0] + [float((centred[:, k:] * centred[:, :-k]).sum() / denom) if denom > 0 else 0.0
                      for k in range(1, T)]
        decay = next((k for k, a in enumerate(ac) if a < np.exp(-1)), T)
        signs = np.sign(centred)
        sign_rate = float((signs[:, 1:] * signs[:, :-1] < 0).mean()) if T > 1 else 0.0
        spec = np.abs(np.fft.rfft(centred, axis=1)) ** 2
        spec = spec.mean(axis=0)
        peak = int(np.argmax(spec[1:]) + 1) if spec.size > 1 else 0
        peak_frac = float(spec[peak] / spec[1:].sum()) if spec.size > 1 and spec[1:].sum() > 0 else 0.0
        corr = 0.0
        if running is not None and sd > 1e-8:
            corr = float(np.corrcoef(h.ravel(), running.ravel())[0, 1])
        persistence = 0.0
        if impulse is not None:
            r = np.abs(impulse[:, u])
            persistence = float(r[-1] / r[0]) if r[0] > 1e-12 else (0.0 if r.max() < 1e-12 else 1.0)
        sat = float((np.abs(h) > 0.98).mean())
        out.append({"unit": u, "std": sd, "corr_running_mean": corr, "autocorr_decay": decay,
                    "sign_change_rate": sign_rate, "dominant_period": (T / peak) if peak else None,
                    "peak_power_fraction": peak_frac, "impulse_persistence": persistence,
                    "saturated_fraction": sat})
    return out


def assign_roles(signatures: list[dict]) -> list[str]:
    """One role per unit from its signature (thresholds documented in each branch)."""
    roles = []
    for s in signatures:
        if s["std"] < 0.01 or s["saturated_fraction"] > 0.9:
            roles.append("saturated")          # dead (no variance) or pinned at +-1
        elif abs(s["corr_running_mean"]) > 0.6 and s["impulse_persistence"] > 0.3:
            roles.append("accumulator")        # tracks the running mean and keeps an impulse
        elif s["peak_power_fraction"] > 0.5 and s["sign_change_rate"] > 0.25 and s["dominant_period"] \
                and s["dominant_period"] >= 2:
            roles.append("oscillatory")        # one frequency dominates its fluctuations
        elif s["impulse_persistence"] < 0.2 and s["autocorr_decay"] <= 2:
            roles.append("transient")          # reacts to the current input, forgets fast
        else:
            roles.append("mixed")
    return roles


def running_mean_of_input(X) -> np.ndarray | None:
    """(N, T) running mean of all input values up to each step (what mean-sign integrates)."""
    if X.ndim != 3:
        return None
    X = np.asarray(X, dtype=np.float64)
    return np.cumsum(X.sum(axis=2), axis=1) / (np.arange(1, X.shape[1] + 1) * X.shape[2])


# ---------------------------------------------------------------- ablation
def silenced_copy(model, units, build):
    """A copy of ``model`` in which the given last-layer units' outputs reach nothing."""
    twin = build()
    sd = model.state_dict()
    L = model.rnn.num_layers - 1
    units = np.asarray(sorted(units), dtype=int)
    if units.size:
        sd[f"rnn.weight_hh_l{L}"][:, units] = 0.0     # the recurrence no longer reads them
        sd["fc.weight"][:, units] = 0.0               # nor does the readout
    twin.load_state_dict(sd)
    twin.eval()
    return twin


def ablate_roles(model, roles, build, X, y, seed: int = 0) -> list[dict]:
    from ..train import evaluate
    base = evaluate(model, X, y)[1]
    rng = np.random.default_rng(seed)
    rows = []
    for role in ROLES:
        units = [u for u, r in enumerate(roles) if r == role]
        if not units:
            continue
        acc = evaluate(silenced_copy(model, units, build), X, y)[1]
        rand_units = rng.choice(len(roles), len(units), replace=False)
        rand = evaluate(silenced_copy(model, rand_units, build), X, y)[1]
        rows.append({"group": role, "units": len(units), "accuracy": acc, "drop": base - acc,
                     "random_same_size_drop": base - rand})
    return [{"group": "none", "units": 0, "accuracy": base, "drop": 0.0, "random_same_size_drop": 0.0}] + rows


# ---------------------------------------------------------------- PCA
def pca_trajectories(H: np.ndarray, k: int = 3) -> dict:
    """Project all states of H (N, T, U) on their first k principal components."""
    N, T, U = H.shape
    flat = H.reshape(-1, U)
    mean = flat.mean(axis=0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    var = s ** 2 / max(len(flat) - 1, 1)
    explained = var / var.sum() if var.sum() > 0 else var
    proj = ((flat - mean) @ vt[:k].T).reshape(N, T, -1)
    return {"projection": proj, "explained": explained[:k].tolist(),
            "components": vt[:k], "mean": mean}


# ---------------------------------------------------------------- fixed points
class RecurrentMap:
    """h -> act(h W^T + drive): one Elman layer with a constant input folded into ``drive``."""

    def __init__(self, W: np.ndarray, drive: np.ndarray, relu: bool = False):
        self.W, self.drive, self.relu = np.asarray(W, float), np.asarray(drive, float), relu

    @classmethod
    def from_rnn(cls, rnn, x_const) -> "RecurrentMap":
        """The last layer of a trained ``RNN`` stack, fed the constant input ``x_const``."""
        L = rnn.num_layers - 1
        p = {k: v.astype(np.float64) for k, v in rnn.params.items()}
        drive = p[f"weight_ih_l{L}"] @ np.asarray(x_const, float)
        if rnn.bias:
            drive = drive + p[f"bias_ih_l{L}"] + p[f"bias_hh_l{L}"]
        return cls(p[f"weight_hh_l{L}"], drive, getattr(rnn, "nonlinearity", "tanh") == "relu")

    def __call__(self, h):                                       # (M, H) -> (M, H)
        z = h @ self.W.T + self.drive
        return np.maximum(z, 0) if self.relu else np.tanh(z)

    def derivative(self, h):                                     # act'(z) at each h, (M, H)
        z = h @ self.W.T + self.drive
        return (z > 0).astype(float) if self.relu else 1.0 - np.tanh(z) ** 2

    def jacobian(self, h):                                       # (H, H) at one point h (H,)
        return self.derivative(h[None])[0][:, None] * self.W


def find_fixed_points(F: RecurrentMap, starts: np.ndarray, steps: int = 3000, lr: float = 0.05,
                      tol: float = 1e-6, cluster_radius: float = 1e-2) -> list[dict]:
    """Minimise q(h) = ||F(h) - h||^2 / 2 with Adam from every start at once; keep points with
    q < tol, cluster them, and report each cluster's Jacobian eigenvalues (largest first)."""
    h = np.asarray(starts, dtype=np.float64).copy()
    m, v = np.zeros_like(h), np.zeros_like(h)
    for t in range(1, steps + 1):
        r = F(h) - h                                            # (M, H)
        g = (r * F.derivative(h)) @ F.W - r                     # dq/dh = (J - I)^T r
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        h -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-12)
    q = 0.5 * ((F(h) - h) ** 2).sum(axis=1)
    clusters: list[list[np.ndarray]] = []
    for p in h[q < tol]:
        for c in clusters:
            if np.linalg.norm(c[0] - p) < cluster_radius:
                c.append(p)
                break
        else:
            clusters.append([p])
    out = []
    for c in clusters:
        center = np.mean(c, axis=0)
        eig = np.linalg.eigvals(F.jacobian(center))
        eig = eig[np.argsort(-np.abs(eig))]
        out.append({"point": center, "count": len(c),
                    "residual": float(0.5 * ((F(center[None])[0] - center) ** 2).sum()),
                    "eigenvalues": eig, "max_abs_eigenvalue": float(np.abs(eig[0])),
                    "stable": bool(np.abs(eig[0]) < 1.0)})
    return sorted(out, key=lambda d: -d["count"])
