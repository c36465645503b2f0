"""NeuroGym's cognitive tasks (Molano-Mazón et al.) as what an rnnlab ``Task`` is made of
(``neurogym_parts``), for ``Task.from_neurogym`` and ``rnnlab train --task neurogym:ENV_ID``.

One sequence is one trial, as NeuroGym's supervised examples score it: the inputs ``env.ob``
(steps, observations) and a target at every step ``env.gt`` (0 = fixate, 1.. = a choice). Trials
of different durations are right-padded to one length and carry their lengths, so padding is
neither trained on nor scored. The loss is cross-entropy at every step of the trial, fixation
included (the network must learn to hold fixation) but weighted ``FIXATION_WEIGHT`` against 1 for
a choice, as NeuroGym's ContextDecisionMaking example does: unweighted, the nine-in-ten fixation
steps teach a network to answer "fixate" at the decision too (0% decisions there); the score is
decision accuracy: the answer at each trial's last step -- inside the decision period -- against
the ground truth there, not a per-step accuracy that fixation steps would dominate.

NeuroGym is an optional dependency (``pip install 'rnnlab[neurogym]'``), imported only here and
only when such a task is made. Its releases pin exact versions of NumPy, Matplotlib and SciPy,
so it is best given a virtual environment of its own.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings

import numpy as np

from rnnlab.checks import check_float, check_int, check_memory, setting
from rnnlab.errors import InputError

PREFIX = "neurogym:"                 # rnnlab train --task neurogym:PerceptualDecisionMaking-v0
NEUROGYM_VERSION = "2.2.0"           # the release the extra pins: the last that does not import torch
LENGTH_SAMPLE = 2000                 # trials drawn to find the longest a task makes
PREFLIGHT_TRIALS = 20                # trials drawn first, to refuse settings that make unusable trials
MAX_TRIAL_STEPS = 10_000             # longer trials (dt 0.001: 2.2 million steps) are refused, not trained
FIXATION_WEIGHT = 0.05               # the loss's weight on fixation steps (target 0) against 1 on choices,
#                                      as NeuroGym's ContextDecisionMaking example weighs them


def neurogym_module():
    """The neurogym package, or one sentence saying how to install it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import neurogym  # optional extra: rnnlab[neurogym]
            import neurogym.envs.registration  # optional extra: rnnlab[neurogym]
    except ImportError as e:
        raise InputError(f"NeuroGym tasks need the neurogym package ({e}): pip install 'rnnlab[neurogym]' "
                         f"(NeuroGym {NEUROGYM_VERSION} pins NumPy 2.1 and Matplotlib 3.9, so give it a "
                         "virtual environment of its own)") from None
    return neurogym


def parse_env_kwargs(text) -> dict:
    """``--env-kwargs`` as a dict: a JSON object (empty text: none), its ``dt`` and ``timing``
    checked (``check_env_kwargs``)."""
    if isinstance(text, dict):
        return check_env_kwargs(dict(text))
    if not text:
        return {}
    if not isinstance(text, str):
        raise InputError(f"{setting('env_kwargs')} must be a JSON object such as '{{\"dt\": 100}}', got {text!r}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{setting('env_kwargs')} must be a JSON object such as '{{\"dt\": 100}}', got "
                         f"{text[:200]!r} ({e.msg})") from None
    except RecursionError:
        raise InputError(f"{setting('env_kwargs')} is nested too deeply to be a task's settings; give a flat "
                         "JSON object such as '{\"dt\": 100}'") from None
    if not isinstance(value, dict):
        raise InputError(f"{setting('env_kwargs')} must be a JSON object such as '{{\"dt\": 100}}', got "
                         f"{text[:200]!r}")
    return check_env_kwargs(value)


def _number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def check_env_kwargs(kwargs: dict) -> dict:
    """The settings every NeuroGym task shares, checked before a task is made: ``dt`` a positive
    number of milliseconds; ``timing`` a mapping from period to a duration in milliseconds (a number
    >= 0, or a distribution such as ["uniform", [300, 700]] whose numbers are >= 0)."""
    if "dt" in kwargs:
        dt = kwargs["dt"]
        if not _number(dt) or not math.isfinite(dt) or dt <= 0:
            raise InputError(f"{setting('env_kwargs')}: dt is the time step in milliseconds and must be a positive "
                             f"number, got {dt!r}; NeuroGym's tasks use 100 by default")
    if "timing" in kwargs:
        timing = kwargs["timing"]
        if not isinstance(timing, dict):
            raise InputError(f"{setting('env_kwargs')}: timing must map each period to its duration in ms, such as "
                             f"{{\"stimulus\": 2000}}, got {timing!r}")
        for period, spec in timing.items():
            _check_duration(period, spec)
    return kwargs


def _check_duration(period, spec) -> None:
    bad = None
    if _number(spec):
        bad = None if math.isfinite(spec) and spec >= 0 else spec
    elif isinstance(spec, (list, tuple)) and len(spec) == 2 and isinstance(spec[0], str):
        values = spec[1] if isinstance(spec[1], (list, tuple)) else [spec[1]]
        bad = next((v for v in values if not _number(v) or not math.isfinite(v) or v < 0), None)
        bad = None if bad is None else spec
    else:
        bad = spec
    if bad is not None:
        raise InputError(f"{setting('env_kwargs')}: the timing of {period!r} must be a duration in ms (a number >= "
                         f"0, or a distribution such as [\"uniform\", [300, 700]]), got {bad!r}")


