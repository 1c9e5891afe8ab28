"""Learned proposals (Sparse R-CNN Sec. 3.2, QueryInst Sec. 3.1): N boxes and N query features.

Boxes are stored as normalised (cx, cy, w, h), initialised to the whole image (0.5, 0.5, 1, 1)
(mmdetection EmbeddingRPNHead), and scaled by each image's unpadded size. Features keep
``nn.Embedding``'s default N(0, 1) init, as mmdetection.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .box_ops import cxcywh_to_xyxy


class LearnedProposals(nn.Module):
    def __init__(self, num_proposals: int = 100, dim: int = 256) -> None:
        super().__init__()
        self.num_proposals = num_proposals
        self.boxes = nn.Embedding(num_proposals, 4)
        self.features = nn.Embedding(num_proposals, dim)
        nn.init.constant_(self.boxes.weight[:, :2], 0.5)
        nn.init.constant_(self.boxes.weight[:, 2:], 1.0)

    def forward(self, image_sizes: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
        """image_sizes: per image unpadded (h, w).

        Returns boxes [B, N, 4] xyxy pixels and query features [B, N, dim].
        """
        whwh = self.boxes.weight.new_tensor([[w, h, w, h] for h, w in image_sizes])  # [B, 4]
        boxes = cxcywh_to_xyxy(self.boxes.weight)[None] * whwh[:, None, :]
        feats = self.features.weight[None].expand(len(image_sizes), -1, -1)
        return boxes, feats
