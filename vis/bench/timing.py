"""Timing for benchmarks: interleaved rounds with medians, the machine's description, top operators.

``time_interleaved`` is the one rule of every timing here (vis/bench/harness.py): after ``warmup`` calls of
each case, each round calls every case once, starting from a different case each round, so that a change
in machine load hits all cases alike; a case reports its median over rounds (and min / p25 / p75), and
the 1-minute load average is sampled after every round.
"""
from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torchvision


def stats_ms(samples: list[float]) -> dict[str, float]:
    """Seconds -> {median, min, p25, p75} in milliseconds and the number of samples."""
    ms = np.asarray(samples) * 1e3
    return {"median_ms": float(np.median(ms)), "min_ms": float(ms.min()), "p25_ms": float(np.percentile(ms, 25)),
            "p75_ms": float(np.percentile(ms, 75)), "n": len(ms)}


def time_interleaved(cases: Mapping[str, Callable[[], Any]], repeats: int, warmup: int
                     ) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Time ``cases`` round-robin (rotating start); returns ({name: stats_ms}, load average per round)."""
    names = list(cases)
    for name in names:
        for _ in range(warmup):
            cases[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    loads = []
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            cases[name]()
            samples[name].append(time.perf_counter() - start)
        loads.append(os.getloadavg()[0])
    return {name: stats_ms(s) for name, s in samples.items()}, loads


def machine_info() -> dict[str, Any]:
    """CPU model, cores, library versions and thread settings of this process."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        import onnxruntime
        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {"cpu": cpu, "logical_cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__, "onnxruntime": ort_version,
            "python": platform.python_version(), "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")
                    if k in os.environ}}


def top_operators(fn: Callable[[], Any], calls: int = 3, limit: int = 12) -> list[dict[str, Any]]:
    """torch.profiler: the ``limit`` operators with the most self CPU time over ``calls`` calls of ``fn``
    ({name, self_ms per call, share of the total, calls per call})."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:limit]
    return [{"name": e.key, "self_ms": e.self_cpu_time_total / 1e3 / calls,
             "share": e.self_cpu_time_total / total, "calls": e.count / calls} for e in ranked]
