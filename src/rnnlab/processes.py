"""Worker processes that never outlive the process that started them (the sweep's trial pool, the
pool that draws a run's figures)."""

from __future__ import annotations

import os
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
