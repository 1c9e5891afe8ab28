"""The MaskTrack half of QueryInst-VIS against mmdetection 3.3's MaskTrack R-CNN: the track head and
the track loss (mmdet/models/tracking_heads/roi_embed_head.py, roi_track_head.py).

Skipped unless mmdetection is installed; run it in the separate environment described in
tests/image/test_mmdet_reference.py (``python tests/vis/modeling/test_mmdet_track_head_reference.py`` prints
the figures).

Same RoI features and weights on both sides, float64. What is equal and what differs on purpose:
- Embeddings: equal before the last ReLU. mmdetection's ``RoIEmbedHead`` applies a ReLU after every
  FC, the last one too; the 2019 MaskTrack R-CNN ``TrackHead`` (the head the QueryInst paper adds,
  Sec. 3.5) and ours leave the last FC linear, so dot products of embeddings can be negative and the
  fixed 0 logit of "new" can win. Ours with a ReLU applied equals mmdetection's output.
- RoI features: mmdetection's MaskTrack config pools the track features with its own extractor
  (RoIAlign sampling_ratio=0); the 2019 code and ours pool them like the box head (sampling_ratio=2).
  The test starts from the same RoI features, so this is not compared.
- Loss: the targets (1 + index of the same instance in the reference frame, 0 when absent) and each
  key instance's cross-entropy over [0, e.r_1, ..., e.r_M] are equal. The reduction differs: ours
  divides each image's sum by its number of key instances (2019 code); mmdetection by the number of
  those also present in the reference frame. Both then average over the images. Both reductions are
  checked as stated on a pair with a key instance absent from the reference frame.
"""
from __future__ import annotations

import sys
import types

import pytest
import torch
import torch.nn.functional as F

mmdet = pytest.importorskip("mmdet")
if __name__ == "__main__":  # run as a script: tests/ (the support helpers) is not on the path yet
    sys.path.insert(0, __file__.rsplit("/", 3)[0])

from queryinst.vis.modeling.losses import match_logits, track_loss, track_targets  # noqa: E402
from queryinst.vis.modeling.track_head import TrackHead  # noqa: E402
from support.mmdet_ref import relative_max_diff, stub_missing_mmcv_ext  # noqa: E402

TOLERANCE = 1e-12  # float64 on both sides: the same matrix products
# mmdetection's weight_reduce_loss divides by avg_factor + float32 eps (1.2e-7): 6e-8 relative here
REDUCTION_TOLERANCE = 1e-6


def build_heads(seed: int = 0):
    """mmdetection's RoIEmbedHead as its MaskTrack R-CNN config builds it, and ours with its weights."""
    stub_missing_mmcv_ext()
    from mmdet.models.tracking_heads import RoIEmbedHead

    torch.manual_seed(seed)
    theirs = RoIEmbedHead(num_fcs=2, roi_feat_size=7, in_channels=256, fc_out_channels=1024).double()
    ours = TrackHead(in_channels=256, pooled_size=7, dim=1024, num_fcs=2).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for fc in theirs.fcs:  # random, not the init: biases nonzero, weights large enough to matter
            fc.weight.copy_(torch.randn(fc.weight.shape, generator=g, dtype=torch.float64) * 0.02)
            fc.bias.copy_(torch.randn(fc.bias.shape, generator=g, dtype=torch.float64) * 0.1)
        ours.fcs[0].weight.copy_(theirs.fcs[0].weight)
        ours.fcs[0].bias.copy_(theirs.fcs[0].bias)
        ours.fcs[2].weight.copy_(theirs.fcs[1].weight)
        ours.fcs[2].bias.copy_(theirs.fcs[1].bias)
    return theirs.eval(), ours.eval()


def sampling_result(assigned_gt: list[int]):
    """The parts of mmdetection's SamplingResult that ``RoIEmbedHead.get_targets`` reads: positives
    first (their GT indices), then two negatives."""
    n = len(assigned_gt)
    return types.SimpleNamespace(pos_assigned_gt_inds=torch.tensor(assigned_gt), bboxes=torch.zeros(n + 2, 4),
                                 pos_bboxes=torch.zeros(n, 4))


# Two key/reference pairs. Pair 0: key GT instance ids [11, 12, 13, 14], reference [14, 11, 15]: the
# queries matched to key GTs 0, 1, 3 are scored; instance 12 (GT 1) is absent from the reference.
# Pair 1: key [21, 22], reference [22, 21]: both present.
PAIRS = [
    {"key_ids": [11, 12, 13, 14], "ref_ids": [14, 11, 15], "matched_gt": [3, 0, 1]},
    {"key_ids": [21, 22], "ref_ids": [22, 21], "matched_gt": [0, 1]},
]


