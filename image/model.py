"""QueryInst (Fang et al., "Instances as Queries", ICCV 2021).

features -> learned proposals -> 6 query stages (each: box head + dynamic mask head) ->
losses on every stage in parallel (training) or last-stage top-k + mask paste (inference).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .config import LossConfig
from .data.collate import pad_and_normalize
from .lazy_level import LazyLevel
from .losses import (at_least_fp32, crop_mask_targets, dice_loss, focal_loss_sum, giou_loss_sum, mask_logits_for_labels,
                     normalizer, one_hot_targets, padded_gt_masks)
from .matcher import HungarianMatcher
from .postprocess import paste_masks, topk_detections
from .proposals import LearnedProposals
from .roi_pooler import boxes_to_rois
from .stage import QueryStage, StageOutput
from .types import ImageBatch, Predictions, Targets


@dataclass
class RawOutputs:
    """Every stage's outputs for one padded batch, before any postprocessing.

    features: [P2..P5] (in eval mode, the ``lazy_levels`` as ``LazyLevel``s); stages: one StageOutput per
    stage (boxes in input-tensor pixels);
    image_sizes: unpadded (h, w) per image; padded_size: (h, w) of the padded batch tensor.
    """

    features: list[Tensor | LazyLevel]
    stages: list[StageOutput]
    image_sizes: list[tuple[int, int]]
    padded_size: tuple[int, int]


class QueryInst(nn.Module):
    """
    Args:
        backbone: module mapping [B, 3, H, W] to the FPN levels P2..P5, with a ``strides`` attribute.
        proposals: the learned proposal boxes and features.
        stages: the query stages, applied in order (6 in the paper).
        num_classes: C.
        loss_cfg: loss and matching weights.
        pixel_mean / pixel_std: RGB normalisation in 0-255 scale; size_divisor: padding multiple.
        max_detections: detections kept per image at inference (0 = number of proposals).
        mask_threshold: binarisation threshold of pasted masks.
        lazy_levels: FPN levels (0 = P2) that inference computes only where RoIs read them; same
            outputs bit for bit, less work (image/lazy_level.py): P2 and P3, whose 3x3 output convs are
            about 30% of a ResNet-50-FPN at 360x640. () computes every level whole.
    """

    def __init__(self, backbone: nn.Module, proposals: LearnedProposals, stages: list[QueryStage],
                 num_classes: int, loss_cfg: LossConfig, pixel_mean: tuple[float, float, float],
                 pixel_std: tuple[float, float, float], size_divisor: int = 32, max_detections: int = 0,
                 mask_threshold: float = 0.5, lazy_levels: tuple[int, ...] = (0, 1)) -> None:
        super().__init__()
        self.backbone = backbone
        self.proposals = proposals
        self.stages = nn.ModuleList(stages)
        self.num_classes = num_classes
        self.loss_cfg = loss_cfg
        self.matcher = HungarianMatcher(loss_cfg.match_focal, loss_cfg.match_l1, loss_cfg.match_giou,
                                        loss_cfg.focal_alpha, loss_cfg.focal_gamma)
        self.pixel_mean, self.pixel_std, self.size_divisor = pixel_mean, pixel_std, size_divisor
        self.max_detections = max_detections or proposals.num_proposals
        self.mask_threshold = mask_threshold
        self.lazy_levels = lazy_levels

    # ------------------------------------------------------------------------------------------
    def preprocess(self, images: list[Tensor] | ImageBatch) -> ImageBatch:
        """A list of [3, H, W] float images in [0, 1] -> a normalised, padded ImageBatch."""
        if isinstance(images, ImageBatch):
            return images
        device = next(self.parameters()).device
        return pad_and_normalize([im.to(device) for im in images], self.pixel_mean, self.pixel_std,
                                 self.size_divisor)

    def run_stages(self, batch: ImageBatch) -> RawOutputs:
        """Backbone and all stages on a normalised, padded batch. In eval mode the levels in
        ``lazy_levels`` stay ``LazyLevel``s in ``RawOutputs.features``: pool them with the stages' ``pool``."""
        lazy = () if self.training else self.lazy_levels
        return self.run_heads(self.backbone(batch.tensors, lazy), batch.image_sizes, tuple(batch.tensors.shape[-2:]))

    def run_heads(self, features: list[Tensor], image_sizes: list[tuple[int, int]],
                  padded_size: tuple[int, int]) -> RawOutputs:
        """All stages on given FPN features.

        Refined boxes are detached between stages (Sparse R-CNN); the learned proposal boxes enter
        the first stage attached, so they learn through the first stage's box decoding, as in
        mmdetection (RoIAlign itself passes no gradient to the boxes)."""
        boxes, queries = self.proposals(image_sizes)
        outputs = []
        for stage in self.stages:
            out = stage(features, boxes, queries)
            outputs.append(out)
            boxes, queries = out.boxes.detach(), out.queries
        return RawOutputs(features, outputs, image_sizes, padded_size)

    def forward(self, images: list[Tensor] | ImageBatch, targets: list[Targets] | None = None,
                orig_sizes: list[tuple[int, int]] | None = None) -> dict[str, Tensor] | list[Predictions]:
        """Training (``targets`` given): dict of weighted losses. Inference: one Predictions per image
        in ``orig_sizes`` coordinates (default: the input images' own sizes)."""
        batch = self.preprocess(images)
        raw = self.run_stages(batch)
        if targets is not None:
            return self.losses(raw, targets)
        return self.postprocess(raw, orig_sizes or batch.image_sizes)

    @torch.no_grad()
    def raw_outputs(self, tensor: Tensor, image_size: tuple[int, int]) -> dict[str, list[Tensor] | Tensor]:
        """Fidelity entry point: an already normalised, padded input [1, 3, H, W] and the unpadded
        (h, w) -> {"cls_logits": [N, C] per stage, "boxes": [N, 4] per stage (input pixels),
        "mask_logits": [N, C, 28, 28] of the last stage at its boxes}. No resizing anywhere.
        Call it in eval mode (the mask head's BatchNorm must use its running statistics)."""
        if self.training:
            raise RuntimeError("raw_outputs() needs model.eval() (BatchNorm statistics of the mask heads)")
        raw = self.run_stages(ImageBatch(tensor, [tuple(image_size)]))
        last = raw.stages[-1]
        masks = self.stages[-1].predict_masks(raw.features, boxes_to_rois(last.boxes.detach()),
                                              last.attn_feats.flatten(0, 1))
        return {"cls_logits": [s.cls_logits[0] for s in raw.stages], "boxes": [s.boxes[0] for s in raw.stages],
                "mask_logits": masks}

    # ------------------------------------------------------------------------------------------
    def losses(self, raw: RawOutputs, targets: list[Targets]) -> dict[str, Tensor]:
        """Hungarian matching and the four losses at every stage (paper Sec. 3.4)."""
        cfg = self.loss_cfg
        device = raw.stages[0].boxes.device
        whwh = [torch.tensor([w, h, w, h], dtype=torch.float32, device=device) for h, w in raw.image_sizes]
        num_pos = normalizer(sum(len(t.labels) for t in targets), device)
        gt_masks: list[Tensor] = []  # each image's GT masks padded like the batch, once for all stages
        losses: dict[str, Tensor] = {}
        for s, (stage, out) in enumerate(zip(self.stages, raw.stages)):
            weight = cfg.stage_weights[s] if s < len(cfg.stage_weights) else 1.0
            boxes = out.boxes.detach()
            matches = self.match(out, targets, raw.image_sizes)
            cls_targets = torch.stack([
                one_hot_targets(out.cls_logits.shape[1], self.num_classes, q, t.labels[g], device)
                for (q, g), t in zip(matches, targets)])
            focal = focal_loss_sum(out.cls_logits.flatten(0, 1), cls_targets.flatten(0, 1),
                                   cfg.focal_alpha, cfg.focal_gamma)
            pred = at_least_fp32(torch.cat([out.boxes[b, q] for b, (q, _) in enumerate(matches)]))
            gt = torch.cat([t.boxes[g] for (_, g), t in zip(matches, targets)]).to(pred.dtype)
            norm = torch.cat([whwh[b].expand(len(q), 4) for b, (q, _) in enumerate(matches)])
            l1 = (pred / norm - gt / norm).abs().sum()
            giou = giou_loss_sum(pred, gt)
            dice = self._mask_loss(stage, raw, out, boxes, matches, targets, gt_masks).sum()
            losses[f"s{s}.loss_cls"] = weight * cfg.focal_weight * focal / num_pos
            losses[f"s{s}.loss_l1"] = weight * cfg.l1_weight * l1 / num_pos
            losses[f"s{s}.loss_giou"] = weight * cfg.giou_weight * giou / num_pos
            losses[f"s{s}.loss_dice"] = weight * cfg.dice_weight * dice / num_pos
        return losses

    def match(self, out: StageOutput, targets: list[Targets],
              image_sizes: list[tuple[int, int]]) -> list[tuple[Tensor, Tensor]]:
        """Per image (query indices, GT indices) of one stage's Hungarian matching (detached inputs)."""
        device = out.boxes.device
        return [self.matcher(out.cls_logits[b].detach(), out.boxes[b].detach(), t.labels, t.boxes,
                             torch.tensor([w, h, w, h], dtype=torch.float32, device=device))
                for b, (t, (h, w)) in enumerate(zip(targets, image_sizes))]

    def _mask_loss(self, stage: QueryStage, raw: RawOutputs, out: StageOutput, boxes: Tensor,
                   matches: list[tuple[Tensor, Tensor]], targets: list[Targets], gt_masks: list[Tensor]) -> Tensor:
        """Dice loss [K] of the matched queries: their GT-class logits vs the GT masks cropped by the
        detached predicted boxes (mmdetection DynamicMaskHead.loss_and_target). ``gt_masks``: the
        images' padded masks (``padded_gt_masks``), filled by the first stage that needs them."""
        rois = torch.cat([torch.cat([boxes.new_full((len(q), 1), b), boxes[b, q]], 1)
                          for b, (q, _) in enumerate(matches)])
        if rois.numel() == 0:
            # No positives: a zero loss still connected to the mask head and the features, so that
            # every parameter gets a zero gradient as in mmdetection (which runs the head on no RoIs
            # and adds each level's ``sum() * 0``), without running BatchNorm on an empty batch.
            zero = sum(p.sum() for p in stage.mask_head.parameters())
            zero = zero + sum(f.sum() for f in raw.features if isinstance(f, Tensor))
            return (out.attn_feats.sum() + zero).reshape(1) * 0.0
        attn = torch.cat([out.attn_feats[b, q] for b, (q, _) in enumerate(matches)])
        labels = torch.cat([t.labels[g] for (_, g), t in zip(matches, targets)])
        logits = mask_logits_for_labels(stage.predict_masks(raw.features, rois, attn), labels)
        size = logits.shape[-1]
        dtype = at_least_fp32(boxes).dtype
        if not gt_masks:
            gt_masks += [padded_gt_masks(t.masks, dtype, raw.padded_size) for t in targets]
        tgt = torch.cat([crop_mask_targets(m, at_least_fp32(boxes[b, q]), g, size)
                         for b, ((q, g), m) in enumerate(zip(matches, gt_masks))])
        return dice_loss(at_least_fp32(logits).sigmoid(), tgt, self.loss_cfg.dice_eps)

    # ------------------------------------------------------------------------------------------
    def postprocess(self, raw: RawOutputs, orig_sizes: list[tuple[int, int]],
                    with_masks: bool = True) -> list[Predictions]:
        """Last stage only: top-k (query, class) pairs, boxes rescaled to ``orig_sizes``, masks pasted."""
        last = raw.stages[-1]
        results = []
        for b, ((h, w), (oh, ow)) in enumerate(zip(raw.image_sizes, orig_sizes)):
            scores, labels, queries = topk_detections(last.cls_logits[b], self.max_detections)
            boxes = last.boxes[b, queries]
            scale = boxes.new_tensor([ow / w, oh / h, ow / w, oh / h])
            masks = None
            if with_masks:
                uniq, inverse = torch.unique(queries, return_inverse=True)
                rois = torch.cat([boxes.new_full((len(uniq), 1), b), last.boxes[b, uniq]], 1)
                logits = self.stages[-1].predict_masks(raw.features, rois, last.attn_feats[b, uniq])
                probs = logits[inverse, labels].sigmoid()
                masks = paste_masks(probs, boxes * scale, oh, ow, self.mask_threshold)
            results.append(Predictions(boxes * scale, scores, labels, masks, queries))
        return results
