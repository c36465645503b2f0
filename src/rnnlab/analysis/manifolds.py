"""Continuous attractors among fixed and slow points: lines (open) and rings (closed), found by
their shape rather than by a straight-line test, and judged by the eigenvalue along their tangent.

A network that stores a continuous variable (an angle, an accumulated amount of evidence) keeps
it on a one-dimensional manifold of slow points: a ring for an angle, a line for an amount
(Sussillo & Barak 2013; Mante et al. 2013). A trained network makes the manifold only
approximately, so the search finds it as a necklace of isolated fixed points and slow points
(an angular-velocity integrator: 15 stable points and 15 saddles around a circle). Asking whether
they lie along one *direction* (a straight line) misses every ring and every curved line. Here:

1. ``slow_points_on_trajectories``: states visited on real trials, moved by the fixed-point
   solver only until they are slow (q < ``slow_tol``), so that they stay spread along the
   manifold instead of collapsing onto its few exact fixed points.
2. ``find_manifolds``: the points, thinned to an even cover, are split into clusters (a link
   joins two points closer than ``link_scale`` times the 90th percentile of the distances to a
   nearest neighbour); in each cluster of at least
   ``min_points`` the longest path of the minimum spanning tree is the candidate curve. The curve
   is *one-dimensional* when at least ``on_share`` of the cluster lies within ``near_scale``
   median links of it and each point's neighbourhood is a line (its first principal direction
   holding ``on_share`` of its spread), which a lattice of isolated points (a flip-flop's
   memories and saddles) is not. It is *closed* (a ring) when, with the points nearest its middle
   half taken away, its two ends are still linked. Where the points lie on a circle about as wide
   as they are (RMS off it under 5% of the radius) with a gap of less than half a turn, the network
   is asked about the gap (``_probe_gap``): 16 states across it, moved until slow, fill it on a
   ring (trials need not visit a whole ring) and drift to its ends where the ring is cut. Else the
   curve is open (a line). A cluster on no curve is two-dimensional when its neighbourhoods are
   planes and its top two principal components hold ``surface_share`` of its spread (detected, not
   analysed further); otherwise its points are isolated.
3. Along a one-dimensional curve, at each point, the eigenvalue of the Jacobian whose right
   eigenvector is most aligned with the curve's tangent. A continuous *attractor* when:
   - it is real and within ``near_one`` of 1 along a stretch of consecutive points holding at
     least half of the curve (and ``min_points``), its mode along the tangent there (median
     |cos| >= 0.7);
   - the other eigenvalues attract there (their largest modulus, median over the stretch, below
     1) and at one point of the stretch at least every other eigenvalue is inside the unit circle
     (a state can rest there, but for a slow drift along the curve);
   - no stretch of 10% of the curve runs away along it (a real eigenvalue >= 1 + ``near_one``);
   - it is no switch (``_is_switch``): an index-1 saddle on it leading, either side, to the only
     two stable points there makes a curve of slow points too, between two memories.

Continuous time (a CTRNN): every eigenvalue test above is applied, unchanged, to the factor per step
dt of the continuous system, e^(a mu) with mu = (lambda - 1) / a (``fixed_points.per_step``): within
``near_one`` of 1 is |a Re(mu)| below about ``near_one`` (a time constant beyond 1/near_one steps),
attracting is Re(mu) < 0. The sentences then give Re(mu) along the tangent in 1/tau and its time
constant -1/Re(mu) in tau.

Fit: for a ring, the RMS distance off the circle fitted in the plane of its top two principal
components (as a share of the radius) and that plane's share of the spread; for a line, the RMS
distance of the points from the curve (a share of its length) and the share of the spread along
its first principal direction (1.0: straight).
"""

from __future__ import annotations

import numpy as np

from rnnlab.analysis.fixed_points import find_fixed_points, merge_nearby, per_step, sample_starts

__all__ = ["MANIFOLD_DEFAULTS", "slow_points_on_trajectories", "find_manifolds", "continuous_attractor"]

