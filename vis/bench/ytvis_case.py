"""A synthetic YouTube-VIS split and results to time ``evaluate_ytvis`` on (``tools/benchmark.py``).

Tracks are moving boxes written straight as RLEs (no dense masks), so building a 300-video case is
cheap; the case still has what makes the evaluation work hard: several categories per video, missing
frames (null), crowd GT, wrong-class and duplicate predictions and tied scores.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

_NUM_CATEGORIES = 40  # YouTube-VIS 2019/2021 both have 40 categories (docs/design.md#datasets)


def make_benchmark_case(num_videos: int = 300, preds_per_video: int = 10, height: int = 240, width: int = 320,
                        length: int = 10, seed: int = 0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Build a synthetic annotated split and a result list for it.

    Each video holds 1-3 GT tracks (5% crowd) that enter late or leave early (null frames); its
    ``preds_per_video`` predictions are jittered copies of the GTs (20% with a wrong class) and
    random boxes, scored with two decimals so that ties occur.

    Returns:
        (gt, results): ``gt`` a YouTube-VIS annotation dict (videos, categories, annotations with
        compressed RLEs and ``areas``); ``results`` a list of ``num_videos * preds_per_video`` records.
    """
    rng = np.random.default_rng(seed)
    categories = [{"id": k + 1, "name": f"class{k + 1}"} for k in range(_NUM_CATEGORIES)]
    videos, annotations, results = [], [], []
    for v in range(num_videos):
        video_id = v + 1
        videos.append({"id": video_id, "height": height, "width": width, "length": length,
                       "file_names": [f"{video_id:05d}/{f:05d}.jpg" for f in range(length)]})
        gt_boxes = []
        for _ in range(int(rng.integers(1, 4))):
            boxes = _random_track(rng, height, width, length)
            category = int(rng.integers(1, _NUM_CATEGORIES + 1))
            gt_boxes.append((boxes, category))
            rles = [_box_rle(box, height, width) for box in boxes]
            annotations.append({
                "id": len(annotations) + 1, "video_id": video_id, "category_id": category,
                "iscrowd": int(rng.random() < 0.05), "segmentations": rles,
                "areas": [None if rle is None else int(mask_utils.area(rle)) for rle in rles],
                "bboxes": [None if box is None else [box[1], box[0], box[3] - box[1], box[2] - box[0]]
                           for box in boxes],
            })
        for p in range(preds_per_video):
            if p < len(gt_boxes):
                boxes, category = gt_boxes[p]
                boxes = [None if box is None or rng.random() < 0.1 else _jitter(rng, box, height, width)
                         for box in boxes]
                if rng.random() < 0.2:
                    category = int(rng.integers(1, _NUM_CATEGORIES + 1))
            else:
                boxes = _random_track(rng, height, width, length)
                category = int(rng.integers(1, _NUM_CATEGORIES + 1))
            results.append({"video_id": video_id, "category_id": category,
                            "score": round(float(rng.random()), 2),
                            "segmentations": [_box_rle(box, height, width) for box in boxes]})
    return {"videos": videos, "categories": categories, "annotations": annotations}, results


def _random_track(rng: np.random.Generator, height: int, width: int, length: int) -> list[tuple | None]:
    """[length] boxes (y0, x0, y1, x1) moving at constant speed, None outside a random span."""
    box_h = int(rng.integers(max(1, height // 12), max(2, height // 2)))
    box_w = int(rng.integers(max(1, width // 12), max(2, width // 2)))
    y, x = rng.uniform(0, height - box_h), rng.uniform(0, width - box_w)
    vy, vx = rng.uniform(-3, 3), rng.uniform(-3, 3)
    first = int(rng.integers(0, max(1, length // 3)))
    last = int(rng.integers(first + 1, length + 1))
    track = []
    for f in range(length):
        if not first <= f < last:
            track.append(None)
            continue
        y0 = int(np.clip(y + vy * f, 0, height - box_h))
        x0 = int(np.clip(x + vx * f, 0, width - box_w))
        track.append((y0, x0, y0 + box_h, x0 + box_w))
    return track


def _jitter(rng: np.random.Generator, box: tuple, height: int, width: int) -> tuple:
    """Move each side of ``box`` by up to 6 pixels, kept inside the frame (may become empty)."""
    y0, x0, y1, x1 = (int(c) for c in np.asarray(box) + rng.integers(-6, 7, size=4))
    y0, y1 = int(np.clip(y0, 0, height)), int(np.clip(y1, 0, height))
    x0, x1 = int(np.clip(x0, 0, width)), int(np.clip(x1, 0, width))
    return y0, x0, max(y0, y1), max(x0, x1)


def _box_rle(box: tuple | None, height: int, width: int) -> dict | None:
    """Compressed RLE (counts as str) of the box [y0, y1) × [x0, x1), or None for None.

    COCO RLEs run over the mask in column-major order, starting with a run of zeros.
    """
    if box is None:
        return None
    y0, x0, y1, x1 = box
    if y1 <= y0 or x1 <= x0:
        counts = [height * width]
    else:
        ones = y1 - y0
        counts = [x0 * height + y0]
        for _ in range(x0, x1 - 1):
            counts += [ones, height - ones]
        counts += [ones, height * width - (x1 - 1) * height - y1]
    rle = mask_utils.frPyObjects({"counts": counts, "size": [height, width]}, height, width)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}
