"""COCO box and mask evaluation with pycocotools, under detectron2's evaluator contract.

``reset()`` -> ``process(predictions)`` per batch -> ``summarize()`` returns the 12 standard COCOeval
numbers per IoU type as fractions (``"bbox/AP"``, ``"bbox/AP50"``, ..., ``"segm/ARl"``) and logs the
standard tables. ``results_json()`` / ``dump_results(path)`` give the COCO results file (both ``bbox``
and ``segmentation`` per detection, as detectron2's ``coco_instances_results.json``).

Only the images passed to ``process`` are scored (an image with no detection counts as all misses);
an evaluator that saw no image returns -1 for every number, pycocotools' value for "undefined".
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import tempfile
from collections.abc import Sequence

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import Tensor

from ..types import Predictions

logger = logging.getLogger(__name__)

IOU_TYPES = ("bbox", "segm")
# Order of COCOeval.stats (pycocotools summarize()); AR names follow max_dets.
_AP_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")
_AR_AREA_NAMES = ("ARs", "ARm", "ARl")


def mask_to_rle(masks: Tensor | np.ndarray) -> list[dict]:
    """Encode ``[K, H, W]`` binary masks as compressed RLE with ``counts`` a str (JSON-ready).

    Returns K dicts ``{"size": [H, W], "counts": str}``; ``pycocotools.mask.decode`` inverts them.
    """
    if isinstance(masks, Tensor):
        masks = masks.detach().cpu().numpy()
    if masks.ndim != 3:
        raise ValueError(f"mask_to_rle expects [K, H, W] masks, got shape {masks.shape}")
    if masks.shape[0] == 0:
        return []
    # pycocotools wants [H, W, K] uint8 in Fortran (column-major) order
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def _empty_results(coco_gt: COCO) -> COCO:
    """A results COCO with no detections (``COCO.loadRes`` cannot take an empty list)."""
    coco_dt = COCO()
    coco_dt.dataset = {
        "images": list(coco_gt.dataset["images"]),
        "categories": copy.deepcopy(coco_gt.dataset["categories"]),
        "annotations": [],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt.createIndex()
    return coco_dt


class CocoEvaluator:
    """Accumulate predictions on a COCO split and score them with ``COCOeval``.

    Args:
        coco_gt: ground truth, e.g. ``data.coco.load_coco_gt(val_json)``.
        cat_ids: ``cat_ids[label]`` is the COCO category id of contiguous label ``label``
            (``CocoInstances.cat_ids``).
        iou_types: any of ``("bbox", "segm")``; "segm" needs ``Predictions.masks``.
        max_dets: COCOeval ``maxDets``; AP uses the last. (1, 10, 100) is the COCO standard; mmdetection
            reports with (100, 300, 1000), which differs only for models keeping > 100 detections per image.
    """

    def __init__(
        self,
        coco_gt: COCO,
        cat_ids: Sequence[int],
        iou_types: Sequence[str] = IOU_TYPES,
        max_dets: tuple[int, int, int] = (1, 10, 100),
    ) -> None:
        unknown = [c for c in cat_ids if c not in coco_gt.cats]
        if unknown:
            raise ValueError(f"CocoEvaluator: category ids {unknown} are not in the ground truth's categories")
        bad_types = [t for t in iou_types if t not in IOU_TYPES]
        if bad_types or not iou_types:
            raise ValueError(f"CocoEvaluator: iou_types must be a non-empty subset of {IOU_TYPES}, got {iou_types}")
        if len(max_dets) != 3:
            raise ValueError(f"CocoEvaluator: max_dets needs 3 values, got {max_dets}")
        self.coco_gt = coco_gt
        self.cat_ids = [int(c) for c in cat_ids]
        self.iou_types = tuple(iou_types)
        self.max_dets = tuple(int(m) for m in max_dets)
        self._label_to_cat = torch.tensor(self.cat_ids, dtype=torch.int64)
        self.reset()

    def reset(self) -> None:
        """Forget all processed predictions."""
        self._records: list[dict] = []
        self._image_ids: set[int] = set()

    def process(self, predictions: Sequence[Predictions]) -> None:
        """Convert one batch of per-image predictions to COCO result records.

        Each ``Predictions`` holds ``boxes [K, 4]`` xyxy in original-image pixels, ``scores [K]``,
        contiguous ``labels [K]``, ``masks [K, H, W]`` bool at the original resolution, and the COCO
        ``image_id``; K may be 0.

        Raises:
            ValueError: unknown ``image_id``, labels outside ``cat_ids``, missing masks for "segm", or
                masks whose size is not the image's.
        """
        for pred in predictions:
            image_id = int(pred.image_id)
            if image_id not in self.coco_gt.imgs:
                raise ValueError(f"CocoEvaluator: image_id {image_id} is not in the ground truth")
            self._image_ids.add(image_id)
            num = int(pred.scores.numel())
            if num == 0:
                continue
            labels = pred.labels.detach().cpu().to(torch.int64)
            if labels.min() < 0 or labels.max() >= len(self.cat_ids):
                raise ValueError(
                    f"CocoEvaluator: image {image_id} has labels outside [0, {len(self.cat_ids)}): "
                    f"{labels.unique().tolist()}"
                )
            boxes = pred.boxes.detach().cpu().to(torch.float64).clone()
            boxes[:, 2:] -= boxes[:, :2]  # xyxy -> xywh
            cats = self._label_to_cat[labels].tolist()
            scores = pred.scores.detach().cpu().to(torch.float64).tolist()
            rles: list[dict | None] = [None] * num
            if "segm" in self.iou_types:
                rles = self._encode_masks(pred, image_id)
            for box, score, cat, rle in zip(boxes.tolist(), scores, cats, rles):
                record = {"image_id": image_id, "category_id": cat, "bbox": box, "score": score}
                if rle is not None:
                    record["segmentation"] = rle
                self._records.append(record)

    def _encode_masks(self, pred: Predictions, image_id: int) -> list[dict]:
        if pred.masks is None:
            raise ValueError(
                f"CocoEvaluator: image {image_id} has no masks but 'segm' is evaluated; "
                "use iou_types=('bbox',) for box-only models"
            )
        img = self.coco_gt.imgs[image_id]
        if tuple(pred.masks.shape[-2:]) != (img["height"], img["width"]):
            raise ValueError(
                f"CocoEvaluator: image {image_id} masks are {tuple(pred.masks.shape[-2:])} (HxW) but the image "
                f"is {img['height']}x{img['width']}; masks must be at the original resolution"
            )
        return mask_to_rle(pred.masks.bool())

    def results_json(self) -> list[dict]:
        """COCO results: ``[{image_id, category_id, bbox [x, y, w, h], score, segmentation RLE}, ...]``."""
        return copy.deepcopy(self._records)

    def dump_results(self, path: str) -> None:
        """Write ``results_json()`` to ``path`` atomically (temp file in the same folder, then rename)."""
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self._records, f)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    def _stat_names(self) -> list[str]:
        return [*_AP_NAMES, *(f"AR{m}" for m in self.max_dets), *_AR_AREA_NAMES]

    def summarize(self) -> dict[str, float]:
        """Run COCOeval per IoU type; returns ``{"bbox/AP": ..., "segm/ARl": ...}`` (fractions, -1 undefined)."""
        results: dict[str, float] = {}
        names = self._stat_names()
        if not self._image_ids:
            logger.warning("CocoEvaluator: no image was processed; every metric is -1")
            return {f"{t}/{n}": -1.0 for t in self.iou_types for n in names}
        for iou_type in self.iou_types:
            stats, table = self._evaluate(iou_type)
            logger.info("COCO %s evaluation on %d images:\n%s", iou_type, len(self._image_ids), table)
            results.update({f"{iou_type}/{n}": float(v) for n, v in zip(names, stats)})
        return results

    def _evaluate(self, iou_type: str) -> tuple[np.ndarray, str]:
        """COCOeval stats (12 numbers) and its printed table for one IoU type."""
        # Boxes and masks are scored separately: loadRes would take a record's box area (not the mask's)
        # for the area ranges if both were present (detectron2 drops "bbox" for segm the same way).
        # The new top-level dicts also absorb loadRes' in-place edits (id, area, iscrowd).
        drop = "segmentation" if iou_type == "bbox" else "bbox"
        records = [{k: v for k, v in r.items() if k != drop} for r in self._records]
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            coco_dt = self.coco_gt.loadRes(records) if records else _empty_results(self.coco_gt)
            coco_eval = COCOeval(self.coco_gt, coco_dt, iouType=iou_type)
            coco_eval.params.imgIds = sorted(self._image_ids)
            coco_eval.params.maxDets = list(self.max_dets)
            coco_eval.evaluate()
            coco_eval.accumulate()
            table = io.StringIO()
            with contextlib.redirect_stdout(table):
                coco_eval.summarize()
        return coco_eval.stats, table.getvalue()
