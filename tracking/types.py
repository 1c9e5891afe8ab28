"""The tracker's input and output containers: per-frame ``Detections`` and ``TrackedDetections``.

Everything is numpy. Torch tensors are accepted and converted (``detach``/``cpu`` are called when the
object has them, then ``np.asarray``), so this package never imports torch. Masks are opaque: the tracker
never looks at them, it only selects the entries of the detections it keeps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def _to_numpy(x: Any, dtype: type, name: str) -> np.ndarray:
    """Convert an array-like (numpy array, list, torch tensor on any device) to a numpy array."""
    if hasattr(x, "detach"):  # torch.Tensor: drop autograd before leaving torch
        x = x.detach()
    if hasattr(x, "cpu"):
        x = x.cpu()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"Detections.{name}: cannot convert {type(x).__name__} to a numpy array: {err}"
        ) from err


def select_masks(masks: Any, indices: np.ndarray) -> Any:
    """Pick ``masks[indices]`` without interpreting the entries.

    masks: None, an array-like with a leading detection axis ([N, H, W] numpy array or tensor), or any
        sequence of N per-detection objects (RLE dicts, arrays, ...).
    indices: [K] int positions into the detection axis.
    Returns None, an array-like of K entries, or a list of K entries (same kind as the input).
    """
    if masks is None:
        return None
    if hasattr(masks, "shape"):  # numpy array / torch tensor: fancy indexing keeps the type
        return masks[np.asarray(indices, dtype=np.int64)]
    return [masks[int(i)] for i in indices]


def _check_lengths(n: int, masks: Any, embeddings: np.ndarray, scores: np.ndarray,
                   labels: np.ndarray, cls: str) -> None:
    if scores.shape != (n,):
        raise ValueError(f"{cls}.scores must have shape [{n}], got {list(scores.shape)}")
    if labels.shape != (n,):
        raise ValueError(f"{cls}.labels must have shape [{n}], got {list(labels.shape)}")
    if embeddings.ndim != 2 or embeddings.shape[0] != n:
        raise ValueError(f"{cls}.embeddings must have shape [{n}, D], got {list(embeddings.shape)}")
    if masks is not None and len(masks) != n:
        raise ValueError(f"{cls}.masks must hold {n} entries (one per box), got {len(masks)}")


@dataclass
class Detections:
    """The detections of one frame, the tracker's only input.

    boxes: [N, 4] float64 xyxy, absolute pixels.
    scores: [N] float64 detection confidences in [0, 1].
    labels: [N] int64 class indices.
    embeddings: [N, D] float64 track-head embeddings (MaskTrack R-CNN: raw FC output, not normalised;
        the association uses the raw dot product, as the original track head does).
    masks: None or N per-detection entries of any kind (RLE dicts, [H, W] arrays, an [N, H, W]
        array/tensor); carried to the output untouched.

    Inputs may be numpy arrays, nested lists or torch tensors; they are converted in ``__post_init__``.
    An empty box array of any shape with zero elements becomes [0, 4].
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    embeddings: np.ndarray
    masks: Any = None  # None, or N opaque per-detection entries (list or [N, ...] array)

    def __post_init__(self) -> None:
        self.boxes = _to_numpy(self.boxes, np.float64, "boxes")
        if self.boxes.size == 0:
            self.boxes = self.boxes.reshape(0, 4)
        if self.boxes.ndim != 2 or self.boxes.shape[1] != 4:
            raise ValueError(f"Detections.boxes must have shape [N, 4], got {list(self.boxes.shape)}")
        self.scores = _to_numpy(self.scores, np.float64, "scores").reshape(-1)
        self.labels = _to_numpy(self.labels, np.int64, "labels").reshape(-1)
        self.embeddings = _to_numpy(self.embeddings, np.float64, "embeddings")
        _check_lengths(len(self.boxes), self.masks, self.embeddings, self.scores, self.labels,
                       "Detections")

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def dim(self) -> int:
        """D, the embedding size."""
        return int(self.embeddings.shape[1])

    @classmethod
    def empty(cls, dim: int) -> "Detections":
        """A frame without detections, with embeddings of size ``dim`` ([0, dim])."""
        return cls(
            boxes=np.zeros((0, 4)),
            scores=np.zeros(0),
            labels=np.zeros(0, dtype=np.int64),
            embeddings=np.zeros((0, dim)),
            masks=None,
        )

    def select(self, indices: np.ndarray) -> "Detections":
        """The detections at ``indices`` ([K] int), in that order; masks are selected, not copied."""
        indices = np.asarray(indices, dtype=np.int64)
        return Detections(
            boxes=self.boxes[indices],
            scores=self.scores[indices],
            labels=self.labels[indices],
            embeddings=self.embeddings[indices],
            masks=select_masks(self.masks, indices),
        )


@dataclass
class TrackedDetections:
    """The detections of one frame that the tracker kept, each with its track id.

    boxes: [K, 4] float64 xyxy pixels; scores: [K] float64; embeddings: [K, D] float64;
    masks: None or the K kept entries of ``Detections.masks``, untouched.
    labels: [K] int64. In ``hungarian`` mode with ``label_from_history`` this is the track's label
        (majority of its label history, current frame included); otherwise the detection's own label.
    track_ids: [K] int64 track ids (>= 1).
    det_indices: [K] int64 index of each kept detection in the ``Detections`` given to ``update``, in
        increasing order. K < N when ``min_score`` filters detections or ``masktrack`` mode drops the
        losers of a contested track.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    embeddings: np.ndarray
    track_ids: np.ndarray
    det_indices: np.ndarray
    masks: Any = None  # None, or N opaque per-detection entries (list or [N, ...] array)

    def __post_init__(self) -> None:
        n = len(self.boxes)
        _check_lengths(n, self.masks, self.embeddings, self.scores, self.labels, "TrackedDetections")
        if self.track_ids.shape != (n,) or self.det_indices.shape != (n,):
            raise ValueError(f"TrackedDetections.track_ids and det_indices must have shape [{n}]")

    def __len__(self) -> int:
        return int(self.boxes.shape[0])
