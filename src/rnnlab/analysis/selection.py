"""Selection vectors by their definition (Mante, Sussillo, Shenoy & Newsome 2013).

At a point of a line attractor the linearised dynamics keep one direction r (eigenvalue ~ 1)
and forget the others. An input that moves the state by b is kept only through its component
along r, read by the left eigenvector l of that eigenvalue (l J = lambda l, scaled so l . r = 1):
l . b is how far the input pushes the state along the line. l is the selection vector.

The definition needs a real eigenvalue near 1 at a point the state can rest at. So a selection
vector is taken only at a stable point, or a marginal one (its only unstable direction is that
slow mode itself, as on a ring or line of saddles whose eigenvalue along the manifold is 1.01);
where the eigenvalue nearest 1 is complex (a rotation: the real part of a complex left
eigenvector depends on an arbitrary phase), not within ``near_one`` of 1, or where another
direction is unstable (a saddle, which trajectories leave), the point is refused with the
reason. The eigenvalue and the vector always come from the same point. Along an attracting
manifold every point of its curve gives one, so the result is a distribution.

In continuous time (a CTRNN) the same tests read each eigenvalue as its factor per step dt,
e^(a mu) with mu = (lambda - 1) / a (``fixed_points.per_step``); the eigenvectors are the
Jacobian's own, so the selection vector is unchanged, and the continuous eigenvalue mu (1/tau) is
given beside the per-step one.
"""

from __future__ import annotations

import numpy as np

from rnnlab.analysis.fixed_points import per_step
from rnnlab.analysis.manifolds import points_of

__all__ = ["selection_at", "selection_vectors"]

# Two eigenvalues closer than this are one repeated eigenvalue: its eigenvectors span a plane and any
# basis of it is as good, so a left eigenvector (and every push along it) is arbitrary. Distinct
# slow modes (0.980 and 0.963 on a trained GRU) each have their own, and the nearest 1 is used.
REPEATED = 1e-3


def selection_at(F, point, input_maps, near_one: float = 0.05, towards=None) -> dict:
    """The selection vector at one state (S,), or the reason there is none: {"eigenvalue",
    "selection_vector", "direction", "projections": [l . b_i]} or {"eigenvalue", "refused" (a sentence),
    "why" (its kind)}. The slow direction r is signed to point along ``towards`` when given (a
    manifold's tangent), else so that its largest component is positive: the pushes' signs then
    mean the same at every point."""
    J = F.jacobian(point[None])[0]
    raw, R = np.linalg.eig(J)
    clock = getattr(F, "clock", None)
    e = per_step(raw, clock)                                        # the factor per step the tests read
    k = int(np.argmin(np.abs(e - 1.0)))
    lam = e[k]
    out = {"eigenvalue": [float(lam.real), float(lam.imag)]}
    if clock is not None:
        mu = clock.rates(raw[k])
        out["continuous_eigenvalue"] = [float(mu.real), float(mu.imag)]
    unstable = int((np.abs(np.delete(e, k)) > 1.0).sum())
    twin = np.delete(e, k)
    twin = twin[np.abs(twin - lam) < REPEATED]                      # the same eigenvalue twice, to rounding
    if abs(lam.imag) > 1e-9:
        out["why"] = "complex eigenvalue nearest 1"
        out["refused"] = (f"the eigenvalue nearest 1 is complex ({lam.real:.3f} {'+-'[int(lam.imag < 0)]} "
                          f"{abs(lam.imag):.3f}i): a rotation, with no one direction to select along")
    elif abs(lam.real - 1.0) >= near_one:
        out["why"] = f"eigenvalue nearest 1 farther than {near_one:g} from 1"
        out["refused"] = f"the eigenvalue nearest 1 is {lam.real:.3f}, not within {near_one:g} of 1"
    elif twin.size:
        out["why"] = "repeated eigenvalue"
        out["refused"] = (f"another eigenvalue ({abs(twin[0]):.4f}) lies within {REPEATED:g} of {lam.real:.4f}: a "
                          "slow plane, not one slow direction, so no single selection vector")
    elif unstable:
        out["why"] = "unstable besides the slow mode"
        out["refused"] = (f"{unstable} unstable direction{'s' if unstable > 1 else ''} besides the slow mode: a "
                          "saddle, which trajectories leave")
    if "refused" in out:
        return out
    scale = np.linalg.norm(R[:, k])
    r = np.real(R[:, k]) / scale
    sign = np.sign(r @ towards) if towards is not None else np.sign(r[np.argmax(np.abs(r))])
    r *= sign or 1.0
    # the left eigenvector is row k of R^-1 (l R = e_k): l . r = 1 by construction, no second
    # eigendecomposition to match; rescaled with r, so l . b is the push along r
    left = np.real(np.linalg.solve(R.T, np.eye(len(e))[k])) * scale * (sign or 1.0)
    base = F(point)
    pushes = [float(left @ (Fi(point) - base)) for Fi in input_maps]
    out.update(selection_vector=(left / np.linalg.norm(left)).tolist(), direction=r.tolist(), projections=pushes)
    return out


