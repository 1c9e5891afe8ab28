"""Tracker oracle: ground-truth detections through the real tracker, aggregation and results writer.

It isolates association from detection: every GT instance of a frame becomes a detection with score
1, its true class, its true mask and box, and an embedding that either identifies it (a scaled one-hot
of its instance index plus Gaussian noise) or carries no identity (all zeros: association then rests on
box IoU and class, a motion-free "IoU tracker"). The resulting records are scored with the YouTube-VIS
evaluator like any submission.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...tracking.config import TrackerConfig
from ...tracking.tracker import OnlineTracker
from ...tracking.types import Detections
from ..data.ytvis import YTVISDataset
from ..inference import FrameResult, VideoTrackAccumulator, encode_masks


def oracle_records(split: YTVISDataset, tracker_cfg: TrackerConfig, identity: bool = True,
                   scale: float = 4.0, noise: float = 0.1, seed: int = 0) -> list[dict]:
    """Result records for every video of a labelled ``split`` from its own ground truth.

    identity: one-hot embeddings (x ``scale``, + N(0, ``noise``)) that identify each instance; False gives
    zero embeddings. Returns YouTube-VIS records (score 1 per frame, so each track's score is 1).
    """
    rng = np.random.default_rng(seed)
    records: list[dict] = []
    tracker = OnlineTracker(tracker_cfg)
    for v, video in enumerate(split.videos):
        ids = sorted(a.id for a in split.annotations(v) if not a.iscrowd)
        index_of = {i: k for k, i in enumerate(ids)}
        dim = max(1, len(ids))
        tracker.reset()
        acc = VideoTrackAccumulator(video.length)
        for f in range(video.length):
            _, gt = split.frame_targets(v, f)
            n = len(gt.labels)
            emb = np.zeros((n, dim))
            if identity and n:
                emb[np.arange(n), [index_of[int(i)] for i in gt.instance_ids]] = scale
                emb += rng.normal(0.0, noise, emb.shape)
            dets = Detections(boxes=gt.boxes, scores=np.ones(n), labels=gt.labels, embeddings=emb,
                              masks=list(gt.masks))
            tracked = tracker.update(dets, frame_index=f)
            masks = gt.masks[tracked.det_indices] if n else gt.masks
            acc.add(FrameResult(f, tracked.track_ids, tracked.boxes, tracked.scores, tracked.labels,
                                encode_masks(masks), None, video.height, video.width))
        records += acc.records(video.id, split.cat_ids)
    return records


def oracle_table(split: YTVISDataset, gt: dict, modes: Sequence[str] = ("hungarian", "masktrack"),
                 seed: int = 0) -> list[dict]:
    """Video AP of the oracle for each tracker mode, with and without identifying embeddings."""
    from .ytvis_eval import evaluate_ytvis

    rows = []
    for mode in modes:
        for identity in (True, False):
            metrics = evaluate_ytvis(gt, oracle_records(split, TrackerConfig(mode=mode), identity, seed=seed))
            rows.append({"mode": mode, "embeddings": "identity" if identity else "none", **metrics})
    return rows
