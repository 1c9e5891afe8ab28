"""Online tracker settings.

Two association modes share one score (MaskTrack R-CNN, Yang et al. ICCV 2019, Sec. 3.2;
docs/design.md#online-tracker):

``masktrack``  MaskTrack R-CNN's test-time rules as mmdetection 3.x's ``MaskTrackRCNNTracker`` has them
               (the same ids on every frame, tested): per-detection argmax, losers of a contested track
               dropped, tracks deleted after ``max_unseen`` frames unseen, track labels follow the
               latest detection. The 2019 code (youtubevos/MaskTrackRCNN) never deleted tracks nor
               updated their labels; ``max_unseen`` set above the video length restores the first.
``hungarian``  (default) a one-to-one assignment maximising the total score, with unseen tracks
               pruned (as mmtracking's MaskTrackRCNNTracker) and majority-vote track labels; no
               detection is ever dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

MODES = ("masktrack", "hungarian")


@dataclass
class TrackerConfig:
    """Settings of ``OnlineTracker``.

    mode: "masktrack" (MaskTrack R-CNN as mmdetection) or "hungarian" (default; see the module docstring).
    match_coeff: weights of (log detection score, box IoU, same label) added to the embedding
        log-likelihood: MaskTrack R-CNN config ``match_coeff=[1.0, 2.0, 10]``; mmtracking
        ``match_weights=dict(det_score=1.0, iou=2.0, det_label=10.0)``.
    max_unseen: a track can be matched again up to ``max_unseen`` frames after it was last seen. Hungarian
        mode deletes a track when ``frame_index - last_seen > max_unseen`` at the start of a frame;
        masktrack mode, as mmdetection's ``num_frames_retain=20``, once ``frame_index - last_seen >=
        max_unseen`` at the end of a frame that has detections (the two differ only after frames
        without detections).
    min_score: detections with ``score < min_score`` are removed before association and are absent from
        the output. 0.0 keeps everything: the detector's own threshold already applied (QueryInst keeps
        the top-k with no threshold, paper Sec. 3.3).
    label_from_history: hungarian mode only. True: a track's label is the majority of the labels of
        the detections it was matched to (ties go to the current detection's label, then to the smallest
        index); it is reported in the output and used by the label term of the score. False: the latest
        detection's label (mmdetection), which masktrack mode always uses.
    new_track_bias: hungarian mode only; added to the "new track" score S[:, 0] before the assignment.
        0.0 keeps MaskTrack's decision rule (a detection starts a track when S[i, 0] beats the track it
        would get); > 0 favours new tracks, < 0 favours matches.
    embedding_momentum: hungarian mode only; matched track embedding becomes
        ``momentum * old + (1 - momentum) * new``. 0.0 replaces it, as MaskTrack R-CNN does.
    duplicate_iou: a detection whose box IoU with a higher-scoring detection of the same frame exceeds
        this is removed before association (greedy, class-agnostic, like NMS). 1.0 (default) keeps every
        detection: QueryInst's inference has no NMS (paper Sec. 3; set prediction), MaskTrack R-CNN's
        detector applies its own. A set-prediction detector trained briefly still emits near-identical
        duplicates (two queries on one object at similar scores), and each would open a track; the
        shipped demo config uses 0.7.
    """

    mode: str = "hungarian"
    match_coeff: tuple[float, float, float] = (1.0, 2.0, 10.0)  # MaskTrack R-CNN config match_coeff
    max_unseen: int = 20  # mmtracking masktrack_rcnn config: num_frames_retain=20
    min_score: float = 0.0  # keep every detection (QueryInst inference has no score threshold)
    label_from_history: bool = True  # majority vote, as the per-video aggregation (docs/design.md#queryinst-vis)
    new_track_bias: float = 0.0  # 0: MaskTrack's own new-vs-match decision rule
    embedding_momentum: float = 0.0  # 0: replace, as MaskTrack R-CNN's memory update
    duplicate_iou: float = 1.0  # 1.0: no duplicate removal (QueryInst inference has no NMS)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"TrackerConfig.mode must be one of {MODES}, got {self.mode!r}")
        if len(tuple(self.match_coeff)) != 3:
            raise ValueError(
                f"TrackerConfig.match_coeff needs 3 weights (log score, IoU, label), got {self.match_coeff!r}"
            )
        self.match_coeff = tuple(float(c) for c in self.match_coeff)  # type: ignore[assignment]
        if self.max_unseen < 0:
            raise ValueError(f"TrackerConfig.max_unseen must be >= 0, got {self.max_unseen}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"TrackerConfig.min_score must be in [0, 1], got {self.min_score}")
        if not 0.0 < self.duplicate_iou <= 1.0:
            raise ValueError(f"TrackerConfig.duplicate_iou must be in (0, 1], got {self.duplicate_iou}")
        if not 0.0 <= self.embedding_momentum < 1.0:
            raise ValueError(
                f"TrackerConfig.embedding_momentum must be in [0, 1), got {self.embedding_momentum}"
            )
