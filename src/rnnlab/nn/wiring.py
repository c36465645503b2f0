"""Wiring of rate networks: which weights exist (masks) and which sign each unit's outgoing weights
keep (Dale's law).

A mask is an array of 0 and 1 the shape of the weight it gates: a weight where the mask is 0 starts
at 0, its gradient is 0 and so every optimizer state for it stays 0, and it is 0 after every step.
Recurrent weights W_hh[i, j] run from unit j to unit i (PyTorch's layout), so a unit's outgoing
weights are a column, and Dale's law fixes the sign of each column: ``signs[j]`` is +1 for an
excitatory unit, -1 for an inhibitory one. The sign is kept by projection after each optimizer
step (a weight that would cross zero stops at zero): the stored weights are the network's own, so
a checkpoint, the analysis and PyTorch read them as they are.

Example::

    >>> import numpy as np
    >>> from rnnlab.nn import wiring
    >>> rng = np.random.default_rng(0)
    >>> s = wiring.dale_signs(5, 0.8)
    >>> s
    array([ 1.,  1.,  1.,  1., -1.])
    >>> m = wiring.no_self_connections(5) * wiring.area_mask([3, 2], [[1.0, 0.0], [1.0, 1.0]], rng)
    >>> m[:3, 3:].sum()                                       # nothing from area 2 into area 1
    0.0
"""

from __future__ import annotations

import numpy as np

from rnnlab.errors import InputError

DALE_RADIUS = 1.5       # Song, Yang & Wang (2016): the initial W_rec is scaled to spectral radius 1.5


def dale_signs(hidden: int, fraction: float) -> np.ndarray:
    """+1 for the first round(fraction * hidden) units (excitatory), -1 for the rest (inhibitory)."""
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise InputError(f"the Dale fraction of excitatory units must lie strictly between 0 and 1, got "
                         f"{fraction!r}; 0.8 (80% excitatory) is the usual choice")
    n_e = int(round(fraction * hidden))
    if not 0 < n_e < hidden:
        raise InputError(f"a Dale fraction of {fraction} leaves {n_e} excitatory and {hidden - n_e} inhibitory "
                         f"units among {hidden}; both populations need a unit: use more units or another fraction")
    return np.where(np.arange(hidden) < n_e, 1.0, -1.0)


def density_mask(shape, density: float, rng: np.random.Generator) -> np.ndarray:
    """Each weight present with probability ``density``."""
    if not 0 < density <= 1:
        raise InputError(f"a connection density must lie in (0, 1], got {density!r}")
    return (rng.random(shape) < density).astype(np.float64)


def no_self_connections(hidden: int) -> np.ndarray:
    """Every recurrent weight except a unit's onto itself."""
    return 1.0 - np.eye(hidden)


def area_mask(sizes, densities, rng: np.random.Generator) -> np.ndarray:
    """Recurrent mask for areas of ``sizes`` units (in unit order); ``densities[i][j]`` is the
    density of connections from area j into area i (1 = all, 0 = none)."""
    sizes = [int(s) for s in sizes]
    d = np.asarray(densities, dtype=np.float64)
    A = len(sizes)
    if A < 1 or min(sizes) < 1:
        raise InputError(f"areas need at least one unit each, got sizes {sizes}")
    if d.shape != (A, A):
        raise InputError(f"{A} areas need a {A} x {A} table of densities (into area i from area j), got "
                         f"{d.size} value(s); give {A * A} numbers, row by row")
    if np.any(d < 0) or np.any(d > 1):
        raise InputError(f"area densities must lie in [0, 1], got {d.ravel().tolist()}")
    edges = np.concatenate([[0], np.cumsum(sizes)])
    H = int(edges[-1])
    mask = np.zeros((H, H))
    for i in range(A):
        for j in range(A):
            block = (slice(edges[i], edges[i + 1]), slice(edges[j], edges[j + 1]))
            mask[block] = rng.random((sizes[i], sizes[j])) < d[i, j]
    return mask


def check_mask(name: str, mask, shape, owner: str = "") -> np.ndarray:
    """A mask as float 0/1 of exactly ``shape``; one sentence for a wrong shape, a sign or a fraction."""
    who = f"{owner}: " if owner else ""
    m = np.asarray(mask)
    if m.dtype == bool:
        m = m.astype(np.float64)
    if not np.issubdtype(m.dtype, np.number):
        raise InputError(f"{who}{name} must be an array of 0 and 1, got {m.dtype}")
    if m.shape != tuple(shape):
        raise InputError(f"{who}{name} has shape {m.shape} but the weight it gates is {tuple(shape)} "
                         "(rows: units receiving, columns: units sending); build it with that shape")
    if np.any(m < 0):
        raise InputError(f"{who}{name} holds negative values; a mask only says which weights exist (0 or 1), "
                         "signs come from Dale's law (dale=0.8)")
    if not np.all((m == 0) | (m == 1)):
        raise InputError(f"{who}{name} holds values other than 0 and 1; a mask says which weights exist, "
                         "scale the weights themselves instead")
    return m.astype(np.float64)


def project_signs(W, signs) -> None:
    """In place: every column j of W (a unit's outgoing weights) keeps the sign signs[j]; a weight
    on the wrong side of zero becomes 0. W may carry a leading member axis."""
    np.copyto(W, 0, where=W * signs < 0)


def spectral_radius(W) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def scale_to_radius(W, radius: float) -> np.ndarray:
    """W scaled so that its spectral radius is ``radius`` (unchanged if it is all zero)."""
    rho = spectral_radius(W)
    return W * (radius / rho) if rho > 0 else W


def dale_weights(rng: np.random.Generator, signs, mask, radius: float = DALE_RADIUS) -> np.ndarray:
    """Initial recurrent weights under Dale's law: magnitudes |N(0, 1)| on the mask, each inhibitory
    column scaled by n_E / n_I so a unit's excitatory and inhibitory input balance on average,
    signs by column, then the whole matrix scaled to spectral radius ``radius``."""
    H = len(signs)
    n_e = int((signs > 0).sum())
    W = np.abs(rng.standard_normal((H, H))) * mask
    W[:, signs < 0] *= n_e / (H - n_e)
    W *= signs
    return scale_to_radius(W, radius)
