"""Drawing tracked instances for the demo tools (tools/track_video.py, tools/webcam.py). Drawing only: the
tools load their model with ``vis.modeling.build.load_vis_model``.

``draw_tracks`` overlays one frame's ``FrameResult``: every track id keeps one colour for the whole
video (a deterministic function of the id, never of the order of detections), its mask is blended in
and outlined, its box drawn and labelled "id class score". ``TrackTrails`` remembers the box centres of
recent frames and draws them as polylines. ``FpsMeter`` and ``draw_overlay`` give the webcam demo its
FPS/latency text. ``track_id_map`` renders a frame's masks as one image of track ids (PNG export).
All images are RGB uint8 [H, W, 3]; drawing uses OpenCV.
"""
from __future__ import annotations

import colorsys
import time
from collections import deque
from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from .inference import FrameResult

GOLDEN_RATIO = 0.618033988749895  # hue step between consecutive ids: maximally spread hues
COLOUR_SATURATION = 0.85
COLOUR_VALUE = 0.95
FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_COLOUR = (255, 255, 255)
TEXT_BACKGROUND = (0, 0, 0)


@lru_cache(maxsize=4096)
def track_colour(track_id: int) -> tuple[int, int, int]:
    """The RGB colour of a track id: hue = frac(id * golden ratio), so it is the same in every run and
    every frame, and consecutive ids get well separated hues."""
    hue = (int(track_id) * GOLDEN_RATIO) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, COLOUR_SATURATION, COLOUR_VALUE)
    return int(r * 255), int(g * 255), int(b * 255)


def _text_scale(height: int, width: int) -> tuple[float, int]:
    """Font scale and line thickness readable on both a 64x96 test frame and a 1080p video."""
    short = min(height, width)
    return max(0.3, short / 900.0), max(1, round(short / 500.0))


def _result_masks(result: FrameResult) -> np.ndarray:
    """[K, H, W] bool masks of a result: the dense ones when kept, else decoded from the RLEs."""
    if result.masks is not None:
        return result.masks
    if not result.rles:
        return np.zeros((0, result.height, result.width), dtype=bool)
    rles = [{"size": r["size"], "counts": r["counts"].encode("ascii") if isinstance(r["counts"], str) else r["counts"]}
            for r in result.rles]
    return mask_utils.decode(rles).transpose(2, 0, 1).astype(bool)


