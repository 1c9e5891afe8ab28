"""YouTube-VIS JSON reader (2019, 2021/2022 and OVIS share the schema; docs/design.md#datasets).

``videos[{id, width, height, length, file_names}]``, ``annotations[{id, video_id, category_id,
iscrowd, segmentations, bboxes, areas}]`` (one entry per frame, null where the object is absent) and
``categories[{id, name}]``. valid/test JSONs hold videos and categories only. The whole file is
checked on load, so a malformed dataset fails at once with the file and the problem named, not deep
inside a training epoch. Masks are decoded lazily, one frame at a time.

Per-frame segmentations may be compressed RLE (``counts`` a str), uncompressed RLE (``counts`` a
list of run lengths) or polygons (a list of flat [x0, y0, x1, y1, ...] lists), as in COCO.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils

from queryinst.image.data.files import check_images
from queryinst.image.rle import rle_problem, valid_polygon
from queryinst.image.types import Targets

_VIDEO_KEYS = ("id", "width", "height", "length", "file_names")
_ANNOTATION_KEYS = ("video_id", "category_id", "segmentations")


@dataclass(frozen=True)
class YTVISVideo:
    """One video: ``file_names[t]`` (as in the JSON) and ``frame_paths[t]`` for listed frame t.

    Listed frames need not be contiguous raw frames (YouTube-VIS lists every 5th: 00000.jpg, 00005.jpg).
    """

    id: int
    width: int
    height: int
    length: int
    file_names: tuple[str, ...]
    frame_paths: tuple[Path, ...]


@dataclass(frozen=True)
class YTVISAnnotation:
    """One object instance across a video; ``segmentations[t]`` is the raw JSON entry (None = absent)."""

    id: int
    video_id: int
    category_id: int
    label: int  # contiguous class index in [0, num_classes)
    iscrowd: bool
    segmentations: tuple[Any, ...]


@dataclass
class FrameTargets:
    """Ground truth of one frame as numpy arrays (H, W = the video's size).

    boxes: [N, 4] float32 xyxy pixels (tight box of the decoded mask); labels: [N] int64;
    masks: [N, H, W] bool; instance_ids: [N] int64 annotation ids, the identity of an object across
    the frames of a video; ignore_boxes [M, 4] / ignore_masks [M, H, W]: iscrowd=1 regions, never
    positives. Objects whose entry is null or whose mask is empty are absent from the frame.
    """

    boxes: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    instance_ids: np.ndarray
    ignore_boxes: np.ndarray
    ignore_masks: np.ndarray

    def to_targets(self, image_id: int) -> Targets:
        """The frame as the image pipeline's ``Targets`` (orig_size = the frame's (H, W)), with
        ``instance_ids`` set for the track loss."""
        return Targets(boxes=torch.from_numpy(self.boxes), labels=torch.from_numpy(self.labels),
                       masks=torch.from_numpy(self.masks), image_id=image_id,
                       orig_size=(int(self.masks.shape[1]), int(self.masks.shape[2])),
                       ignore_boxes=torch.from_numpy(self.ignore_boxes),
                       instance_ids=torch.from_numpy(self.instance_ids))


def load_frame(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 [H, W, 3]; FileNotFoundError / ValueError when missing / corrupt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: frame image not found")
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot decode the image (corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Decode one frame's entry (compressed RLE, uncompressed RLE or polygons) to a mask [H, W] bool."""
    if isinstance(segmentation, dict):
        counts = segmentation["counts"]
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    return mask_utils.decode(rle).astype(bool)


def _masks_to_boxes(masks: list[np.ndarray]) -> np.ndarray:
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
        boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


