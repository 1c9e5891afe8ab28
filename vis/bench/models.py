"""What the benchmark sections share: random-weight models with plausible boxes, the R50-FPN floor, a
deterministic frame, the ONNX Runtime twin of a model and the library's whole per-frame loop as one call.
Used by vis/bench/harness.py, int8_case.py and training_case.py (docs/benchmarks.md)."""
from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ...image.fuse import fold_batchnorm
from ...image.model import QueryInst
from ...tracking import OnlineTracker, TrackerConfig
from ..config import VisConfig
from ..inference import track_frames
from ..modeling.build import build_queryinst_vis

logger = logging.getLogger(__name__)


def spread_boxes(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """``n`` boxes [n, 4] normalised (cx, cy, w, h) inside the image: sizes sqrt(wh) spaced geometrically
    from 32 px to 96% of sqrt(image area) (every level P2-P5 from 360x640 up), aspect ratios in [1/2, 2]
    where the image leaves room (a side longer than the image is cut to 98% of it, the area kept)."""
    rng = np.random.default_rng(seed)
    area = np.geomspace(32.0, 0.96 * np.sqrt(height * width), n) ** 2
    ratio = np.exp(rng.uniform(np.log(0.5), np.log(2.0), n))
    bw = np.minimum(np.sqrt(area * ratio), width * 0.98)
    bh = np.minimum(area / bw, height * 0.98)
    bw = np.minimum(area / bh, width * 0.98)
    cx = rng.uniform(bw / 2, width - bw / 2)
    cy = rng.uniform(bh / 2, height - bh / 2)
    return torch.tensor(np.stack([cx / width, cy / height, bw / width, bh / height], 1), dtype=torch.float32)


@torch.no_grad()
def plausible_boxes(detector: QueryInst, height: int, width: int, seed: int = 0) -> None:
    """Put a random-weight detector's proposals on ``spread_boxes`` and zero every stage's last box
    regression layer, so every stage keeps those boxes (random deltas compound over 6 stages into
    boxes far outside the image, which would make pooling levels and mask paste unrepresentative)."""
    detector.proposals.boxes.weight.copy_(spread_boxes(detector.proposals.num_proposals, height, width, seed))
    for stage in detector.stages:
        nn.init.zeros_(stage.box_head.box_deltas.weight)
        nn.init.zeros_(stage.box_head.box_deltas.bias)


def benchmark_vis_model(cfg: VisConfig, height: int, width: int, seed: int = 0, fold: bool = True) -> nn.Module:
    """Random-weight QueryInst-VIS in eval mode for timing: plausible boxes, every query detected, BatchNorm
    folded as the inference loaders do (``fold=False``: as built)."""
    torch.manual_seed(seed)
    cfg.model.init_from = ""
    model = build_queryinst_vis(cfg).eval()
    plausible_boxes(model.detector, height, width, seed)
    model.score_threshold = 0.0
    if fold:
        fold_batchnorm(model)
    return model


def floor_backbone(name: str, fold: bool = False) -> nn.Module:
    """torchvision's R50-FPN as it ships (FrozenBatchNorm2d), or with those folded into the convs."""
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    floor = resnet_fpn_backbone(backbone_name=name, weights=None).eval()
    if fold:
        fold_batchnorm(floor)
    return floor


def random_frame(height: int, width: int, seed: int) -> np.ndarray:
    """A deterministic RGB uint8 frame: smooth gradients plus noise (content does not change the cost)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(1, width), yy * 255 // max(1, height), (xx + yy) % 256], -1)
    return np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)


def onnx_twin(model: nn.Module) -> Any | None:
    """The ONNX Runtime twin of ``model`` (same threads as torch), or None without onnx/onnxruntime."""
    try:
        from ..modeling.export import onnx_runtime_model
        return onnx_runtime_model(model, num_threads=torch.get_num_threads())
    except ImportError as err:
        logger.warning("ONNX path skipped: %s", err)
        return None


def loop_case(model: Any, tracker_cfg: TrackerConfig, frame: np.ndarray, min_size: int, max_size: int
               ) -> Callable[[], Any]:
    """One ``next()`` of a persistent ``track_frames`` stream over copies of ``frame``: the library's
    whole per-frame path (resize, detect, tracker, RLE) with a tracker that keeps its state."""
    stream = track_frames(model, OnlineTracker(tracker_cfg), itertools.repeat(frame), min_size, max_size)
    return lambda: next(stream)
