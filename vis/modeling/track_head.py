"""MaskTrack R-CNN's track head (Yang et al., ICCV 2019, Sec. 3.2), as added by QueryInst-VIS (Sec. 3.5).

7 x 7 x 256 RoI feature at a box -> flatten -> FC 1024 -> ReLU -> FC 1024 = the association embedding
(no ReLU after the last FC, as the original ``TrackHead``).
"""
from __future__ import annotations

from torch import Tensor, nn


class TrackHead(nn.Module):
    def __init__(self, in_channels: int = 256, pooled_size: int = 7, dim: int = 1024, num_fcs: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels * pooled_size * pooled_size
        for i in range(num_fcs):
            layers.append(nn.Linear(width, dim))
            width = dim
            if i < num_fcs - 1:
                layers.append(nn.ReLU(inplace=True))
        self.fcs = nn.Sequential(*layers)
        # MaskTrack R-CNN TrackHead.init_weights: normal(0, 0.01) weights, zero bias
        for m in self.fcs:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, roi_feats: Tensor) -> Tensor:
        """roi_feats: [K, C, 7, 7] -> embeddings [K, dim]."""
        return self.fcs(roi_feats.flatten(1))
