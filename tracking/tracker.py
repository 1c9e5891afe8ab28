"""OnlineTracker: frame-by-frame association of detections into tracks (MaskTrack R-CNN style).

Per frame (``update``):
  1. drop detections with score < ``min_score``;
  2. hungarian mode: delete tracks unseen for more than ``max_unseen`` frames;
  3. empty memory -> every detection opens a track; otherwise score S = ``association_scores`` and
     assign (``masktrack_assign`` or ``hungarian_assign``, see ``association.py``);
  4. write the memory: matched tracks take the detection's box and embedding, new tracks are appended
     with the next ids; labels follow the mode's rule (``TrackerConfig``);
  5. masktrack mode, on a frame with detections: delete tracks unseen for ``max_unseen`` frames or more
     (mmdetection's ``BaseTracker.pop_invalid_tracks``; same frames of grace as step 2 between frames
     that have detections).

The tracker is model-independent (numpy + scipy only) and deterministic: the same sequence of inputs
always gives the same ids. Ids start at 1 and increase in order of creation (detection order within a
frame); ids are never reused, even after deletion.
"""
from __future__ import annotations

import logging

import numpy as np

from .association import (DROPPED, NEW, association_scores, hungarian_assign, masktrack_assign,
                          suppress_duplicates)
from .config import TrackerConfig
from .memory import Track, TrackMemory
from .types import Detections, TrackedDetections, select_masks

logger = logging.getLogger(__name__)


