"""What the video readers, the writer and the live capture share: the ``Frame`` record, the frame checks
and conversions, size fitting, and quiet OpenCV / FFmpeg (the readers report problems themselves, one
line per problem: ``one_line``).

Importing this module sets ``OPENCV_FFMPEG_LOGLEVEL`` (``quiet_ffmpeg``) before OpenCV's FFmpeg backend starts.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import cv2
import numpy as np

DEFAULT_FPS = 30.0  # used when a container reports no usable frame rate, and for image sequences


class Frame(NamedTuple):
    """One decoded frame: stream position, presentation time (s) and RGB uint8 image [H, W, 3]."""

    index: int
    timestamp: float
    image: np.ndarray


def natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: frame2.jpg < frame10.jpg."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def to_rgb_uint8(image: np.ndarray, order: str, where: str) -> np.ndarray:
    """Check a decoded image and convert it to RGB uint8 [H, W, 3].

    Accepts [H, W] or [H, W, 1] grayscale, [H, W, 3] colour and [H, W, 4] colour with alpha (dropped,
    not composited), in uint8 or uint16 (scaled by 1/257). ``order`` is the channel order of colour input:
    "bgr" (OpenCV) or "rgb" (decord). Anything else raises ValueError naming ``where``.
    """
    if not isinstance(image, np.ndarray) or image.size == 0:
        raise ValueError(f"{where}: decoder returned an empty image")
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"{where}: unsupported pixel type {image.dtype} (expected 8- or 16-bit)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"{where}: unsupported image shape {list(image.shape)} (expected HxW, HxWx3 or HxWx4)")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if order == "bgr":
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


def fit_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """(width, height) scaled down so that the long side is at most ``max_size`` (0: unchanged)."""
    if max_size <= 0 or max(width, height) <= max_size:
        return width, height
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def quiet_ffmpeg() -> None:
    """Silence FFmpeg's own console messages ("moov atom not found", ...): the reader reports problems
    itself, one line per problem. Set OPENCV_FFMPEG_LOGLEVEL yourself to see them (e.g. 24).

    OpenCV reads the variable once, when its FFmpeg backend first starts, so this runs at import."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


quiet_ffmpeg()


_NATIVE_LOG_PREFIX = re.compile(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ")  # decord's "[12:00:00] src/x.cc:42: "


def one_line(error: BaseException) -> str:
    """An exception's message on one line (its last, most specific one), without decord's
    timestamp/source-file prefixes."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return _NATIVE_LOG_PREFIX.sub("", lines[-1]) if lines else type(error).__name__


@contextmanager
def silent_opencv() -> Iterator[None]:
    """Silence OpenCV's own log while probing a source (its backends print a WARN line per failed
    attempt); the caller turns a failure into one clear error instead."""
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None:
        yield
        return
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(level)
