"""QueryInst-VIS (QueryInst paper Sec. 3.5): the image QueryInst with 10 queries plus MaskTrack R-CNN's
track head, trained on (key frame, reference frame) pairs and run online, frame by frame.

Choices the paper leaves open, made here (document them in docs/ too):
- Key embeddings come from the queries Hungarian-matched to GT at the LAST stage, pooled (7x7 RoIAlign,
  the detector's own pooler) at their detached last-stage boxes; reference embeddings from RoIs at the
  reference frame's GT boxes (as MaskTrack R-CNN uses reference GT boxes).
- The reference frame goes through the backbone + FPN only (no query stages): it needs features for
  the reference RoIs and nothing else.
- Inference keeps ONE detection per query: its highest-scoring class (a query stands for one object;
  letting one query emit several (class, score) pairs would start duplicate tracks of one object).
  Then the top ``max_per_frame`` queries by that score, minus those below ``score_threshold``.
- The association embedding of a detection has one of four sources (``EMBEDDINGS``,
  docs/design.md#association-embeddings): the track head ("track_head", MaskTrack R-CNN), the last
  stage's output query ("queries") or its post-attention feature ("attention"), both L2-normalised and
  scaled so that the tracker's dot product is ``embedding_scale`` x their cosine (MinVIS, Huang et al.,
  NeurIPS 2022: the per-query features of an image-trained query-based segmenter associate instances
  across frames without video training), or "none" (zeros: score, IoU and label decide alone).
  Without a track head (an image QueryInst checkpoint, ``track_head=None``) the query sources remain.
"""
from __future__ import annotations

from dataclasses import dataclass

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...image.model import QueryInst
from ...image.postprocess import paste_masks
from ...image.types import ImageBatch, Targets
from ...tracking.types import Detections
from ..config import EMBEDDINGS
from .losses import track_loss, track_targets
from .track_head import TrackHead


@dataclass
class FrameDetections:
    """One frame's detections in original-frame coordinates, ready for the tracker.

    boxes [K, 4] xyxy; scores [K]; labels [K] contiguous class indices; masks [K, H, W] bool;
    embeddings [K, D]; query_indices [K].
    """

    boxes: Tensor
    scores: Tensor
    labels: Tensor
    masks: Tensor
    embeddings: Tensor
    query_indices: Tensor

    def to_tracker(self) -> Detections:
        """numpy ``tracking.Detections`` (masks carried along as a [K, H, W] bool array)."""
        return Detections(boxes=self.boxes.float().cpu().numpy(), scores=self.scores.float().cpu().numpy(),
                          labels=self.labels.cpu().numpy(), embeddings=self.embeddings.float().cpu().numpy(),
                          masks=list(self.masks.cpu().numpy()))


