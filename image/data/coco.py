"""COCO-format instance segmentation data: JSON loading with clear errors, masks, and the dataset.

``CocoInstances`` yields ``(image, Targets)`` (docs/design.md#conventions): the image as ``Tensor[3, H, W]`` float in
[0, 1] (RGB) and its ground truth in the coordinates of that tensor, after the transforms.

Conventions, following mmdetection's ``CocoDataset`` (the reference numbers of docs/design.md#queryinst-image
come from it):
- boxes: COCO ``[x, y, w, h]`` -> ``[x1, y1, x2, y2]`` absolute pixels, clipped to the image; boxes with
  ``w < 1`` or ``h < 1``, ``area <= 0``, or no overlap with the image are dropped.
- ``iscrowd = 1`` annotations become ``Targets.ignore_boxes`` and never positives.
- labels: the sorted category ids map to ``0..C-1``; ``cat_ids[label]`` maps back (result export).
- segmentation: polygons, compressed RLE (``counts`` a string) and uncompressed RLE (``counts`` a list)
  decode through ``pycocotools.mask``. An annotation without a usable segmentation gets its box filled
  as the mask (a detection-only file still trains), with one warning per dataset.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.v2 import functional as F

from ...cli import listing
from ..rle import rle_problem, valid_polygon
from .files import check_images
from ..types import Targets

logger = logging.getLogger(__name__)

# (image uint8 [3,H,W], Targets) -> (image [3,H',W'], Targets), e.g. transforms.InstanceTransforms
TransformFn = Callable[[Tensor, Targets], tuple[Tensor, Targets]]

_MIN_BOX_SIDE = 1.0  # mmdetection CocoDataset._parse_ann_info: drop boxes with w < 1 or h < 1


# --------------------------------------------------------------------------------------------------
# JSON loading
# --------------------------------------------------------------------------------------------------
def _require(obj: Any, key: str, types: type | tuple[type, ...], where: str, path: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"{path}: {where} has no '{key}'")
    value = obj[key]
    if not isinstance(value, types) or isinstance(value, bool):
        raise ValueError(f"{path}: {where}['{key}'] has the wrong type ({type(value).__name__})")
    return value


def load_coco_json(path: str) -> dict:
    """Read and check a COCO instances JSON file.

    Requires ``images`` (each with ``id``, ``file_name``, ``height``, ``width``) and ``categories``
    (each with ``id``, ``name``); ``annotations`` may be absent (test splits). Every annotation must name
    a listed image and category and carry a 4-number ``bbox``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not valid JSON, or the schema above is broken; the message names the file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"COCO annotation file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a valid JSON file: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level must be an object with 'images' and 'categories'")
    images = _require(data, "images", list, "the file", path)
    categories = _require(data, "categories", list, "the file", path)
    annotations = data.setdefault("annotations", [])
    if not isinstance(annotations, list):
        raise ValueError(f"{path}: 'annotations' must be a list")

    image_ids: set[int] = set()
    for i, img in enumerate(images):
        where = f"images[{i}]"
        image_ids.add(_require(img, "id", int, where, path))
        _require(img, "file_name", str, where, path)
        for key in ("height", "width"):
            if _require(img, key, int, where, path) <= 0:
                raise ValueError(f"{path}: {where}['{key}'] must be positive")
    if len(image_ids) != len(images):
        raise ValueError(f"{path}: duplicate image ids")
    cat_ids: set[int] = set()
    for i, cat in enumerate(categories):
        cat_ids.add(_require(cat, "id", int, f"categories[{i}]", path))
        _require(cat, "name", str, f"categories[{i}]", path)
    if len(cat_ids) != len(categories):
        raise ValueError(f"{path}: duplicate category ids")
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}] (id {ann.get('id') if isinstance(ann, dict) else '?'})"
        if _require(ann, "image_id", int, where, path) not in image_ids:
            raise ValueError(f"{path}: {where} refers to image_id {ann['image_id']}, not in 'images'")
        if _require(ann, "category_id", int, where, path) not in cat_ids:
            raise ValueError(f"{path}: {where} has category_id {ann['category_id']}, not in 'categories'")
        bbox = _require(ann, "bbox", list, where, path)
        if len(bbox) != 4 or not all(isinstance(v, (int, float)) for v in bbox):
            raise ValueError(f"{path}: {where}['bbox'] must be 4 numbers [x, y, w, h], got {bbox!r}")
    data["annotations"] = _usable_annotations(annotations, {img["id"]: img for img in images}, path)
    return data


