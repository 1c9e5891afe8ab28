"""Atomic video writing: ``VideoWriter`` encodes RGB frames to a temporary file beside the target and
renames it on ``close()``, so a failed run never leaves a half-written video under the final name.
MP4/M4V/MOV/MKV are H.264 through PyAV (vis/io/h264.py) when it is installed, the codec browsers play;
without PyAV, OpenCV writes MPEG-4 Part 2 ("mp4v") and says once that browsers will not play it.
Reading is in ``reader.py``, live capture and recording in ``capture.py``.
"""
from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path

import cv2
import numpy as np

from .common import silent_opencv
from .h264 import H264Encoder, pyav_available

logger = logging.getLogger(__name__)

# Codecs that OpenCV's bundled FFmpeg can encode without extra libraries (checked on
# opencv-python-headless 5.0: H.264/avc1 is not available, mp4v and MJPG are).
FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
H264_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")  # written as H.264 when PyAV is installed
_warned_no_pyav = False


def _warn_no_pyav_once(path: Path) -> None:
    global _warned_no_pyav
    if not _warned_no_pyav:
        logger.warning("%s: PyAV is not installed, so the video is MPEG-4 Part 2 ('mp4v'), which browsers do "
                       "not play; pip install av for H.264", path)
        _warned_no_pyav = True


def _temp_name(path: Path) -> Path:
    """A hidden temporary name beside ``path`` with the same suffix (the suffix picks the container)."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{threading.get_ident() % 10**6}{path.suffix}")


class VideoWriter:
    """Encode RGB uint8 frames [H, W, 3] to ``path``, atomically.

    Frames go to a hidden temporary file beside ``path``; ``close()`` renames it into place, ``discard()``
    deletes it. As a context manager it closes on success and discards on an exception, so a failed run
    never leaves a half-written video under the final name.

    Args:
        path: target file; the suffix picks container and codec: mp4/m4v/mov/mkv -> H.264 (PyAV) or,
            without PyAV, MPEG-4 Part 2 "mp4v" (OpenCV); avi -> Motion-JPEG (OpenCV). A ``fourcc``
            forces OpenCV with that codec.
        fps: frame rate written into the container (> 0).
        size: (width, height) of every frame. FFmpeg's 4:2:0 encoders (all of OpenCV's) need even sizes and
            OpenCV would silently crop an odd one; this writer pads one black column/row instead, so no
            pixel is lost (the file is then 1 px wider/taller than ``size``).
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], fourcc: str | None = None) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        forced = fourcc is not None
        if fourcc is None:
            if suffix not in FOURCC_BY_SUFFIX:
                raise ValueError(f"{self.path}: unsupported video suffix '{suffix}' "
                                 f"(use one of {', '.join(FOURCC_BY_SUFFIX)})")
            fourcc = FOURCC_BY_SUFFIX[suffix]
        self.width, self.height = int(size[0]), int(size[1])
        if self.width < 1 or self.height < 1 or not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"{self.path}: need a positive size and frame rate, got size {size} and fps {fps}")
        self.fps, self.fourcc = float(fps), fourcc
        self.frames_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _temp_name(self.path)
        self._pad = (self.height % 2, self.width % 2)  # (bottom rows, right columns) added per frame
        self._writer: cv2.VideoWriter | None = None
        self._encoder: H264Encoder | None = None
        self.codec = fourcc
        if not forced and suffix in H264_SUFFIXES:
            if pyav_available():
                self._encoder = H264Encoder(self._tmp, self.fps, self.width + self._pad[1], self.height + self._pad[0])
                self.codec = "h264"
                return
            _warn_no_pyav_once(self.path)
        with silent_opencv():
            self._writer = cv2.VideoWriter(
                str(self._tmp), cv2.VideoWriter_fourcc(*fourcc), self.fps,
                (self.width + self._pad[1], self.height + self._pad[0]))
        if not self._writer.isOpened():
            self.discard()
            raise ValueError(f"{self.path}: OpenCV cannot encode '{fourcc}' video into '{suffix}' here")

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame [height, width, 3]."""
        if self._writer is None and self._encoder is None:
            raise RuntimeError(f"{self.path}: write() after close() or discard()")
        if frame.dtype != np.uint8 or frame.shape != (self.height, self.width, 3):
            raise ValueError(f"{self.path}: frames must be RGB uint8 [{self.height}, {self.width}, 3], got "
                             f"{frame.dtype} {list(frame.shape)}")
        if self._encoder is not None:
            if any(self._pad):
                frame = cv2.copyMakeBorder(frame, 0, self._pad[0], 0, self._pad[1], cv2.BORDER_CONSTANT, value=(0, 0, 0))
            self._encoder.write(frame)
            self.frames_written += 1
            return
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if any(self._pad):
            bgr = cv2.copyMakeBorder(bgr, 0, self._pad[0], 0, self._pad[1], cv2.BORDER_CONSTANT, value=(0, 0, 0))
        self._writer.write(bgr)
        self.frames_written += 1

    def close(self) -> Path:
        """Finish the file and move it to ``path``; returns ``path``. A video without frames is an error."""
        if self._writer is None and self._encoder is None:
            raise RuntimeError(f"{self.path}: close() after close() or discard()")
        if self._encoder is not None:
            try:
                if self.frames_written:
                    self._encoder.close()
                else:
                    self._encoder.abort()
            finally:
                self._encoder = None
        else:
            self._writer.release()
            self._writer = None
        if self.frames_written == 0 or not self._tmp.is_file() or self._tmp.stat().st_size == 0:
            self.discard()
            raise ValueError(f"{self.path}: nothing was encoded ({self.frames_written} frames written)")
        os.replace(self._tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Stop writing and delete the temporary file; ``path`` is left as it was."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._encoder is not None:
            self._encoder.abort()
            self._encoder = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()