def selection_vectors(F, points: list, manifolds: dict, input_maps: list, fixed: list,
                      near_one: float = 0.05) -> dict:
    """Selection vectors at the points of the first attracting manifold's attracting stretch
    (``points``, fixed and slow, in order along it), or, where there is none, at each of the ``fixed`` points; each
    input's push along the slow mode as a distribution over the accepted points; the refused ones
    counted by reason. Without a manifold slow points are left out: which slow points a search
    meets depends on its starts (on trained ContextDecisionMaking networks the median push ratio
    moved by 30% at 4x the starts when they were in), the fixed points do not."""
    att = next((m for m in manifolds.get("manifolds", []) if m.get("attractor")), None)
    chosen = points_of(att, points, attracting=True) if att else fixed
    where = (f"the {len(chosen)} points along the {att['kind']} attractor" if att else
             f"the {len(fixed)} fixed points (no attracting manifold)")
    per_point, refused = [], {}
    P = np.array([p.point for p in chosen]) if chosen else np.empty((0, F.size))
    for k, p in enumerate(chosen):
        towards = P[min(k + 1, len(P) - 1)] - P[max(k - 1, 0)] if att and len(P) > 1 else None
        res = selection_at(F, p.point, input_maps, near_one, towards=towards)   # one direction along the curve
        res["point"] = k
        if "refused" in res:
            refused[res["why"]] = refused.get(res["why"], 0) + 1
        per_point.append(res)
    ok = [r for r in per_point if "refused" not in r]
    out = {"where": "attractor" if att else "points", "points": len(chosen), "accepted": len(ok),
           "refused_reasons": refused, "per_point": per_point}
    if not ok:
        why = "; ".join(f"{n} refused: {reason}" for reason, n in refused.items()) or "no points"
        out["sentence"] = f"no selection vector at {where}: {why}"
        return out
    pushes = np.array([r["projections"] for r in ok])            # (accepted, inputs)
    lam = np.array([r["eigenvalue"][0] for r in ok])
    out["eigenvalue_range"] = [float(lam.min()), float(lam.max())]
    mus = [r["continuous_eigenvalue"][0] for r in ok if "continuous_eigenvalue" in r]
    continuous = ""
    if mus:
        out["continuous_eigenvalue_range"] = [float(min(mus)), float(max(mus))]
        continuous = (f"; in continuous time the eigenvalue is e^(a mu) per step dt, Re(mu) {min(mus):.3g} to "
                      f"{max(mus):.3g}/tau")
    out["projections"] = [{"input": i, "median": float(np.median(pushes[:, i])), "min": float(pushes[:, i].min()),
                           "max": float(pushes[:, i].max())} for i in range(pushes.shape[1])]
    spread = ", ".join(f"input {o['input']} {o['median']:+.3g} ({o['min']:+.3g} to {o['max']:+.3g})"
                       for o in out["projections"])
    refusals = (f"; refused at {len(chosen) - len(ok)}: " + "; ".join(f"{n} {reason}" for reason, n in refused.items())
                if refused else "")
    out["sentence"] = (f"selection vectors at {len(ok)} of {where} (eigenvalue {lam.min():.3f} to {lam.max():.3f}, "
                       f"real, each vector from its own point{continuous}): each input's push along the slow "
                       f"mode, median (range): {spread or 'no inputs'}{refusals}")
    return out