MANIFOLD_DEFAULTS = {"fixed_tol": 1e-12, "slow_tol": 1e-5, "min_points": 5, "link_scale": 3.0, "near_scale": 1.5,
                     "on_share": 0.8, "surface_share": 0.9, "near_one": 0.02, "align": 0.7, "probe_seconds": 5.0}
# near_one = 0.02: along an attractor a state keeps what it was given for 50 steps or more, longer than the
# trials of the tasks here; the slow mode of one of two stable points around a saddle (0.94-0.97 measured)
# is a memory that fades within a trial, not a continuum.


def slow_points_on_trajectories(F, states, n: int, *, slow_tol: float, unique_tol: float,
                                outlier_distance: float, seconds: float | None, rng) -> list:
    """Up to ``n`` slow points reached from visited states (no noise): each start stops as soon
    as q < ``slow_tol``; they are merged at ``unique_tol`` and typed like fixed points."""
    starts = sample_starts(states, n, 0.0, rng)
    res = find_fixed_points(F, starts, tol=slow_tol, unique_tol=unique_tol, outlier_distance=outlier_distance,
                            polish_iters=0, seconds=seconds)
    return res.points


def distinct(points: list, tol: float) -> list:
    """``points`` without the ones within ``tol`` of an earlier one (fixed points come first in the
    analysis's list, then slow points: a slow point where a fixed point is already adds nothing)."""
    if not points:
        return []
    order = np.arange(len(points), dtype=float)                 # merged in list order, not by q
    reps, _, _ = merge_nearby(np.array([p.point for p in points]), np.arange(len(points)), order, tol)
    return [points[k] for k in sorted(reps)]


def memories_either_side(F, saddle, stables: list, steps: int = 3000) -> set:
    """Which of the ``stables`` (FixedPoint) the map reaches from just either side of ``saddle``
    along its most unstable direction: the two memories an index-1 saddle separates."""
    if not stables:
        return set()
    e, R = np.linalg.eig(F.jacobian(saddle.point[None])[0])
    k = int(np.argmax(np.abs(per_step(e, getattr(F, "clock", None)))))      # its fastest-growing mode
    if abs(e[k].imag) > 1e-9:
        return set()
    r = np.real(R[:, k]) / np.linalg.norm(R[:, k])
    s = np.stack([saddle.point + 1e-4 * r, saddle.point - 1e-4 * r])
    S = np.array([p.point for p in stables])
    tol = 1e-2 * np.sqrt(S.shape[1])
    for _ in range(steps):
        s = F(s)
    d = np.sqrt(((s[:, None, :] - S[None]) ** 2).sum(axis=2))              # (2, stables)
    return {int(np.argmin(row)) for row in d if row.min() < tol}


def _pairwise(A) -> np.ndarray:
    """Distances between every two rows of A (n, S)."""
    return np.sqrt(np.maximum(((A[:, None, :] - A[None]) ** 2).sum(axis=2), 0.0))


def _nearest(D):
    D = D.copy()
    np.fill_diagonal(D, np.inf)
    return D.min(axis=1)


def _clusters(D, link: float) -> list:
    """Connected components of the graph joining points closer than ``link``."""
    n = len(D)
    label = np.full(n, -1)
    out = []
    for i in range(n):
        if label[i] >= 0:
            continue
        label[i] = len(out)
        members, todo = [i], [i]
        while todo:
            j = todo.pop()
            for k in np.flatnonzero((D[j] < link) & (label < 0)):
                label[k] = label[i]
                members.append(int(k))
                todo.append(int(k))
        out.append(np.array(sorted(members)))
    return out


