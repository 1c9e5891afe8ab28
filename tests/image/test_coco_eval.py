"""Tests of image/eval/coco_eval.py against a tiny ground truth written by a fixture."""
from __future__ import annotations

import dataclasses
import json
import logging
import os

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from queryinst.image.data.coco import load_coco_gt, segmentation_to_mask
from queryinst.image.eval.coco_eval import CocoEvaluator, mask_to_rle
from queryinst.image.types import Predictions

CAT_IDS = [5, 9]  # label 0 -> category 5, label 1 -> category 9
STAT_NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def _rle(h: int, w: int, x1: int, y1: int, x2: int, y2: int) -> dict:
    mask = np.zeros((h, w), np.uint8)
    mask[y1:y2, x1:x2] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


@pytest.fixture
def coco_gt(tmp_path) -> COCO:
    """Image 1 (60x80): a polygon and an RLE instance plus a crowd region; image 2 (50x70): a large
    polygon; image 3 (40x40): nothing."""
    anns = [
        {"id": 1, "image_id": 1, "category_id": 9, "iscrowd": 0, "area": 400.0, "bbox": [10, 5, 20, 20],
         "segmentation": [[10, 5, 30, 5, 30, 25, 10, 25]]},
        {"id": 2, "image_id": 1, "category_id": 5, "iscrowd": 0, "area": 600.0, "bbox": [40, 30, 30, 20],
         "segmentation": _rle(60, 80, 40, 30, 70, 50)},
        {"id": 3, "image_id": 1, "category_id": 5, "iscrowd": 1, "area": 200.0, "bbox": [60, 0, 20, 10],
         "segmentation": _rle(60, 80, 60, 0, 80, 10)},
        {"id": 4, "image_id": 2, "category_id": 5, "iscrowd": 0, "area": 1225.0, "bbox": [5, 5, 40, 40],
         "segmentation": [[5, 5, 45, 5, 45, 45, 25, 48, 5, 45]]},
    ]
    data = {
        "images": [
            {"id": 1, "file_name": "a.png", "height": 60, "width": 80},
            {"id": 2, "file_name": "b.png", "height": 50, "width": 70},
            {"id": 3, "file_name": "c.png", "height": 40, "width": 40},
        ],
        "annotations": anns,
        "categories": [{"id": 5, "name": "cat"}, {"id": 9, "name": "dog"}],
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(data))
    return load_coco_gt(str(path))


def _perfect(coco: COCO, image_id: int) -> Predictions:
    """The non-crowd ground truth of one image as predictions (scores descending)."""
    anns = [a for a in coco.imgToAnns[image_id] if not a["iscrowd"]]
    img = coco.imgs[image_id]
    boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns], dtype=torch.float32).reshape(-1, 4)
    masks = torch.from_numpy(np.stack([coco.annToMask(a) for a in anns])).bool() if anns else \
        torch.zeros(0, img["height"], img["width"], dtype=torch.bool)
    k = len(anns)
    return Predictions(
        boxes=boxes,
        scores=torch.linspace(0.9, 0.5, k) if k else torch.zeros(0),
        labels=torch.tensor([CAT_IDS.index(a["category_id"]) for a in anns], dtype=torch.int64),
        masks=masks,
        query_indices=torch.arange(k),
        image_id=image_id,
    )


def _empty(coco: COCO, image_id: int) -> Predictions:
    img = coco.imgs[image_id]
    return Predictions(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64),
                       torch.zeros(0, img["height"], img["width"], dtype=torch.bool), torch.zeros(0, dtype=torch.int64),
                       image_id)


def test_mask_rle_round_trip():
    rng = np.random.default_rng(0)
    masks = rng.random((4, 23, 31)) > 0.6
    masks[1] = False  # an empty mask
    rles = mask_to_rle(torch.from_numpy(masks))
    assert len(rles) == 4
    for rle, mask in zip(rles, masks):
        assert isinstance(rle["counts"], str) and rle["size"] == [23, 31]
        json.dumps(rle)
        assert np.array_equal(segmentation_to_mask(rle, 23, 31), mask.astype(np.uint8))
    assert mask_to_rle(np.zeros((0, 5, 5), bool)) == []


