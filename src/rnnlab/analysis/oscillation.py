"""Rhythms: a fixed point's complex eigenvalues against the cycle the network really runs.

Linearising at a fixed point gives a complex pair lambda = |lambda| e^{i angle}: near the point a
small displacement turns by ``angle`` a step (period 2 pi / angle) and grows or shrinks by
|lambda|. That sets the period of a *damped* rhythm near a stable focus. It does not set the
period of a *limit cycle*: when |lambda| > 1 the state leaves the point's neighbourhood and the
cycle it settles on is shaped by the nonlinearity (tanh's saturation slows the turning; on a
trained sine generator the pair's period was 1.06 to 12.2 times the cycle's, level by level). So
both numbers are measured and reported, and which one describes the rhythm is said.

In continuous time (a CTRNN) the pair is read per step dt as e^(a mu), mu = (lambda - 1) / a
(``fixed_points.per_step``): it turns by a Im(mu) a step, a linear period of 2 pi / Im(mu) in
tau; both periods are also given in tau.
"""

from __future__ import annotations

import numpy as np

from rnnlab.analysis.fixed_points import per_step, sample_starts

__all__ = ["free_run_period", "rotation_vs_free_run"]

SETTLED_RMS = 1e-6          # a free run whose states move less than this about their mean has settled
SUSTAINED = 0.9             # a cycle keeps its size: the last quarter's RMS at least this share of the first's


def free_run_period(F, starts, steps: int = 2048, burn: int = 512, amplitude: bool = False) -> tuple:
    """Run the map from each start (M, S) for ``burn`` + ``steps`` steps at its constant input and
    return the dominant period (in steps) of what it does after the burn, and the size of that
    motion (the RMS of the states about their mean). The period is None when the states settle
    (RMS below 1e-6) or drift without a rhythm (the strongest frequency fits less than twice).
    The spectrum is summed over units and starts; the peak is refined by a parabola through the
    log power of its bin and its neighbours. ``amplitude``: also return the RMS of the last quarter
    of the run over that of the first (about 1 on a cycle, below 1 on a rhythm still dying out)."""
    s = np.array(starts, dtype=np.float64, ndmin=2)
    for _ in range(burn):
        s = F(s)
    trace = np.empty((steps,) + s.shape)
    for k in range(steps):
        s = F(s)
        trace[k] = s
    with np.errstate(over="ignore", invalid="ignore"):     # a run that blows up (a rate network's runaway
        centred = trace - trace.mean(axis=0)                # excitation) is an infinite RMS, said below
        rms = float(np.sqrt((centred ** 2).sum(axis=2).mean()))
        q = steps // 4
        first, last = (float(np.sqrt((c ** 2).sum(axis=2).mean())) for c in (centred[:q], centred[-q:]))
    kept = last / first if first > 0 else 1.0
    extra = (kept,) if amplitude else ()
    if not np.isfinite(rms) or rms < SETTLED_RMS:
        return (None, rms if np.isfinite(rms) else float("inf"), *extra)
    power = (np.abs(np.fft.rfft(centred, axis=0)) ** 2).sum(axis=(1, 2))     # (steps // 2 + 1,)
    k = int(np.argmax(power[1:]) + 1)
    if k < 2:
        return (None, rms, *extra)
    shift = 0.0
    if k + 1 < len(power):
        a, b, c = np.log(power[k - 1:k + 2] + 1e-300)
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
    return (float(steps / (k + shift)), rms, *extra)


def rotation_vs_free_run(F, points, states, seed: int = 0) -> dict | None:
    """Where a fixed point's leading eigenvalues are a complex pair: the angle they turn by per step
    (period 2 pi / angle) beside what the layer does running freely from 16 visited states at the
    same input (``free_run_period``). Three outcomes, said as such: it settles (a damped rhythm,
    the linear period is its period), it runs a cycle (a limit cycle: its period is the free run's,
    and the linearisation does not set it; both are given, with their ratio), or it moves without
    a rhythm. None when no point turns, or when the turning point is a saddle and the network
    runs no rhythm."""
    turning = [(k, p) for k, p in enumerate(points) if p.eigenvalues.size and abs(p.eigenvalues[0].imag) > 1e-9]
    if not turning:
        return None
    clock = getattr(F, "clock", None)
    k, p = max(turning, key=lambda kp: abs(per_step(kp[1].eigenvalues[0], clock)))
    lam = per_step(p.eigenvalues[0], clock)               # the pair per step (a CTRNN: e^(a mu))
    angle = abs(float(np.angle(lam)))
    starts = sample_starts(states, 16, 0.0, np.random.default_rng(seed))
    period, rms, kept = free_run_period(F, starts, amplitude=True)
    if period is None and p.n_unstable:
        return None                          # a saddle's slow turn the network never runs: no rhythm
    linear = 2 * np.pi / angle
    cycle = period is not None and kept >= SUSTAINED
    pair = (f"the leading eigenvalues of fixed point {k} are a complex pair of modulus {abs(lam):.3f} turning by "
            f"{angle:.4f} rad a step (a linear period of {linear:.2f} steps)")
    if clock is not None:
        mu = clock.rates(p.eigenvalues[0])
        pair += (f"; in continuous time (per step dt the pair is e^(a mu), a = {clock.alpha:g}) mu = {mu.real:.3g} "
                 f"{'+-'[int(mu.imag < 0)]} {abs(mu.imag):.3g}i per tau, a linear period of {linear * clock.alpha:.3g} "
                 f"tau" + ("" if period is None else f", the free run's {period * clock.alpha:.3g} tau"))
    if cycle:
        runs = (f"running freely at that input the layer settles on a cycle of period {period:.2f} steps (RMS "
                f"{rms:.3g} about its mean, {100 * kept:.0f}% of it kept from the first to the last quarter of the "
                "run): "
                f"a limit cycle, whose period the nonlinearity sets, not the linearisation "
                f"at the fixed point (free-run period / linear period = {period / linear:.3f})")
    elif rms < SETTLED_RMS:
        runs = "running freely at that input it settles: a damped rhythm, of the linear period"
    elif period is not None:
        runs = (f"running freely at that input it turns with period {period:.2f} steps but is still dying out "
                f"(the last quarter of a 2048-step run keeps {100 * kept:.0f}% of the first quarter's size, below "
                f"{100 * SUSTAINED:.0f}%): a slowly damped rhythm, not a limit cycle")
    else:
        runs = f"running freely at that input it moves without a rhythm (RMS {rms:.3g})"
    out = {"point": k, "eigenvalue": [float(lam.real), float(lam.imag)], "modulus": float(abs(lam)),
           "angle": angle, "linear_period": linear, "free_run_period": period, "free_run_rms": rms,
           "limit_cycle": cycle, "period_ratio": None if not cycle else period / linear, "amplitude_kept": kept,
           "sentence": f"{pair}; {runs}"}
    if clock is not None:                   # the periods in tau, and the pair as mu (1/tau)
        out.update(continuous_eigenvalue=[float(mu.real), float(mu.imag)], linear_period_tau=linear * clock.alpha,
                   free_run_period_tau=None if period is None else period * clock.alpha)
    return out
