"""Do two networks compute the same way? Distances between their hidden-state trajectories on the
same probe inputs: the geometry of the states (CCA, Procrustes shape) and their dynamics (DSA).

Every function takes states of shape (N, T, H): N probe trials of T steps, H units; two networks
are compared on the same N trials of the same T steps, their widths H1 and H2 may differ.

Geometry (trials and steps flattened into N*T samples, each unit centred over the samples):

- ``cca``: SVCCA (Raghu et al. 2017). Each network is first reduced to its top k principal
  components (k = min(10, H1, H2) by default): the canonical correlations of whitened states are
  dominated by directions of tiny variance, so only the leading components are compared, and no
  ridge term is needed. The k canonical correlations between the two k-dimensional subspaces are
  the singular values of U_x^T U_y (U: the top k left singular vectors of the centred states, an
  orthonormal basis of the component scores); their mean is the similarity, 1 - mean the distance.
- ``procrustes``: the orthogonal Procrustes shape metric (Williams et al. 2021, alpha = 1). Each
  network's centred states are scaled to unit Frobenius norm and the narrower is zero-padded to the
  wider width (which leaves X^T Y's singular values as they are, so nothing is padded here); then
  angular = arccos ||X^T Y||_* and euclidean = min over orthogonal Q of ||X - Y Q||_F =
  sqrt(2 - 2 ||X^T Y||_*). Both are metrics: symmetric, zero between rotated, shifted and scaled
  copies, and obeying the triangle inequality.

Dynamics, Dynamical Similarity Analysis (Ostrow et al. 2023), fitted as the ``dsa-metric`` package's
``DSA`` class does by default (its ``DMD`` class, HAVOK DMD, ``reduced_rank_reg=False``):

1. ``delay_embed``: each state is stacked with ``n_delays - 1`` earlier ones, ``delay_interval``
   steps apart, the current one first: (N, T', H*n_delays) with T' = T - (n_delays-1)*interval.
   The states are not centred (as there).
2. ``fit_dmd``: the embedded states of all trials, rows of a (N*T', D) Hankel matrix, are
   factorised H = V S U^T; a state's coordinates on the top ``rank`` right singular vectors are the
   matching row of V (whitened: each column has unit norm). The operator A (rank x rank) is the
   least-squares fit v_{t+1} = A v_t over all consecutive pairs within a trial (principal component
   regression), with the package's ridge term ``lamb`` = 1e-8: A^T = (V-^T V- + lamb I)^-1 V-^T V+.
3. ``dsa``: both operators scaled to unit Frobenius norm; then the best alignment
   cos = max over orthogonal C of <A_x, C A_y C^T> (the package's "Procrustes analysis over vector
   fields"), angular = arccos(cos) and euclidean = min over C of ||A_x - C A_y C^T||_F =
   sqrt(2 - 2 cos), the package's ``score_method="angular"`` and ``"euclidean"`` scores.

The maximum over the orthogonal group has many local maxima. ``align_operators`` climbs from
``starts`` points at once, over every pair of networks in one batch, and keeps the best: the
identity (in these coordinates the two networks' modes are sorted by variance) and the aligned
eigenbases of the operators' symmetric parts, each with the signs of its axes chosen greedily and
once more in the other half of the group (determinant -1); then random orthogonal matrices, half of
each determinant, each with its transpose, so that a pair's distance does not depend on its order.
The climb (Wen & Yin 2013) follows the Riemannian gradient W = skew(G C^T) of f(C) = <A, C B C^T>
(G = A C B^T + A^T C B, the Euclidean gradient) along the Cayley curve
C(t) = (I - tW/2)^-1 (I + tW/2) C, with Barzilai-Borwein steps and a nonmonotone Armijo test;
each start runs until ||W|| < 1e-5, the best of each pair again until ||W|| < 1e-9. The distance
found can only overstate the true minimum (a C is exhibited); ``dsa-metric`` runs Adam on a Cayley
parametrisation from two starts, 1500 steps each, in float32, and reaches the same maxima or lower
ones (tests/analysis/test_similarity.py compares the two).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rnnlab.errors import InputError, InputTypeError

__all__ = ["CCA", "Shape", "DMDFit", "DSAResult", "DSADistances", "GeometryDistances",
           "cca", "procrustes", "geometry_distances", "delay_embed", "fit_dmd", "align_operators",
           "dsa", "dsa_distances"]

DSA_RIDGE = 1e-8            # dsa-metric's DMD(lamb=1e-8): a guard for a nearly singular V-^T V-
DEFAULT_RANK = 10           # rank=None: min(10, the embedding dimension)
DEFAULT_K = 10              # k=None: min(10, H1, H2) principal components for CCA
RANK_TOL = 1e-10            # a singular value below this share of the largest counts as zero
SEARCH_GTOL, POLISH_GTOL = 1e-5, 1e-9   # ||Riemannian gradient|| at which a start stops; the best again
MAX_CLIMB = 2000            # steps per start at most
BATCH_FLOATS = 200_000      # starts x pairs x rank^2 climbed at once (1.6 MB per array: the batch stays in cache)


@dataclass(frozen=True)
class CCA:
    """SVCCA between two networks' states."""
    similarity: float           # mean of the k canonical correlations, in [0, 1]
    distance: float             # 1 - similarity
    correlations: np.ndarray    # (k,) canonical correlations, largest first
    k: int                      # principal components kept from each network