class YTVISDataset:
    """A parsed, validated YouTube-VIS split.

    json_path: the split's JSON; frames_root: the folder that ``file_names`` are relative to (the
    split's ``JPEGImages``). ``cat_ids[k]`` / ``class_names[k]`` describe contiguous label k (category
    ids sorted ascending). ``has_annotations`` is False for valid/test JSONs.
    """

    def __init__(self, json_path: str | os.PathLike, frames_root: str | os.PathLike) -> None:
        self.json_path = Path(json_path)
        self.frames_root = Path(frames_root)
        if not self.json_path.is_file():
            raise FileNotFoundError(f"{self.json_path}: YouTube-VIS JSON not found")
        if not self.frames_root.is_dir():
            raise FileNotFoundError(f"{self.frames_root}: frames folder (JPEGImages) not found")
        try:
            data = json.loads(self.json_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{self.json_path}: not valid JSON ({err})") from err
        if not isinstance(data, dict):
            raise ValueError(f"{self.json_path}: top level must be an object with 'videos' and 'categories'")
        for key in ("videos", "categories"):
            if key not in data:
                raise ValueError(f"{self.json_path}: missing key '{key}'")
            if not isinstance(data[key], list):
                raise ValueError(f"{self.json_path}: '{key}' must be a list")
        self._parse_categories(data["categories"])
        self._parse_videos(data["videos"])
        self.has_annotations = data.get("annotations") is not None
        self._annotations: list[list[YTVISAnnotation]] = [[] for _ in self.videos]
        self._annotation_ids: set = set()
        if self.has_annotations:
            if not isinstance(data["annotations"], list):
                raise ValueError(f"{self.json_path}: 'annotations' must be a list")
            for i, ann in enumerate(data["annotations"]):
                self._parse_annotation(i, ann)

    def check_frames(self) -> None:
        """Raise ValueError (the JSON named, every problem listed at once) when a listed frame is
        missing, unreadable or of another size than its video: run before training starts."""
        items = [(path, video.height, video.width) for video in self.videos for path in video.frame_paths]
        check_images(items, self.json_path, total=len(items))

    # --- parsing --------------------------------------------------------------------------------
    def _error(self, where: str, problem: str) -> ValueError:
        return ValueError(f"{self.json_path}: {where}: {problem}")

    def _parse_categories(self, categories: list) -> None:
        by_id: dict[int, str] = {}
        for i, cat in enumerate(categories):
            if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or "name" not in cat:
                raise self._error(f"categories[{i}]", "needs an integer 'id' and a 'name'")
            if cat["id"] in by_id:
                raise self._error(f"categories[{i}]", f"duplicate category id {cat['id']}")
            by_id[cat["id"]] = str(cat["name"])
        self.cat_ids: list[int] = sorted(by_id)
        self.class_names: list[str] = [by_id[c] for c in self.cat_ids]
        self.cat_id_to_label: dict[int, int] = {c: k for k, c in enumerate(self.cat_ids)}

    def _parse_videos(self, videos: list) -> None:
        self.videos: list[YTVISVideo] = []
        self._video_index: dict[int, int] = {}
        for i, video in enumerate(videos):
            where = f"videos[{i}]"
            if not isinstance(video, dict):
                raise self._error(where, "must be an object")
            missing = [k for k in _VIDEO_KEYS if k not in video]
            if missing:
                raise self._error(where, f"missing key(s) {missing}")
            for key in ("id", "width", "height", "length"):
                if not isinstance(video[key], int) or (key != "id" and video[key] < 1):
                    raise self._error(where, f"'{key}' must be a positive integer, got {video[key]!r}")
            names = video["file_names"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise self._error(where, "'file_names' must be a list of strings")
            if len(names) != video["length"]:
                raise self._error(where, f"{len(names)} file_names but length {video['length']}")
            if video["id"] in self._video_index:
                raise self._error(where, f"duplicate video id {video['id']}")
            self._video_index[video["id"]] = len(self.videos)
            self.videos.append(YTVISVideo(video["id"], video["width"], video["height"], video["length"],
                                          tuple(names), tuple(self.frames_root / n for n in names)))

    def _check_segmentation(self, where: str, seg: Any, video: YTVISVideo) -> None:
        if seg is None:
            return
        size = [video.height, video.width]
        if isinstance(seg, dict):
            if "counts" not in seg or "size" not in seg:
                raise self._error(where, "RLE needs 'size' and 'counts'")
            if list(seg["size"]) != size:
                raise self._error(where, f"RLE size {seg['size']} != video {video.id} size [height, width] {size}")
            problem = rle_problem(seg["counts"], video.height, video.width)
            if problem:
                raise self._error(where, problem)
        elif isinstance(seg, list) and seg:
            if not all(valid_polygon(polygon) for polygon in seg):
                raise self._error(where, "a polygon must be a flat list of >= 3 (x, y) number pairs")
        else:
            raise self._error(where, f"segmentation must be RLE, polygons or null, got {type(seg).__name__}")

    def _parse_annotation(self, i: int, ann: Any) -> None:
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise self._error(where, "must be an object")
        missing = [k for k in _ANNOTATION_KEYS if k not in ann]
        if missing:
            raise self._error(where, f"missing key(s) {missing}")
        where = f"annotations[{i}] (id {ann.get('id')})"
        if "id" in ann:  # keyed by id downstream (instance ids of the track loss): one would be lost
            if ann["id"] in self._annotation_ids:
                raise self._error(where, f"duplicate annotation id {ann['id']!r}")
            self._annotation_ids.add(ann["id"])
        if ann["video_id"] not in self._video_index:
            raise self._error(where, f"unknown video_id {ann['video_id']!r}")
        if ann["category_id"] not in self.cat_id_to_label:
            raise self._error(where, f"category_id {ann['category_id']!r} is not in 'categories'")
        video = self.videos[self._video_index[ann["video_id"]]]
        for key in ("segmentations", "bboxes", "areas"):
            values = ann.get(key)
            if values is not None and (not isinstance(values, list) or len(values) != video.length):
                count = len(values) if isinstance(values, list) else type(values).__name__
                raise self._error(where, f"'{key}' has {count} entries but video {video.id} has length {video.length}")
        for t, seg in enumerate(ann["segmentations"]):
            self._check_segmentation(f"{where} frame {t}", seg, video)
        self._annotations[self._video_index[ann["video_id"]]].append(YTVISAnnotation(
            int(ann.get("id", i + 1)), ann["video_id"], ann["category_id"],
            self.cat_id_to_label[ann["category_id"]], bool(ann.get("iscrowd", 0)), tuple(ann["segmentations"])))

    # --- access ---------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.cat_ids)

    def __len__(self) -> int:
        return len(self.videos)

    def video_index(self, video_id: int) -> int:
        """Position in ``videos`` of the video with this id."""
        if video_id not in self._video_index:
            raise KeyError(f"{self.json_path}: no video with id {video_id}")
        return self._video_index[video_id]

    def annotations(self, video_index: int) -> list[YTVISAnnotation]:
        """The instances of ``videos[video_index]`` (empty for a split without annotations)."""
        return self._annotations[video_index]

    def frame_targets(self, video_index: int, frame_index: int) -> tuple[Path, FrameTargets]:
        """The image path and ground truth of listed frame ``frame_index`` of ``videos[video_index]``."""
        if not self.has_annotations:
            raise ValueError(f"{self.json_path}: has no 'annotations' (a valid/test split): no targets to read")
        video = self.videos[video_index]
        if not 0 <= frame_index < video.length:
            raise IndexError(f"frame {frame_index} out of range for video {video.id} of length {video.length}")
        h, w = video.height, video.width
        masks, labels, ids, ignore = [], [], [], []
        for ann in self._annotations[video_index]:
            seg = ann.segmentations[frame_index]
            if seg is None:
                continue
            try:
                mask = decode_segmentation(seg, h, w)
            except Exception as err:  # pycocotools raises assorted types on bad input
                raise ValueError(f"{self.json_path}: annotation {ann.id} frame {frame_index}: cannot decode "
                                 f"segmentation ({err})") from err
            if not mask.any():
                continue
            if ann.iscrowd:
                ignore.append(mask)
            else:
                masks.append(mask)
                labels.append(ann.label)
                ids.append(ann.id)
        targets = FrameTargets(
            boxes=_masks_to_boxes(masks), labels=np.array(labels, dtype=np.int64),
            masks=np.stack(masks) if masks else np.zeros((0, h, w), dtype=bool),
            instance_ids=np.array(ids, dtype=np.int64), ignore_boxes=_masks_to_boxes(ignore),
            ignore_masks=np.stack(ignore) if ignore else np.zeros((0, h, w), dtype=bool))
        return video.frame_paths[frame_index], targets
