"""How many BLAS threads training uses: one when the model's products are too small to share or
when other work already keeps the cores busy, where a second BLAS thread only spins.

Measured on this project's 2-core machine (``benchmarks/busy.py``): the seed preset's 20 epochs
took 0.78 s with OpenBLAS's default two threads and 0.52 s with one on an idle machine, and 4.76 s
against 1.06 s beside two busy processes; a 256-unit char-LM, whose products are large, trained
1.35x faster with two threads on an idle machine but 2.6x slower beside two busy processes.
"""

from __future__ import annotations

import functools
import os

from threadpoolctl import ThreadpoolController

from rnnlab.training.build import GATES

SMALL_PRODUCT_FLOPS = 1e6     # a step's largest product below this: one thread (seed: 0.26 MFLOP; char-LM-128: 4.2)


def _user_set_threads() -> bool:
    return any(os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"))


def _cores_busy() -> bool:
    cores = os.cpu_count() or 1
    return cores == 1 or others_running() >= cores - 0.5           # other work already fills the cores


def threads_for(model, batch_size: int) -> int | None:
    """1 when one BLAS thread is the better choice for ``model``'s products on ``batch_size`` rows
    now, None to leave BLAS as it is (all cores); None as well when the user set a thread count in
    the environment, or for a model of the user's own."""
    if _user_set_threads():
        return None
    d = model.describe() if hasattr(model, "describe") else {}
    if "d_model" in d:                                           # a transformer: its MLP's product per position
        flops = 2.0 * batch_size * d["d_model"] * 4 * d["d_model"]
    elif "hidden" in d:
        gates = GATES.get(d.get("cell"), 4)
        flops = 2.0 * batch_size * gates * d["hidden"] * max(d["hidden"], d.get("input_size", 0))
    else:
        return None
    return 1 if flops < SMALL_PRODUCT_FLOPS or _cores_busy() else None


def threads_when_busy() -> int | None:
    """1 when other work already fills the cores (then a second BLAS thread only waits for one),
    None otherwise or when the user set a thread count: the analysis's choice, whose batched
    small solves gained a little from a second thread on an idle machine (seed run 0.44 s against
    0.48) and lost with two busy processes (1.22 s against 0.76)."""
    return None if _user_set_threads() or not _cores_busy() else 1


def others_running() -> float:
    """How many other processes want a core right now: Linux's count of runnable tasks (this one
    included, hence the 1 taken off), not the 1-minute load average, which still counts work
    that ended a minute ago; elsewhere that average."""
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return float(f.read().split()[3].split("/")[0]) - 1
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except OSError:
            return 0.0


class BlasThreads:
    """BLAS threads for the two phases of an epoch: ``training()`` (batches of the training batch
    size) and ``evaluating()`` (the held-out set in batches of up to 1000, whose products may be
    large enough to share), each set when the phase starts, so a figure pool that hands threads
    back between steps cannot undo it for long; ``restore()`` puts back what was there."""

    def __init__(self, train: int | None, evaluate: int | None):
        self.train, self.evaluate = train, evaluate
        self._controller = ThreadpoolController() if train is not None or evaluate is not None else None
        self._limit = None

    def training(self) -> None:
        self._set(self.train)

    def evaluating(self) -> None:
        self._set(self.evaluate)

    def _set(self, n: int | None) -> None:
        if n is None:
            self.restore()
        elif self._limit is None:
            self._limit = self._controller.limit(limits=n, user_api="blas")
        else:
            self._controller.limit(limits=n, user_api="blas")

    def restore(self) -> None:
        if self._limit is not None:
            self._limit.restore_original_limits()
            self._limit = None


def one_blas_thread_when_busy(fn):
    """``fn`` run on one BLAS thread when other work already fills the cores
    (``threads_when_busy``), as it is otherwise."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        limit = BlasThreads(threads_when_busy(), None)
        limit.training()
        try:
            return fn(*args, **kwargs)
        finally:
            limit.restore()
    return run