@dataclass(frozen=True)
class Shape:
    """Orthogonal Procrustes shape distance (Williams et al. 2021)."""
    angular: float              # arccos ||X^T Y||_*, radians in [0, pi/2]
    euclidean: float            # min_Q ||X - Y Q||_F = sqrt(2 - 2 ||X^T Y||_*), in [0, sqrt 2]


@dataclass(frozen=True)
class DMDFit:
    """A linear operator fitted to one network's delay-embedded states (HAVOK DMD, as dsa-metric)."""
    A: np.ndarray               # (rank, rank): v_{t+1} = A v_t in the top right singular vectors' coordinates
    singular_values: np.ndarray  # (rank,) top singular values of the (N*T', H*n_delays) Hankel matrix
    n_delays: int               # states stacked per embedded state
    delay_interval: int         # steps between stacked states
    rank: int                   # right singular vectors kept
    transitions: int            # consecutive pairs the fit used: N * (T' - 1)

    @property
    def eigenvalues(self) -> np.ndarray:
        """The operator's eigenvalues (complex, largest modulus first)."""
        ev = np.linalg.eigvals(self.A)
        return ev[np.argsort(-np.abs(ev), kind="stable")]


@dataclass(frozen=True)
class DSAResult:
    """Dynamical Similarity Analysis of two networks."""
    angular: float              # arccos max_C <A_x, C A_y C^T> of unit-norm operators, radians in [0, pi]
    euclidean: float            # min_C ||A_x - C A_y C^T||_F of unit-norm operators, in [0, 2]
    C: np.ndarray               # (rank, rank) the orthogonal C found
    fits: tuple[DMDFit, DMDFit]  # the two fitted operators


@dataclass(frozen=True)
class DSADistances:
    """DSA between every pair of M networks."""
    angular: np.ndarray         # (M, M) symmetric, zero diagonal
    euclidean: np.ndarray       # (M, M) symmetric, zero diagonal
    fits: tuple[DMDFit, ...]    # one per network


@dataclass(frozen=True)
class GeometryDistances:
    """CCA and Procrustes shape distances between every pair of M networks."""
    cca: np.ndarray             # (M, M) 1 - mean canonical correlation, zero diagonal
    procrustes_angular: np.ndarray    # (M, M) radians
    procrustes_euclidean: np.ndarray  # (M, M)
    k: int                      # principal components CCA kept per network


