"""Timing shared by the benchmarks: best of several runs after a warm-up, GPU work waited for."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``fn`` after one warm-up call, in seconds."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def batch_ratio(run: Callable[[int], object], n: int, batch: int, repeats: int, unit: str, label: str = "") -> float:
    """Time ``run(1)`` and ``run(batch)``, each handling the same ``n`` items, print the items/s of both, and
    return how many times faster the batch is per item."""
    rates = {}
    for size in (1, batch):
        best = best_time(lambda size=size: run(size), repeats)
        rates[size] = n / best
        print(f"{label}batch {size:3d}: {rates[size]:7.1f} {unit}/s ({n} {unit} in {best:.2f} s)")
    return rates[batch] / rates[1]
