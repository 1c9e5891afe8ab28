"""Live input (use 4 of docs/design.md#the-four-uses): newest-frame capture from cameras and streams, and live
recording.

``LatestFrameGrabber`` reads a camera, a stream URL or a video file (paced at its frame rate, a stand-in
camera) on a thread that keeps only the newest frame; ``webcam_frames`` wraps it as an iterator. When the
consumer is slower than the source, stale frames are dropped and counted. ``LiveRecorder`` writes such a
stream to a video file (atomically, through ``writer.VideoWriter``) at a frame rate measured while it
runs. Decoding files is in ``reader.py``, writing videos in ``writer.py``.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from .common import DEFAULT_FPS, Frame, fit_size, one_line, silent_opencv, to_rgb_uint8
from .reader import FrameSource, open_frames
from .writer import FOURCC_BY_SUFFIX, VideoWriter

CAMERA_RETRIES = 5  # failed reads in a row before a camera/stream counts as disconnected
CAMERA_RETRY_DELAY = 0.05  # seconds between those reads


# --------------------------------------------------------------------------------------------------
# Live input
# --------------------------------------------------------------------------------------------------
def _open_camera(index: int) -> cv2.VideoCapture:
    """cv2.VideoCapture for a camera index, with OpenCV's probing warnings silenced."""
    with silent_opencv():
        capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise ValueError(f"camera {index}: cannot be opened (no such device, no permission, or in use)")
    return capture


