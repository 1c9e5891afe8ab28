"""Hungarian matching of queries to ground truth, run independently at every stage.

Cost = 2.0 * focal cost + 5.0 * L1 (xyxy normalised by the image size) + 2.0 * (-GIoU)
(QueryInst paper Sec. 4 / mmdetection HungarianAssigner with FocalLossCost, BBoxL1Cost, IoUCost).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torchvision.ops import generalized_box_iou


def focal_cost(cls_logits: Tensor, labels: Tensor, alpha: float = 0.25, gamma: float = 2.0,
               eps: float = 1e-12) -> Tensor:
    """Focal-loss classification cost [N, M] of predicting each GT label (mmdetection FocalLossCost)."""
    p = cls_logits.sigmoid()
    neg = -(1 - p + eps).log() * (1 - alpha) * p.pow(gamma)
    pos = -(p + eps).log() * alpha * (1 - p).pow(gamma)
    return pos[:, labels] - neg[:, labels]


def match_cost(cls_logits: Tensor, boxes: Tensor, gt_labels: Tensor, gt_boxes: Tensor, whwh: Tensor,
               w_focal: float = 2.0, w_l1: float = 5.0, w_giou: float = 2.0,
               alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Matching cost [N, M]. cls_logits [N, C]; boxes [N, 4] and gt_boxes [M, 4] xyxy pixels;
    whwh [4] the image's (w, h, w, h) used to normalise the L1 term."""
    cost = w_focal * focal_cost(cls_logits, gt_labels, alpha, gamma)
    cost = cost + w_l1 * torch.cdist(boxes / whwh, gt_boxes / whwh, p=1)
    return cost - w_giou * generalized_box_iou(boxes, gt_boxes)


class HungarianMatcher:
    """Optimal one-to-one assignment of N queries to M <= N ground-truth objects (scipy)."""

    def __init__(self, w_focal: float = 2.0, w_l1: float = 5.0, w_giou: float = 2.0,
                 alpha: float = 0.25, gamma: float = 2.0) -> None:
        self.w_focal, self.w_l1, self.w_giou, self.alpha, self.gamma = w_focal, w_l1, w_giou, alpha, gamma

    @torch.no_grad()
    def __call__(self, cls_logits: Tensor, boxes: Tensor, gt_labels: Tensor, gt_boxes: Tensor,
                 whwh: Tensor) -> tuple[Tensor, Tensor]:
        """Returns (query indices [K], GT indices [K]) with K = min(N, M), sorted by query index."""
        device = cls_logits.device
        if gt_labels.numel() == 0:
            empty = torch.empty(0, dtype=torch.long, device=device)
            return empty, empty
        cost = match_cost(cls_logits.float(), boxes.float(), gt_labels, gt_boxes.float(), whwh.float(),
                          self.w_focal, self.w_l1, self.w_giou, self.alpha, self.gamma)
        cost = torch.nan_to_num(cost, nan=1e8, posinf=1e8, neginf=-1e8).cpu().numpy()
        rows, cols = linear_sum_assignment(cost)
        order = np.argsort(rows)
        return (torch.as_tensor(rows[order], dtype=torch.long, device=device),
                torch.as_tensor(cols[order], dtype=torch.long, device=device))
