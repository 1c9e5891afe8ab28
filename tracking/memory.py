"""Track memory: the state the online tracker keeps between frames, stored as stacked arrays.

Row r of every array describes the same track. Rows are in creation order (so ids increase down the
rows); deleting tracks keeps that order. The association reads ``embeddings``, ``boxes`` and ``labels``
directly as [M, ...] arrays, so scoring M tracks is one matrix product, not a Python loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _frozen_copy(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class Track:
    """Read-only snapshot of one live track (see ``OnlineTracker.tracks``).

    track_id: id (>= 1) reported in ``TrackedDetections.track_ids``.
    box: [4] float64 xyxy pixels of the last matched detection.
    embedding: [D] float64 embedding used for association (latest, or a running average when
        ``embedding_momentum > 0``).
    label: class index used by the label term of the score and reported for the track.
    label_counts: class index -> number of matched detections with that label.
    first_frame, last_frame: frame indices where the track was first and last matched.
    num_hits: number of detections matched to the track (first one included).
    mean_score, last_score: mean and latest detection score of the matched detections.
    """

    track_id: int
    box: np.ndarray
    embedding: np.ndarray
    label: int
    label_counts: dict[int, int]
    first_frame: int
    last_frame: int
    num_hits: int
    mean_score: float
    last_score: float


class TrackMemory:
    """Per-track state of the tracker, M live tracks with D-dimensional embeddings.

    Arrays (row r = one track, rows in creation order):
        ids [M] int64, embeddings [M, D] float64, boxes [M, 4] float64 xyxy pixels, labels [M] int64,
        first_frame [M] int64, last_frame [M] int64, num_hits [M] int64, score_sum [M] float64,
        last_score [M] float64; plus ``label_counts``, a list of M dicts (class index -> count).

    The memory only stores; the tracker decides what to write (which label rule, which rows to delete).
    Score history is kept as a running sum and count (bounded memory for any video length).
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every track. The embedding size is fixed again by the next ``add``."""
        self.ids = np.zeros(0, dtype=np.int64)
        self.embeddings = np.zeros((0, 0))
        self.boxes = np.zeros((0, 4))
        self.labels = np.zeros(0, dtype=np.int64)
        self.first_frame = np.zeros(0, dtype=np.int64)
        self.last_frame = np.zeros(0, dtype=np.int64)
        self.num_hits = np.zeros(0, dtype=np.int64)
        self.score_sum = np.zeros(0)
        self.last_score = np.zeros(0)
        self.label_counts: list[dict[int, int]] = []
        self._dim: int | None = None

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def dim(self) -> int | None:
        """D, the embedding size, or None until the first ``add`` after construction or ``clear``."""
        return self._dim

    def add(self, ids: np.ndarray, embeddings: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
            scores: np.ndarray, frame_index: int) -> None:
        """Append K new tracks, each opened by one detection of frame ``frame_index``.

        ids: [K] int new track ids (larger than every id in memory); embeddings: [K, D];
        boxes: [K, 4] xyxy pixels; labels: [K] int; scores: [K] float.
        """
        k = int(len(ids))
        if k == 0:
            return
        if self._dim is None:
            self._dim = int(embeddings.shape[1])
            self.embeddings = np.zeros((0, self._dim))
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        self.embeddings = np.concatenate([self.embeddings, embeddings], axis=0)
        self.boxes = np.concatenate([self.boxes, boxes], axis=0)
        self.labels = np.concatenate([self.labels, np.asarray(labels, dtype=np.int64)])
        frames = np.full(k, frame_index, dtype=np.int64)
        self.first_frame = np.concatenate([self.first_frame, frames])
        self.last_frame = np.concatenate([self.last_frame, frames])
        self.num_hits = np.concatenate([self.num_hits, np.ones(k, dtype=np.int64)])
        self.score_sum = np.concatenate([self.score_sum, scores])
        self.last_score = np.concatenate([self.last_score, scores])
        self.label_counts.extend({int(lab): 1} for lab in labels)

    def update(self, rows: np.ndarray, embeddings: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
               scores: np.ndarray, frame_index: int, embedding_momentum: float = 0.0) -> None:
        """Record that detections were matched to the tracks at ``rows`` in frame ``frame_index``.

        rows: [K] distinct row indices; embeddings: [K, D]; boxes: [K, 4]; labels: [K] detection labels
        (counted in the label history; ``self.labels`` is left to the tracker, see ``set_labels``);
        scores: [K]. The box is replaced (MaskTrack R-CNN keeps the latest box); the embedding becomes
        ``m * old + (1 - m) * new`` with m = ``embedding_momentum`` (0 replaces, as MaskTrack R-CNN).
        """
        if len(rows) == 0:
            return
        assert len(np.unique(rows)) == len(rows), "a track can be updated once per frame"
        if embedding_momentum > 0.0:
            m = embedding_momentum
            self.embeddings[rows] = m * self.embeddings[rows] + (1.0 - m) * embeddings
        else:
            self.embeddings[rows] = embeddings
        self.boxes[rows] = boxes
        self.last_frame[rows] = frame_index
        self.num_hits[rows] += 1
        self.score_sum[rows] += scores
        self.last_score[rows] = scores
        for r, lab in zip(rows.tolist(), labels.tolist()):
            counts = self.label_counts[r]
            counts[lab] = counts.get(lab, 0) + 1

    def set_labels(self, rows: np.ndarray, labels: np.ndarray) -> None:
        """Set the label (used for association and reporting) of the tracks at ``rows`` ([K], [K])."""
        self.labels[rows] = labels

    def majority_labels(self, rows: np.ndarray, preferred: np.ndarray) -> np.ndarray:
        """Most frequent label in the history of each track at ``rows`` ([K] -> [K] int64).

        Ties go to ``preferred[k]`` (the current detection's label) when it is among the most frequent,
        otherwise to the smallest class index, so the result is deterministic.
        """
        out = np.empty(len(rows), dtype=np.int64)
        for k, (r, pref) in enumerate(zip(rows.tolist(), preferred.tolist())):
            counts = self.label_counts[r]
            best = max(counts.values())
            out[k] = pref if counts.get(pref, 0) == best else min(c for c, n in counts.items() if n == best)
        return out

    def stale(self, frame_index: int, max_unseen: int) -> np.ndarray:
        """[M] bool: tracks last matched more than ``max_unseen`` frames before ``frame_index``."""
        return (frame_index - self.last_frame) > max_unseen

    def keep(self, mask: np.ndarray) -> None:
        """Delete every track whose entry in ``mask`` ([M] bool) is False; row order is kept."""
        if mask.all():
            return
        self.ids = self.ids[mask]
        self.embeddings = self.embeddings[mask]
        self.boxes = self.boxes[mask]
        self.labels = self.labels[mask]
        self.first_frame = self.first_frame[mask]
        self.last_frame = self.last_frame[mask]
        self.num_hits = self.num_hits[mask]
        self.score_sum = self.score_sum[mask]
        self.last_score = self.last_score[mask]
        self.label_counts = [c for c, k in zip(self.label_counts, mask.tolist()) if k]

    def snapshot(self) -> tuple[Track, ...]:
        """Read-only copies of the live tracks, ordered by id (arrays are copies marked non-writeable)."""
        return tuple(
            Track(
                track_id=int(self.ids[r]),
                box=_frozen_copy(self.boxes[r]),
                embedding=_frozen_copy(self.embeddings[r]),
                label=int(self.labels[r]),
                label_counts=dict(self.label_counts[r]),
                first_frame=int(self.first_frame[r]),
                last_frame=int(self.last_frame[r]),
                num_hits=int(self.num_hits[r]),
                mean_score=float(self.score_sum[r] / self.num_hits[r]),
                last_score=float(self.last_score[r]),
            )
            for r in range(len(self))
        )
