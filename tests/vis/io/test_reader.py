"""Tests of vis/video_io.py (decoding with decord and OpenCV, frame checks, damage reports, writers) and of
vis/capture.py (newest-frame capture, live recording)."""
from __future__ import annotations

import struct
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from queryinst.vis import capture, video_io
from queryinst.vis.capture import LatestFrameGrabber, LiveRecorder, webcam_frames
from queryinst.vis.video_io import natural_key, open_frames, to_rgb_uint8
from queryinst.vis.video_writer import VideoWriter

H, W = 64, 96
HAS_DECORD = video_io._import_decord() is not None
BACKENDS = ["opencv", pytest.param("decord", marks=pytest.mark.skipif(not HAS_DECORD, reason="decord not installed"))]


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


# --------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("suffix,fourcc", [(".mp4", "mp4v"), (".avi", "MJPG"), (".mkv", "mp4v"), (".mov", "mp4v")])
def test_containers_decode_every_frame_with_timestamps(tmp_path, suffix, fourcc, backend):
    frames = moving_square(6)
    path = write_video(tmp_path / f"clip{suffix}", frames, fps=10.0, fourcc=fourcc)
    source = open_frames(path, backend=backend)
    got = list(source)
    assert source.backend == backend and source.kind == "video"
    assert [f.index for f in got] == list(range(6))
    assert [f.timestamp for f in got] == pytest.approx([i / 10 for i in range(6)], abs=1e-3)
    for frame, original in zip(got, frames):
        assert frame.image.shape == (H, W, 3) and frame.image.dtype == np.uint8
        assert abs(square_x(frame.image) - square_x(original)) <= 1  # right frame, RGB order kept
        assert frame.image[20, square_x(original) + 10, 0] > frame.image[20, square_x(original) + 10, 2]
    assert not source.damaged and source.frames_decoded == 6 and source.declared_frames == 6


def test_auto_prefers_decord_and_falls_back_to_opencv(tmp_path):
    two = open_frames(write_video(tmp_path / "two.avi", moving_square(2)))
    assert two.backend == ("decord" if HAS_DECORD else "opencv")
    # decord cannot open a one-frame Matroska at 29.97 fps ("broken metadata"); OpenCV can
    one = open_frames(write_video(tmp_path / "one.mkv", moving_square(1), fps=29.97, fourcc="mp4v"))
    assert one.backend == "opencv" and len(list(one)) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_odd_frame_size(tmp_path, backend):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (97, 131, 3), dtype=np.uint8) for _ in range(3)]
    got = list(open_frames(write_mjpeg_avi(tmp_path / "odd.avi", frames), backend=backend))
    assert [f.image.shape for f in got] == [(97, 131, 3)] * 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_grayscale_video_becomes_rgb(tmp_path, backend):
    gray = [f[:, :, 0].copy() for f in moving_square(3)]
    got = list(open_frames(write_video(tmp_path / "gray.avi", gray, color=False), backend=backend))
    assert len(got) == 3
    image = got[1].image.astype(int)
    assert image.shape == (H, W, 3) and np.abs(image[..., 0] - image[..., 2]).max() <= 3


def test_to_rgb_uint8_converts_and_rejects():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_rgb_uint8(gray, "bgr", "x").shape == (3, 4, 3)
    assert to_rgb_uint8(gray[..., None], "bgr", "x").shape == (3, 4, 3)
    bgra = np.zeros((3, 4, 4), dtype=np.uint8)
    bgra[..., 0] = 200  # blue in BGR order
    rgb = to_rgb_uint8(bgra, "bgr", "x")
    assert rgb.shape == (3, 4, 3) and rgb[0, 0].tolist() == [0, 0, 200]
    assert to_rgb_uint8(np.full((2, 2, 3), 65535, dtype=np.uint16), "rgb", "x").max() == 255
    with pytest.raises(ValueError, match="frame7.*pixel type"):
        to_rgb_uint8(np.zeros((2, 2, 3), dtype=np.float32), "rgb", "frame7")
    with pytest.raises(ValueError, match="shape"):
        to_rgb_uint8(np.zeros((2, 2, 5), dtype=np.uint8), "rgb", "frame7")