class LatestFrameGrabber:
    """Capture on a background thread, keeping only the newest frame (use 4 of docs/design.md#the-four-uses).

    ``source``: a camera index (int or digit string, e.g. 0 or "0"), a stream URL ("rtsp://...",
    "http://..."), or a video file / image folder, which acts as a camera: paced at its own frame rate
    when ``realtime`` (as fast as it decodes otherwise). Frames are ``Frame(index, timestamp, image)``
    with ``index`` the capture count and ``timestamp`` the capture time in seconds on ``clock()``, so
    ``clock() - frame.timestamp`` is the frame's age. A frame replaced before anyone read it counts in
    ``dropped``; ``captured == delivered + dropped (+ 1 pending)`` at any time.

    Opening waits (up to ``open_timeout`` s) for the first frame, so an unusable source raises here:
    ValueError (camera that cannot be opened, unreadable stream, bad file) or FileNotFoundError.
    When the source ends (end of file, camera unplugged, stream cut) ``finished`` becomes True,
    ``end_reason`` says why, and ``read`` returns None once the last frame is taken.
    """

    def __init__(self, source: int | str, max_size: int = 0, realtime: bool = True, open_timeout: float = 10.0) -> None:
        self.max_size, self.realtime = max_size, realtime
        self.captured = self.dropped = self.delivered = 0
        self.finished = False
        self.end_reason: str | None = None
        self._latest: Frame | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._capture: cv2.VideoCapture | None = None
        self._file: FrameSource | None = None
        if isinstance(source, int) or str(source).strip().isdigit():
            self.name = f"camera {int(source)}"
            self._capture = _open_camera(int(source))
        elif "://" in str(source):
            self.name = str(source)
            with silent_opencv():
                self._capture = cv2.VideoCapture(self.name, cv2.CAP_FFMPEG)
            if not self._capture.isOpened():
                raise ValueError(f"{self.name}: cannot open the stream")
        else:
            self.name = os.fspath(source)
            self._file = open_frames(self.name, max_size=max_size)
        fps = self._file.fps if self._file else self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)
        self._thread.start()
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None or self.finished, timeout=open_timeout)
            ok = self._latest is not None
        if not ok:
            reason = self.end_reason or f"no frame within {open_timeout:g} s"
            self.stop()
            raise ValueError(f"{self.name}: {reason}")

    def clock(self) -> float:
        """Seconds since the grabber was created (monotonic); frame timestamps use this clock."""
        return time.monotonic() - self._t0

    def _images(self) -> Iterator[np.ndarray]:
        """The source's frames as RGB uint8, until it ends (sets ``end_reason``) or ``stop()``."""
        if self._file is not None:
            started, first = time.monotonic(), None
            for frame in self._file:
                if self.realtime:
                    first = frame.timestamp if first is None else first
                    delay = started + (frame.timestamp - first) - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                yield frame.image
                if self._stop.is_set():
                    return
            self.end_reason = "end of file" + (" (damaged file: frames lost)" if self._file.damaged else "")
            return
        failures = 0
        width = height = 0
        while not self._stop.is_set():
            ok, image = self._capture.read()
            if not ok:
                failures += 1
                if failures >= CAMERA_RETRIES:
                    self.end_reason = "stopped delivering frames (disconnected or end of stream)"
                    return
                self._stop.wait(CAMERA_RETRY_DELAY)
                continue
            failures = 0
            image = to_rgb_uint8(image, "bgr", self.name)
            if not width:
                width, height = fit_size(image.shape[1], image.shape[0], self.max_size)
            if (width, height) != (image.shape[1], image.shape[0]):
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            yield image

    def _run(self) -> None:
        try:
            for image in self._images():
                with self._cond:
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest = Frame(self.captured, self.clock(), image)
                    self.captured += 1
                    self._cond.notify_all()
            if self._stop.is_set() and self.end_reason is None:
                self.end_reason = "stopped"
        except Exception as err:  # thread boundary: report instead of dying silently
            self.end_reason = f"capture failed: {one_line(err)}"
        finally:
            if self._capture is not None:
                self._capture.release()
            if self._file is not None:
                self._file.close()
            with self._cond:
                self.finished = True
                self._cond.notify_all()

    def read(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet read, waiting up to ``timeout`` s (None: forever). Returns None when
        the source has finished and every frame was taken, or when the timeout passes (check ``finished``)."""
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None or self.finished, timeout=timeout)
            frame, self._latest = self._latest, None
            if frame is not None:
                self.delivered += 1
            return frame

    def frames(self, timeout: float | None = None) -> Iterator[Frame]:
        """Iterate over the newest frames until the source ends or stalls for ``timeout`` s."""
        while (frame := self.read(timeout)) is not None:
            yield frame
        if not self.finished:
            self.end_reason = f"no frame for {timeout:g} s (source stalled)"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop capturing and wait (up to ``timeout`` s) for the thread to release the source."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> LatestFrameGrabber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _frames_then_stop(grabber: LatestFrameGrabber, timeout: float | None) -> Iterator[Frame]:
    try:
        yield from grabber.frames(timeout)
    finally:
        grabber.stop()


def webcam_frames(source: int | str, max_size: int = 0, timeout: float | None = 10.0,
                  realtime: bool = True) -> Iterator[Frame]:
    """Newest-frame iterator over a camera / stream / video file (see ``LatestFrameGrabber``).

    The source is opened now (errors raise here, not at the first ``next``); the capture thread stops
    when the iterator is exhausted or closed. Use ``LatestFrameGrabber`` directly for the counters.
    """
    return _frames_then_stop(LatestFrameGrabber(source, max_size=max_size, realtime=realtime), timeout)


# --------------------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------------------
class LiveRecorder:
    """Record a live stream (webcam demo) whose frame rate is only known once it runs.

    The first ``warmup_frames`` frames are held (bounded memory) while their arrival times measure the
    processing rate; the ``VideoWriter`` then opens at that rate (clamped to [1, ``max_fps``]), so the
    recording plays back at about real-time speed even when the demo drops frames. ``close()`` finalises
    whatever was written (also when fewer than ``warmup_frames`` frames came); ``discard()`` deletes it.
    """

    def __init__(self, path: str | os.PathLike, warmup_frames: int = 10, max_fps: float = 60.0,
                 default_fps: float = 10.0) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in FOURCC_BY_SUFFIX:
            raise ValueError(f"{self.path}: unsupported video suffix '{self.path.suffix}' "
                             f"(use one of {', '.join(FOURCC_BY_SUFFIX)})")
        self.warmup_frames, self.max_fps, self.default_fps = max(1, warmup_frames), max_fps, default_fps
        self._held: list[tuple[float, np.ndarray]] = []
        self._writer: VideoWriter | None = None
        self.fps: float | None = None

    @property
    def frames_written(self) -> int:
        return (self._writer.frames_written if self._writer else 0) + len(self._held)

    def write(self, frame: np.ndarray, t: float | None = None) -> None:
        """Append an RGB uint8 frame that was ready at time ``t`` (seconds, monotonic; default now)."""
        if self._writer is not None:
            self._writer.write(frame)
            return
        self._held.append((time.monotonic() if t is None else t, frame))
        if len(self._held) >= self.warmup_frames:
            self._open()

    def _open(self) -> None:
        times = [t for t, _ in self._held]
        span = times[-1] - times[0]
        fps = (len(times) - 1) / span if len(times) > 1 and span > 0 else self.default_fps
        self.fps = min(max(fps, 1.0), self.max_fps)
        height, width = self._held[0][1].shape[:2]
        self._writer = VideoWriter(self.path, self.fps, (width, height))
        for _, frame in self._held:
            self._writer.write(frame)
        self._held = []

    def close(self) -> Path | None:
        """Finalise the recording; returns its path, or None when no frame was ever written."""
        if self._writer is None and self._held:
            self._open()
        if self._writer is None:
            return None
        writer, self._writer = self._writer, None
        return writer.close()

    def discard(self) -> None:
        self._held = []
        if self._writer is not None:
            self._writer.discard()
            self._writer = None
