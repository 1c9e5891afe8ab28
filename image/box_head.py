"""The box head of one QueryInst stage (Sparse R-CNN's "DIIHead"; QueryInst paper Sec. 3.2).

q <- LN(q + MSA(q)) over the N queries of an image   (this post-attention q feeds the mask head)
q <- LN(q + DynamicConv(q, RoI 7x7))
q <- LN(q + FFN(q))
class logits = Linear(ReLU(LN(Linear(q))) x 1);  box deltas = Linear(ReLU(LN(Linear(q))) x 3)
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .dynamic_conv import DynamicConv


def _fc_tower(dim: int, depth: int) -> nn.Sequential:
    """``depth`` x [Linear(no bias), LayerNorm, ReLU] (mmdetection cls_fcs / reg_fcs)."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(dim, dim, bias=False), nn.LayerNorm(dim), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class BoxHead(nn.Module):
    """
    Args:
        num_classes: C (sigmoid classification, no background logit).
        dim: query width (256). num_heads: attention heads (8). dynamic_dim: DynamicConv D (64).
        feedforward_dim: FFN hidden width (2048). pooled_size: RoI side (7).
        num_cls_fcs / num_reg_fcs: tower depths (1 / 3). prior_prob: focal bias init (0.01).
    """

    def __init__(self, num_classes: int, dim: int = 256, num_heads: int = 8, dynamic_dim: int = 64,
                 feedforward_dim: int = 2048, pooled_size: int = 7, num_cls_fcs: int = 1,
                 num_reg_fcs: int = 3, dropout: float = 0.0, prior_prob: float = 0.01) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.attn_norm = nn.LayerNorm(dim)
        self.dynamic_conv = DynamicConv(dim, dynamic_dim, dim, pooled_size, with_proj=True)
        self.dynamic_norm = nn.LayerNorm(dim)
        self.ffn_in = nn.Linear(dim, feedforward_dim)
        self.ffn_out = nn.Linear(feedforward_dim, dim)
        self.ffn_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.cls_tower = _fc_tower(dim, num_cls_fcs)
        self.reg_tower = _fc_tower(dim, num_reg_fcs)
        self.cls_logits = nn.Linear(dim, num_classes)
        self.box_deltas = nn.Linear(dim, 4)
        self._init_weights(prior_prob)

    def _init_weights(self, prior_prob: float) -> None:
        # Sparse R-CNN DIIHead.init_weights: xavier_uniform for every weight with dim > 1, then the
        # focal-loss prior on the classifier bias (Lin et al. 2017, Sec. 4.1); reg output bias 0.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_prob) / prior_prob))
        nn.init.zeros_(self.box_deltas.bias)

    def forward(self, queries: Tensor, roi_feats: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """queries: [B, N, C]; roi_feats: [B*N, C, S, S] (query order).

        Returns cls_logits [B, N, num_classes], deltas [B, N, 4], new queries [B, N, C] and the
        post-attention queries [B, N, C] that the stage's mask head reads.
        """
        b, n, c = queries.shape
        attn = self.self_attn(queries, queries, queries, need_weights=False)[0]
        attn_feats = self.attn_norm(queries + self.dropout(attn))
        q = attn_feats.reshape(b * n, c)
        q = self.dynamic_norm(q + self.dropout(self.dynamic_conv(q, roi_feats)))
        q = self.ffn_norm(q + self.dropout(self.ffn_out(self.dropout(torch.relu(self.ffn_in(q))))))
        cls_logits = self.cls_logits(self.cls_tower(q)).view(b, n, self.num_classes)
        deltas = self.box_deltas(self.reg_tower(q)).view(b, n, 4)
        return cls_logits, deltas, q.view(b, n, c), attn_feats
