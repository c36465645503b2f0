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


def flops(product) -> float:
    """Floating-point operations of a product, ``count`` times: 2 M K N (a vector A: 2 K N)."""
    _, count, sa, sb, _, _ = product
    m = sa[0] if len(sa) == 2 else 1
    return 2.0 * count * m * sb[0] * sb[1]


def peak_gflops(threads: int = 1, n: int = 2048) -> float:
    """This machine's float32 matrix-product rate on ``threads`` BLAS threads, measured: the best
    of 5 (n x n) by (n x n) products in NumPy, as near the cores' peak as its BLAS gets."""
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    a, b = operand(rng, (n, n)), operand(rng, (n, n))
    with threadpool_limits(threads, user_api="blas"):
        np.dot(a, b)
        best = min(timeit.repeat(lambda: np.dot(a, b), number=1, repeat=5))
    return 2.0 * n ** 3 / best / 1e9


def operand(rng, shape, transposed=False):
    a = rng.standard_normal(shape[::-1] if transposed else shape).astype(np.float32)
    return a.T if transposed else a


def seconds(products, lib: str = "numpy", threads: int = 1) -> dict[str, float]:
    """Seconds for each product, ``count`` times (names repeated add up), with NumPy's ``dot``
    or (``lib="torch"``) ``torch.matmul`` on the same arrays, in this process, on ``threads``."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads, user_api="blas")                   # for the rest of this (fresh) process
    rng = np.random.default_rng(0)
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)
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