def put_label(canvas: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    """Write ``text`` on a filled ``colour`` box whose bottom-left corner is near (x, y), kept inside."""
    scale, thickness = _text_scale(*canvas.shape[:2])
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    x = min(max(0, x), max(0, canvas.shape[1] - tw - 2))
    top = min(max(0, y - th - base - 2), max(0, canvas.shape[0] - th - base - 2))
    cv2.rectangle(canvas, (x, top), (x + tw + 2, top + th + base + 2), colour, -1)
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(canvas, text, (x + 1, top + th + 1), FONT, scale, ink, thickness, cv2.LINE_AA)


class TrackTrails:
    """Recent box centres per track id, drawn as fading polylines.

    ``update(result)`` appends each track's box centre (at most ``max_length`` kept per track) and forgets
    tracks unseen for more than ``max_unseen`` updates, so memory stays bounded on long videos.
    """

    def __init__(self, max_length: int = 30, max_unseen: int = 30) -> None:
        self.max_length, self.max_unseen = max_length, max_unseen
        self._points: dict[int, deque[tuple[int, int]]] = {}
        self._last_seen: dict[int, int] = {}
        self._step = 0

    def update(self, result: FrameResult) -> None:
        self._step += 1
        for tid, box in zip(result.track_ids, result.boxes):
            tid = int(tid)
            centre = (int(round((box[0] + box[2]) / 2)), int(round((box[1] + box[3]) / 2)))
            self._points.setdefault(tid, deque(maxlen=self.max_length)).append(centre)
            self._last_seen[tid] = self._step
        for tid in [t for t, seen in self._last_seen.items() if self._step - seen > self.max_unseen]:
            del self._points[tid], self._last_seen[tid]

    def draw(self, canvas: np.ndarray) -> None:
        """Draw every remembered trail onto ``canvas`` (in place), older segments thinner."""
        _, thickness = _text_scale(*canvas.shape[:2])
        for tid, points in self._points.items():
            pts = list(points)
            for k in range(1, len(pts)):
                width = max(1, round(thickness * 2 * k / len(pts)))
                cv2.line(canvas, pts[k - 1], pts[k], track_colour(tid), width, cv2.LINE_AA)

    def __len__(self) -> int:
        return len(self._points)


def draw_tracks(frame: np.ndarray, result: FrameResult, class_names: Sequence[str],
                trails: TrackTrails | None = None, alpha: float = 0.5) -> np.ndarray:
    """Draw one frame's tracked instances; returns a new RGB uint8 image (``frame`` is not modified).

    Args:
        frame: RGB uint8 [H, W, 3], the frame the result was computed on (same size).
        result: the frame's ``FrameResult`` (dense masks used when present, else its RLEs are decoded).
        class_names: name per contiguous label.
        trails: when given, updated with this result and drawn under the boxes.
        alpha: weight of the track colour inside a mask.
    Tracks are drawn from the lowest to the highest score, so the most confident one ends on top.
    """
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"draw_tracks: expected an RGB uint8 frame [H, W, 3], got {frame.dtype} {list(frame.shape)}")
    if (result.height, result.width) != frame.shape[:2]:
        raise ValueError(f"draw_tracks: result is for a {result.width}x{result.height} frame, the frame is "
                         f"{frame.shape[1]}x{frame.shape[0]}")
    canvas = frame.copy()
    masks = _result_masks(result)
    order = np.argsort(result.scores, kind="stable")
    for k in order:
        colour = np.array(track_colour(int(result.track_ids[k])), dtype=np.float32)
        mask = masks[k]
        if mask.any():
            canvas[mask] = (canvas[mask] * (1.0 - alpha) + colour * alpha).astype(np.uint8)
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(canvas, contours, -1, tuple(int(c) for c in colour), 1)
    if trails is not None:
        trails.update(result)
        trails.draw(canvas)
    _, thickness = _text_scale(*canvas.shape[:2])
    for k in order:
        tid, label = int(result.track_ids[k]), int(result.labels[k])
        colour = track_colour(tid)
        x1, y1, x2, y2 = (int(round(v)) for v in result.boxes[k])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        name = class_names[label] if 0 <= label < len(class_names) else f"class{label}"
        put_label(canvas, f"{tid} {name} {float(result.scores[k]):.2f}", x1, y1, colour)
    return canvas


def track_id_map(result: FrameResult) -> np.ndarray:
    """The frame's masks as one uint16 image [H, W] of track ids (0 = background), for PNG export.

    Where masks overlap, the higher-scoring track wins (painted last).
    """
    ids = np.zeros((result.height, result.width), dtype=np.uint16)
    masks = _result_masks(result)
    for k in np.argsort(result.scores, kind="stable"):
        ids[masks[k]] = int(result.track_ids[k])
    return ids


class FpsMeter:
    """Frames per second over the last ``window`` ticks (a moving window, so it follows changes)."""

    def __init__(self, window: int = 30) -> None:
        self._times: deque[float] = deque(maxlen=max(2, window))

    def tick(self, now: float | None = None) -> None:
        """Record one processed frame at ``now`` (seconds, monotonic; default: now)."""
        self._times.append(time.monotonic() if now is None else now)

    @property
    def fps(self) -> float:
        """Ticks per second over the window (0.0 before two ticks)."""
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])


def draw_overlay(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """Write status lines (e.g. "12.3 FPS", "latency 80 ms") in the top-left corner, in place; returns
    ``frame``."""
    scale, thickness = _text_scale(*frame.shape[:2])
    y = 2
    for text in lines:
        (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
        cv2.rectangle(frame, (0, y), (tw + 4, y + th + base + 4), TEXT_BACKGROUND, -1)
        cv2.putText(frame, text, (2, y + th + 2), FONT, scale, TEXT_COLOUR, thickness, cv2.LINE_AA)
        y += th + base + 4
    return frame
