"""The one owner of the process's BLAS thread count while rnnlab computes.

OpenBLAS does not give the same bits on 1 and 2 threads for every shape: a (64 x 1000) by
(1000 x 64) float32 product, the seed network's weight gradient at batch 50, differs in 75% of
its entries (OpenBLAS 0.3.31, SkylakeX kernels). So a run's thread count is one of its settings,
``TrainConfig.blas_threads`` (1 unless asked), recorded in ``config.json`` and reused on resume,
and nothing else decides it: not the machine's load, not figure workers, not ``OPENBLAS_NUM_THREADS``.

One thread is also the safer default on the machines rnnlab is written on (2 cores): beside two
busy processes it kept the seed preset within 1.3x and a 256-unit char-LM within 1.5x of their
quiet times, where two threads, spinning for cores other processes hold, were 4.0x and 4.6x slower
(``benchmarks/busy.py``). On an idle machine two threads are faster (seed preset 0.94 s against
1.10; char-LM 2.12 against 2.92): ``--blas-threads 2`` asks for them.

The count is set explicitly when each phase starts (``BlasThreads.apply``: each epoch's steps,
its held-out scoring, the analysis), so something that changed it between phases (a callback's
``on_epoch_end``, a library) cannot change a run's bits; a change made inside a phase (in
``on_step_end``) would hold until the next phase starts. ``restore`` puts back what the process
had before.
"""

from __future__ import annotations

import functools

from threadpoolctl import ThreadpoolController

ANALYSIS_THREADS = 1    # the analysis's batched small solves: 0.44 s on two threads, 0.48 s on one (seed run)


class BlasThreads:
    """``n`` BLAS threads from each ``apply()`` until ``restore()``."""

    def __init__(self, n: int):
        self.n = n
        self._controller = ThreadpoolController()
        self._limit = None

    def apply(self) -> None:
        if self._limit is None:
            self._limit = self._controller.limit(limits=self.n, user_api="blas")
        else:
            self._controller.limit(limits=self.n, user_api="blas")

    def restore(self) -> None:
        if self._limit is not None:
            self._limit.restore_original_limits()
            self._limit = None


def on_analysis_threads(fn):
    """``fn`` run on ``ANALYSIS_THREADS`` BLAS threads, whatever the machine's load, so an
    analysis gives the same numbers on a quiet and on a busy machine."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        threads = BlasThreads(ANALYSIS_THREADS)
        threads.apply()
        try:
            return fn(*args, **kwargs)
        finally:
            threads.restore()
    return run