def _usable_annotations(annotations: list[dict], images: dict[int, dict], path: str) -> list[dict]:
    """The annotations training and evaluation both use, checked the same way for both.

    Dropped, with one warning line listing their ids: zero-area annotations (``area`` <= 0 or a box of
    zero width or height) and annotations whose polygons are all malformed (< 3 points or an odd number
    of coordinates: pycocotools reads a 4-number "polygon" as a box, or fails). Malformed polygons next
    to good ones are removed from the annotation. A compressed RLE whose string does not decode to the
    image's height x width is an error naming the annotation (pycocotools would decode it to an
    arbitrary mask)."""
    kept, zero_area, bad_polygons, trimmed = [], [], [], []
    for i, ann in enumerate(annotations):
        ann_id = ann.get("id", f"[{i}]")
        w, h = ann["bbox"][2:]
        if w <= 0 or h <= 0 or ann.get("area", 1.0) <= 0:
            zero_area.append(ann_id)
            continue
        seg = ann.get("segmentation")
        if isinstance(seg, list) and seg:
            good = [p for p in seg if valid_polygon(p)]
            if not good:
                bad_polygons.append(ann_id)
                continue
            if len(good) != len(seg):
                trimmed.append(ann_id)
                ann = {**ann, "segmentation": good}
        elif isinstance(seg, dict) and isinstance(seg.get("counts"), (str, bytes)):
            image = images[ann["image_id"]]
            problem = rle_problem(seg["counts"], image["height"], image["width"])
            if problem:
                raise ValueError(f"{path}: annotation id {ann_id}: {problem}")
        kept.append(ann)
    for what, ids in (("dropped %d zero-area annotations", zero_area),
                      ("dropped %d annotations whose polygons are all malformed", bad_polygons),
                      ("removed malformed polygons from %d annotations", trimmed)):
        if ids:
            logger.warning("%s: " + what + " (ids %s)", path, len(ids), listing(ids))
    return kept


def load_coco_gt(path: str) -> COCO:
    """A ``pycocotools.COCO`` for evaluation, from a checked JSON file, without pycocotools' prints."""
    data = load_coco_json(path)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


