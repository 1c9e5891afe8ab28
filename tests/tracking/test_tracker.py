"""Tests for tracking/tracker.py on hand-built sequences with hand-built embeddings.

Object k gets the embedding ``scale * one_hot(k)``: its own track's dot product is scale**2, every other
track's is 0, so identities come from embeddings exactly as a trained MaskTrack head intends.
"""
from __future__ import annotations

import numpy as np
import pytest

from queryinst.tracking import Detections, OnlineTracker, TrackerConfig

DIM = 8
BOTH_MODES = pytest.mark.parametrize("mode", ["masktrack", "hungarian"])


def emb(k: int, scale: float = 4.0) -> np.ndarray:
    return scale * np.eye(DIM)[k]


def box_at(x: float, y: float = 0.0, size: float = 10.0) -> list[float]:
    return [x, y, x + size, y + size]


def frame(*objs: tuple, masks: list | None = None) -> Detections:
    """objs: (box, score, label, embedding) per detection."""
    if not objs:
        return Detections.empty(DIM)
    boxes, scores, labels, embs = zip(*objs)
    return Detections(np.array(boxes), np.array(scores), np.array(labels), np.stack(embs), masks=masks)


def tracker(mode: str = "hungarian", **kw) -> OnlineTracker:
    return OnlineTracker(TrackerConfig(mode=mode, **kw))


@BOTH_MODES
def test_first_frame_all_new_ids_from_one(mode: str) -> None:
    t = tracker(mode)
    out = t.update(frame(*[(box_at(20 * k), 0.9, 0, emb(k)) for k in range(4)]))
    assert out.track_ids.tolist() == [1, 2, 3, 4]
    assert out.det_indices.tolist() == [0, 1, 2, 3]
    assert [tr.track_id for tr in t.tracks] == [1, 2, 3, 4]
    # a fifth object appearing later gets the next id
    out = t.update(frame(*[(box_at(20 * k), 0.9, 0, emb(k)) for k in range(5)]))
    assert out.track_ids.tolist() == [1, 2, 3, 4, 5]


@BOTH_MODES
def test_crossing_paths_keep_identities(mode: str) -> None:
    """A moves right and B left with the same label; they overlap fully on frame 2, then part.

    After the crossing (frame 3) both previous boxes are identical, so IoU cannot tell them apart; on
    frame 5 they jump back to their start boxes, so each box equals the *other* track's previous box
    and the IoU term (up to +2) votes for a swap. The embedding log-odds (4) must win every time.
    """
    t = tracker(mode)
    xs_a = [0, 3, 6, 9, 12, 0]
    xs_b = [12, 9, 6, 3, 0, 12]
    seen = []
    for xa, xb in zip(xs_a, xs_b):
        out = t.update(frame((box_at(xa), 0.9, 1, emb(0, 2.0)), (box_at(xb), 0.9, 1, emb(1, 2.0))))
        seen.append(out.track_ids.tolist())
    assert seen == [[1, 2]] * 6
    # listing the detections in the other order changes nothing but the order
    out = t.update(frame((box_at(0), 0.9, 1, emb(1, 2.0)), (box_at(12), 0.9, 1, emb(0, 2.0))))
    assert out.track_ids.tolist() == [2, 1]


def test_crossing_paths_without_embeddings_swap() -> None:
    """Control for the test above: with uninformative embeddings the frame-5 jump does swap ids."""
    t = tracker()
    zero = np.zeros(DIM)
    t.update(frame((box_at(0), 0.9, 1, zero), (box_at(12), 0.9, 1, zero)))
    out = t.update(frame((box_at(12), 0.9, 1, zero), (box_at(0), 0.9, 1, zero)))
    assert out.track_ids.tolist() == [2, 1]


def _occlusion(t: OnlineTracker, gap_frames: int, empty_frames: bool) -> list[int]:
    """Object 0 seen on frame 0, hidden (object 1 only) for ``gap_frames`` frames, then back."""
    a = (box_at(0), 0.9, 0, emb(0))
    b = (box_at(100), 0.9, 2, emb(1))
    t.update(frame(a, b), 0)
    for f in range(1, gap_frames + 1):
        if empty_frames:
            t.update(frame(), f)
        else:
            t.update(frame(b), f)
    return t.update(frame(a, b), gap_frames + 1).track_ids.tolist()


@pytest.mark.parametrize("empty_frames", [False, True])
def test_occlusion_within_max_unseen_keeps_id(empty_frames: bool) -> None:
    # default max_unseen = 20: last seen at 0, back at frame 20 (19 missed frames) -> same id,
    # the same reach as mmtracking's num_frames_retain=20
    assert _occlusion(tracker(), gap_frames=19, empty_frames=empty_frames) == [1, 2]


