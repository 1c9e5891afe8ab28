"""Tests of vis/visualize.py: stable track colours, overlays, trails, id maps, FPS meter."""
from __future__ import annotations

import numpy as np
import pytest

from queryinst.vis.inference import FrameResult, encode_masks
from queryinst.vis.visualize import (
    FpsMeter,
    TrackTrails,
    draw_overlay,
    draw_tracks,
    track_colour,
    track_id_map,
)

H, W = 64, 96


def _result(index: int, boxes: list[list[float]], ids: list[int], scores: list[float], labels: list[int],
            keep_masks: bool = True) -> FrameResult:
    """A FrameResult whose masks fill the boxes."""
    masks = np.zeros((len(boxes), H, W), dtype=bool)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        masks[k, int(y1):int(y2), int(x1):int(x2)] = True
    return FrameResult(index, np.array(ids), np.array(boxes, dtype=float), np.array(scores), np.array(labels),
                       encode_masks(masks), masks if keep_masks else None, H, W)


def test_track_colours_are_stable_and_distinct():
    colours = [track_colour(i) for i in range(1, 11)]
    assert len(set(colours)) == 10
    assert track_colour(7) == colours[6]  # a pure function of the id
    assert all(0 <= c <= 255 for colour in colours for c in colour)


def test_draw_tracks_overlays_masks_in_the_track_colour():
    frame = np.zeros((H, W, 3), dtype=np.uint8)
    result = _result(0, [[10, 20, 40, 50], [50, 10, 90, 40]], ids=[3, 8], scores=[0.9, 0.4], labels=[0, 1])
    out = draw_tracks(frame, result, ["cat", "dog"], alpha=0.5)
    assert out.shape == frame.shape and out.dtype == np.uint8 and frame.max() == 0  # input untouched
    inside = out[40, 25].astype(int)  # deep inside track 3's mask, away from outline, box and label
    expected = (np.array(track_colour(3)) * 0.5).astype(int)
    assert np.abs(inside - expected).max() <= 1
    assert out[60, 5].tolist() == [0, 0, 0]  # background untouched
    assert (out[:20, 10:40] > 0).any()  # label box above track 3
    # the same id gets the same colour in another frame, wherever and whichever detection it is
    later = _result(1, [[60, 30, 90, 60], [5, 5, 30, 30]], ids=[8, 3], scores=[0.5, 0.6], labels=[1, 0])
    again = draw_tracks(frame, later, ["cat", "dog"])
    assert np.abs(again[22, 18].astype(int) - expected).max() <= 1
    # RLE-only results (keep_masks=False) draw the same picture
    rle_only = _result(0, [[10, 20, 40, 50], [50, 10, 90, 40]], [3, 8], [0.9, 0.4], [0, 1], keep_masks=False)
    assert np.array_equal(draw_tracks(frame, rle_only, ["cat", "dog"]), out)


def test_draw_tracks_rejects_a_frame_of_another_size():
    result = _result(0, [[10, 20, 40, 50]], [1], [0.9], [0])
    with pytest.raises(ValueError, match="96x64 frame"):
        draw_tracks(np.zeros((H + 1, W, 3), np.uint8), result, ["a"])


def test_trails_follow_centres_and_forget_old_tracks():
    trails = TrackTrails(max_length=5, max_unseen=2)
    frame = np.zeros((H, W, 3), np.uint8)
    for step in range(4):
        x = 10 + 10 * step
        out = draw_tracks(frame, _result(step, [[x, 30, x + 4, 34]], [5], [0.9], [0]), ["a"], trails=trails, alpha=0)
    assert len(trails) == 1
    # between two past centres (x = 22 and 32) only the anti-aliased trail is there, in the track's colour
    column = out[30:35, 27].astype(int)
    brightest = column[column.sum(axis=1).argmax()]
    assert np.abs(brightest - np.array(track_colour(5))).max() <= 30
    empty = _result(9, [], [], [], [])
    for _ in range(3):
        trails.update(empty)
    assert len(trails) == 0


def test_track_id_map_higher_score_wins_and_keeps_large_ids():
    result = _result(0, [[10, 10, 50, 50], [30, 30, 70, 60]], ids=[300, 2], scores=[0.3, 0.8], labels=[0, 0])
    ids = track_id_map(result)
    assert ids.dtype == np.uint16 and ids.shape == (H, W)
    assert ids[15, 15] == 300 and ids[40, 40] == 2 and ids[0, 0] == 0


def test_fps_meter_and_overlay():
    meter = FpsMeter(window=10)
    assert meter.fps == 0.0
    for k in range(5):
        meter.tick(now=2.0 + 0.1 * k)
    assert meter.fps == pytest.approx(10.0)
    frame = np.zeros((H, W, 3), np.uint8)
    assert draw_overlay(frame, ["10.0 FPS", "latency 5 ms"]) is frame and frame.max() == 255
