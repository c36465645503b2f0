"""Processes and signals: worker processes that never outlive the process that started them (the
sweep's trials and the similarity signatures on a ``local_pool``, the pool that draws a run's
figures), and writes that Ctrl-C does not cut."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time


def die_with_parent() -> None:
    """Make this (worker) process die with its parent: a watchdog thread that sees the parent
    gone (within half a second) and exits.

    Not the kernel's parent-death signal: it fires when the *thread* that forked the worker
    ends, and a process pool forks the replacement of a dead worker from its handler thread,
    which ends at shutdown; such a replacement, killed while waiting on the task queue, took
    the queue's lock with it and ``Pool.terminate`` waited for it for ever (seen in the test
    of a worker killed mid-figure)."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="die-with-parent").start()


def _pool_worker_init() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    die_with_parent()


@contextlib.contextmanager
def _one_blas_thread_in_workers():
    """Read by NumPy as each spawned worker imports it: a worker's OpenBLAS starts one thread, not
    one per core (each trial then sets its own recorded count, training.threads)."""
    saved = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("OPENBLAS_NUM_THREADS", None)
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = saved


@contextlib.contextmanager
def local_pool(processes: int):
    """A spawned process pool whose workers run one BLAS thread each and die with the driver."""
    with _one_blas_thread_in_workers(), \
            mp.get_context("spawn").Pool(max(1, processes), initializer=_pool_worker_init) as pool:
        yield pool


@contextlib.contextmanager
def local_executor(processes: int):
    """``local_pool`` as a ``concurrent.futures`` executor: a worker that dies (killed, out of
    memory) raises ``BrokenProcessPool`` in the driver instead of leaving it waiting for ever."""
    from concurrent.futures import ProcessPoolExecutor  # start-up time: only where work is farmed out
    with _one_blas_thread_in_workers(), \
            ProcessPoolExecutor(max(1, processes), mp_context=mp.get_context("spawn"),
                                initializer=_pool_worker_init) as pool:
        yield pool


@contextlib.contextmanager
def interrupts_held():
    """Hold Ctrl-C (and SIGTERM) for the length of a write that must not be cut in two, such as
    an epoch's log row and the training state that goes with it; a signal that arrives meanwhile
    is delivered, to whatever handler was in place, when the write is done. Outside the main
    thread (where Python runs no signal handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held, previous = [], {}

    def hold(signum, frame):
        held.append((signum, frame))
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum, frame in held[:1]:                       # one interrupt is enough
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)