def test_image_folder_natural_order_and_mixed_formats(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 10):  # natural order 1, 2, 10 (lexicographic would give 1, 10, 2)
        value = 20 * i
        if i == 1:
            image = np.full((H, W), value, dtype=np.uint8)  # grayscale
        elif i == 2:
            image = np.dstack([np.full((H, W, 3), value, dtype=np.uint8), np.full((H, W), 255, np.uint8)])  # BGRA
        else:
            image = np.full((H, W, 3), value * 257, dtype=np.uint16)  # 16-bit
        cv2.imwrite(str(folder / f"frame_{i}.png"), image)
    (folder / "notes.txt").write_text("not a frame")
    source = open_frames(folder, fps=5.0)
    got = list(source)
    assert [int(f.image[0, 0, 0]) for f in got] == [20, 40, 200]
    assert [f.timestamp for f in got] == pytest.approx([0.0, 0.2, 0.4])
    assert source.kind == "images" and not source.damaged
    assert sorted(["f10", "f2", "f1"], key=natural_key) == ["f1", "f2", "f10"]
    globbed = list(open_frames(str(folder / "frame_1*.png")))
    assert len(globbed) == 2  # frame_1.png, frame_10.png


def test_unreadable_image_is_a_gap_and_size_change_an_error(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((H, W, 3), 10 * i, np.uint8))
    (folder / "1.png").write_bytes(b"garbage")
    source = open_frames(folder)
    assert [f.index for f in source] == [0, 2]
    assert source.damaged and "1.png" in source.errors[0]
    cv2.imwrite(str(folder / "1.png"), np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(ValueError, match=r"1\.png: frame is 96x66"):
        list(open_frames(folder))


def test_bad_files_fail_at_open_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        open_frames(tmp_path / "missing.mp4")
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="zero.mp4: empty file"):
        open_frames(tmp_path / "zero.mp4")
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 20)
    with pytest.raises(ValueError, match="text.mp4: not a readable video"):
        open_frames(tmp_path / "text.mp4")
    with pytest.raises(FileNotFoundError, match="no image file matches"):
        open_frames(tmp_path / "nothing_*.png")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        open_frames(tmp_path / "empty_dir")
    video = write_video(tmp_path / "ok.avi", moving_square(3))
    with pytest.raises(ValueError, match="stride"):
        open_frames(video, stride=0)
    with pytest.raises(ValueError, match="no frame in the requested time range"):
        open_frames(video, start=5.0)


def test_stride_time_range_and_downscale(tmp_path):
    video = write_video(tmp_path / "clip.avi", moving_square(20), fps=10.0)
    strided = open_frames(video, stride=3)
    assert [f.index for f in strided] == [0, 3, 6, 9, 12, 15, 18] and strided.output_fps == pytest.approx(10 / 3)
    ranged = open_frames(video, start=0.5, end=1.2, stride=2)
    assert [f.index for f in ranged] == [5, 7, 9, 11]
    assert ranged.expected_frames() == 4
    small = open_frames(video, max_size=48)
    first = next(iter(small))
    assert first.image.shape == (32, 48, 3) and (small.width, small.height) == (48, 32)
    assert (small.source_width, small.source_height) == (W, H)
    with pytest.raises(RuntimeError, match="only once"):
        list(small)


@pytest.mark.parametrize("slow", [False, True])
@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_avi_yields_what_decodes_and_reports_it(tmp_path, backend, slow):
    cut = truncate(write_video(tmp_path / "clip.avi", moving_square(20)), 0.6)
    reference = [f.index for f in open_frames(cut, backend="opencv")]
    source = open_frames(cut, backend=backend)
    got = []
    for frame in source:
        got.append(frame.index)
        if slow:  # decord's decode-ahead thread reports the cut packet at a timing-dependent frame
            time.sleep(0.01)
    assert 0 < len(got) < 20 and got == list(range(len(got))) == reference
    assert source.truncated and source.damaged and source.declared_frames == 20 and not source.errors
    assert "declares 20 frames" in source.truncation_message()


