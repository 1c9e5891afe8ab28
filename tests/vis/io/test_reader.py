"""Tests of vis/io/reader.py: decoding with decord and OpenCV, frame checks, damage reports."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from queryinst.vis.io import reader
from queryinst.vis.io.common import natural_key, to_rgb_uint8
from queryinst.vis.io.reader import open_frames
from support.videos import H, W, moving_square, square_x, truncate, write_mjpeg_avi, write_video

HAS_DECORD = reader._import_decord() is not None
BACKENDS = ["opencv", pytest.param("decord", marks=pytest.mark.skipif(not HAS_DECORD, reason="decord not installed"))]


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