@pytest.mark.parametrize("empty_frames", [False, True])
def test_occlusion_beyond_max_unseen_new_id_in_hungarian(empty_frames: bool) -> None:
    t = tracker()
    ids = _occlusion(t, gap_frames=20, empty_frames=empty_frames)  # back at frame 21
    if empty_frames:  # both tracks were unseen for 21 frames: both deleted, both new
        assert ids == [3, 4]
    else:
        assert ids == [3, 2]
    assert sorted(tr.track_id for tr in t.tracks) == sorted(ids)


def test_occlusion_masktrack_deletes_after_max_unseen_as_mmdetection() -> None:
    # mmdetection's num_frames_retain: a track unseen for max_unseen frames is deleted at the end of a
    # frame with detections; a max_unseen above the video length keeps every track (the 2019 code).
    t = tracker("masktrack", max_unseen=2)
    assert _occlusion(t, gap_frames=50, empty_frames=False) == [3, 2]
    t = tracker("masktrack", max_unseen=1000)
    assert _occlusion(t, gap_frames=50, empty_frames=False) == [1, 2]
    assert t.num_tracks == 2


def test_max_unseen_counts_frame_index_gaps() -> None:
    t = tracker(max_unseen=3)
    a = (box_at(0), 0.9, 0, emb(0))
    t.update(frame(a), frame_index=10)
    assert t.update(frame(a), frame_index=13).track_ids.tolist() == [1]  # 13 - 10 = 3: kept
    assert t.update(frame(a), frame_index=17).track_ids.tolist() == [2]  # 17 - 13 = 4 > 3: deleted


def test_category_flicker_label_from_history() -> None:
    labels = [1, 1, 1, 2, 1, 2, 2]
    t = tracker()
    ids, out_labels = [], []
    for lab in labels:
        out = t.update(frame((box_at(0), 0.9, lab, emb(0))))
        ids.append(int(out.track_ids[0]))
        out_labels.append(int(out.labels[0]))
    assert ids == [1] * 7
    # counts after each frame: 1:1 | 1:2 | 1:3 | 1:3,2:1 | 1:4,2:1 | 1:4,2:2 | 1:4,2:3
    assert out_labels == [1, 1, 1, 1, 1, 1, 1]
    assert t.tracks[0].label == 1 and t.tracks[0].label_counts == {1: 4, 2: 3}


def test_category_flicker_without_history_reports_detection_label() -> None:
    t = tracker(label_from_history=False)
    out_labels = [int(t.update(frame((box_at(0), 0.9, lab, emb(0)))).labels[0]) for lab in [1, 2, 1]]
    assert out_labels == [1, 2, 1]
    assert [tr.track_id for tr in t.tracks] == [1]


def test_category_flicker_masktrack_takes_the_latest_label() -> None:
    t = tracker("masktrack")
    outs = [t.update(frame((box_at(0), 0.9, lab, emb(0)))) for lab in [1, 2, 2, 2]]
    assert [int(o.track_ids[0]) for o in outs] == [1, 1, 1, 1]
    assert [int(o.labels[0]) for o in outs] == [1, 2, 2, 2]  # the detection's own label is reported
    assert t.tracks[0].label == 2  # and stored, as mmdetection's tracker memory


def _two_claimants(t: OnlineTracker, second_track: bool):
    """Track A (and optionally B) on frame 0; on frame 1 two detections both resemble A.

    The weaker detection (score 0.6) is listed first, to show the outcome does not depend on order.
    """
    a0 = (box_at(0), 0.9, 0, emb(0))
    b0 = (box_at(50), 0.9, 0, emb(1))
    t.update(frame(a0, b0) if second_track else frame(a0))
    weak_emb = 3.5 * np.eye(DIM)[0] + 3.0 * np.eye(DIM)[1]  # A first (dot 14), B second (dot 12)
    weak = (box_at(0), 0.6, 0, weak_emb)
    strong = (box_at(0), 0.9, 0, emb(0))
    return t.update(frame(weak, strong, masks=["weak", "strong"]))


def test_two_claimants_masktrack_drops_the_weaker() -> None:
    for second_track in (False, True):
        out = _two_claimants(tracker("masktrack"), second_track)
        assert out.track_ids.tolist() == [1]
        assert out.det_indices.tolist() == [1]
        assert out.masks == ["strong"]
        assert out.scores.tolist() == [0.9]


def test_two_claimants_hungarian_new_track() -> None:
    t = tracker()
    out = _two_claimants(t, second_track=False)
    assert out.track_ids.tolist() == [2, 1]  # the strong one keeps A, the weak one opens track 2
    assert out.masks == ["weak", "strong"]
    assert t.num_tracks == 2


def test_two_claimants_hungarian_other_track() -> None:
    out = _two_claimants(tracker(), second_track=True)
    assert out.track_ids.tolist() == [2, 1]  # the weak one falls back to its second choice, B
    assert len(out) == 2