# --------------------------------------------------------------------------------------------------
# Masks and images
# --------------------------------------------------------------------------------------------------
def segmentation_to_mask(segmentation: Any, height: int, width: int) -> np.ndarray | None:
    """Decode a COCO segmentation to a ``[height, width]`` uint8 {0, 1} mask.

    Accepts a list of polygons ``[[x1, y1, x2, y2, ...], ...]`` (polygons with < 3 points are skipped),
    uncompressed RLE ``{"size": [h, w], "counts": [int, ...]}`` and compressed RLE
    ``{"size": [h, w], "counts": str | bytes}``. Returns None when there is nothing to decode
    (missing, empty, or only degenerate polygons).

    Raises:
        ValueError: an RLE whose size differs from (height, width), or an unknown format.
    """
    if segmentation is None or (isinstance(segmentation, list) and not segmentation):
        return None
    if isinstance(segmentation, list):
        polygons = [
            [float(v) for v in p]
            for p in segmentation
            if valid_polygon(p)
        ]
        if not polygons:
            return None
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        size = [int(v) for v in segmentation["size"]]
        if size != [height, width]:
            raise ValueError(f"RLE size {size} differs from the image size {[height, width]}")
        counts = segmentation["counts"]
        if isinstance(counts, list):  # uncompressed RLE
            rle = mask_utils.frPyObjects({"size": size, "counts": counts}, height, width)
        elif isinstance(counts, (str, bytes)):  # compressed RLE; JSON holds counts as str
            rle = {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        else:
            raise ValueError(f"RLE counts must be a list or a string, got {type(counts).__name__}")
    else:
        raise ValueError(f"unknown segmentation format: {type(segmentation).__name__}")
    return mask_utils.decode(rle)


def read_image(path: str) -> Tensor:
    """Read an image file as ``Tensor[3, H, W]`` uint8 RGB (grey and RGBA files are converted).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file cannot be decoded as an image.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        image = decode_image(read_file(path), mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"cannot decode image file {path}: {e}") from None
    if image.dtype != torch.uint8:  # e.g. 16-bit PNG
        image = F.to_dtype(image, torch.uint8, scale=True)
    return image


# --------------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------------
class _PackedRecords:
    """Per-image records pickled into one numpy byte buffer.

    Forked DataLoader workers touching millions of small Python objects (even the garbage collector
    does) copy the parent's pages one by one; a single buffer is shared as is (detectron2's
    ``DatasetFromList(serialize=True)``).
    """

    def __init__(self, records: list[dict]) -> None:
        blobs = [np.frombuffer(pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL), np.uint8) for r in records]
        self._ends = np.cumsum([len(b) for b in blobs], dtype=np.int64)
        self._buffer = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index: int) -> dict:
        start = 0 if index == 0 else int(self._ends[index - 1])
        return pickle.loads(self._buffer[start : int(self._ends[index])].tobytes())


def _xywh_to_xyxy_clipped(bbox: list[float], height: int, width: int) -> list[float] | None:
    """COCO box -> xyxy clipped to the image, or None when degenerate (mmdetection's rules)."""
    x, y, w, h = (float(v) for v in bbox)
    if w < _MIN_BOX_SIDE or h < _MIN_BOX_SIDE:
        return None
    x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))
    if x2 <= x1 or y2 <= y1:  # no overlap with the image
        return None
    return [x1, y1, x2, y2]


