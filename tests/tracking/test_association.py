"""Tests for tracking/association.py: IoU, the MaskTrack score on a hand-computed case, assignments."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from queryinst.tracking import Detections, TrackMemory, association_scores, box_iou
from queryinst.tracking.association import (
    DROPPED,
    NEW,
    embedding_log_likelihood,
    hungarian_assign,
    masktrack_assign,
)


def test_box_iou_hand_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], dtype=float)  # second box degenerate
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    # overlap 5x10 = 50, union 100 + 100 - 50 = 150
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0])
    np.testing.assert_array_equal(iou[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(box_iou(b, a), iou.T)
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


def test_embedding_log_likelihood_rows_are_log_probabilities() -> None:
    rng = np.random.default_rng(0)
    ll = embedding_log_likelihood(rng.normal(size=(4, 8)) * 30, rng.normal(size=(5, 8)))
    assert ll.shape == (4, 6)
    np.testing.assert_allclose(np.exp(ll).sum(axis=1), 1.0)
    assert np.all(np.isfinite(ll))  # stable for large logits


@pytest.mark.parametrize("n, m", [(3, 5), (5, 3), (0, 4), (4, 0)])
def test_embedding_log_likelihood_matches_dense_formula(n: int, m: int) -> None:
    rng = np.random.default_rng(1)
    e, t = rng.normal(size=(n, 6)), rng.normal(size=(m, 6))
    logits = np.concatenate([np.zeros((n, 1)), e @ t.T], axis=1)
    expected = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(embedding_log_likelihood(e, t), expected, atol=1e-12)


def _memory(embeddings: np.ndarray, boxes: np.ndarray, labels: list[int]) -> TrackMemory:
    mem = TrackMemory()
    n = len(labels)
    mem.add(np.arange(1, n + 1), embeddings, boxes, np.array(labels), np.ones(n), frame_index=0)
    return mem


def test_association_scores_hand_computed_2x2() -> None:
    ln = math.log
    mem = _memory(
        embeddings=np.array([[1.0, 0.0], [0.0, 1.0]]),
        boxes=np.array([[0, 0, 10, 10], [20, 0, 30, 10]], dtype=float),
        labels=[3, 7],
    )
    dets = Detections(
        boxes=[[0, 0, 10, 10], [25, 0, 35, 10]],
        scores=[0.5, 1.0],
        labels=[3, 7],
        embeddings=[[ln(2), 0.0], [0.0, ln(3)]],
    )
    s = association_scores(dets, mem)
    # Detection 0: logits [0, ln2, 0] -> softmax denominator 1 + 2 + 1 = 4.
    #   log p = [-ln4, ln2 - ln4, -ln4]; log score = ln 0.5 = -ln2.
    #   new:     -2ln2 - ln2 + 10                     (IoU := 0, label term := 1)
    #   track 1: -ln2  - ln2 + 2*1 + 10              (IoU 1, same label 3)
    #   track 2: -2ln2 - ln2 + 2*0 + 0               (IoU 0, label 7 != 3)
    row0 = [10 - 3 * ln(2), 12 - 2 * ln(2), -3 * ln(2)]
    # Detection 1: logits [0, 0, ln3] -> denominator 1 + 1 + 3 = 5; log score = ln 1 = 0.
    #   new:     -ln5 + 10
    #   track 1: -ln5 + 2*0 + 0                       (IoU 0, label 3 != 7)
    #   track 2: ln3 - ln5 + 2*(50/150) + 10          (overlap 5x10, union 150; same label 7)
    row1 = [10 - ln(5), -ln(5), ln(3) - ln(5) + 2 / 3 + 10]
    np.testing.assert_allclose(s, [row0, row1], rtol=0, atol=1e-12)
    # Coefficients are honoured: all zero leaves the embedding log-likelihood alone.
    s0 = association_scores(dets, mem, match_coeff=(0.0, 0.0, 0.0))
    np.testing.assert_allclose(s0, [[-2 * ln(2), -ln(2), -2 * ln(2)], [-ln(5), -ln(5), ln(3) - ln(5)]])


def test_association_scores_zero_score_stays_finite() -> None:
    mem = _memory(np.ones((1, 2)), np.array([[0, 0, 1, 1]], dtype=float), [0])
    dets = Detections([[0, 0, 1, 1]], [0.0], [0], [[1.0, 1.0]])
    assert np.all(np.isfinite(association_scores(dets, mem)))


def test_masktrack_assign_argmax_new_and_contested() -> None:
    s = np.array([
        [0.0, 5.0, 1.0],   # wants track 1 (column 1), weaker than detection 2
        [9.0, 1.0, 2.0],   # new
        [0.0, 6.0, 1.0],   # wants track 1, strongest -> keeps it
        [0.0, 1.0, 3.0],   # track 2, uncontested
        [0.0, 6.0, 1.0],   # ties detection 2 on track 1 -> the earlier index (2) wins
    ])
    assert masktrack_assign(s).tolist() == [DROPPED, NEW, 1, 2, DROPPED]


def test_masktrack_assign_empty_and_no_tracks() -> None:
    assert masktrack_assign(np.zeros((0, 3))).tolist() == []
    assert masktrack_assign(np.zeros((2, 1))).tolist() == [NEW, NEW]


def test_hungarian_assign_resolves_conflict_without_dropping() -> None:
    s = np.array([
        [0.0, 5.0, 4.0],   # prefers track 1, second choice track 2
        [0.0, 6.0, 1.0],   # prefers track 1 more
    ])
    # Total: d0->t2, d1->t1 = 4 + 6 = 10 beats d0->t1, d1->t2 = 5 + 1 = 6 and any new-track option.
    assert hungarian_assign(s).tolist() == [2, 1]
    s2 = np.array([[0.0, 5.0], [1.0, 6.0]])  # one track, two claimants: the loser opens a new track
    assert hungarian_assign(s2).tolist() == [NEW, 1]
    # The bias shifts the new-vs-match decision.
    s3 = np.array([[1.0, 1.5]])
    assert hungarian_assign(s3).tolist() == [1]
    assert hungarian_assign(s3, new_track_bias=1.0).tolist() == [NEW]


def _brute_force_best(s: np.ndarray) -> float:
    """Best total over all assignments where each detection takes a distinct track or 'new'."""
    n, m = s.shape[0], s.shape[1] - 1
    best = -np.inf
    for choice in itertools.product(range(m + 1), repeat=n):
        tracks = [c for c in choice if c > 0]
        if len(tracks) == len(set(tracks)):
            best = max(best, sum(s[i, c] for i, c in enumerate(choice)))
    return best


@pytest.mark.parametrize("seed", range(5))
def test_hungarian_assign_is_optimal_and_one_to_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(3, 4)) * 3
    a = hungarian_assign(s)
    tracks = a[a > 0]
    assert len(tracks) == len(set(tracks.tolist()))
    assert np.all(a >= 0)
    np.testing.assert_allclose(s[np.arange(3), a].sum(), _brute_force_best(s))


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_suppress_duplicates_equals_torchvision_nms(threshold: float) -> None:
    import torch
    from torchvision.ops import nms

    from queryinst.tracking.association import suppress_duplicates

    rng = np.random.default_rng(int(threshold * 10))
    for _ in range(20):
        n = int(rng.integers(1, 30))
        xy = rng.uniform(0, 100, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (n, 2))], 1)
        scores = rng.permutation(n) / n + 0.01  # distinct scores: nms' order among ties is unspecified
        want = sorted(nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).tolist())
        assert suppress_duplicates(boxes, scores, threshold).tolist() == want
