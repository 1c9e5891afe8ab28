"""DynamicConv: the instance interaction of Sparse R-CNN (Sun et al. 2021, Sec. 3.3), used by QueryInst.

A query generates the weights of two 1x1 "convolutions" that it applies to its own RoI feature:
RoI [S, C] @ W_in [C, D] -> LN -> ReLU -> @ W_out [D, C_out] -> LN -> ReLU, then optionally
flatten(S*C_out) -> Linear -> LN -> ReLU (the box head projects back to one vector per query; the
mask head keeps the S x C_out map). D = 64 (mmdetection dynamic_conv_cfg feat_channels).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class DynamicConv(nn.Module):
    """
    Args:
        in_channels: query and RoI channels C (256).
        feat_channels: D, the hidden width of the generated kernels (64).
        out_channels: C_out of the second kernel (256).
        pooled_size: RoI side S (7 for boxes, 14 for masks).
        with_proj: flatten and project to ``out_channels`` (box head) or not (mask head).
    """

    def __init__(self, in_channels: int = 256, feat_channels: int = 64, out_channels: int = 256,
                 pooled_size: int = 7, with_proj: bool = True) -> None:
        super().__init__()
        self.in_channels, self.feat_channels, self.out_channels = in_channels, feat_channels, out_channels
        self.num_params_in = in_channels * feat_channels
        self.num_params_out = feat_channels * out_channels
        self.param_generator = nn.Linear(in_channels, self.num_params_in + self.num_params_out)
        self.norm_in = nn.LayerNorm(feat_channels)
        self.norm_out = nn.LayerNorm(out_channels)
        self.activation = nn.ReLU(inplace=True)
        self.with_proj = with_proj
        if with_proj:
            self.out_proj = nn.Linear(out_channels * pooled_size * pooled_size, out_channels)
            self.out_norm = nn.LayerNorm(out_channels)

    def forward(self, queries: Tensor, roi_feats: Tensor) -> Tensor:
        """queries: [K, C]; roi_feats: [K, C, S, S].

        Returns [K, C_out] with the projection, else [K, S*S, C_out] (row-major spatial order).
        """
        x = roi_feats.flatten(2).transpose(1, 2)  # [K, S*S, C]
        # split, not two slices: the backward of a slice zero-fills the whole [K, params] gradient and
        # copies its part in (twice, then adds); split's backward concatenates the two parts once
        w_in, w_out = self.param_generator(queries).split([self.num_params_in, self.num_params_out], dim=1)
        w_in = w_in.view(-1, self.in_channels, self.feat_channels)
        w_out = w_out.view(-1, self.feat_channels, self.out_channels)
        x = self.activation(self.norm_in(torch.bmm(x, w_in)))
        x = self.activation(self.norm_out(torch.bmm(x, w_out)))
        if self.with_proj:
            x = self.activation(self.out_norm(self.out_proj(x.flatten(1))))
        return x
