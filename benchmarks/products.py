"""Matrix products timed on their own: the floor that a BLAS sets under a model's time.

A product is (name, count, A shape, B shape, A transposed, B transposed): A @ B as the library
runs it ``count`` times, a transposed operand being the ``.T`` view of a contiguous array (as
``dXP.T`` is in rnnlab's weight gradients), a 1-D A a vector (a bias gradient's ``ones @ dXP``).
Each is timed with its operands in cache, so the sum is a lower limit for the same products
inside a training step, where other data has pushed the operands out.
"""

from __future__ import annotations

import statistics
import timeit

import numpy as np


def operand(rng, shape, transposed=False):
    a = rng.standard_normal(shape[::-1] if transposed else shape).astype(np.float32)
    return a.T if transposed else a


def seconds(products, lib: str = "numpy") -> dict[str, float]:
    """Seconds for each product, ``count`` times (names repeated add up), with NumPy's ``dot``
    or (``lib="torch"``) ``torch.matmul`` on the same arrays, in this process."""
    rng = np.random.default_rng(0)
    if lib == "torch":
        import torch
    times: dict[str, float] = {}
    for name, count, sa, sb, ta, tb in products:
        a, b = operand(rng, sa, ta), operand(rng, sb, tb)
        if lib == "torch":
            a, b = torch.from_numpy(a), torch.from_numpy(b)
            f = lambda: torch.matmul(a, b)                          # noqa: E731
        else:
            f = lambda: np.dot(a, b)                                # noqa: E731
        f()
        n = max(1, int(0.01 / (timeit.timeit(f, number=1) + 1e-9)))
        times[name] = times.get(name, 0.0) + count * statistics.median(timeit.repeat(f, number=n, repeat=5)) / n
    return times