# ---------------------------------------------------------------------------------------------
# checks at the boundary

def _states(X, name: str) -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name}: expected an array of hidden states (N, T, H), got {type(X).__name__}") from None
    if arr.ndim != 3:
        raise InputError(f"{name}: expected hidden states of shape (N trials, T steps, H units), got shape "
                         f"{arr.shape}; add a trial axis with {name}[None] for a single trial")
    if 0 in arr.shape:
        raise InputError(f"{name}: the states are empty (shape {arr.shape}); give at least one trial, step and unit")
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: the states hold NaN or Inf; compare networks whose states are finite")
    return arr


def _same_probes(arrays: Sequence[np.ndarray], names: Sequence[str]) -> None:
    N, T = arrays[0].shape[:2]
    for arr, name in zip(arrays[1:], names[1:]):
        if arr.shape[:2] != (N, T):
            raise InputError(f"{names[0]} has {N} trials of {T} steps but {name} has {arr.shape[0]} trials of "
                             f"{arr.shape[1]} steps; run both networks on the same probe trials")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputTypeError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise InputError(f"{name} must be at least 1, got {value}")
    return int(value)


def _trajectory_list(trajectories) -> list[np.ndarray]:
    if isinstance(trajectories, np.ndarray) or not isinstance(trajectories, Sequence):
        raise InputTypeError("expected a list of hidden-state arrays (N, T, H), one per network")
    if len(trajectories) < 2:
        raise InputError(f"need at least two networks to compare, got {len(trajectories)}")
    arrays = [_states(X, f"network {i}") for i, X in enumerate(trajectories)]
    _same_probes(arrays, [f"network {i}" for i in range(len(arrays))])
    return arrays


# ---------------------------------------------------------------------------------------------
# geometry

def _centred(X: np.ndarray) -> np.ndarray:
    flat = X.reshape(-1, X.shape[-1])                                   # (N*T, H)
    return flat - flat.mean(axis=0)


def _unit(Xc: np.ndarray, name: str) -> np.ndarray:
    norm = np.linalg.norm(Xc)
    if norm == 0:
        raise InputError(f"{name}: the states never change (every unit is constant), so they have no shape to compare")
    return Xc / norm


def _top_components(Xc: np.ndarray, k: int, name: str) -> np.ndarray:
    """(N*T, k) orthonormal basis of the top k principal component scores."""
    if Xc.shape[0] <= k:
        raise InputError(f"CCA: k={k} components need more than {k} samples, and {name} has "
                         f"{Xc.shape[0]} (trials x steps); give more probe trials or lower k")
    U, s, _ = np.linalg.svd(Xc, full_matrices=False)
    m = int((s > RANK_TOL * s[0]).sum()) if s[0] > 0 else 0
    if m < k:
        raise InputError(f"CCA: {name}'s states vary along only {m} directions (the other singular values are "
                         f"below {RANK_TOL:g} of the largest), fewer than k={k}; set k to {max(m, 1)} or less")
    return U[:, :k]


def _cca_k(k, widths: Sequence[int]) -> int:
    return min(DEFAULT_K, *widths) if k is None else _positive_int(k, "k")


def cca(X, Y, k: int | None = None) -> CCA:
    """SVCCA between two networks' states (N, T, H1) and (N, T, H2): the mean canonical
    correlation between their top ``k`` principal components (default min(10, H1, H2)).

    >>> rng = np.random.default_rng(0); X = rng.standard_normal((8, 20, 5))
    >>> round(cca(X, X @ np.linalg.qr(rng.standard_normal((5, 5)))[0]).similarity, 6)
    1.0
    """
    X, Y = _states(X, "X"), _states(Y, "Y")
    _same_probes([X, Y], ["X", "Y"])
    k = _cca_k(k, [X.shape[2], Y.shape[2]])
    if k > min(X.shape[2], Y.shape[2]):
        raise InputError(f"CCA: k={k} is more components than the narrower network has units "
                         f"({min(X.shape[2], Y.shape[2])}); lower k")
    Ux, Uy = _top_components(_centred(X), k, "X"), _top_components(_centred(Y), k, "Y")
    rho = np.clip(np.linalg.svd(Ux.T @ Uy, compute_uv=False), 0.0, 1.0)   # (k,) canonical correlations
    sim = float(rho.mean())
    return CCA(similarity=sim, distance=1.0 - sim, correlations=rho, k=k)


