"""Tracks as MOT-challenge text files, for the trackers' own tooling (TrackEval, py-motmetrics).

MOT (MOT16/17/20 ``gt.txt`` / results layout), one line per tracked box::

    <frame>,<id>,<x>,<y>,<w>,<h>,<score>,-1,-1,-1

with 1-based frame numbers, the box's top-left corner and size in pixels.

MOTS (MOTS20 / KITTI-MOTS ``instances_txt`` layout), one line per tracked mask::

    <frame> <class_id * 1000 + id> <class_id> <height> <width> <rle counts>

with the COCO compressed RLE string of the mask (column-major, as pycocotools writes it). MOTS files
count frames from 1 as MOT does here (KITTI-MOTS itself counts from 0: ``frame_offset=0``). Track ids
must stay below 1000 for the combined id to decode; class ids are the dataset's category ids.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

MOTS_ID_BASE = 1000  # object id = class id * 1000 + instance id (MOTS convention)


def mot_lines(frame_number: int, track_ids: Sequence[int], boxes: np.ndarray, scores: Sequence[float]) -> list[str]:
    """MOT lines of one frame; ``frame_number`` is already 1-based, boxes are [K, 4] xyxy pixels."""
    out = []
    for tid, (x1, y1, x2, y2), score in zip(track_ids, np.asarray(boxes, dtype=np.float64).reshape(-1, 4), scores):
        out.append(f"{frame_number},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{float(score):.4f},-1,-1,-1")
    return out


def mots_lines(frame_number: int, track_ids: Sequence[int], class_ids: Sequence[int], rles: Iterable[dict]) -> list[str]:
    """MOTS lines of one frame: compressed RLEs ({"size": [h, w], "counts": str}) of the tracked masks."""
    out = []
    for tid, cls, rle in zip(track_ids, class_ids, rles):
        if not 0 <= int(tid) < MOTS_ID_BASE:
            raise ValueError(f"track id {tid} does not fit the MOTS id scheme (class * {MOTS_ID_BASE} + id)")
        h, w = rle["size"]
        counts = rle["counts"].decode("ascii") if isinstance(rle["counts"], bytes) else rle["counts"]
        out.append(f"{frame_number} {int(cls) * MOTS_ID_BASE + int(tid)} {int(cls)} {int(h)} {int(w)} {counts}")
    return out