def test_perfect_predictions_score_one(coco_gt, caplog):
    evaluator = CocoEvaluator(coco_gt, CAT_IDS)
    evaluator.process([_perfect(coco_gt, 1), _perfect(coco_gt, 2)])
    evaluator.process([_perfect(coco_gt, 3)])  # an image without GT or detections
    with caplog.at_level(logging.INFO, logger="queryinst.image.eval.coco_eval"):
        metrics = evaluator.summarize()
    assert sorted(metrics) == sorted(f"{t}/{n}" for t in ("bbox", "segm") for n in STAT_NAMES)
    for iou_type in ("bbox", "segm"):
        for name in ("AP", "AP50", "AP75", "AR100"):
            assert metrics[f"{iou_type}/{name}"] == pytest.approx(1.0), (iou_type, name)
        assert metrics[f"{iou_type}/APl"] == -1.0  # no large (> 96^2) GT in these tiny images
    assert "Average Precision  (AP) @[ IoU=0.50:0.95" in caplog.text


def test_detection_on_crowd_region_is_ignored(coco_gt):
    pred = _perfect(coco_gt, 1)
    crowd = Predictions(torch.tensor([[60.0, 0, 80, 10]]), torch.tensor([0.95]), torch.tensor([0]),
                        torch.zeros(1, 60, 80, dtype=torch.bool), torch.tensor([0]), 1)
    crowd.masks[0, 0:10, 60:80] = True
    merged = Predictions(*(torch.cat([a, b]) for a, b in [(pred.boxes, crowd.boxes), (pred.scores, crowd.scores),
                                                          (pred.labels, crowd.labels), (pred.masks, crowd.masks),
                                                          (pred.query_indices, crowd.query_indices)]), image_id=1)
    evaluator = CocoEvaluator(coco_gt, CAT_IDS)
    evaluator.process([merged, _perfect(coco_gt, 2)])
    metrics = evaluator.summarize()
    assert metrics["bbox/AP"] == pytest.approx(1.0) and metrics["segm/AP"] == pytest.approx(1.0)


def test_image_without_predictions_counts_as_misses(coco_gt):
    evaluator = CocoEvaluator(coco_gt, CAT_IDS)
    evaluator.process([_perfect(coco_gt, 1)])
    assert evaluator.summarize()["bbox/AP"] == pytest.approx(1.0)  # only processed images are scored
    evaluator.process([_empty(coco_gt, 2)])
    metrics = evaluator.summarize()
    assert 0.0 < metrics["bbox/AP"] < 1.0 and 0.0 < metrics["segm/AP"] < 1.0
    evaluator.reset()
    assert evaluator.summarize()["bbox/AP"] == -1.0


def test_no_predictions_at_all(coco_gt):
    evaluator = CocoEvaluator(coco_gt, CAT_IDS)
    metrics = evaluator.summarize()  # nothing processed: undefined everywhere
    assert len(metrics) == 24 and set(metrics.values()) == {-1.0}
    evaluator.process([_empty(coco_gt, i) for i in (1, 2, 3)])
    metrics = evaluator.summarize()  # processed, nothing found: zero wherever GT exists
    assert evaluator.results_json() == []
    for iou_type in ("bbox", "segm"):
        assert metrics[f"{iou_type}/AP"] == 0.0 and metrics[f"{iou_type}/AR100"] == 0.0


def test_results_export(coco_gt, tmp_path):
    evaluator = CocoEvaluator(coco_gt, CAT_IDS)
    evaluator.process([_perfect(coco_gt, 1), _perfect(coco_gt, 2)])
    records = evaluator.results_json()
    assert len(records) == 3
    first = records[0]
    assert first["image_id"] == 1 and first["category_id"] == 9  # label 1 mapped back to category 9
    assert first["bbox"] == pytest.approx([10, 5, 20, 20]) and first["score"] == pytest.approx(0.9)
    assert isinstance(first["segmentation"]["counts"], str)
    path = tmp_path / "out" / "results.json"
    evaluator.dump_results(str(path))
    assert os.listdir(path.parent) == ["results.json"]  # no temp file left behind
    loaded = json.loads(path.read_text())
    assert loaded == records
    coco_dt = coco_gt.loadRes(loaded)  # pycocotools accepts the file
    assert len(coco_dt.anns) == 3
    evaluator.summarize()
    assert evaluator.results_json() == records  # evaluation did not mutate the stored records


