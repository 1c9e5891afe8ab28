"""Config -> objects for the still-image QueryInst. The only place that reads ``ModelConfig``."""
from __future__ import annotations

from .backbone import build_backbone
from .box_head import BoxHead
from .config import Config
from .mask_head import DynamicMaskHead
from .model import QueryInst
from .proposals import LearnedProposals
from .stage import QueryStage


def build_queryinst(cfg: Config) -> QueryInst:
    m = cfg.model
    backbone = build_backbone(m.backbone, m.frozen_stages, m.pretrained, m.fpn_channels, m.norm_eval)
    proposals = LearnedProposals(m.num_proposals, m.hidden_dim)
    stages = [
        QueryStage(
            BoxHead(m.num_classes, m.hidden_dim, m.num_heads, m.dynamic_dim, m.feedforward_dim, m.box_pool_size,
                    m.num_cls_fcs, m.num_reg_fcs, m.dropout, m.prior_prob),
            DynamicMaskHead(m.num_classes, m.hidden_dim, m.dynamic_dim, m.mask_pool_size, m.num_mask_convs),
            backbone.strides, m.box_pool_size, m.mask_pool_size, m.sampling_ratio, m.finest_scale, m.bbox_stds,
        )
        for _ in range(m.num_stages)
    ]
    return QueryInst(backbone, proposals, stages, m.num_classes, cfg.loss, cfg.data.pixel_mean, cfg.data.pixel_std,
                     cfg.data.size_divisor, m.max_detections, m.mask_threshold)