def _spanning_tree_path(D) -> list:
    """The longest path (in links) of the minimum spanning tree of distances D (Prim), from one
    end to the other: the points of a sampled curve in their order along it."""
    n = len(D)
    parent = np.zeros(n, dtype=int)                        # every point's nearest tree point so far
    best = D[0].copy()
    inside = np.zeros(n, dtype=bool)
    inside[0] = True
    best[0] = np.inf
    adj = [[] for _ in range(n)]
    for _ in range(n - 1):
        j = int(np.argmin(np.where(inside, np.inf, best)))
        inside[j] = True
        adj[j].append(int(parent[j]))
        adj[int(parent[j])].append(j)
        closer = ~inside & (D[j] < best)
        best[closer] = D[j][closer]
        parent[closer] = j

    def farthest(start):
        seen, order, prev = {start: 0}, [start], {start: -1}
        for v in order:
            for w in adj[v]:
                if w not in seen:
                    seen[w] = seen[v] + D[v, w]
                    prev[w] = v
                    order.append(w)
        end = max(seen, key=seen.get)
        path = [end]
        while prev[path[-1]] >= 0:
            path.append(prev[path[-1]])
        return end, path

    a, _ = farthest(0)
    _, path = farthest(a)
    return path


def _distance_to_polyline(P, C, closed: bool):
    """Distance from each point (n, S) to the polyline through C (m, S) (closed: back to C[0])."""
    A = C if not closed else np.vstack([C, C[:1]])
    a, b = A[:-1], A[1:]
    ab = b - a
    L2 = np.maximum((ab * ab).sum(axis=1), 1e-300)
    t = np.clip(np.einsum("nms,ms->nm", P[:, None, :] - a[None], ab) / L2, 0.0, 1.0)
    foot = a[None] + t[..., None] * ab[None]
    return np.sqrt(((P[:, None, :] - foot) ** 2).sum(axis=2)).min(axis=1)


def _circle_fit(Y):
    """Least-squares circle through 2-D points Y (n, 2) (Kasa): centre, radius, RMS radial error."""
    A = np.column_stack([Y, np.ones(len(Y))])
    sol, *_ = np.linalg.lstsq(A, (Y ** 2).sum(axis=1), rcond=None)
    centre = sol[:2] / 2
    radius = float(np.sqrt(max(sol[2] + centre @ centre, 0.0)))
    rms = float(np.sqrt(((np.linalg.norm(Y - centre, axis=1) - radius) ** 2).mean()))
    return centre, radius, rms


