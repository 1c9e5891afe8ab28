"""Video input: frame sources (video files, image folders, globs).

Reading (use 2 of docs/design.md#the-four-uses, "track a video file": frames are streamed):
``open_frames(path)`` returns a ``FrameSource`` for a video file (decord first, OpenCV's FFmpeg backend as
the fallback), an image folder (natural order: 2.jpg before 10.jpg) or a glob of images. Iterating yields
``Frame(index, timestamp, image)``: ``index`` is the frame's position in the stream (counting every decoded
frame, also those a stride skips), ``timestamp`` its presentation time in seconds, ``image`` RGB uint8
[H, W, 3]. Frame count and timestamps come from decoding, never from the container header; the header's
frame count is used only to notice a stream that ends early. Every frame is checked and converted (grayscale, alpha, 16-bit).

Damaged files: a file that cannot be opened, or holds no decodable frame, raises at open time
(FileNotFoundError / ValueError naming the file). A file that breaks later yields what decodes and
records the damage: ``source.errors`` (frames that failed to decode mid-stream) and ``source.truncated``
(the stream ended before the container's declared length), so a tool can report it with its own exit
code. MP4/MOV files written without "faststart" keep their index (moov atom) at the end: cutting bytes off
their end loses the index and nothing decodes (an open-time error); AVI and Matroska stay readable.

Writing videos is in ``writer.py``; live input (cameras, streams, newest-frame capture, live recording) in
``capture.py``; what they share (``Frame``, frame checks, quiet OpenCV) in ``common.py``.
"""
from __future__ import annotations

import glob
import logging
import math
import os
from collections.abc import Callable, Iterator
from typing import NamedTuple

import cv2
import numpy as np

from .common import DEFAULT_FPS, Frame, fit_size, natural_key, one_line, silent_opencv, to_rgb_uint8

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
BACKENDS = ("auto", "decord", "opencv")
# OpenCV fallback: a run of failed grabs longer than this ends the stream (a bogus header length
# must not make the reader spin), e.g. 10 s of video at 30 fps.
MAX_CONSECUTIVE_FAILURES = 300
_TIME_EPS = 1e-6


class _Decoded(NamedTuple):
    """A decoder's raw output: an image in channel ``order`` ("rgb" or "bgr"); or an error message (the
    frame failed to decode); or neither (decoded but not converted, being before the start time)."""

    position: int
    timestamp: float
    image: np.ndarray | None
    error: str | None
    order: str = "bgr"


def _import_decord():
    """decord, or None when it is not installed (the OpenCV backend is then used)."""
    try:
        import decord
    except ImportError:
        return None
    decord.logging.set_level(decord.logging.QUIET)
    return decord


# --------------------------------------------------------------------------------------------------
# Decoders: raw frames in stream order, errors as entries (never raising for one bad frame)
# --------------------------------------------------------------------------------------------------
def _decord_frames(source: FrameSource, reader, start: float) -> Iterator[_Decoded]:
    """Decode with a decord VideoReader; at the first decode error, OpenCV takes over from that frame.

    decord decodes ahead on a worker thread, so an error (e.g. the cut last packet of a truncated file)
    surfaces at whichever ``next()`` runs when the worker fails, not at the frame it belongs to, and a
    seek makes it surface again. OpenCV decodes synchronously, so its account of what failed is exact.
    """
    from decord._ffi.base import DECORDError

    count = len(reader)
    times = reader.get_frame_timestamp(np.arange(count))[:, 0] if count else np.zeros(0)
    later = np.flatnonzero(times >= start - _TIME_EPS)
    # start beyond the last frame: still decode the last one, so the caller learns where the video ends
    position = int(later[0]) if len(later) else max(0, count - 1)
    try:
        if position > 0:
            reader.seek_accurate(position)
        while position < count:
            image = reader.next().asnumpy()
            yield _Decoded(position, float(times[position]), image, None, "rgb")
            position += 1
        return
    except StopIteration:
        return
    except (DECORDError, RuntimeError) as err:
        logger.info("%s: decord failed at frame %d (%s); OpenCV takes over", source.path, position, one_line(err))
    del reader
    source.backend = "decord+opencv"
    with silent_opencv():
        capture = cv2.VideoCapture(source.path, cv2.CAP_FFMPEG)
    yield from _opencv_frames(capture, source.declared_frames, source.fps, start, resume_at=position)


