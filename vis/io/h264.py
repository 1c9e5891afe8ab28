"""H.264 encoding with PyAV, whose wheels bundle FFmpeg with libx264: the MP4 files browsers and
phones play. OpenCV's bundled FFmpeg cannot encode H.264 (only MPEG-4 Part 2 "mp4v", which browsers
refuse), so ``VideoWriter`` uses this encoder when PyAV is installed and falls back to OpenCV otherwise.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

CRF = 23  # x264's default constant rate factor: visually good, small files
PRESET = "veryfast"  # encoding speed over size: the demo writes while it tracks
PIX_FMT = "yuv420p"  # 4:2:0, the only chroma layout every browser decodes (needs even sizes)


def pyav_available() -> bool:
    """Whether PyAV with a libx264 encoder can be imported here."""
    try:
        import av
    except ImportError:
        return False
    return "libx264" in av.codecs_available


class H264Encoder:
    """Append RGB uint8 frames [height, width, 3] (even sizes) to an MP4/MOV/MKV file with libx264."""

    def __init__(self, path: str | Path, fps: float, width: int, height: int) -> None:
        import av

        if width % 2 or height % 2:
            raise ValueError(f"{path}: H.264 in {PIX_FMT} needs an even size, got {width}x{height}")
        self._container = av.open(str(path), mode="w")
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, PIX_FMT
        self._stream.options = {"crf": str(CRF), "preset": PRESET}
        self._av = av

    def write(self, rgb: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        """Close the file without flushing (it is about to be deleted)."""
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - a half-written container may fail to close; it is deleted anyway
            pass