def test_max_dets_names_and_box_only(coco_gt):
    evaluator = CocoEvaluator(coco_gt, CAT_IDS, iou_types=("bbox",), max_dets=(100, 300, 1000))
    pred = _perfect(coco_gt, 1)
    pred.masks = None
    evaluator.process([pred])
    metrics = evaluator.summarize()
    assert set(metrics) == {f"bbox/{n}" for n in [*STAT_NAMES[:6], "AR100", "AR300", "AR1000", *STAT_NAMES[9:]]}
    assert metrics["bbox/AP"] == pytest.approx(1.0)


def test_input_errors(coco_gt):
    with pytest.raises(ValueError, match=r"category ids \[42\]"):
        CocoEvaluator(coco_gt, [5, 42])
    evaluator = CocoEvaluator(coco_gt, CAT_IDS)
    with pytest.raises(ValueError, match="image_id 77"):
        evaluator.process([dataclasses.replace(_empty(coco_gt, 1), image_id=77)])
    bad = _perfect(coco_gt, 1)
    bad.masks = bad.masks[:, :30]
    with pytest.raises(ValueError, match="original resolution"):
        evaluator.process([bad])
    bad = _perfect(coco_gt, 1)
    bad.labels = torch.tensor([0, 2])
    with pytest.raises(ValueError, match="labels outside"):
        evaluator.process([bad])
    bad = _perfect(coco_gt, 1)
    bad.masks = None
    with pytest.raises(ValueError, match="no masks"):
        evaluator.process([bad])


def test_malformed_and_zero_area_gt_is_dropped_with_one_warning_as_in_training(tmp_path, caplog):
    # pycocotools reads a 4-number "polygon" as a box and then fails inside COCOeval (TypeError
    # "Argument 'bb'"); evaluation and training must read GT through the same checks.
    anns = [
        {"id": 1, "image_id": 1, "category_id": 9, "iscrowd": 0, "area": 400.0, "bbox": [10, 5, 20, 20],
         "segmentation": [[10, 5, 30, 5, 30, 25, 10, 25]]},
        {"id": 2, "image_id": 1, "category_id": 5, "iscrowd": 0, "area": 100.0, "bbox": [40, 30, 10, 10],
         "segmentation": [[40, 30, 50, 40]]},  # 4 numbers: not a polygon
        {"id": 3, "image_id": 1, "category_id": 5, "iscrowd": 0, "area": 0.0, "bbox": [5, 5, 0, 3],
         "segmentation": [[5, 5, 5, 8, 5, 6]]},  # zero area
        {"id": 4, "image_id": 1, "category_id": 5, "iscrowd": 0, "area": 300.0, "bbox": [40, 40, 20, 15],
         "segmentation": [[40, 40, 60, 40, 60, 55, 40, 55], [1, 2, 3]]},  # one good polygon, one odd
    ]
    data = {"images": [{"id": 1, "file_name": "a.png", "height": 60, "width": 80}], "annotations": anns,
            "categories": [{"id": 5, "name": "cat"}, {"id": 9, "name": "dog"}]}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="queryinst.image.data.coco"):
        gt = load_coco_gt(str(path))
    assert sorted(gt.anns) == [1, 4] and gt.anns[4]["segmentation"] == [[40, 40, 60, 40, 60, 55, 40, 55]]
    warnings = [r.getMessage() for r in caplog.records]
    assert any("dropped 1 zero-area annotations (ids 3)" in w for w in warnings), warnings
    assert any("dropped 1 annotations whose polygons are all malformed (ids 2)" in w for w in warnings), warnings
    assert any("removed malformed polygons from 1 annotations (ids 4)" in w for w in warnings), warnings
    evaluator = CocoEvaluator(gt, CAT_IDS)
    evaluator.process([_perfect(gt, 1)])
    metrics = evaluator.summarize()
    assert metrics["segm/AP"] == pytest.approx(1.0) and metrics["bbox/AP"] == pytest.approx(1.0)
    from queryinst.image.data.coco import CocoInstances  # training reads the very same annotations

    (tmp_path / "img").mkdir()
    train = CocoInstances(str(path), str(tmp_path / "img"))
    assert train._records[0]["ann_ids"] == [1, 4]
