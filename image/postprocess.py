"""Inference postprocessing: top-k over N x C sigmoid scores, boxes to the original image, mask paste.

QueryInst inference (paper Sec. 3.3; mmdetection SparseRoIHead.predict): only the last stage is used,
no NMS and no score threshold; k = max_per_img = N for COCO. Masks are the 28x28 logits of the
selected class, pasted bilinearly into the box at the original resolution and thresholded at 0.5.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def topk_detections(cls_logits: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """cls_logits [N, C] -> (scores [k], labels [k], query indices [k]), highest score first."""
    n, c = cls_logits.shape
    scores, idx = cls_logits.sigmoid().flatten().topk(min(k, n * c), sorted=True)
    return scores, idx % c, idx // c


def paste_masks(mask_probs: Tensor, boxes: Tensor, height: int, width: int, threshold: float = 0.5) -> Tensor:
    """Paste [K, h, w] mask probabilities into their boxes [K, 4] (xyxy, image pixels).

    Each output pixel centre (x + 0.5, y + 0.5) samples the mask bilinearly at its position relative
    to the box (grid_sample, align_corners=False), as mmdetection's _do_paste_mask and detectron2's
    paste_masks_in_image. Only the pixels inside each box (clipped to the image) are computed, so
    memory stays K boxes, not K full images of floats. Degenerate boxes (zero or negative size, far
    outside the image, NaN) give empty masks instead of errors. The loop over boxes stays: one batched
    grid_sample over the union of the boxes gives the same masks but was 6x (360x640) to 23x (1080p)
    slower for 10 boxes spread over the frame (docs/benchmarks.md).

    Returns [K, height, width] bool.
    """
    k = mask_probs.shape[0]
    out = torch.zeros((k, height, width), dtype=torch.bool, device=mask_probs.device)
    if k == 0:
        return out
    valid = torch.isfinite(boxes).all(dim=1).tolist()
    boxes = torch.nan_to_num(boxes.float(), nan=0.0, posinf=0.0, neginf=0.0)
    x0 = boxes[:, 0].floor().clamp(0, width).long().tolist()
    y0 = boxes[:, 1].floor().clamp(0, height).long().tolist()
    x1 = boxes[:, 2].ceil().clamp(0, width).long().tolist()
    y1 = boxes[:, 3].ceil().clamp(0, height).long().tolist()
    for i in range(k):
        bw = float(boxes[i, 2] - boxes[i, 0])
        bh = float(boxes[i, 3] - boxes[i, 1])
        if not valid[i] or x1[i] <= x0[i] or y1[i] <= y0[i] or bw <= 0 or bh <= 0:
            continue
        xs = (torch.arange(x0[i], x1[i], device=boxes.device, dtype=torch.float32) + 0.5 - boxes[i, 0]) / bw * 2 - 1
        ys = (torch.arange(y0[i], y1[i], device=boxes.device, dtype=torch.float32) + 0.5 - boxes[i, 1]) / bh * 2 - 1
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]  # [1, h, w, 2] (x, y)
        sampled = F.grid_sample(mask_probs[i][None, None].float(), grid, mode="bilinear", align_corners=False)
        out[i, y0[i]:y1[i], x0[i]:x1[i]] = sampled[0, 0] >= threshold
    return out
