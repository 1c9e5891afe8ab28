"""The dynamic mask head of one QueryInst stage (paper Sec. 3.2, "Dynamic Mask Head").

DynamicConv(mask) driven by the post-attention query on the 14x14 RoI feature (no projection,
256 x 14 x 14 out) -> 4 x [conv3x3 (no bias), BN, ReLU] -> ConvTranspose 2x2 stride 2 + ReLU ->
1x1 conv -> 28 x 28 logits per class (mmdetection DynamicMaskHead, class_agnostic=False).
"""
from __future__ import annotations

from torch import Tensor, nn

from .dynamic_conv import DynamicConv


class DynamicMaskHead(nn.Module):
    def __init__(self, num_classes: int, dim: int = 256, dynamic_dim: int = 64, pooled_size: int = 14,
                 num_convs: int = 4) -> None:
        super().__init__()
        self.pooled_size = pooled_size
        self.dynamic_conv = DynamicConv(dim, dynamic_dim, dim, pooled_size, with_proj=False)
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True))
            for _ in range(num_convs)
        )
        self.upsample = nn.ConvTranspose2d(dim, dim, 2, stride=2)
        self.mask_logits = nn.Conv2d(dim, num_classes, 1)
        # mmdetection DynamicMaskHead.init_weights: xavier_uniform for weights with dim > 1, logits bias 0.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        nn.init.zeros_(self.mask_logits.bias)

    def forward(self, attn_feats: Tensor, roi_feats: Tensor) -> Tensor:
        """attn_feats: [K, C] post-attention queries; roi_feats: [K, C, 14, 14].

        Returns mask logits [K, num_classes, 28, 28].
        """
        k, c = attn_feats.shape
        x = self.dynamic_conv(attn_feats, roi_feats)  # [K, 196, C]
        x = x.transpose(1, 2).reshape(k, c, self.pooled_size, self.pooled_size)
        for conv in self.convs:
            x = conv(x)
        x = self.upsample(x).relu()
        return self.mask_logits(x)
