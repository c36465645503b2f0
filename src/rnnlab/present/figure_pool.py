"""Where figures are drawn: ``FigurePool``, worker processes that draw a run's figures while
``rnnlab train`` goes on with its analysis (they die with the process that started them, see
``rnnlab.processes``), and ``pyplot()``, matplotlib on the Agg backend, loaded on first use."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys

from rnnlab.errors import InputError, InputTypeError
from rnnlab.processes import die_with_parent


def pyplot():
    """matplotlib.pyplot on the Agg backend, imported on first use (the import alone takes about
    0.3 s, which ``rnnlab train`` spends in its figure workers while it trains)."""
    import matplotlib  # start-up time: 0.3 s, paid where figures are drawn
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # start-up time: with matplotlib
    return plt


def _figure_worker_init(ready) -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # Ctrl-C is the parent's to handle
    # Pool.terminate() ends a worker with SIGTERM: its default action here, not the handler
    # `rnnlab train` installs (inherited through fork, it kept a worker alive and terminate()
    # waiting for it for ever)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.nice(5)          # the parent's training first; not 19, which starves them on a busy machine
    try:
        pyplot()                                        # the slow import, done while the parent trains
    finally:                                            # ready (or failed: its figures will say why)
        with ready.get_lock():
            ready.value += 1


def drawer(pool):
    """``pool.draw``, or drawing right here when there is no pool."""
    return pool.draw if pool is not None else (lambda fn, *a, **k: fn(*a, **k))


MAX_FIGURE_WORKERS = 16     # a run draws at most eight figures; each worker holds its own matplotlib


def figure_workers_checked(workers) -> int | None:
    """``figure_workers`` as given in Python: None (the environment's choice) or 0 to 16."""
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise InputTypeError(f"figure_workers must be a whole number from 0 to {MAX_FIGURE_WORKERS} (0 draws figures "
                             f"in this process) or None, got {workers!r}")
    if not 0 <= workers <= MAX_FIGURE_WORKERS:
        raise InputError(f"figure_workers must be from 0 to {MAX_FIGURE_WORKERS} (0 draws figures in this process), "
                         f"got {workers}")
    return workers


def figure_workers_from_env() -> int:
    raw = os.environ.get("RNNLAB_FIGURE_WORKERS", "2")
    try:
        n = int(raw)
    except ValueError:
        n = -1
    if not 0 <= n <= MAX_FIGURE_WORKERS:
        raise InputError(f"RNNLAB_FIGURE_WORKERS must be a whole number from 0 to {MAX_FIGURE_WORKERS} (0 draws "
                         f"figures in this process), got {raw!r}")
    return n


class FigurePool:
    """Draws figures in worker processes, started (and importing matplotlib) before training, so
    drawing a run's figures overlaps its analysis instead of following it. ``draw(fn, *args)``
    takes a module-level function of plain data; ``wait()`` returns once every figure is written
    and re-raises a drawing error.

    Workers are forked (Linux): a fork copies the loaded modules in milliseconds and, unlike
    spawn, never re-runs the caller's main script, so a script without an ``if __name__ ==
    "__main__"`` guard is safe. It never touches this process's BLAS threads: they belong to the
    training and the analysis (``training.threads``), whose bits depend on them, and both keep to
    one thread by default, which leaves the second core to the workers. Elsewhere, with 0 workers
    (``RNNLAB_FIGURE_WORKERS=0``), inside a daemon process, or where processes cannot be
    started, it draws in this process at once."""

    def __init__(self, workers: int | None = None):
        workers = figure_workers_from_env() if workers is None else figure_workers_checked(workers)
        self._pool, self._pending, self._workers = None, [], workers
        if workers > 0 and sys.platform.startswith("linux") and not mp.current_process().daemon:
            try:
                ctx = mp.get_context("fork")
                self._ready = ctx.Value("i", 0)
                self._pool = ctx.Pool(workers, initializer=_figure_worker_init, initargs=(self._ready,))
            except OSError:                              # no semaphores or no processes: draw here
                self._pool = None

    def ready(self) -> bool:
        """Whether every worker has imported matplotlib (or there are none)."""
        return self._pool is None or self._ready.value >= self._workers

    def draw(self, fn, *args, **kwargs) -> None:
        if self._pool is None:
            fn(*args, **kwargs)
        else:
            self._pending.append(self._pool.apply_async(fn, args, kwargs))

    def wait(self) -> None:
        pending, self._pending = self._pending, []
        workers = list(self._pool._pool) if self._pool is not None else []
        for result in pending:
            while not result.ready():                   # a worker killed mid-figure never answers
                result.wait(0.5)
                if any(w.exitcode not in (None, 0) for w in workers):
                    raise RuntimeError("a figure worker died while drawing (killed, or out of memory); draw "
                                       "the figures in this process with RNNLAB_FIGURE_WORKERS=0")
            result.get()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                self.wait()
            elif not issubclass(exc[0], KeyboardInterrupt):     # finish the figures already asked for
                try:
                    self.wait()
                except Exception:
                    pass                                        # the first error is the one to report
        finally:
            self.close()
