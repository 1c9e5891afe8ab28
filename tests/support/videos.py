"""Small test videos for the tests of vis/io/ (reader, writer, capture): generated frames, clips written
with OpenCV or by hand (odd sizes), truncated copies."""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

H, W = 64, 96


def moving_square(count: int, height: int = H, width: int = W) -> list[np.ndarray]:
    """RGB frames with a bright square moving right on a dark background (so frames differ)."""
    frames = []
    for i in range(count):
        frame = np.full((height, width, 3), 40, dtype=np.uint8)
        x = 4 + 3 * i
        frame[10:30, x:x + 20] = (250, 200, 30)
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0, fourcc: str = "MJPG",
                color: bool = True) -> Path:
    """Write RGB (or grayscale, color=False) frames with OpenCV's own VideoWriter."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height), color)
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if color else frame)
    writer.release()
    return path


def write_mjpeg_avi(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """A minimal Motion-JPEG AVI written by hand: unlike OpenCV's writer (which crops to even sizes),
    it keeps odd frame sizes such as 97x131."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return tag + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    def listing(kind: bytes, payload: bytes) -> bytes:
        return b"LIST" + struct.pack("<I", len(payload) + 4) + kind + payload

    height, width = frames[0].shape[:2]
    jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes() for f in frames]
    n = len(jpegs)
    avih = struct.pack("<10I", int(1e6 / fps), 0, 0, 0x10, n, 0, 1, 0, width, height) + b"\0" * 16
    strh = b"vidsMJPG" + struct.pack("<IHHIIIIIIIIhhhh", 0, 0, 0, 0, 1000, int(fps * 1000), 0, n, 0,
                                     0xFFFFFFFF, 0, 0, 0, width, height)
    strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0)
    hdrl = listing(b"hdrl", chunk(b"avih", avih) + listing(b"strl", chunk(b"strh", strh) + chunk(b"strf", strf)))
    movi, index, offset = b"", b"", 4
    for jpeg in jpegs:
        data = chunk(b"00dc", jpeg)
        index += b"00dc" + struct.pack("<III", 0x10, offset, len(jpeg))
        movi += data
        offset += len(data)
    body = b"AVI " + hdrl + listing(b"movi", movi) + chunk(b"idx1", index)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    out = path.with_name(f"cut_{path.name}")
    out.write_bytes(data[:int(len(data) * keep)])
    return out


def square_x(image: np.ndarray) -> int:
    """Left edge of the bright square (column of the first bright pixel in row 20)."""
    return int(np.flatnonzero(image[20, :, 0] > 150)[0])