def _shape_from_nuclear(nuc: float) -> Shape:
    c = min(max(nuc, 0.0), 1.0)
    return Shape(angular=float(np.arccos(c)), euclidean=float(np.sqrt(max(2.0 - 2.0 * c, 0.0))))


def procrustes(X, Y) -> Shape:
    """Orthogonal Procrustes shape distance between two networks' states (N, T, H1), (N, T, H2)
    (centred, unit Frobenius norm, the narrower zero-padded): angular arccos ||X^T Y||_* and
    euclidean sqrt(2 - 2 ||X^T Y||_*)."""
    X, Y = _states(X, "X"), _states(Y, "Y")
    _same_probes([X, Y], ["X", "Y"])
    Xn, Yn = _unit(_centred(X), "X"), _unit(_centred(Y), "Y")
    return _shape_from_nuclear(float(np.linalg.svd(Xn.T @ Yn, compute_uv=False).sum()))


def geometry_distances(trajectories: Sequence, k: int | None = None) -> GeometryDistances:
    """CCA distance (1 - mean canonical correlation) and Procrustes shape distances between every
    pair of networks, each (N, T, H_i) on the same probe trials. One Gram matrix of all networks'
    centred states gives every pair's X_i^T X_j."""
    arrays = _trajectory_list(trajectories)
    M = len(arrays)
    k = _cca_k(k, [a.shape[2] for a in arrays])
    if k > min(a.shape[2] for a in arrays):
        raise InputError(f"CCA: k={k} is more components than the narrowest network has units "
                         f"({min(a.shape[2] for a in arrays)}); lower k")
    centred = [_centred(a) for a in arrays]
    units = np.concatenate([_unit(c, f"network {i}") for i, c in enumerate(centred)], axis=1)  # (N*T, sum H)
    bases = np.concatenate([_top_components(c, k, f"network {i}") for i, c in enumerate(centred)], axis=1)
    gram, overlap = units.T @ units, bases.T @ bases                    # (sum H, sum H), (M k, M k)
    edges = np.concatenate([[0], np.cumsum([a.shape[2] for a in arrays])])
    d_cca, d_ang, d_euc = (np.zeros((M, M)) for _ in range(3))
    for i in range(M):
        for j in range(i + 1, M):
            rho = np.clip(np.linalg.svd(overlap[i * k:(i + 1) * k, j * k:(j + 1) * k], compute_uv=False), 0, 1)
            nuc = np.linalg.svd(gram[edges[i]:edges[i + 1], edges[j]:edges[j + 1]], compute_uv=False).sum()
            shape = _shape_from_nuclear(float(nuc))
            d_cca[i, j] = d_cca[j, i] = 1.0 - rho.mean()
            d_ang[i, j] = d_ang[j, i] = shape.angular
            d_euc[i, j] = d_euc[j, i] = shape.euclidean
    return GeometryDistances(cca=d_cca, procrustes_angular=d_ang, procrustes_euclidean=d_euc, k=k)


# ---------------------------------------------------------------------------------------------
# dynamics: delay embedding and the fitted operator

