"""Box conversions and the delta box coder of Sparse R-CNN / QueryInst.

Delta coding is mmdetection's ``DeltaXYWHBBoxCoder`` with means 0, stds (0.5, 0.5, 1, 1) and
``clip_border=False`` (Sparse R-CNN config), log-size deltas clamped to |log(16/1000)|.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

# mmdetection delta2bbox: wh_ratio_clip = 16 / 1000
MAX_LOG_RATIO = abs(math.log(16.0 / 1000.0))


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1], dim=-1)


def decode_deltas(boxes: Tensor, deltas: Tensor, stds: tuple[float, ...] = (0.5, 0.5, 1.0, 1.0)) -> Tensor:
    """Apply deltas [..., 4] (dx, dy, dw, dh) to boxes [..., 4] xyxy; no clipping to the image."""
    d = deltas * deltas.new_tensor(stds)
    pxy = (boxes[..., :2] + boxes[..., 2:]) * 0.5
    pwh = boxes[..., 2:] - boxes[..., :2]
    gxy = pxy + pwh * d[..., :2]
    gwh = pwh * d[..., 2:].clamp(min=-MAX_LOG_RATIO, max=MAX_LOG_RATIO).exp()
    return torch.cat([gxy - 0.5 * gwh, gxy + 0.5 * gwh], dim=-1)


def encode_deltas(boxes: Tensor, targets: Tensor, stds: tuple[float, ...] = (0.5, 0.5, 1.0, 1.0)) -> Tensor:
    """Inverse of ``decode_deltas``: the deltas that move ``boxes`` onto ``targets`` (both xyxy)."""
    pxy = (boxes[..., :2] + boxes[..., 2:]) * 0.5
    pwh = boxes[..., 2:] - boxes[..., :2]
    gxy = (targets[..., :2] + targets[..., 2:]) * 0.5
    gwh = targets[..., 2:] - targets[..., :2]
    d = torch.cat([(gxy - pxy) / pwh, torch.log(gwh / pwh)], dim=-1)
    return d / d.new_tensor(stds)