class OnlineTracker:
    """Online tracker over per-frame ``Detections``.

    Args:
        cfg: ``TrackerConfig``; mode "hungarian" (default) or "masktrack" (MaskTrack R-CNN as mmdetection).

    Mode summary (details in ``TrackerConfig`` and ``association.py``):
        masktrack: mmdetection 3.x ``MaskTrackRCNNTracker`` (mmdet/models/trackers/masktrack_rcnn_tracker.py),
            identical track ids frame by frame (tests/tracking/test_mmdet_tracker_reference.py):
            argmax per detection; a matched track takes the latest box, embedding and label; tracks
            unseen for ``max_unseen`` frames are deleted. One deliberate difference: when several
            detections pick one track, only the best keeps it and the others are dropped, where
            mmdetection also leaves the id on every earlier, beaten claimant (its own "TODO: fix the
            bug where multiple candidate might match with the same previous object"), so one frame
            could hold one id twice.
        hungarian: one-to-one assignment maximising total S, each detection free to open a track
            instead; tracks unseen for more than ``max_unseen`` frames are deleted; track labels by
            majority vote of the label history (or latest, ``label_from_history=False``); every
            detection above ``min_score`` is in the output.
    """

    def __init__(self, cfg: TrackerConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else TrackerConfig()
        self._memory = TrackMemory()
        self._next_id = 1
        self._last_frame: int | None = None

    def reset(self) -> None:
        """Forget every track and restart ids at 1 and the frame counter at 0 (call between videos)."""
        self._memory.clear()
        self._next_id = 1
        self._last_frame = None

    @property
    def tracks(self) -> tuple[Track, ...]:
        """Read-only snapshot of the live tracks, ordered by id (does not follow later updates)."""
        return self._memory.snapshot()

    @property
    def num_tracks(self) -> int:
        """Number of live tracks in memory."""
        return len(self._memory)

    def update(self, dets: Detections, frame_index: int | None = None) -> TrackedDetections:
        """Associate one frame's detections with the tracks and update the memory.

        Args:
            dets: N detections of the frame (boxes [N, 4] xyxy px, scores [N], labels [N],
                embeddings [N, D], optional masks); N may be 0.
            frame_index: index of the frame in the video; must increase from call to call (gaps are
                allowed, e.g. for a frame stride, and count as unseen frames). None: previous + 1,
                starting at 0.
        Returns:
            ``TrackedDetections`` with the K <= N kept detections in input order, their ``track_ids``
            [K] and ``det_indices`` [K] (position in ``dets``).
        """
        if not isinstance(dets, Detections):
            raise TypeError(f"OnlineTracker.update expects Detections, got {type(dets).__name__}")
        memory, cfg = self._memory, self.cfg
        if len(dets) and memory.dim is not None and dets.dim != memory.dim:
            raise ValueError(
                f"OnlineTracker.update: embeddings have size {dets.dim} but the tracks have {memory.dim}"
            )
        frame_index = self._advance_frame(frame_index)  # after the checks: a rejected call changes nothing

        det_indices = np.arange(len(dets), dtype=np.int64)
        if cfg.min_score > 0.0:
            det_indices = np.flatnonzero(dets.scores >= cfg.min_score)
            dets = dets.select(det_indices)
        if cfg.duplicate_iou < 1.0 and len(dets) > 1:
            keep = suppress_duplicates(dets.boxes, dets.scores, cfg.duplicate_iou)
            det_indices = det_indices[keep]
            dets = dets.select(keep)

        hungarian = cfg.mode == "hungarian"
        if hungarian and len(memory):
            alive = ~memory.stale(frame_index, cfg.max_unseen)
            if not alive.all():
                logger.debug("frame %d: deleting tracks %s", frame_index, memory.ids[~alive].tolist())
                memory.keep(alive)

        if len(memory) == 0 or len(dets) == 0:  # first frame / empty memory: every detection is new
            assignment = np.full(len(dets), NEW, dtype=np.int64)
        else:
            scores = association_scores(dets, memory, match_coeff=cfg.match_coeff)
            if hungarian:
                assignment = hungarian_assign(scores, cfg.new_track_bias)
            else:
                assignment = masktrack_assign(scores)

        track_ids = np.full(len(dets), -1, dtype=np.int64)
        labels = dets.labels.copy()

        # Matched detections: update their tracks (rows are distinct in both modes).
        matched = np.flatnonzero(assignment > NEW)
        rows = assignment[matched] - 1
        track_ids[matched] = memory.ids[rows]
        momentum = cfg.embedding_momentum if hungarian else 0.0
        memory.update(rows, dets.embeddings[matched], dets.boxes[matched], dets.labels[matched],
                      dets.scores[matched], frame_index, embedding_momentum=momentum)
        if hungarian and cfg.label_from_history:
            track_labels = memory.majority_labels(rows, preferred=dets.labels[matched])
            labels[matched] = track_labels
        else:  # masktrack and label_from_history=False: the latest detection's label (mmdetection)
            track_labels = dets.labels[matched]
        memory.set_labels(rows, track_labels)

        # New tracks, ids in detection order.
        new = np.flatnonzero(assignment == NEW)
        new_ids = np.arange(self._next_id, self._next_id + len(new), dtype=np.int64)
        self._next_id += len(new)
        track_ids[new] = new_ids
        memory.add(new_ids, dets.embeddings[new], dets.boxes[new], dets.labels[new], dets.scores[new],
                   frame_index)

        if not hungarian and len(dets):
            # mmdetection's BaseTracker.pop_invalid_tracks, after each frame that has detections:
            # tracks unseen for num_frames_retain (= max_unseen) frames or more are deleted.
            memory.keep(~memory.stale(frame_index, cfg.max_unseen - 1))

        kept = np.flatnonzero(assignment != DROPPED)
        if len(kept) < len(dets):
            logger.debug("frame %d: dropped %d detections competing for a track", frame_index,
                         len(dets) - len(kept))
        return TrackedDetections(
            boxes=dets.boxes[kept],
            scores=dets.scores[kept],
            labels=labels[kept],
            embeddings=dets.embeddings[kept],
            track_ids=track_ids[kept],
            det_indices=det_indices[kept],
            masks=select_masks(dets.masks, kept),
        )

    def _advance_frame(self, frame_index: int | None) -> int:
        """Check and record the frame index of the current ``update``."""
        if frame_index is None:
            frame_index = 0 if self._last_frame is None else self._last_frame + 1
        frame_index = int(frame_index)
        if self._last_frame is not None and frame_index <= self._last_frame:
            raise ValueError(
                f"OnlineTracker.update: frame_index must increase, got {frame_index} after "
                f"{self._last_frame} (call reset() before a new video)"
            )
        self._last_frame = frame_index
        return frame_index
