"""Tests of vis/io/capture.py: newest-frame capture, live recording."""
from __future__ import annotations

import time

import numpy as np
import pytest

from queryinst.vis.io import capture
from queryinst.vis.io.capture import LatestFrameGrabber, LiveRecorder, webcam_frames
from queryinst.vis.io.reader import open_frames
from support.videos import H, W, moving_square, write_video


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
