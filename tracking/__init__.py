"""Model-independent online tracker (numpy + scipy): MaskTrack R-CNN association, two assignment modes.

    tracker = OnlineTracker(TrackerConfig(mode="hungarian"))
    for frame_dets in frames:                      # Detections(boxes, scores, labels, embeddings, masks)
        tracked = tracker.update(frame_dets)       # TrackedDetections(..., track_ids, det_indices)
"""
from .association import (
    association_scores,
    box_iou,
    embedding_log_likelihood,
    hungarian_assign,
    masktrack_assign,
)
from .config import TrackerConfig
from .memory import Track, TrackMemory
from .tracker import OnlineTracker
from .types import Detections, TrackedDetections

__all__ = [
    "Detections",
    "OnlineTracker",
    "Track",
    "TrackMemory",
    "TrackedDetections",
    "TrackerConfig",
    "association_scores",
    "box_iou",
    "embedding_log_likelihood",
    "hungarian_assign",
    "masktrack_assign",
]