def _opencv_frames(capture: cv2.VideoCapture, declared: int | None, fps: float, start: float,
                   resume_at: int = 0) -> Iterator[_Decoded]:
    """Decode with OpenCV; frames before ``start`` are grabbed but not converted, frames before
    ``resume_at`` (already delivered by decord) are grabbed silently. A failed grab before the declared
    end is recorded and reading goes on (FFmpeg resynchronises at the next good packet)."""
    position, failures, last_time = 0, 0, -1.0 / fps
    try:
        while True:
            if not capture.grab():
                if declared and position < declared and failures < MAX_CONSECUTIVE_FAILURES:
                    last_time += 1.0 / fps
                    if position >= resume_at:
                        yield _Decoded(position, last_time, None, "cannot decode this frame")
                    position, failures = position + 1, failures + 1
                    continue
                return
            failures = 0
            last_time = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if position < resume_at or last_time < start - _TIME_EPS:
                if position >= resume_at:
                    yield _Decoded(position, last_time, None, None)
                position += 1
                continue
            ok, image = capture.retrieve()
            yield _Decoded(position, last_time, image if ok else None, None if ok else "cannot convert this frame")
            position += 1
    finally:
        capture.release()


def _image_frames(files: list[str], fps: float, start: float) -> Iterator[_Decoded]:
    """Read image files in order; an unreadable file is an error entry naming it."""
    # start beyond the last image: still read the last one, so the caller learns where the sequence ends
    first = min(max(0, math.ceil(start * fps - _TIME_EPS)), len(files) - 1)
    for position in range(first, len(files)):
        path = files[position]
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as err:
            yield _Decoded(position, position / fps, None, f"{path}: cannot read ({err.strerror or err})")
            continue
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        error = None if image is not None else f"{path}: cannot decode the image"
        yield _Decoded(position, position / fps, image, error)


