"""Tests for tracking/memory.py: stacked per-track state."""
from __future__ import annotations

import numpy as np

from queryinst.tracking import TrackMemory


def _filled() -> TrackMemory:
    mem = TrackMemory()
    mem.add(np.array([1, 2, 3]), np.eye(3), np.tile([0.0, 0, 10, 10], (3, 1)), np.array([5, 6, 7]),
            np.array([0.9, 0.8, 0.7]), frame_index=4)
    return mem


def test_add_and_update() -> None:
    mem = _filled()
    assert len(mem) == 3 and mem.dim == 3
    mem.update(np.array([2, 0]), np.array([[0.0, 0, 2], [2.0, 0, 0]]), np.array([[1.0, 1, 5, 5]] * 2),
               np.array([9, 5]), np.array([0.5, 0.3]), frame_index=6)
    np.testing.assert_array_equal(mem.embeddings[2], [0, 0, 2])  # replaced
    np.testing.assert_array_equal(mem.boxes[0], [1, 1, 5, 5])
    assert mem.last_frame.tolist() == [6, 4, 6] and mem.first_frame.tolist() == [4, 4, 4]
    assert mem.num_hits.tolist() == [2, 1, 2]
    np.testing.assert_allclose(mem.score_sum, [1.2, 0.8, 1.2])
    assert mem.label_counts[2] == {7: 1, 9: 1} and mem.label_counts[0] == {5: 2}
    assert mem.labels.tolist() == [5, 6, 7]  # labels are the tracker's decision, not update's
    t = mem.snapshot()[0]
    assert t.track_id == 1 and t.num_hits == 2 and abs(t.mean_score - 0.6) < 1e-12


def test_embedding_momentum() -> None:
    mem = _filled()
    mem.update(np.array([0]), np.array([[0.0, 1.0, 0.0]]), np.zeros((1, 4)), np.array([5]),
               np.array([1.0]), frame_index=5, embedding_momentum=0.75)
    np.testing.assert_allclose(mem.embeddings[0], [0.75, 0.25, 0.0])


def test_majority_labels_and_ties() -> None:
    mem = _filled()
    rows = np.array([0])
    for lab in (8, 8):
        mem.update(rows, np.eye(3)[:1], np.zeros((1, 4)), np.array([lab]), np.ones(1), frame_index=9)
    # history of track 1: {5: 1, 8: 2}
    assert mem.majority_labels(rows, preferred=np.array([5])).tolist() == [8]
    # track 2: {6: 1, 4: 1}: tie -> the preferred (current) label, else the smallest index
    mem.update(np.array([1]), np.eye(3)[1:2], np.zeros((1, 4)), np.array([4]), np.ones(1), frame_index=9)
    assert mem.majority_labels(np.array([1]), preferred=np.array([6])).tolist() == [6]
    assert mem.majority_labels(np.array([1]), preferred=np.array([0])).tolist() == [4]


def test_stale_keep_and_clear() -> None:
    mem = _filled()
    mem.update(np.array([1]), np.eye(3)[1:2], np.zeros((1, 4)), np.array([6]), np.ones(1), frame_index=10)
    stale = mem.stale(frame_index=25, max_unseen=20)  # 25 - 4 = 21 > 20; 25 - 10 = 15
    assert stale.tolist() == [True, False, True]
    mem.keep(~stale)
    assert mem.ids.tolist() == [2] and mem.label_counts == [{6: 2}] and mem.embeddings.shape == (1, 3)
    mem.keep(np.array([False]))
    assert len(mem) == 0 and mem.dim == 3  # dimension remembered while the tracker lives
    mem.clear()
    assert len(mem) == 0 and mem.dim is None and mem.snapshot() == ()
