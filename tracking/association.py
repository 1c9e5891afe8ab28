"""Association of detections with tracks: box IoU, the MaskTrack R-CNN score, and the two assignments.

Score (MaskTrack R-CNN, Yang et al. ICCV 2019, Sec. 3.2 and its test-time code), for
detection i and column j of [new, track 1, ..., track M]:

    S[i, j] = log_softmax_j([0, e_i·m_1, ..., e_i·m_M])
              + c_score · log(s_i) + c_iou · IoU(b_i, b_j) + c_label · [l_i == l_j]

with the "new" column (j = 0) taking IoU := 0 and label term := 1, i.e. S[i, 0] = log p_i(new)
+ c_score · log(s_i) + c_label. (c_score, c_iou, c_label) = (1, 2, 10) in MaskTrack R-CNN. The
embedding term is the raw dot product of un-normalised embeddings, as the original track head.

Everything here is a pure numpy function, so it can be tested on hand-built matrices.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .memory import TrackMemory
from .types import Detections

# Column of S meaning "start a new track"; track t of memory (row t) is column t + 1.
NEW = 0
# Entry of an assignment meaning "detection dropped" (masktrack mode only).
DROPPED = -1
# log(0) would make S[i] = -inf and break comparisons between detections; scores are clamped to the
# smallest positive float64 first (log = -708.4), which changes nothing for any real detector score.
_MIN_SCORE = np.finfo(np.float64).tiny


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Pairwise IoU of [N, 4] and [M, 4] xyxy boxes -> [N, M] in [0, 1].

    Continuous coordinates, area = (x2 - x1) · (y2 - y1), as mmdetection >= 2.0 ``bbox_overlaps`` used by
    mmtracking (the 2019 MaskTrack R-CNN code used the legacy ``+ 1`` pixel convention). Degenerate boxes
    have zero area; a pair with zero union gets IoU 0.
    """
    b1 = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b2 = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    area1 = np.clip(b1[:, 2] - b1[:, 0], 0, None) * np.clip(b1[:, 3] - b1[:, 1], 0, None)
    area2 = np.clip(b2[:, 2] - b2[:, 0], 0, None) * np.clip(b2[:, 3] - b2[:, 1], 0, None)
    lt = np.maximum(b1[:, None, :2], b2[None, :, :2])  # [N, M, 2]
    rb = np.minimum(b1[:, None, 2:], b2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def suppress_duplicates(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy class-agnostic NMS: indices (ascending) of the detections kept when every kept detection,
    in decreasing score order (ties: lower index first), removes the later ones whose box IoU with it
    exceeds ``iou_threshold``."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    iou = box_iou(boxes, boxes)
    keep = np.ones(len(order), dtype=bool)
    for rank, i in enumerate(order):
        if keep[i]:
            later = order[rank + 1:]
            keep[later[iou[i, later] > iou_threshold]] = False
    return np.flatnonzero(keep)


def _dot_products(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[i, j] = a_i · b_j for [N, D] and [M, D] inputs, into ``out`` [N, M].

    One matrix-vector product per row of the smaller side instead of one matrix product: for the
    tracker's sizes (N ~ 10, M ~ 100, D = 1024) a single GEMM crosses OpenBLAS's multi-threading
    threshold, and its threads stall for tens of ms whenever the cores are busy (model threads, other
    processes); the GEMV loop stays single-threaded and takes ~0.1 ms.
    """
    if a.shape[0] <= b.shape[0]:
        for i in range(a.shape[0]):
            np.matmul(b, a[i], out=out[i])
    else:
        for j in range(b.shape[0]):
            out[:, j] = a @ b[j]


def embedding_log_likelihood(det_embeddings: np.ndarray, track_embeddings: np.ndarray) -> np.ndarray:
    """log_softmax over [0, e_i·m_1, ..., e_i·m_M] for each detection: [N, D], [M, D] -> [N, M + 1].

    Column 0 is the fixed zero logit of "new object" (MaskTrack R-CNN's dummy reference).
    """
    n, m = det_embeddings.shape[0], track_embeddings.shape[0]
    logits = np.empty((n, m + 1))
    logits[:, 0] = 0.0
    _dot_products(det_embeddings, track_embeddings, out=logits[:, 1:])
    shift = logits.max(axis=1, keepdims=True)  # stable log-sum-exp
    lse = shift + np.log(np.exp(logits - shift).sum(axis=1, keepdims=True))
    return logits - lse


def association_scores(dets: Detections, memory: TrackMemory,
                       match_coeff: tuple[float, float, float] = (1.0, 2.0, 10.0)) -> np.ndarray:
    """The MaskTrack R-CNN score S of every detection against "new" and every track.

    dets: N detections (embeddings [N, D], boxes [N, 4] xyxy px, labels [N], scores [N]).
    memory: M tracks (embeddings [M, D], boxes [M, 4], labels [M]: the label each track is matched on).
    match_coeff: (c_score, c_iou, c_label), MaskTrack R-CNN (1.0, 2.0, 10.0).
    Returns S: [N, M + 1] float64; column 0 = new track, column t + 1 = track in memory row t.
    """
    c_score, c_iou, c_label = match_coeff
    s = embedding_log_likelihood(dets.embeddings, memory.embeddings)
    s += c_score * np.log(np.maximum(dets.scores, _MIN_SCORE))[:, None]
    s[:, 1:] += c_iou * box_iou(dets.boxes, memory.boxes)
    s[:, 1:] += c_label * (dets.labels[:, None] == memory.labels[None, :])
    s[:, 0] += c_label  # "new": IoU := 0, label term := 1
    return s


def masktrack_assign(scores: np.ndarray) -> np.ndarray:
    """MaskTrack R-CNN's assignment on S ([N, M + 1]) -> [N] int64 column per detection.

    Each detection takes the argmax of its row (first column on ties): 0 = new track, j >= 1 = track
    j - 1. When several detections pick the same track, the one with the highest S keeps it (the
    lowest detection index on ties, as the strict ``>`` in index order of the 2019 code and of
    mmdetection's ``MaskTrackRCNNTracker.assign_ids``) and the others get ``DROPPED`` (-1). Those
    two codes give no id to a claimant that comes after a better one, but leave the id on an earlier
    claimant beaten later (mmdetection's "TODO: fix the bug where multiple candidate might match with
    the same previous object"); here such a claimant is dropped too, so an id appears once per frame.
    """
    n = scores.shape[0]
    assignment = scores.argmax(axis=1).astype(np.int64) if n else np.zeros(0, dtype=np.int64)
    matched = np.flatnonzero(assignment > NEW)
    if len(matched) < 2:
        return assignment
    cols = assignment[matched]
    # Group by column, best score first, then lowest detection index; the first of each group wins.
    order = np.lexsort((matched, -scores[matched, cols], cols))
    sorted_cols = cols[order]
    loser = np.zeros(len(order), dtype=bool)
    loser[1:] = sorted_cols[1:] == sorted_cols[:-1]
    assignment[matched[order[loser]]] = DROPPED
    return assignment


def hungarian_assign(scores: np.ndarray, new_track_bias: float = 0.0) -> np.ndarray:
    """One-to-one assignment maximising the total score S ([N, M + 1]) -> [N] int64 column per detection.

    Every detection gets either its own "new" slot or a distinct track, never ``DROPPED``. The gain
    matrix is [N, M + N]: the M track columns S[:, 1:], then N new-track slots with detection i allowed
    only in slot i (gain S[i, 0] + new_track_bias; -inf elsewhere). ``scipy.optimize.linear_sum_assignment``
    finds the maximum. Without competition this is MaskTrack's own rule (a detection opens a track
    exactly when S[i, 0] + bias beats its best track); with competition the best total wins, so a
    detection that loses a contested track falls back to its next best track or a new one. Row constants
    (the log score term) do not change the result.
    Returns: 0 = new track, j >= 1 = track j - 1.
    """
    n, m = scores.shape[0], scores.shape[1] - 1
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if m == 0:
        return np.full(n, NEW, dtype=np.int64)
    gain = np.full((n, m + n), -np.inf)
    gain[:, :m] = scores[:, 1:]
    gain[np.arange(n), m + np.arange(n)] = scores[:, NEW] + new_track_bias
    rows, cols = linear_sum_assignment(gain, maximize=True)
    assignment = np.full(n, NEW, dtype=np.int64)
    to_track = cols < m
    assignment[rows[to_track]] = cols[to_track] + 1
    return assignment