# --------------------------------------------------------------------------------------------------
# FrameSource
# --------------------------------------------------------------------------------------------------
class FrameSource:
    """A checked, single-pass stream of ``Frame``s from a video file or an image sequence.

    Attributes (known after opening, which decodes the first frame):
        path, kind ("video" | "images"), backend ("decord" | "opencv" | "images"; "decord+opencv" once
            decord failed mid-stream and OpenCV took over),
        fps: the source's nominal frame rate (container value; ``fps`` option for image sequences);
        declared_frames: the container's frame count (None when unknown; only used to notice truncation);
        width, height: size of the yielded frames (after ``max_size``); source_width, source_height;
        stride, start, end, max_size: the reading options.
    After (or during) iteration:
        errors: messages for frames that failed to decode mid-stream (a gap);
        truncated: the stream ended before the declared length;
        frames_decoded / frames_yielded: counts.
    """

    def __init__(self, path: str, kind: str, backend: str, decoder: Callable[[FrameSource], Iterator[_Decoded]],
                 fps: float, declared_frames: int | None, stride: int, start: float, end: float | None,
                 max_size: int, files: list[str] | None = None) -> None:
        self.path, self.kind, self.backend, self.fps = path, kind, backend, fps
        self._files = files  # image sequences: messages name the image file
        self.declared_frames = declared_frames
        self.stride, self.start, self.end, self.max_size = stride, start, end, max_size
        self.errors: list[str] = []
        self.truncated = False
        self.frames_decoded = 0
        self.frames_yielded = 0
        self.width = self.height = self.source_width = self.source_height = 0
        self._decoder = decoder(self)  # the decord decoder may switch ``backend`` when OpenCV takes over
        self._last_good = -1  # stream position of the last decoded frame
        self._last_time = 0.0
        self._started = False
        self._frames = self._generate()
        try:
            self._first: Frame | None = next(self._frames)
        except StopIteration:
            self.close()
            raise ValueError(self._nothing_message()) from None
        except ValueError:
            self.close()
            raise

    # -- public -------------------------------------------------------------------------------------
    @property
    def damaged(self) -> bool:
        """True when frames were lost: a decode failure mid-stream or an early end of the stream."""
        return self.truncated or bool(self.errors)

    @property
    def output_fps(self) -> float:
        """Frame rate of the yielded frames (nominal rate / stride)."""
        return self.fps / self.stride

    def expected_frames(self) -> int | None:
        """Estimated number of frames the iteration yields (for progress bars), None when unknown."""
        if not self.declared_frames:
            return None
        first = min(self.declared_frames, max(0, math.ceil(self.start * self.fps - _TIME_EPS)))
        last = self.declared_frames if self.end is None else min(self.declared_frames, int(self.end * self.fps) + 1)
        return max(1, math.ceil(max(0, last - first) / self.stride))

    def __iter__(self) -> Iterator[Frame]:
        if self._started:
            raise RuntimeError(f"{self.path}: a FrameSource can be iterated only once; open it again")
        self._started = True
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._frames

    def close(self) -> None:
        """Release the decoder (also done when the iteration ends)."""
        self._frames.close()
        close = getattr(self._decoder, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------------
    def _generate(self) -> Iterator[Frame]:
        failed: list[_Decoded] = []  # failures since the last good frame
        in_range = 0
        for item in self._decoder:
            if item.error is not None:
                failed.append(item)
                continue
            if failed:
                self._record_gap(failed)
                failed = []
            self.frames_decoded += 1
            self._last_good, self._last_time = item.position, item.timestamp
            if item.image is None or item.timestamp < self.start - _TIME_EPS:
                continue
            if self.end is not None and item.timestamp > self.end + _TIME_EPS:
                return  # stopped by the end time: the rest of the stream is not checked
            in_range += 1
            if (in_range - 1) % self.stride:
                continue
            image = self._prepare(item)
            self.frames_yielded += 1
            yield Frame(item.position, item.timestamp, image)
        self._check_length(failed)

    def _prepare(self, item: _Decoded) -> np.ndarray:
        where = self._files[item.position] if self._files else f"{self.path}: frame {item.position}"
        image = to_rgb_uint8(item.image, item.order, where)
        h, w = image.shape[:2]
        if not self.source_width:
            self.source_width, self.source_height = w, h
            self.width, self.height = fit_size(w, h, self.max_size)
        elif (w, h) != (self.source_width, self.source_height):
            raise ValueError(f"{where}: frame is {w}x{h}, the first frame was {self.source_width}x{self.source_height}")
        if (self.width, self.height) != (w, h):
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return image

    def _record_gap(self, failed: list[_Decoded]) -> None:
        first, last = failed[0], failed[-1]
        if self._files:  # image sequences: the decoder's message names the file
            message = first.error
            if len(failed) > 1:
                message += f" (and {len(failed) - 1} more unreadable, up to {self._files[last.position]})"
        else:
            frames = f"frame {first.position}" if first is last else f"frames {first.position}-{last.position}"
            message = f"{self.path}: {frames} (t={first.timestamp:.2f}s) failed to decode: {first.error}"
        self.errors.append(message)
        logger.info(message)

    def _check_length(self, trailing_failures: list[_Decoded]) -> None:
        """At the natural end of the stream: did it hold every frame the container declares?"""
        if self.kind == "video" and self.declared_frames and self._last_good + 1 < self.declared_frames:
            self.truncated = True
            logger.info(self.truncation_message())
        elif trailing_failures:
            self._record_gap(trailing_failures)

    def truncation_message(self) -> str:
        """One line describing the early end of the stream (meaningful when ``truncated``)."""
        return (f"{self.path}: the stream ends after frame {self._last_good} (t={self._last_time:.2f}s) but the "
                f"container declares {self.declared_frames} frames (truncated or corrupt file)")

    def _nothing_message(self) -> str:
        if self.frames_decoded == 0:
            if self._files and len(self._files) == 1 and self.errors:
                return self.errors[0]
            if self.errors:
                detail = self.errors[0].removeprefix(f"{self.path}: ")
            elif self.truncated:
                detail = f"truncated file: the container declares {self.declared_frames} frames"
            else:
                detail = "the stream is empty"
            return f"{self.path}: no decodable frame ({detail})"
        span = f"[{self.start:g}, {'end' if self.end is None else f'{self.end:g}'}] s"
        return (f"{self.path}: no frame in the requested time range {span} (the last frame is at "
                f"{self._last_time:.2f} s)")


def _check_options(path: str, stride: int, start: float, end: float | None, max_size: int, fps: float) -> None:
    if stride < 1:
        raise ValueError(f"{path}: stride must be >= 1, got {stride}")
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"{path}: need 0 <= start <= end, got start={start} end={end}")
    if max_size < 0:
        raise ValueError(f"{path}: max_size must be >= 0 (0: no downscaling), got {max_size}")
    if not fps > 0:
        raise ValueError(f"{path}: fps must be > 0, got {fps}")