def _circle_in_plane(P) -> tuple[dict, tuple | None]:
    """The circle fitted to points (n, S) in the plane of their top two principal components: the
    RMS distance off it as a share of its radius, that plane's share of the spread, and the
    largest gap (degrees) between the points' angles round its centre; and the frame it was fitted
    in (mean, plane basis (2, S), centre, radius), which ``_probe_gap`` works in (None: no plane)."""
    centred = P - P.mean(axis=0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    if len(sv) < 2 or len(P) < 3:                                    # a state of one number: no plane
        return {"rms_off_circle_share": float("inf"), "radius": 0.0, "plane_share": 1.0,
                "largest_gap_degrees": 360.0, "extent": float(np.ptp(centred @ vt[0])) if len(sv) else 0.0}, None
    Y = centred @ vt[:2].T
    centre, radius, rms = _circle_fit(Y)
    angles = np.sort(np.arctan2(*(Y - centre).T[::-1]))
    gaps = np.diff(np.concatenate([angles, angles[:1] + 2 * np.pi]))
    return {"rms_off_circle_share": rms / radius if radius > 0 else float("inf"), "radius": radius,
            "plane_share": float((sv[:2] ** 2).sum() / max((sv ** 2).sum(), 1e-300)),
            "largest_gap_degrees": float(np.degrees(gaps.max())), "extent": float(np.ptp(Y[:, 0]))}, \
        (P.mean(axis=0), vt[:2], centre, radius)


def _along_tangent(J, t, clock=None):
    """The eigenvalue of J whose right eigenvector is most aligned with t, that alignment (|cos|),
    and the largest |per_step(lambda)| among the others (|lambda| in discrete time)."""
    e, R = np.linalg.eig(J)
    Rn = R / np.linalg.norm(R, axis=0)
    cos = np.abs(t @ Rn)                                   # complex modes: |t . r| over the complex r
    k = int(np.argmax(cos))
    others = np.delete(np.abs(per_step(e, clock)), k)
    return e[k], float(cos[k]), float(others.max()) if others.size else 0.0


def _pct(x) -> str:
    return f"{100 * x:.1f}%"


def _spread_out(P, most: int) -> np.ndarray:
    """Indices of at most ``most`` of the points P, picked farthest first (each next one the
    farthest from those picked): even coverage of the manifold whatever the density the search
    left on it, so that gaps between neighbours say where a manifold ends, not where few starts went."""
    if len(P) <= most:
        return np.arange(len(P))
    pick = [int(np.argmax(np.linalg.norm(P - P.mean(axis=0), axis=1)))]
    d = np.linalg.norm(P - P[pick[0]], axis=1)
    for _ in range(most - 1):
        k = int(np.argmax(d))
        pick.append(k)
        d = np.minimum(d, np.linalg.norm(P - P[k], axis=1))
    return np.array(pick)


def find_manifolds(F, points: list, **settings) -> dict:
    """The one- (and two-) dimensional manifolds among ``points`` (FixedPoint: fixed and slow
    points), with a verdict for each: see the module's docstring. The points are first thinned
    to at most ``most`` spread evenly (``_spread_out``). Returns {"manifolds": [...], "clusters":
    [sizes], "sentence"}; each manifold names its kind ("ring", "line" or "surface"), how many of
    the points lie on it, its fit, the eigenvalues along its tangent, whether it is an attractor,
    and the points (indices into ``points``) its curve passes through, in order."""
    cfg = {"most": 80, **MANIFOLD_DEFAULTS, **settings}
    n = len(points)
    if n < cfg["min_points"]:
        types = sorted(p.type for p in points)
        switch = (" (two stable points around a saddle: a switch between two memories, not a line attractor)"
                  if types == ["saddle", "stable", "stable"] else "")
        return {"manifolds": [], "clusters": [n] if n else [],
                "sentence": f"{n} fixed and slow point{'s' if n != 1 else ''}: fewer than {cfg['min_points']}, no "
                            f"manifold to judge{switch}"}
    P = np.array([p.point for p in points])
    # stable, saddle, or neither: slow, or marginal (an eigenvalue within 1e-6 of the unit circle, as
    # all along an exact line, where rounding alone would make it a "saddle")
    top = [p.growth for p in points]                         # |lambda|, or a CTRNN's e^(a Re mu), largest
    kinds = ["slow" if p.q > cfg["fixed_tol"] else "stable" if t < 1 - 1e-6 else "saddle" if t > 1 + 1e-6
             else "marginal" for p, t in zip(points, top)]
    stables = [p for p, k in zip(points, kinds) if k == "stable"]
    keep = _spread_out(P, cfg["most"])
    Q = P[keep]
    D = _pairwise(Q)
    link = cfg["link_scale"] * float(np.percentile(_nearest(D), 90))
    clusters = sorted(_clusters(D, link if link > 0 else np.inf), key=len, reverse=True)
    # every point joins the cluster of its nearest kept point
    owner = np.empty(len(Q), dtype=int)
    for c, members in enumerate(clusters):
        owner[members] = c
    nearest_kept = np.argmin(((P[:, None, :] - Q[None]) ** 2).sum(axis=2), axis=1)
    of_cluster = owner[nearest_kept]
    found = []
    for c, members in enumerate(clusters):
        if len(members) < cfg["min_points"]:
            continue
        mine = of_cluster == c
        m = _judge_cluster(F, Q, D, members, P[mine], [kinds[k] for k in np.flatnonzero(mine)], link, cfg,
                           switch=_is_switch(F, [points[k] for k in np.flatnonzero(mine)],
                                             [kinds[k] for k in np.flatnonzero(mine)], stables))
        m["members"] = [int(keep[k]) for k in m["members"]]
        found.append(m)
    sizes = [int((of_cluster == c).sum()) for c in range(len(clusters))]
    if not found:
        sentence = (f"{n} fixed and slow points in {len(clusters)} clusters, none of {cfg['min_points']} or more "
                    "points apart: no manifold to judge")
    else:
        sentence = "; ".join(m["sentence"] for m in found)
    return {"manifolds": found, "clusters": sizes, "sentence": sentence}


def _local_shares(Q, D, k: int = 6):
    """Median over points of the share of their neighbourhood's spread (the point and its ``k``
    nearest) on its first, and on its first two, principal directions: a curve's neighbourhoods
    are lines (first ~1), a sheet's are planes, a lattice of isolated points fills every direction."""
    k = min(k, len(Q) - 1)
    one, two = [], []
    for i in range(len(Q)):
        nb = Q[np.argsort(D[i])[:k + 1]]
        sv = np.linalg.svd(nb - nb.mean(axis=0), compute_uv=False) ** 2
        total = max(sv.sum(), 1e-300)
        one.append(sv[0] / total)
        two.append(sv[:2].sum() / total)
    return float(np.median(one)), float(np.median(two))


def _longest_run(mask, closed: bool) -> np.ndarray:
    """Indices of the longest run of consecutive True in ``mask`` (wrapping round when closed)."""
    m = len(mask)
    if mask.all():
        return np.arange(m)
    best, run = [], []
    for i in (range(2 * m) if closed else range(m)):
        if mask[i % m]:
            run.append(i % m)
            if len(run) > len(best):
                best = list(run)
        else:
            run = []
    return np.array(best[:m], dtype=int)


def _probe_gap(F, P, frame, cfg, n: int = 16) -> np.ndarray:
    """Slow points reached from ``n`` states spread across the largest angular gap of the points P
    round their circle (``frame`` from ``_circle_in_plane``; each state: the circle's point at that
    angle plus, off the plane, the nearer gap end's own offset), each moved only until q <
    ``cfg["slow_tol"]``; those that end inside the gap's angles."""
    mean, plane, centre, radius = frame
    Y = (P - mean) @ plane.T
    ang = np.arctan2(Y[:, 1] - centre[1], Y[:, 0] - centre[0])
    order = np.argsort(ang)
    a = ang[order]
    gaps = np.diff(np.concatenate([a, a[:1] + 2 * np.pi]))
    k = int(np.argmax(gaps))
    lo, width = a[k], gaps[k]
    ends = (order[k], order[(k + 1) % len(a)])
    phis = lo + width * (np.arange(1, n + 1) / (n + 1))
    starts = []
    for phi in phis:
        end = ends[0] if phi - lo < width / 2 else ends[1]
        off_plane = (P[end] - mean) - ((P[end] - mean) @ plane.T) @ plane
        starts.append(mean + (centre + radius * np.array([np.cos(phi), np.sin(phi)])) @ plane + off_plane)
    res = find_fixed_points(F, np.array(starts), tol=cfg["slow_tol"], polish_iters=0, outlier_distance=np.inf,
                            unique_tol=1e-9, seconds=cfg["probe_seconds"])
    pts = np.array([p.point for p in res.points]).reshape(-1, P.shape[1])
    if not len(pts):
        return pts
    yp = (pts - mean) @ plane.T - centre
    rel = (np.arctan2(yp[:, 1], yp[:, 0]) - lo) % (2 * np.pi)
    inside = (rel > 0.1 * width) & (rel < 0.9 * width)                  # not just back at the gap's ends
    return pts[inside]


def _closes(D, path, link: float) -> bool:
    """Whether the curve ``path`` closes: with the points nearest its middle half taken away, its
    two ends are still linked (through the remaining points, links shorter than ``link``). A line
    falls in two; a ring, even a thick one whose tree has side branches, does not."""
    m = len(path)
    middle = set(path[m // 4:(3 * m) // 4])
    where = np.argmin(D[:, path], axis=1)                        # each point's nearest curve position
    keep = np.array([i for i in range(len(D)) if i not in middle and not m // 4 <= where[i] < (3 * m) // 4])
    if path[0] not in keep or path[-1] not in keep:
        return False
    sub = D[np.ix_(keep, keep)]
    start, goal = int(np.flatnonzero(keep == path[0])[0]), int(np.flatnonzero(keep == path[-1])[0])
    seen, todo = {start}, [start]
    while todo:
        j = todo.pop()
        for k in np.flatnonzero(sub[j] < link):
            if int(k) not in seen:
                seen.add(int(k))
                todo.append(int(k))
    return goal in seen


def _is_switch(F, mine: list, kinds: list, stables: list) -> bool:
    """Whether a cluster is a switch between two memories: an index-1 saddle in it leads, either
    side, to two stable points, and those two are the only stable points of the cluster and of
    where it leads (a trained ring's saddles lead to neighbours too, but the ring holds many)."""
    own = {id(p) for p, k in zip(mine, kinds) if k == "stable"}
    for p, k in zip(mine, kinds):
        if k == "saddle" and p.n_unstable == 1:
            ends = memories_either_side(F, p, stables)
            if len(ends) == 2 and len(own | {id(stables[j]) for j in ends}) == 2:
                return True
    return False


def _judge_cluster(F, Q, D, members, everyone, kinds, link, cfg, switch: bool = False) -> dict:
    """One cluster: ``members`` index the spread-out points Q (distances D); ``everyone`` are all
    the points that belong to it (the fit and the count on the curve are theirs)."""
    Qc, Dc = Q[members], D[np.ix_(members, members)]
    step = float(np.median(_nearest(Dc)))
    path = _spanning_tree_path(Dc)
    C = Qc[path]
    ends_gap = float(Dc[path[0], path[-1]])
    Pc = everyone
    circle, frame = _circle_in_plane(Pc)
    local_link = min(link, cfg["link_scale"] * float(np.percentile(_nearest(Dc), 90)))
    closed = len(path) >= 8 and _closes(Dc, path, local_link)
    probed = 0
    # a gap of less than half a turn in a circle about as wide as the points (a nearly straight line
    # also fits a circle within 0.3%, one far wider than the line)
    if (len(path) >= 8 and not closed and circle["rms_off_circle_share"] < 0.05
            and circle["largest_gap_degrees"] < 180 and 2 * circle["radius"] <= 1.5 * circle["extent"]):
        # on a circle but its ends not linked: trials may not have visited all of a ring, or the ring
        # is cut. The network decides: states across the gap, moved until slow, fill it on a ring and
        # drift to its ends where it is cut
        extra = _probe_gap(F, Pc, frame, cfg)
        probed = len(extra)
        if probed:
            Qx = np.vstack([Qc, extra])
            closed = _closes(_pairwise(Qx), path, local_link)
    off = _distance_to_polyline(Pc, C, closed)
    on = off <= cfg["near_scale"] * step
    centred = Pc - Pc.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    var = sv ** 2 / max((sv ** 2).sum(), 1e-300)
    local_one, local_two = _local_shares(Qc, Dc)
    out = {"points": int(on.sum()), "of": len(Pc), "members": [int(members[k]) for k in path], "gap_probes": probed,
           "closed": bool(closed), "median_spacing": step, "ends_gap": ends_gap, "link": link,
           "local_line_share": local_one, "local_plane_share": local_two}
    if on.mean() < cfg["on_share"] or local_one < cfg["on_share"]:
        if local_two >= cfg["on_share"] and var[:2].sum() >= cfg["surface_share"]:
            out.update(kind="surface", attractor=None, fit={"top_two_share": float(var[:2].sum())},
                       sentence=f"a two-dimensional sheet of {len(Pc)} fixed and slow points (their neighbourhoods "
                                f"are planes, {_pct(local_two)} of their spread in two directions; the top two "
                                f"components hold {_pct(var[:2].sum())}): detected, not analysed further")
        else:
            out.update(kind=None, attractor=False, fit={"top_two_share": float(var[:2].sum())},
                       sentence=f"{len(Pc)} fixed and slow points that lie on no curve or sheet (a point's "
                                f"neighbours spread in every direction: {_pct(local_one)} of their spread on one, "
                                f"{_pct(local_two)} on two): isolated points, not a continuum")
        return out
    length = float(sum(Dc[a, b] for a, b in zip(path[:-1], path[1:])) + (ends_gap if closed else 0.0))
    if closed:
        fit = circle
        fit_words = (f"{_pct(fit['rms_off_circle_share'])} RMS off a circle of radius {fit['radius']:.3g} in the plane "
                     f"of its top two components ({_pct(fit['plane_share'])} of the spread), round "
                     f"{360 - fit['largest_gap_degrees']:.0f} degrees of it")
    else:
        fit = {"rms_off_curve_share": float(np.sqrt((off[on] ** 2).mean()) / max(length, 1e-300)),
               "straight_share": float(var[0]), "length": length}
        fit_words = (f"length {length:.3g}, {_pct(fit['straight_share'])} of the spread along one direction "
                     f"({'straight' if var[0] >= 0.9 else 'curved'})")
    # the eigenvalue along the tangent, at each point of the curve in order
    J = F.jacobian(C)
    m = len(C)
    clock = getattr(F, "clock", None)
    raw, lam, align, transverse, rests = [], [], [], [], []
    for k in range(m):
        a, b = ((k - 1) % m, (k + 1) % m) if closed else (max(k - 1, 0), min(k + 1, m - 1))
        t = C[b] - C[a]
        t /= np.linalg.norm(t) or 1.0
        e, c, other = _along_tangent(J[k], t, clock)
        raw.append(e)
        lam.append(per_step(e, clock))                        # every test below reads the per-step factor
        align.append(c)
        transverse.append(other)
        rests.append(other <= 1 + 1e-6)          # a state can rest there, but for a slow drift along the curve
    lam, align, transverse = np.array(lam), np.array(align), np.array(transverse)
    rests = np.array(rests) & (np.abs(lam.real - 1.0) < cfg["near_one"])
    real = np.abs(lam.imag) < 1e-9
    near = real & (np.abs(lam.real - 1.0) < cfg["near_one"])
    repel = real & (lam.real >= 1.0 + cfg["near_one"])        # points the flow along the curve runs away from
    repels = repel.mean() >= 0.1                               # a stretch of them, not a stray point or an end
    run = _longest_run(near, closed)                           # the stretch that keeps what it is given
    enough = run.size >= max(cfg["min_points"], 0.5 * m)
    rest = bool(rests[run].any()) if run.size else False
    attractor = bool(enough and rest and not repels and not switch and np.median(align[run]) >= cfg["align"]
                     and np.median(transverse[run]) < 1.0)
    seg = run if run.size else np.arange(m)
    median = float(np.median(lam.real[seg]))
    lo, hi = np.percentile(lam.real, [10, 90])
    kind = "ring" if closed else "line"
    whole = run.size == m
    out.update(kind=kind, attractor=attractor, fit=fit, length=length, curve_points=m, attracting=run.tolist(),
               tangent_eigenvalue={"median": median, "min": float(lam.real.min()),
                                   "max": float(lam.real.max()), "p10": float(lo), "p90": float(hi),
                                   "near_one_share": float(near.mean()), "all_real": bool(real.all()),
                                   "alignment": float(np.median(align[seg]))},
               transverse_max={"median": float(np.median(transverse[seg])), "max": float(np.max(transverse))},
               point_eigenvalues=[[float(v.real), float(v.imag)] for v in lam])
    stretch = "" if whole or not run.size else " over the attracting stretch"
    continuous = ""
    if clock is not None:                 # the same tests, said in continuous time
        mu = np.real(clock.rates(np.array(raw)))
        med_mu = float(np.median(mu[seg]))
        out["tangent_continuous"] = {"median_real": med_mu, "min_real": float(mu.min()), "max_real": float(mu.max()),
                                     "time_constant": float(-1.0 / med_mu) if med_mu else None,
                                     "point_eigenvalues": [[float(v.real), float(v.imag)]
                                                           for v in clock.rates(np.array(raw))]}
        tc = "no decay" if not med_mu else (f"time constant {-1.0 / med_mu:.3g} tau" if med_mu < 0 else
                                            f"growing, e-fold in {1.0 / med_mu:.3g} tau")
        continuous = (f"; in continuous time (a = {clock.alpha:g}; the eigenvalues above are e^(a mu) per step dt): "
                      f"Re(mu) along its tangent median {med_mu:.3g}/tau{stretch} ({tc}), {mu.min():.3g} to "
                      f"{mu.max():.3g}")
    eig_words = (f"eigenvalue along its tangent: median {median:.3f}{stretch} ({lo:.3f} to "
                 f"{hi:.3f} at 80% of the {m} points its curve passes through; within {cfg['near_one']:g} of 1 at "
                 f"{int(near.sum())}, "
                 f"{'all real' if real.all() else f'complex at {int((~real).sum())}'}; largest {lam.real.max():.3f}, "
                 f"running away at {int(repel.sum())}; its mode "
                 f"{np.median(align[seg]):.2f} aligned with the tangent), the largest other eigenvalue: median "
                 f"{np.median(transverse[seg]):.3f}{continuous}")
    if attractor:
        head = (f"a {kind} attractor ({'closed' if closed else 'open'})" if whole else
                f"a {kind} attractor over {run.size} consecutive of the {m} points its curve passes through "
                f"(elsewhere the eigenvalue along it is farther than {cfg['near_one']:g} from 1 at "
                f"{int(m - near.sum())} point{'s' if m - near.sum() != 1 else ''})")
    else:
        why = (f"the flow along it runs away at {int(repel.sum())} of its {m} points (eigenvalue along it up to "
               f"{lam.real[repel].max():.3f}): it does not hold a state there" if repels else
               "a saddle on it leads, either side, to the only two stable points there: a switch between two "
               "memories (a bistable pair), not a continuum" if switch else
               f"the eigenvalue along it is within {cfg['near_one']:g} of 1 at only {run.size} consecutive of its "
               f"{m} points (median {median:.3f})" if not enough else
               f"no state can rest on it: every point has an unstable direction (along it, eigenvalue "
               f"{median:.3f}: the slow neighbourhood of a saddle)" if not rest else
               "its slow mode does not run along it" if np.median(align[run]) < cfg["align"] else
               "other directions are unstable: the manifold repels")
        head = f"a {kind} of fixed and slow points ({'closed' if closed else 'open'}) but not an attractor: {why}"
    out["sentence"] = f"{head}: {int(on.sum())} of {len(Pc)} points lie on it, {fit_words}; {eig_words}"
    return out


def continuous_attractor(manifolds: dict) -> dict:
    """The verdict said once: the first attracting ring or line, else why there is none."""
    for m in manifolds["manifolds"]:
        if m.get("attractor"):
            return {"kind": m["kind"], "line_attractor": m["kind"] == "line", "ring_attractor": m["kind"] == "ring",
                    "reason": m["sentence"]}
    return {"kind": None, "line_attractor": False, "ring_attractor": False, "reason": manifolds["sentence"]}


def points_of(manifold: dict, points: list, attracting: bool = False) -> list:
    """The FixedPoints a manifold's curve passes through, in order along it (``attracting``: those
    of its attracting stretch only)."""
    members = manifold.get("members", [])
    return [points[members[k]] for k in manifold["attracting"]] if attracting else [points[k] for k in members]