def make_env(env_id: str, env_kwargs: dict | None = None):
    """The unwrapped NeuroGym environment ``env_id`` made with ``env_kwargs``."""
    ngym = neurogym_module()
    known = sorted(ngym.envs.registration.all_envs())
    if env_id not in known:
        near = [e for e in known if env_id.lower().split("-")[0] in e.lower()] or known[:6]
        raise InputError(f"NeuroGym has no task {env_id!r}; for example {', '.join(near[:6])} "
                         f"({len(known)} in all: neurogym.envs.registration.all_envs())")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = ngym.make(env_id, **(env_kwargs or {})).unwrapped
            env.seed(0)
            env.new_trial()
    except (TypeError, ValueError, KeyError) as e:
        raise InputError(f"NeuroGym's {env_id} does not take {setting('env_kwargs', json.dumps(env_kwargs))}: "
                         f"{e}") from None
    if getattr(env, "gt", None) is None or np.ndim(env.gt) != 1 or not np.issubdtype(np.asarray(env.gt).dtype,
                                                                                        np.integer):
        raise InputError(f"NeuroGym's {env_id} has no per-step class targets (env.gt) to train on with "
                         "supervision; rnnlab trains the supervised tasks (PerceptualDecisionMaking-v0, ...)")
    return env


def preflight_trials(env_id: str, env, kwargs: dict, seed: int) -> None:
    """Refuse settings that make trials rnnlab cannot train on, from a few trials drawn before the
    thousands a task draws: trials under 2 steps (a zero or negative period leaves no decision to
    learn; scored, they read as 100% right) or over ``MAX_TRIAL_STEPS`` (a tiny dt)."""
    lengths = [len(ob) for ob, _ in _trials(env, seed + 2, PREFLIGHT_TRIALS)]
    given = setting("env_kwargs", json.dumps(kwargs)) if kwargs else "its default settings"
    if min(lengths) < 2:
        raise InputError(f"NeuroGym's {env_id} with {given} makes trials of {min(lengths)} step(s): a trial needs at "
                         "least 2 (something to observe, then a decision); lengthen its timing or lower dt")
    if max(lengths) > MAX_TRIAL_STEPS:
        raise InputError(f"NeuroGym's {env_id} with {given} makes trials of {max(lengths):,} steps, more than the "
                         f"{MAX_TRIAL_STEPS:,} rnnlab trains on; raise dt (NeuroGym's tasks use 100 ms) or "
                         "shorten the timing")


def _trials(env, seed: int, n: int, longest: int | None = None) -> list[tuple]:
    """``n`` trials (ob, gt) drawn after seeding the environment; a trial longer than ``longest``
    is drawn again (rare: the tail of a random delay past every length seen when the task was made)."""
    env.seed(int(seed))
    out = []
    while len(out) < n:
        env.new_trial()
        ob, gt = np.asarray(env.ob), np.asarray(env.gt)
        if longest is None or len(ob) <= longest:
            out.append((ob, gt))
    return out


def _padded(trials, length: int, dtype) -> tuple:
    n, D = len(trials), trials[0][0].shape[1]
    X = np.zeros((n, length, D), dtype=dtype)
    y = np.zeros((n, length), dtype=np.int64)
    lengths = np.empty(n, dtype=np.int64)
    for i, (ob, gt) in enumerate(trials):
        X[i, :len(ob)], y[i, :len(gt)], lengths[i] = ob, gt, len(ob)
    return X, y, lengths


def neurogym_parts(env_id: str, env_kwargs: dict | str | None = None, *, test_size: int = 1000, seed: int = 0,
                   fixation_weight: float = FIXATION_WEIGHT, dtype=np.float32) -> dict:
    """NeuroGym's ``env_id`` as the parts of a Task (``Task.from_neurogym`` makes it): ``test_size``
    held-out trials drawn once from ``seed`` as padded arrays with their lengths, a generator of
    fresh trials for every batch, fixation steps weighted ``fixation_weight`` in the loss, scored by
    decision accuracy (see the module's note)."""
    kwargs = parse_env_kwargs(env_kwargs)
    test_size = check_int("test_size", test_size, minimum=1)
    fixation_weight = check_float("fixation_weight", fixation_weight, low=0.0, high=1.0)
    env = make_env(env_id, kwargs)
    preflight_trials(env_id, env, kwargs, seed)
    longest = max(len(ob) for ob, _ in _trials(env, seed + 1, LENGTH_SAMPLE))
    check_memory(test_size * longest * (env.ob.shape[1] * np.dtype(dtype).itemsize + 16),
                 f"{test_size:,} held-out trials of up to {longest:,} steps", f"lower {setting('test_size')}")
    X, y, lengths = _padded(_trials(env, seed, test_size, longest), longest, dtype)
    classes = max(int(env.action_space.n), int(y.max()) + 1)

    def gen(rng, batch_size, length):
        return _padded(_trials(env, rng.integers(2**31 - 1), batch_size, longest), longest, dtype)

    decisions = y[np.arange(len(y)), lengths - 1]
    return {"name": f"{PREFIX}{env_id}", "test": (X, y, lengths), "generator": gen, "length": longest,
            "output_size": classes, "baseline": float(np.bincount(decisions).max() / len(decisions)),
            "baseline_note": "decision accuracy of always giving the most frequent answer",
            "class_weights": (float(fixation_weight),) + (1.0,) * (classes - 1)}