def test_truncated_mp4_loses_its_index(tmp_path):
    video = write_video(tmp_path / "clip.mp4", moving_square(10), fourcc="mp4v")
    with pytest.raises(ValueError, match="cut_clip.mp4: not a readable video.*moov"):
        open_frames(truncate(video, 0.7))


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_video_writer_is_atomic_and_round_trips(tmp_path, suffix):
    target = tmp_path / "out" / f"result{suffix}"
    frames = moving_square(5)
    writer = VideoWriter(target, 10.0, (W, H))
    for frame in frames:
        writer.write(frame)
    assert not target.exists() and len(list(target.parent.iterdir())) == 1  # only the hidden temp file
    assert writer.close() == target and sorted(p.name for p in target.parent.iterdir()) == [target.name]
    got = list(open_frames(target))
    assert len(got) == 5 and got[0].image.shape == (H, W, 3)
    assert abs(square_x(got[4].image) - square_x(frames[4])) <= 1


def test_video_writer_pads_odd_sizes_and_discards_on_error(tmp_path):
    odd = tmp_path / "odd.mp4"
    with VideoWriter(odd, 5.0, (131, 97)) as writer:
        writer.write(np.full((97, 131, 3), 200, np.uint8))
    image = next(iter(open_frames(odd))).image
    assert image.shape == (98, 132, 3) and image[:97, :131].mean() > 190 and image[97].mean() < 20
    failed = tmp_path / "failed.avi"
    with pytest.raises(ValueError, match="failed.avi: frames must be RGB uint8"):
        with VideoWriter(failed, 5.0, (W, H)) as writer:
            writer.write(np.zeros((H, W, 3), np.uint8))
            writer.write(np.zeros((H, W), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]
    with pytest.raises(ValueError, match="unsupported video suffix"):
        VideoWriter(tmp_path / "x.gif", 5.0, (W, H))


def test_live_recorder_measures_the_rate(tmp_path):
    recorder = LiveRecorder(tmp_path / "rec.avi", warmup_frames=4)
    for k, frame in enumerate(moving_square(6)):
        recorder.write(frame, t=100.0 + k / 20)  # 20 frames per second
    assert recorder.close() == tmp_path / "rec.avi" and recorder.fps == pytest.approx(20.0)
    source = open_frames(tmp_path / "rec.avi")
    assert source.fps == pytest.approx(20.0, rel=0.01) and len(list(source)) == 6
    assert LiveRecorder(tmp_path / "none.mp4").close() is None and not (tmp_path / "none.mp4").exists()


# --------------------------------------------------------------------------------------------------
# Live capture
# --------------------------------------------------------------------------------------------------
def test_grabber_keeps_the_newest_frame_and_counts_drops(tmp_path):
    video = write_video(tmp_path / "fast.avi", moving_square(30), fps=200.0)
    with LatestFrameGrabber(str(video)) as grabber:
        delivered = []
        while (frame := grabber.read(timeout=5.0)) is not None:
            delivered.append(frame)
            time.sleep(0.03)  # a consumer 6x slower than the source
        assert grabber.finished and grabber.end_reason == "end of file"
        assert grabber.dropped > 0 and grabber.captured == 30
        assert grabber.delivered + grabber.dropped == grabber.captured == len(delivered) + grabber.dropped
        indices = [f.index for f in delivered]
        assert indices == sorted(indices) and indices[-1] == 29  # the newest frame is never lost


def test_webcam_frames_unpaced_and_stops(tmp_path):
    video = write_video(tmp_path / "clip.avi", moving_square(5))
    frames = webcam_frames(str(video), realtime=False)
    first = next(frames)
    assert first.image.shape == (H, W, 3)
    frames.close()  # stops the capture thread


class _FakeCamera:
    """Stands in for cv2.VideoCapture(index): three frames, then the camera is unplugged."""

    def __init__(self, index: int) -> None:
        self.left = 3

    def isOpened(self) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 30.0

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.left -= 1
        return (True, np.zeros((H, W, 3), np.uint8)) if self.left >= 0 else (False, None)

    def release(self) -> None:
        pass


def test_camera_disconnect_ends_cleanly_and_bad_index_fails(monkeypatch):
    with pytest.raises(ValueError, match="camera 97: cannot be opened"):
        LatestFrameGrabber(97)
    monkeypatch.setattr(capture.cv2, "VideoCapture", _FakeCamera)
    grabber = LatestFrameGrabber("0")
    frames = list(grabber.frames(timeout=5.0))
    assert 1 <= len(frames) <= 3 and grabber.finished
    assert "stopped delivering frames" in grabber.end_reason
