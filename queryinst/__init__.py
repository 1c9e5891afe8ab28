"""QueryInst-VIS toolkit: ``queryinst.image`` (QueryInst), ``queryinst.vis`` (QueryInst-VIS),
``queryinst.tracking`` (model-independent online tracker).

The public names below are imported on first use, so ``import queryinst`` (and ``queryinst.tracking``)
does not import torch.
"""
from __future__ import annotations

import importlib
import os
from typing import Any

# OpenMP threads that wait by spinning collapse when another process uses the cores: on a 2-core machine
# with one other busy process, tracking the sample clip took 184 s with torch's 2 default threads, 16 s
# with passive waiting, 12 s with 1 thread (docs/benchmarks.md). libgomp reads this when torch is first
# imported, so it is set here, before any module of the package imports torch; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

_PUBLIC = {
    "VideoTracker": "queryinst.vis.api",
    "TrackedFrame": "queryinst.vis.api",
    "Predictor": "queryinst.image.api",
    "ImageResult": "queryinst.image.api",
    "OnlineTracker": "queryinst.tracking",
    "TrackerConfig": "queryinst.tracking",
    "Detections": "queryinst.tracking",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'queryinst' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
