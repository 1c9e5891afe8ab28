"""One QueryInst stage: RoI pooling at the current boxes, the box head, delta refinement, and the
stage's dynamic mask head (paper Sec. 3.2, Fig. 2). Stages share no weights."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from .box_head import BoxHead
from .box_ops import decode_deltas
from .mask_head import DynamicMaskHead
from .roi_pooler import boxes_to_rois, multilevel_roi_align


@dataclass
class StageOutput:
    """cls_logits [B, N, C]; boxes [B, N, 4] refined xyxy (not detached, for the box losses);
    queries [B, N, D] passed to the next stage; attn_feats [B, N, D] post-attention queries (mask head)."""

    cls_logits: Tensor
    boxes: Tensor
    queries: Tensor
    attn_feats: Tensor


class QueryStage(nn.Module):
    def __init__(self, box_head: BoxHead, mask_head: DynamicMaskHead, strides: tuple[int, ...],
                 box_pool_size: int = 7, mask_pool_size: int = 14, sampling_ratio: int = 2,
                 finest_scale: int = 56, bbox_stds: tuple[float, ...] = (0.5, 0.5, 1.0, 1.0)) -> None:
        super().__init__()
        self.box_head = box_head
        self.mask_head = mask_head
        self.strides = strides
        self.box_pool_size, self.mask_pool_size = box_pool_size, mask_pool_size
        self.sampling_ratio, self.finest_scale, self.bbox_stds = sampling_ratio, finest_scale, bbox_stds

    def pool(self, features: list[Tensor], rois: Tensor, size: int) -> Tensor:
        return multilevel_roi_align(features, rois, size, self.strides, self.sampling_ratio, self.finest_scale)

    def forward(self, features: list[Tensor], boxes: Tensor, queries: Tensor) -> StageOutput:
        """features: [P2..P5]; boxes: [B, N, 4] xyxy; queries: [B, N, D]."""
        roi_feats = self.pool(features, boxes_to_rois(boxes), self.box_pool_size)
        cls_logits, deltas, queries, attn_feats = self.box_head(queries, roi_feats)
        new_boxes = decode_deltas(boxes, deltas, self.bbox_stds)
        return StageOutput(cls_logits, new_boxes, queries, attn_feats)

    def predict_masks(self, features: list[Tensor], rois: Tensor, attn_feats: Tensor) -> Tensor:
        """rois: [K, 5] (batch index + xyxy, detached boxes); attn_feats: [K, D] -> logits [K, C, 28, 28]."""
        return self.mask_head(attn_feats, self.pool(features, rois, self.mask_pool_size))