def _list_images(path: str) -> list[str]:
    """The image files of a folder or a glob, in natural order."""
    if os.path.isdir(path):
        names = [n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES)]
        if not names:
            raise ValueError(f"{path}: folder holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        return [os.path.join(path, n) for n in sorted(names, key=natural_key)]
    files = [f for f in glob.glob(path) if os.path.isfile(f) and f.lower().endswith(IMAGE_SUFFIXES)]
    if not files:
        raise FileNotFoundError(f"{path}: no image file matches this pattern")
    return sorted(files, key=natural_key)


def _open_video(path: str, backend: str, start: float
                ) -> tuple[str, Callable[[FrameSource], Iterator[_Decoded]], float, int | None]:
    """Open a video file: (backend name, decoder factory, fps, declared frame count)."""
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: empty file (0 bytes)")
    with silent_opencv():
        capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not capture.isOpened():
        hint = (" (an MP4/MOV cut short before its index, the 'moov' atom, cannot be read)"
                if path.lower().endswith((".mp4", ".m4v", ".mov")) else "")
        raise ValueError(f"{path}: not a readable video (no decodable video stream found){hint}")
    declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    declared = declared if declared > 0 else None
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS
    decord = _import_decord() if backend in ("auto", "decord") else None
    if backend == "decord" and decord is None:
        capture.release()
        raise ValueError(f"{path}: backend 'decord' requested but decord is not installed")
    if decord is not None:
        from decord._ffi.base import DECORDError

        try:
            reader = decord.VideoReader(path, ctx=decord.cpu(0))
        except (DECORDError, RuntimeError) as err:
            if backend == "decord":
                capture.release()
                raise ValueError(f"{path}: decord cannot open it ({one_line(err)})") from None
            logger.info("%s: decord cannot open it (%s); using OpenCV", path, one_line(err))
        else:
            capture.release()
            avg = reader.get_avg_fps()
            fps = avg if math.isfinite(avg) and avg > 0 else fps
            return "decord", lambda source: _decord_frames(source, reader, start), fps, declared
    return "opencv", lambda source: _opencv_frames(capture, declared, fps, start), fps, declared


def open_frames(path: str | os.PathLike, stride: int = 1, start: float = 0.0, end: float | None = None,
                max_size: int = 0, fps: float = DEFAULT_FPS, backend: str = "auto") -> FrameSource:
    """Open a video file, an image folder, a single image or a glob of images as a ``FrameSource``.

    Args:
        path: video file (any container FFmpeg reads: mp4, avi, mkv, mov, webm, ...), folder of images,
            image file, or a glob pattern (``"clips/*.png"``).
        stride: keep every ``stride``-th frame of the selected time range.
        start, end: time range in seconds (presentation timestamps; ``end`` None = to the end).
        max_size: downscale frames whose long side exceeds this (0: never); aspect ratio kept.
        fps: frame rate of image sequences (their timestamps are ``index / fps``).
        backend: "auto" (decord when installed and able, else OpenCV), "decord" or "opencv".
    Raises:
        FileNotFoundError: the path (or every match of the glob) is missing.
        ValueError: an empty/unreadable file, no decodable frame, no frame in [start, end], bad options.
    """
    path = os.fspath(path)
    if backend not in BACKENDS:
        raise ValueError(f"{path}: unknown backend '{backend}'; choose one of {BACKENDS}")
    _check_options(path, stride, start, end, max_size, fps)
    is_glob = not os.path.exists(path) and any(ch in path for ch in "*?[")
    if not is_glob and not os.path.exists(path):
        raise FileNotFoundError(f"{path}: file not found")
    if is_glob or os.path.isdir(path) or path.lower().endswith(IMAGE_SUFFIXES):
        files = [path] if os.path.isfile(path) else _list_images(path)
        return FrameSource(path, "images", "images", lambda source: _image_frames(files, fps, start), fps,
                           len(files), stride, start, end, max_size, files=files)
    name, decoder, video_fps, declared = _open_video(path, backend, start)
    return FrameSource(path, "video", name, decoder, video_fps, declared, stride, start, end, max_size)