class QueryInstVIS(nn.Module):
    """
    Args:
        detector: the image QueryInst (10 proposals, the video label set).
        track_head: maps 7x7 RoI features to association embeddings; None for an image QueryInst
            checkpoint used for tracking (no training then: ``forward`` needs the track head).
        track_loss_weight: weight of the track loss (MaskTrack R-CNN: 1.0).
        max_per_frame / score_threshold / mask_threshold: inference settings (vis/config.py).
        embedding: source of the association embedding at inference, one of ``EMBEDDINGS``.
        embedding_scale: the tracker's dot product of two query embeddings is this times their cosine.
    """

    def __init__(self, detector: QueryInst, track_head: TrackHead | None, track_loss_weight: float = 1.0,
                 max_per_frame: int = 10, score_threshold: float = 0.05, mask_threshold: float = 0.5,
                 embedding: str = "track_head", embedding_scale: float = 10.0) -> None:
        super().__init__()
        self.detector = detector
        self.track_head = track_head
        self.track_loss_weight = track_loss_weight
        self.max_per_frame, self.score_threshold, self.mask_threshold = max_per_frame, score_threshold, mask_threshold
        self.set_embedding(embedding, embedding_scale)

    def set_embedding(self, source: str, scale: float = 10.0) -> None:
        """Choose the association embedding's source (``EMBEDDINGS``) and the cosine scale of query sources."""
        if source not in EMBEDDINGS:
            raise ValueError(f"embedding source must be one of {EMBEDDINGS}, got {source!r}")
        if source == "track_head" and self.track_head is None:
            raise ValueError("embedding 'track_head': this model has no track head (an image QueryInst "
                             "checkpoint); use 'queries', 'attention' or 'none'")
        if not scale > 0:
            raise ValueError(f"embedding scale must be > 0, got {scale}")
        self.embedding, self.embedding_scale = source, float(scale)

    def frame_embeddings(self, queries: Tensor, attn_feats: Tensor, box_feats: Callable[[], Tensor]) -> Tensor:
        """Association embeddings [K, D] of K detections from their last-stage output queries [K, D],
        post-attention features [K, D] and, called only for the track head, their 7x7 RoI features."""
        if self.embedding == "track_head":
            return self.track_head(box_feats())
        if self.embedding == "none":
            return queries.new_zeros((queries.shape[0], 1))
        feats = queries if self.embedding == "queries" else attn_feats
        return F.normalize(feats, dim=-1) * math.sqrt(self.embedding_scale)

    @property
    def device(self) -> torch.device:
        """Where the parameters are, hence where ``detect`` wants its images (``vis.inference.FrameDetector``)."""
        return next(self.parameters()).device

    def embed(self, features: list[Tensor], rois: Tensor) -> Tensor:
        """rois [K, 5] (batch index, xyxy) -> embeddings [K, D] from 7x7 RoIAlign on the pyramid."""
        stage = self.detector.stages[-1]
        return self.track_head(stage.pool(features, rois, stage.box_pool_size))

    def forward(self, key_images: list[Tensor], key_targets: list[Targets], ref_images: list[Tensor],
                ref_targets: list[Targets]) -> dict[str, Tensor]:
        """Training on B pairs: key/ref images [3, H, W] in [0, 1] (same size per pair), targets with
        ``instance_ids``. Returns the detector's weighted losses on the key frames + ``loss_track``."""
        if self.track_head is None:
            raise ValueError("training QueryInst-VIS needs a track head (this model was built without one)")
        b = len(key_images)
        batch = self.detector.preprocess(list(key_images) + list(ref_images))
        features = self.detector.backbone(batch.tensors)
        key_feats = [f[:b] for f in features]
        ref_feats = [f[b:] for f in features]
        raw = self.detector.run_heads(key_feats, batch.image_sizes[:b], tuple(batch.tensors.shape[-2:]))
        losses = self.detector.losses(raw, key_targets)

        last = raw.stages[-1]
        matches = self.detector.match(last, key_targets, raw.image_sizes)
        boxes = last.boxes.detach()
        key_rois = torch.cat([torch.cat([boxes.new_full((len(q), 1), i), boxes[i, q]], 1)
                              for i, (q, _) in enumerate(matches)])
        ref_rois = torch.cat([torch.cat([t.boxes.new_full((len(t.boxes), 1), i), t.boxes], 1)
                              for i, t in enumerate(ref_targets)])
        key_emb = self.embed(key_feats, key_rois).split([len(q) for q, _ in matches])
        ref_emb = self.embed(ref_feats, ref_rois.to(boxes.dtype)).split([len(t.boxes) for t in ref_targets])
        tgts = [track_targets(kt.instance_ids[g], rt.instance_ids)
                for (_, g), kt, rt in zip(matches, key_targets, ref_targets)]
        losses["loss_track"] = self.track_loss_weight * track_loss(list(key_emb), list(ref_emb), tgts)
        return losses

    @torch.no_grad()
    def detect(self, images: list[Tensor] | ImageBatch, orig_sizes: list[tuple[int, int]] | None = None,
               with_masks: bool = True) -> list[FrameDetections]:
        """Per-frame detection for tracking: one detection per query (its best class), top
        ``max_per_frame`` above ``score_threshold``, boxes/masks in ``orig_sizes`` coordinates.
        The mask head and track head run on the kept queries only."""
        batch = self.detector.preprocess(images)
        raw = self.detector.run_stages(batch)
        last = raw.stages[-1]
        orig_sizes = orig_sizes or batch.image_sizes
        out = []
        for i, ((h, w), (oh, ow)) in enumerate(zip(raw.image_sizes, orig_sizes)):
            scores, labels, queries = select_detections(last.cls_logits[i], self.max_per_frame, self.score_threshold)
            boxes = last.boxes[i, queries]
            rois = torch.cat([boxes.new_full((len(queries), 1), i), boxes], 1)
            stage = self.detector.stages[-1]
            emb = self.frame_embeddings(last.queries[i, queries], last.attn_feats[i, queries],
                                        lambda: stage.pool(raw.features, rois, stage.box_pool_size))
            scale = boxes.new_tensor([ow / w, oh / h, ow / w, oh / h])
            if with_masks and len(queries):
                logits = self.detector.stages[-1].predict_masks(raw.features, rois, last.attn_feats[i, queries])
                masks = paste_label_masks(logits, labels, boxes * scale, oh, ow, self.mask_threshold)
            else:
                masks = torch.zeros((len(queries), oh, ow), dtype=torch.bool, device=boxes.device)
            out.append(FrameDetections(boxes * scale, scores, labels, masks, emb, queries))
        return out


def select_detections(cls_logits: Tensor, max_per_frame: int, score_threshold: float) -> tuple[Tensor, Tensor, Tensor]:
    """One frame's last-stage logits [N, C] -> (scores [K], labels [K], query indices [K]), best first:
    each query's best class (sigmoid), the top ``max_per_frame`` queries by it, minus those below
    ``score_threshold``. Shared by ``QueryInstVIS.detect`` and the ONNX Runtime model (vis/modeling/export.py)."""
    scores, labels = cls_logits.sigmoid().max(dim=1)
    scores, queries = scores.topk(min(max_per_frame, len(scores)))
    keep = scores >= score_threshold
    scores, queries = scores[keep], queries[keep]
    return scores, labels[queries], queries


def paste_label_masks(mask_logits: Tensor, labels: Tensor, boxes: Tensor, height: int, width: int,
                      threshold: float) -> Tensor:
    """mask_logits [K, C, M, M], labels [K], boxes [K, 4] xyxy in the output frame -> [K, height, width]
    bool: each detection's own class channel, sigmoid, pasted into its box (``paste_masks``)."""
    probs = mask_logits[torch.arange(len(labels), device=labels.device), labels].sigmoid()
    return paste_masks(probs, boxes, height, width, threshold)