def compare() -> dict[str, float]:
    theirs, ours = build_heads()
    g = torch.Generator().manual_seed(1)
    report: dict[str, float] = {}
    # mmdetection embeds every sampled key box (its positives first, then negatives of weight 0)
    key_feats = [torch.randn(len(p["matched_gt"]) + 2, 256, 7, 7, generator=g, dtype=torch.float64) for p in PAIRS]
    ref_feats = [torch.randn(len(p["ref_ids"]), 256, 7, 7, generator=g, dtype=torch.float64) for p in PAIRS]

    # --- embeddings: same RoI features -> ours, and mmdetection's before / after its last ReLU
    pre_relu = []
    hook = theirs.fcs[-1].register_forward_hook(lambda m, i, o: pre_relu.append(o.clone()))  # its ReLU is in place
    with torch.no_grad():
        x_split, ref_split = theirs(torch.cat(key_feats), torch.cat(ref_feats),
                                    [len(k) for k in key_feats], [len(r) for r in ref_feats])
        ours_key = [ours(k) for k in key_feats]
        ours_ref = [ours(r) for r in ref_feats]
    hook.remove()
    theirs_key_pre = pre_relu[0].split([len(k) for k in key_feats])
    report["embed.pre_relu_max_abs"] = max(float((a - b).abs().max()) for a, b in zip(ours_key, theirs_key_pre))
    report["embed.with_relu_max_abs"] = max(
        float((a.relu() - b).abs().max()) for a, b in zip(ours_key + ours_ref, list(x_split) + list(ref_split)))
    report["embed.scale"] = max(float(b.abs().max()) for b in x_split)
    report["embed.negative_fraction"] = float(torch.cat(ours_key).lt(0).double().mean())

    # --- targets and per-instance terms on mmdetection's own embeddings (post-ReLU, its head's output);
    # ours sees the positives only (QueryInst-VIS embeds the matched queries' boxes)
    pos = [x[: len(p["matched_gt"])] for x, p in zip(x_split, PAIRS)]
    results = [sampling_result(p["matched_gt"]) for p in PAIRS]
    key_ids = [torch.tensor(p["key_ids"]) for p in PAIRS]
    ref_ids = [torch.tensor(p["ref_ids"]) for p in PAIRS]
    mm_targets, mm_weights = theirs.get_targets(results, key_ids, ref_ids)
    our_targets = [track_targets(k[torch.tensor(p["matched_gt"])], r) for k, r, p in zip(key_ids, ref_ids, PAIRS)]
    report["target.differ"] = float(sum(
        (a[: len(b)] != b).sum() + (w[: len(b)] != 1).sum() + (w[len(b):] != 0).sum()
        for a, b, w in zip(mm_targets, our_targets, mm_weights)))
    report["target.absent_instances"] = float(sum((t == 0).sum() for t in our_targets))
    per_instance = []
    for b in range(len(PAIRS)):
        n = len(our_targets[b])
        mm_terms = theirs.loss_by_feat(x_split[b: b + 1], ref_split[b: b + 1], results[b: b + 1],
                                       key_ids[b: b + 1], ref_ids[b: b + 1], reduction_override="none")["loss_match"]
        ours_terms = F.cross_entropy(match_logits(pos[b], ref_split[b]), our_targets[b], reduction="none")
        per_instance.append(relative_max_diff(ours_terms, mm_terms[:n]))
    report["loss.per_instance_relative"] = max(per_instance)

    # --- reductions on the two pairs
    mm_loss = theirs.loss_by_feat(x_split, ref_split, results, key_ids, ref_ids)["loss_match"]
    ours_loss = track_loss(pos, list(ref_split), our_targets)
    terms = [F.cross_entropy(match_logits(k, r), t, reduction="none") for k, r, t in zip(pos, ref_split, our_targets)]
    mm_formula = sum(t.sum() / max(int((tg > 0).sum()), 1) for t, tg in zip(terms, our_targets)) / len(terms)
    ours_formula = sum(t.sum() / len(t) for t in terms) / len(terms)
    report["loss.mmdet_matches_its_stated_reduction"] = relative_max_diff(mm_loss, mm_formula)
    report["loss.ours_matches_the_2019_reduction"] = relative_max_diff(ours_loss, ours_formula)
    report["loss.ours"], report["loss.mmdet"] = float(ours_loss), float(mm_loss)
    # on the pair without absent instances the two reductions agree
    report["loss.pair1_relative"] = relative_max_diff(
        track_loss([pos[1]], [ref_split[1]], [our_targets[1]]),
        theirs.loss_by_feat(x_split[1:], ref_split[1:], results[1:], key_ids[1:], ref_ids[1:])["loss_match"])
    return report


@pytest.fixture(scope="module")
def report() -> dict[str, float]:
    return compare()


def test_embeddings_equal_up_to_mmdetections_last_relu(report):
    assert report["embed.scale"] > 0.1 and 0.1 < report["embed.negative_fraction"] < 0.9
    assert report["embed.pre_relu_max_abs"] <= TOLERANCE * report["embed.scale"]
    assert report["embed.with_relu_max_abs"] <= TOLERANCE * report["embed.scale"]


def test_targets_and_per_instance_losses_equal(report):
    assert report["target.differ"] == 0 and report["target.absent_instances"] == 1
    assert report["loss.per_instance_relative"] <= TOLERANCE


def test_reductions_as_documented(report):
    assert report["loss.mmdet_matches_its_stated_reduction"] <= REDUCTION_TOLERANCE
    assert report["loss.ours_matches_the_2019_reduction"] <= TOLERANCE
    assert report["loss.pair1_relative"] <= REDUCTION_TOLERANCE
    assert abs(report["loss.ours"] - report["loss.mmdet"]) > 1e-3  # the absent instance makes them differ


if __name__ == "__main__":
    for k, v in compare().items():
        sys.stdout.write(f"{k}\t{v:.3g}\n")
