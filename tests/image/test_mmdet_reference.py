"""Fidelity against mmdetection's own QueryInst: same weights, same normalised input, same numbers.

Skipped unless mmdetection is installed. To run it, use a separate environment (never the project's
.venv), e.g.:

    python -m venv /tmp/mmref && /tmp/mmref/bin/pip install torch==2.14.1 torchvision==0.29.1 \
        mmdet==3.3.0 mmengine==0.10.7 mmcv-lite==2.1.0 pytest && /tmp/mmref/bin/pip install --no-deps -e .
    /tmp/mmref/bin/python -m pytest tests/image/test_mmdet_reference.py      # or run this file for a report

mmdet 3.3 accepts mmcv < 2.2; how ``mmcv-lite`` (no compiled ops) is handled is said in
tests/support/mmdet_ref.py: only RoIAlign's kernel (torchvision's) is shared by both sides.

The model is mmdetection's ``queryinst_r50_fpn_1x_coco`` config with random weights, made less
symmetric than its init (random BatchNorm statistics, proposal boxes of many sizes so that every FPN
level is used). Its state_dict goes through our converter (file to file) into our model.
"""
from __future__ import annotations

import sys
import time

import pytest
import torch

mmdet = pytest.importorskip("mmdet")
if __name__ == "__main__":  # run as a script: tests/ (the support helpers) is not on the path yet
    sys.path.insert(0, __file__.rsplit("/", 2)[0])

from queryinst.image.types import ImageBatch  # noqa: E402
from support.mmdet_ref import build_mmdet_queryinst, ours_from_mmdet  # noqa: E402

IMAGE_SIZE = (200, 296)  # unpadded (h, w); padded to (224, 320)
PADDED = (224, 320)
# Both sides run the same torch ops on the same weights: on CPU the outputs agree bit for bit (max abs
# difference 0). The tolerances only allow float32 rounding should kernels differ (other builds, GPU);
# a 1e-3 change of one stage-2 FFN bias moves stage-2..5 logits by 2e-4..4e-4 and boxes by 2e-3..9e-3.
LOGIT_TOLERANCE = 1e-5
BOX_TOLERANCE = 1e-4  # boxes are in pixels, up to a few hundred


def _input(seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(1, 3, *PADDED)
    x[:, :, : IMAGE_SIZE[0], : IMAGE_SIZE[1]] = torch.randn(1, 3, *IMAGE_SIZE, generator=g)
    return x


@torch.no_grad()
def mmdet_raw_outputs(model: torch.nn.Module, tensor: torch.Tensor) -> dict:
    """Per-stage outputs through mmdetection's own methods (the loop of SparseRoIHead.predict_bbox)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import bbox2roi

    h, w = IMAGE_SIZE
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0),
                                         pad_shape=PADDED, batch_input_shape=PADDED))
    feats = model.extract_feat(tensor)
    rpn = model.rpn_head.predict(feats, [sample])
    proposals = [r.bboxes for r in rpn]
    object_feats = torch.cat([r.pop("features")[None] for r in rpn])
    cls_logits, boxes = [], []
    for stage in range(model.roi_head.num_stages):
        res = model.roi_head._bbox_forward(stage, feats, bbox2roi(proposals), object_feats, [sample.metainfo])
        object_feats, proposals = res["object_feats"], res["detached_proposals"]
        cls_logits.append(res["cls_score"][0])
        boxes.append(proposals[0])
    attn = res["attn_feats"].reshape(-1, res["attn_feats"].shape[-1])
    masks = model.roi_head._mask_forward(model.roi_head.num_stages - 1, feats, bbox2roi(proposals), attn)
    preds = model.predict(tensor, [sample], rescale=True)[0].pred_instances
    return {"cls_logits": cls_logits, "boxes": boxes, "mask_logits": masks["mask_preds"], "predictions": preds}


def compare(seed: int = 0) -> dict[str, float]:
    """Max abs differences (and the scale of each quantity) between mmdetection and our converted model."""
    t0 = time.perf_counter()
    mm_model = build_mmdet_queryinst(seed)
    t1 = time.perf_counter()
    ours, _ = ours_from_mmdet(mm_model)
    tensor = _input()
    t2 = time.perf_counter()
    ref = mmdet_raw_outputs(mm_model, tensor)
    t3 = time.perf_counter()
    got = ours.raw_outputs(tensor, IMAGE_SIZE)
    t4 = time.perf_counter()
    report: dict[str, float] = {}
    for s, (a, b) in enumerate(zip(ref["cls_logits"], got["cls_logits"])):
        report[f"stage{s}.cls_logits"] = float((a - b).abs().max())
    for s, (a, b) in enumerate(zip(ref["boxes"], got["boxes"])):
        report[f"stage{s}.boxes"] = float((a - b).abs().max())
    report["last.mask_logits"] = float((ref["mask_logits"] - got["mask_logits"]).abs().max())
    report["scale.cls_logits"] = float(ref["cls_logits"][-1].abs().max())
    report["scale.boxes"] = float(ref["boxes"][-1].abs().max())
    report["scale.mask_logits"] = float(ref["mask_logits"].abs().max())

    # End to end: top-k (query, class) pairs, boxes, pasted binary masks (mmdetection's topk is unsorted).
    with torch.no_grad():
        preds = ours.postprocess(ours.run_stages(ImageBatch(tensor, [IMAGE_SIZE])), [IMAGE_SIZE])[0]
    mm = ref["predictions"]
    order = mm.scores.argsort(descending=True)
    report["final.scores"] = float((mm.scores[order] - preds.scores).abs().max())
    report["final.labels_differ"] = float((mm.labels[order] != preds.labels).sum())
    report["final.boxes"] = float((mm.bboxes[order] - preds.boxes).abs().max())
    report["final.mask_pixels_differ"] = float((mm.masks[order] != preds.masks).sum())
    report["final.mask_pixels"] = float(preds.masks.numel())
    report["final.mask_pixels_set"] = float(preds.masks.sum())
    report["seconds.build_mmdet"], report["seconds.convert_and_load"] = t1 - t0, t2 - t1
    report["seconds.mmdet_forward_x2"], report["seconds.our_forward"] = t3 - t2, t4 - t3
    return report


def test_converted_model_matches_mmdetection():
    r = compare()
    assert r["scale.cls_logits"] > 0.1 and r["scale.boxes"] > 10 and r["final.mask_pixels_set"] > 0
    for key, value in r.items():
        if key.startswith(("scale.", "seconds.")):
            continue
        if key.endswith("boxes"):
            assert value <= BOX_TOLERANCE, (key, value)
        elif key.endswith(("logits", "scores")):
            assert value <= LOGIT_TOLERANCE, (key, value)
    assert r["final.labels_differ"] == 0
    # pixels whose probability sits within rounding of the 0.5 threshold may flip
    assert r["final.mask_pixels_differ"] <= 1e-5 * r["final.mask_pixels"]


if __name__ == "__main__":
    for k, v in compare().items():
        sys.stdout.write(f"{k}\t{v:.3g}\n")