class CocoInstances(Dataset):
    """COCO-format instance segmentation dataset.

    Args:
        ann_file: COCO instances JSON.
        img_dir: folder that ``images[*].file_name`` is relative to.
        transforms: ``(image uint8 [3,H,W], Targets) -> (image, Targets)``, e.g.
            ``transforms.build_transforms(cfg, train)``; None keeps the image as stored.
        filter_empty: drop images without any non-crowd instance (training, as mmdetection's
            ``filter_empty_gt``); evaluation keeps every image.

    ``dataset[i]`` is ``(image: Tensor[3, H, W] float32 in [0, 1] RGB, Targets)`` with ``boxes [N, 4]``
    xyxy, ``labels [N]`` in ``0..C-1``, ``masks [N, H, W]`` bool, ``ignore_boxes [M, 4]`` (crowd),
    ``image_id`` and ``orig_size = (height, width)`` as stored on disk.

    Attributes:
        cat_ids: sorted COCO category ids; ``cat_ids[label]`` is the id of a contiguous label.
        class_names: category names in label order.
        cat_id_to_label: inverse of ``cat_ids``.
        image_ids: COCO image ids in dataset order.
    """

    def __init__(
        self,
        ann_file: str,
        img_dir: str,
        transforms: TransformFn | None = None,
        filter_empty: bool = False,
    ) -> None:
        data = load_coco_json(ann_file)
        if not os.path.isdir(img_dir):
            raise FileNotFoundError(f"image folder not found: {img_dir} (images of {ann_file})")
        self.ann_file = ann_file
        self.img_dir = img_dir
        self.transforms = transforms
        categories = sorted(data["categories"], key=lambda c: c["id"])
        self.cat_ids: list[int] = [c["id"] for c in categories]
        self.class_names: list[str] = [c["name"] for c in categories]
        self.cat_id_to_label: dict[int, int] = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}

        anns_by_image: dict[int, list[dict]] = {}
        for ann in data["annotations"]:
            anns_by_image.setdefault(ann["image_id"], []).append(ann)
        records = []
        for img in sorted(data["images"], key=lambda im: im["id"]):
            record = self._parse_image(img, anns_by_image.get(img["id"], []))
            if filter_empty and not record["labels"]:
                continue
            records.append(record)
        self.image_ids: list[int] = [r["image_id"] for r in records]
        self._records_for_check = [(os.path.join(img_dir, r["file_name"]), r["height"], r["width"]) for r in records]
        self._records = _PackedRecords(records)
        self._warned_no_segmentation = False
        logger.info(
            "%s: %d images, %d categories%s",
            ann_file, len(records), len(self.cat_ids), " (images without instances dropped)" if filter_empty else "",
        )

    def check_images(self) -> None:
        """Raise ValueError (the JSON named, every problem listed at once) when an image of the set is
        missing, unreadable or of another size than the JSON says: run before training starts."""
        check_images(self._records_for_check, self.ann_file, total=len(self._records_for_check))

    def _parse_image(self, img: dict, anns: list[dict]) -> dict:
        """Compact per-image record; masks are decoded lazily in ``__getitem__``."""
        height, width = img["height"], img["width"]
        record: dict[str, Any] = {
            "image_id": img["id"], "file_name": img["file_name"], "height": height, "width": width,
            "boxes": [], "labels": [], "segmentations": [], "ann_ids": [], "ignore_boxes": [],
        }
        for ann in anns:
            box = _xywh_to_xyxy_clipped(ann["bbox"], height, width)
            if box is None or ann.get("area", 1.0) <= 0:
                continue
            if ann.get("iscrowd", 0):
                record["ignore_boxes"].append(box)
                continue
            record["boxes"].append(box)
            record["labels"].append(self.cat_id_to_label[ann["category_id"]])
            record["segmentations"].append(ann.get("segmentation"))
            record["ann_ids"].append(ann.get("id", -1))
        return record

    def __len__(self) -> int:
        return len(self._records)

    @property
    def num_classes(self) -> int:
        return len(self.cat_ids)

    def _decode_masks(self, record: dict, height: int, width: int) -> Tensor:
        """``[N, height, width]`` bool masks of the record's instances."""
        masks = np.zeros((len(record["boxes"]), height, width), dtype=bool)
        for i, (segm, box, ann_id) in enumerate(zip(record["segmentations"], record["boxes"], record["ann_ids"])):
            try:
                mask = segmentation_to_mask(segm, height, width)
            except ValueError as e:
                raise ValueError(f"{self.ann_file}: annotation id {ann_id}: {e}") from None
            if mask is None:  # detection-only annotation: the box is the best mask we have
                if not self._warned_no_segmentation:
                    logger.warning("%s: annotation id %s has no usable segmentation; using its box as "
                                   "the mask (warned once)", self.ann_file, ann_id)
                    self._warned_no_segmentation = True
                x1, y1, x2, y2 = box
                masks[i, int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] = True
            else:
                masks[i] = mask.astype(bool)
        return torch.from_numpy(masks)

    def __getitem__(self, index: int) -> tuple[Tensor, Targets]:
        record = self._records[index]
        path = os.path.join(self.img_dir, record["file_name"])
        image = read_image(path)
        height, width = image.shape[-2:]
        if (height, width) != (record["height"], record["width"]):
            raise ValueError(
                f"{path}: image is {height}x{width} (HxW) but {self.ann_file} says "
                f"{record['height']}x{record['width']}"
            )
        targets = Targets(
            boxes=torch.tensor(record["boxes"], dtype=torch.float32).reshape(-1, 4),
            labels=torch.tensor(record["labels"], dtype=torch.int64),
            masks=self._decode_masks(record, height, width),
            image_id=record["image_id"],
            orig_size=(height, width),
            ignore_boxes=torch.tensor(record["ignore_boxes"], dtype=torch.float32).reshape(-1, 4),
        )
        if self.transforms is not None:
            image, targets = self.transforms(image, targets)
        if image.dtype == torch.uint8:
            image = image.float().div_(255.0)
        return image, targets