@BOTH_MODES
def test_empty_frames_keep_memory(mode: str) -> None:
    t = tracker(mode)
    out = t.update(frame())  # an empty first frame
    assert len(out) == 0 and out.track_ids.shape == (0,) and t.num_tracks == 0
    a = (box_at(0), 0.9, 0, emb(0))
    assert t.update(frame(a)).track_ids.tolist() == [1]
    for _ in range(3):
        out = t.update(frame())
        assert len(out) == 0 and out.embeddings.shape == (0, DIM)
    assert t.num_tracks == 1
    assert t.update(frame(a)).track_ids.tolist() == [1]
    assert t.tracks[0].last_frame == 5 and t.tracks[0].num_hits == 2


def _random_sequence(seed: int, num_frames: int = 30) -> list[Detections]:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(num_frames):
        n = int(rng.integers(0, 6))
        boxes = rng.uniform(0, 50, size=(n, 2))
        frames.append(Detections(
            boxes=np.concatenate([boxes, boxes + rng.uniform(5, 30, size=(n, 2))], axis=1),
            scores=rng.uniform(0.05, 1, size=n),
            labels=rng.integers(0, 3, size=n),
            embeddings=rng.normal(size=(n, DIM)),
        ))
    return frames


@BOTH_MODES
def test_deterministic_and_reset(mode: str) -> None:
    seq = _random_sequence(0)
    t1, t2 = tracker(mode, max_unseen=3), tracker(mode, max_unseen=3)
    ids1 = [t1.update(d).track_ids.tolist() for d in seq]
    ids2 = [t2.update(d).track_ids.tolist() for d in seq]
    assert ids1 == ids2
    t1.reset()
    assert t1.num_tracks == 0
    assert [t1.update(d).track_ids.tolist() for d in seq] == ids1
    flat = [i for f in ids1 for i in f]
    assert min(flat) == 1
    # ids are opened in increasing order: the first appearances read 1, 2, 3, ...
    first_seen = list(dict.fromkeys(flat))
    assert first_seen == list(range(1, len(first_seen) + 1))


def test_hungarian_never_drops_and_is_one_to_one() -> None:
    t = tracker(max_unseen=3)
    for d in _random_sequence(1, num_frames=40):
        out = t.update(d)
        assert out.det_indices.tolist() == list(range(len(d)))
        assert len(set(out.track_ids.tolist())) == len(out)


def test_masktrack_ids_unique_within_frame() -> None:
    t = tracker("masktrack")
    for d in _random_sequence(2, num_frames=40):
        out = t.update(d)
        assert len(set(out.track_ids.tolist())) == len(out)
        assert np.all(np.diff(out.det_indices) > 0)


def test_min_score_filters_and_reports_indices() -> None:
    t = tracker(min_score=0.5)
    out = t.update(frame((box_at(0), 0.3, 0, emb(0)), (box_at(20), 0.7, 0, emb(1)), masks=["lo", "hi"]))
    assert out.det_indices.tolist() == [1] and out.track_ids.tolist() == [1] and out.masks == ["hi"]


@BOTH_MODES
def test_duplicate_detections_open_one_track_when_suppressed(mode: str) -> None:
    # two queries on one object (IoU 0.82) plus a second object; with min_score the indices compose
    dup = [1.0, 0.0, 11.0, 10.0]
    objs = ((box_at(0), 0.4, 0, emb(0)), (box_at(50), 0.8, 1, emb(1)), (dup, 0.6, 2, emb(2)),
            (box_at(80), 0.1, 0, emb(3)))
    kept = tracker(mode, duplicate_iou=0.7, min_score=0.2).update(frame(*objs, masks=["a", "b", "c", "d"]))
    assert kept.det_indices.tolist() == [1, 2] and kept.track_ids.tolist() == [1, 2] and kept.masks == ["b", "c"]
    everything = tracker(mode).update(frame(*objs))  # default 1.0: no detection removed
    assert everything.det_indices.tolist() == [0, 1, 2, 3]
    assert tracker(mode, duplicate_iou=0.9).update(frame(*objs)).det_indices.tolist() == [0, 1, 2, 3]


def test_input_errors() -> None:
    t = tracker()
    t.update(frame((box_at(0), 0.9, 0, emb(0))), frame_index=3)
    with pytest.raises(ValueError, match="frame_index"):
        t.update(frame(), frame_index=3)
    with pytest.raises(ValueError, match="embeddings"):
        t.update(Detections([box_at(0)], [0.9], [0], np.ones((1, DIM + 1))))
    with pytest.raises(TypeError):
        t.update({"boxes": []})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        TrackerConfig(mode="sort")
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="duplicate_iou"):
            TrackerConfig(duplicate_iou=bad)


def test_tracks_is_a_snapshot() -> None:
    t = tracker()
    t.update(frame((box_at(0), 0.9, 0, emb(0))))
    snap = t.tracks
    with pytest.raises(ValueError):  # read-only arrays
        snap[0].box[:] = -1
    t.update(frame((box_at(5), 0.9, 0, emb(0))))
    assert snap[0].box.tolist() == box_at(0)  # a snapshot does not follow the tracker
    assert t.tracks[0].box.tolist() == box_at(5)