def delay_embed(X, n_delays: int = 1, delay_interval: int = 1) -> np.ndarray:
    """(N, T, H) states -> (N, T - (n_delays-1)*delay_interval, H*n_delays): each row the state at
    t, then t - delay_interval, ..., t - (n_delays-1)*delay_interval (dsa-metric's order)."""
    X = _states(X, "X")
    n_delays, delay_interval = _positive_int(n_delays, "n_delays"), _positive_int(delay_interval, "delay_interval")
    span = (n_delays - 1) * delay_interval
    if X.shape[1] <= span:
        raise InputError(f"DSA: trials of {X.shape[1]} steps are too short for n_delays={n_delays} and "
                         f"delay_interval={delay_interval}, which span {span + 1} steps; lower them or use longer "
                         f"trials")
    Tp = X.shape[1] - span
    return np.concatenate([X[:, span - j * delay_interval: span - j * delay_interval + Tp] for j in range(n_delays)],
                          axis=2)


def _rank(rank, dims: Sequence[int]) -> int:
    return min(DEFAULT_RANK, *dims) if rank is None else _positive_int(rank, "rank")


def _fit(X: np.ndarray, name: str, n_delays: int, delay_interval: int, rank: int, lamb: float) -> DMDFit:
    N, T, H = X.shape
    D = H * n_delays
    if rank > D:
        raise InputError(f"DSA: rank {rank} is larger than {name}'s embedding dimension {D} ({H} units x "
                         f"{n_delays} delays); lower rank or raise n_delays")
    span = (n_delays - 1) * delay_interval
    if T < span + 2:
        raise InputError(f"DSA: trials of {T} steps are too short for n_delays={n_delays} and delay_interval="
                         f"{delay_interval}: a fit needs at least {span + 2} steps per trial (two embedded states)")
    Tp = T - span
    transitions = N * (Tp - 1)
    if transitions < rank:
        need = -(-rank // (Tp - 1))
        raise InputError(f"DSA: rank {rank} needs at least {rank} transitions between consecutive delay-embedded "
                         f"states, and {N} trials x {Tp - 1} give {transitions}; give at least {need} probe trials "
                         f"of this length, or lower rank or n_delays")
    hankel = delay_embed(X, n_delays, delay_interval).reshape(N * Tp, D)    # (N*T', D)
    V, s, _ = np.linalg.svd(hankel, full_matrices=False)               # hankel = V S U^T
    m = int((s > RANK_TOL * s[0]).sum()) if s[0] > 0 else 0
    if m < rank:
        raise InputError(f"DSA: {name}'s delay-embedded states span only {m} directions (the other singular values "
                         f"are below {RANK_TOL:g} of the largest), fewer than rank {rank}; set rank to "
                         f"{max(m, 1)} or less")
    V = V[:, :rank].reshape(N, Tp, rank)                                # whitened coordinates
    before, after = V[:, :-1].reshape(-1, rank), V[:, 1:].reshape(-1, rank)   # (N*(T'-1), rank)
    At = np.linalg.solve(before.T @ before + lamb * np.eye(rank), before.T @ after)
    return DMDFit(A=At.T, singular_values=s[:rank], n_delays=n_delays, delay_interval=delay_interval,
                  rank=rank, transitions=transitions)


def _dsa_settings(n_delays, delay_interval, lamb) -> tuple[int, int, float]:
    n_delays, delay_interval = _positive_int(n_delays, "n_delays"), _positive_int(delay_interval, "delay_interval")
    if not isinstance(lamb, (int, float, np.floating)) or isinstance(lamb, bool) or not lamb >= 0:
        raise InputError(f"lamb must be a number >= 0, got {lamb!r}")
    return n_delays, delay_interval, float(lamb)


def fit_dmd(X, *, n_delays: int = 1, delay_interval: int = 1, rank: int | None = None,
            lamb: float = DSA_RIDGE) -> DMDFit:
    """The linear operator of one network's states (N, T, H), fitted as dsa-metric's DMD does
    (HAVOK, principal component regression): see the module docstring. ``rank`` defaults to
    min(10, H*n_delays)."""
    X = _states(X, "X")
    n_delays, delay_interval, lamb = _dsa_settings(n_delays, delay_interval, lamb)
    return _fit(X, "X", n_delays, delay_interval, _rank(rank, [X.shape[2] * n_delays]), lamb)


# ---------------------------------------------------------------------------------------------
# dynamics: the best orthogonal alignment of two operators

def _inner(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("kij,kij->k", a, b)


def _value_and_ascent(A, At, B, C):
    """f(C) = <A, C B C^T> and its Riemannian gradient W = skew(G C^T), G = A C B^T + A^T C B the
    Euclidean one, so that G C^T = A B'^T + A^T B' with B' = C B C^T: d/dt f(exp(tW) C) = ||W||^2."""
    Bc = C @ B @ np.swapaxes(C, 1, 2)                                   # B' (K, n, n)
    GCt = A @ np.swapaxes(Bc, 1, 2) + At @ Bc
    return _inner(A, Bc), 0.5 * (GCt - np.swapaxes(GCt, 1, 2))


def _climb(A: np.ndarray, B: np.ndarray, C: np.ndarray, gtol: float, max_iter: int):
    """Maximise <A, C B C^T> over orthogonal C from each start (K, n, n), all at once: Cayley steps
    along the Riemannian gradient, alternating Barzilai-Borwein step lengths, Zhang-Hager
    nonmonotone Armijo test (Wen & Yin 2013). Returns the (K,) maxima and (K, n, n) maximisers."""
    K, n, _ = A.shape
    eye = np.eye(n)
    best_C, best_f = np.empty_like(C), np.empty(K)
    At = np.swapaxes(A, 1, 2)
    f, W = _value_and_ascent(A, At, B, C)
    g2 = _inner(W, W)
    rows = np.arange(K)
    t = 0.1 / np.sqrt(np.maximum(g2, 1e-300))            # the first step turns by about 0.1 rad
    weight, ref = np.ones(K), f.copy()                    # Zhang-Hager: reference value, its weight
    for it in range(max_iter + 1):
        done = (g2 <= gtol * gtol) | (it == max_iter)
        if done.any():
            best_C[rows[done]], best_f[rows[done]] = C[done], f[done]
            if done.all():
                break
            keep = ~done
            A, At, B, C, W, f, g2, rows, t, weight, ref = (
                x[keep] for x in (A, At, B, C, W, f, g2, rows, t, weight, ref))
        h = (0.5 * t)[:, None, None] * W
        C_new = 2.0 * np.linalg.solve(eye - h, C) - C      # Cayley (I - h)^-1 (I + h) C: orthogonal for any t
        f_new, W_new = _value_and_ascent(A, At, B, C_new)
        ok = f_new >= ref + 1e-4 * t * g2
        # Barzilai-Borwein from the step s = t W and the change y = W_new - W (ascent: sy = -<s, y>)
        cross, g2_new = _inner(W, W_new), _inner(W_new, W_new)
        sy, ss, yy = -t * (cross - g2), t * t * g2, g2_new - 2.0 * cross + g2
        bb = ss / np.where(sy > 0, sy, 1.0) if it % 2 else sy / np.where(yy > 0, yy, 1.0)
        bb = np.where((sy > 0) & (bb > 0), bb, 2.0 * t)
        t = np.where(ok, np.clip(bb, 1e-8, 1e8), 0.25 * t)     # a refused step: a quarter of it next time
        refused = ~ok
        C_new[refused], W_new[refused] = C[refused], W[refused]
        f_new[refused], g2_new[refused] = f[refused], g2[refused]
        C, W, f, g2 = C_new, W_new, f_new, g2_new
        grown = 0.85 * weight + 1.0
        ref = np.where(ok, (0.85 * weight * ref + f) / grown, ref)
        weight = np.where(ok, grown, weight)
    return best_f, best_C


def _greedy_signs(M: np.ndarray, d: np.ndarray | None = None) -> np.ndarray:
    """Signs d (K, n) that locally maximise sum_ij M_ij d_i d_j: flip one while it helps."""
    K, n, _ = M.shape
    S = M + np.swapaxes(M, 1, 2)
    S[:, np.arange(n), np.arange(n)] = 0.0
    d = np.ones((K, n)) if d is None else d.copy()
    for _ in range(4 * n):
        changed = False
        for i in range(n):
            flip = d[:, i] * np.einsum("kj,kj->k", S[:, i], d) < -1e-15
            if flip.any():
                d[flip, i] *= -1.0
                changed = True
        if not changed:
            break
    return d


def _structured_starts(A: np.ndarray, B: np.ndarray) -> list[np.ndarray]:
    """Four starts per pair: the identity and the aligned eigenbases of the symmetric parts
    (largest first), each with greedy axis signs, and each again with the one sign flip that costs
    least (the other half of the orthogonal group). Swapping A and B transposes every start."""
    P, n, _ = A.shape
    eye = np.broadcast_to(np.eye(n), (P, n, n))
    Pa = np.linalg.eigh(A + np.swapaxes(A, 1, 2))[1][..., ::-1]
    Pb = np.linalg.eigh(B + np.swapaxes(B, 1, 2))[1][..., ::-1]
    starts = []
    for Ea, Eb in ((eye, eye), (Pa, Pb)):
        M = (np.swapaxes(Ea, 1, 2) @ A @ Ea) * (np.swapaxes(Eb, 1, 2) @ B @ Eb)
        d = _greedy_signs(M)
        S = M + np.swapaxes(M, 1, 2)
        S[:, np.arange(n), np.arange(n)] = 0.0
        loss = d * np.einsum("kij,kj->ki", S, d)                  # what flipping each sign costs
        other = d.copy()
        other[np.arange(P), loss.argmin(axis=1)] *= -1.0
        for signs in (d, other):
            starts.append(Ea @ (signs[:, :, None] * np.swapaxes(Eb, 1, 2)))
    return starts


def _random_starts(n: int, count: int, seed) -> list[np.ndarray]:
    """``count`` random orthogonal (n, n) matrices (Haar), as pairs Q, Q^T, half of determinant +1."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count // 2):
        Q, R = np.linalg.qr(rng.standard_normal((n, n)))
        Q = Q * np.sign(np.diag(R))
        if np.linalg.det(Q) * (1 if i % 2 == 0 else -1) < 0:
            Q[:, 0] *= -1.0
        out += [Q, Q.T]
    return out


def _unit_operators(A: np.ndarray, what: str) -> np.ndarray:
    norms = np.linalg.norm(A, axis=(1, 2), keepdims=True)
    if (norms == 0).any():
        raise InputError(f"DSA: {what} is the zero operator, which has no direction to compare")
    return A / norms


def align_operators(A, B, *, starts: int = 16, seed=0, progress: Callable[[int, int], None] | None = None):
    """The best orthogonal alignment of square operators, one pair or a stack of pairs (P, n, n):
    max over orthogonal C of <A/|A|, C (B/|B|) C^T>. Returns (cos, C): (P,) and (P, n, n) (or a
    float and (n, n) for one pair). ``starts`` points are climbed per pair (see the module
    docstring); ``progress(done, total)`` is called after each batch of pairs."""
    try:
        A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputTypeError("DSA: expected two square operators as arrays (n, n) or stacks (P, n, n)") from None
    if not (np.isfinite(A).all() and np.isfinite(B).all()):
        raise InputError("DSA: an operator holds NaN or Inf; align finite operators")
    single = A.ndim == 2
    A, B = (A[None], B[None]) if single else (A, B)
    if A.ndim != 3 or A.shape != B.shape or A.shape[1] != A.shape[2]:
        raise InputError(f"DSA: expected two square operators of one size (or stacks of them), got shapes "
                         f"{A.shape} and {B.shape}")
    starts = _positive_int(starts, "starts")
    P, n, _ = A.shape
    A, B = _unit_operators(A, "an operator"), _unit_operators(B, "an operator")
    fixed = min(starts, 4)
    shared = _random_starts(n, starts - fixed + 1, seed)[:starts - fixed]
    per = max(1, BATCH_FLOATS // (starts * n * n))
    cos, Cs = np.empty(P), np.empty((P, n, n))
    for lo in range(0, P, per):
        a, b = A[lo:lo + per], B[lo:lo + per]
        p = len(a)
        C0 = _structured_starts(a, b)[:fixed] + [np.broadcast_to(Q, (p, n, n)) for Q in shared]
        S = len(C0)
        f, C = _climb(np.tile(a, (S, 1, 1)), np.tile(b, (S, 1, 1)), np.concatenate(C0), SEARCH_GTOL, MAX_CLIMB)
        pick = f.reshape(S, p).argmax(axis=0)
        C = C.reshape(S, p, n, n)[pick, np.arange(p)]
        cos[lo:lo + p], Cs[lo:lo + p] = _climb(a, b, C, POLISH_GTOL, MAX_CLIMB)
        if progress is not None:
            progress(lo + p, P)
    cos = np.clip(cos, -1.0, 1.0)
    return (float(cos[0]), Cs[0]) if single else (cos, Cs)


def _scores(cos):
    return np.arccos(cos), np.sqrt(np.maximum(2.0 - 2.0 * cos, 0.0))


def dsa(X, Y, *, n_delays: int = 1, delay_interval: int = 1, rank: int | None = None, lamb: float = DSA_RIDGE,
        starts: int = 16, seed=0) -> DSAResult:
    """Dynamical Similarity Analysis of two networks' states (N, T, H1) and (N, T, H2) on the same
    probe trials: fit each operator (``fit_dmd``, the same ``rank`` for both, by default
    min(10, H1*n_delays, H2*n_delays)), then align them over orthogonal transforms
    (``align_operators``)."""
    X, Y = _states(X, "X"), _states(Y, "Y")
    _same_probes([X, Y], ["X", "Y"])
    n_delays, delay_interval, lamb = _dsa_settings(n_delays, delay_interval, lamb)
    r = _rank(rank, [X.shape[2] * n_delays, Y.shape[2] * n_delays])
    fx = _fit(X, "X", n_delays, delay_interval, r, lamb)
    fy = _fit(Y, "Y", n_delays, delay_interval, r, lamb)
    cos, C = align_operators(fx.A, fy.A, starts=starts, seed=seed)
    ang, euc = _scores(np.array(cos))
    return DSAResult(angular=float(ang), euclidean=float(euc), C=C, fits=(fx, fy))


def dsa_distances(trajectories: Sequence, *, n_delays: int = 1, delay_interval: int = 1, rank: int | None = None,
                  lamb: float = DSA_RIDGE, starts: int = 16, seed=0,
                  progress: Callable[[int, int], None] | None = None) -> DSADistances:
    """DSA between every pair of networks (each (N, T, H_i), the same probe trials): one fit per
    network, then all pairs aligned in batches. Each pair's distance equals ``dsa`` on that pair."""
    arrays = _trajectory_list(trajectories)
    n_delays, delay_interval, lamb = _dsa_settings(n_delays, delay_interval, lamb)
    r = _rank(rank, [a.shape[2] * n_delays for a in arrays])
    fits = tuple(_fit(a, f"network {i}", n_delays, delay_interval, r, lamb) for i, a in enumerate(arrays))
    M = len(fits)
    i, j = np.triu_indices(M, 1)
    ops = np.stack([f.A for f in fits])
    cos, _ = align_operators(ops[i], ops[j], starts=starts, seed=seed, progress=progress)
    ang, euc = _scores(cos)
    out_a, out_e = np.zeros((M, M)), np.zeros((M, M))
    out_a[i, j] = out_a[j, i] = ang
    out_e[i, j] = out_e[j, i] = euc
    return DSADistances(angular=out_a, euclidean=out_e, fits=fits)
