"""tools/webcam.py headless, with a video file standing in for the camera (paced at its frame rate).

The source runs at 100 FPS while the tiny random model, run at 256 x 384, needs tens of milliseconds per
frame, so inference is slower than capture and the demo must drop frames rather than queue them.
"""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from queryinst.image.checkpoint import save_checkpoint
from queryinst.image.config import merge_into, save_config
from queryinst.vis.config import VisConfig
from queryinst.vis.io.capture import LatestFrameGrabber, LiveRecorder
from queryinst.vis.io.reader import open_frames
from queryinst.vis.modeling.build import build_queryinst_vis
from queryinst.vis.modeling.build import load_vis_model
from support.repo import error_lines, load_tool

H, W = 64, 96
SOURCE_FPS = 100.0
TINY = {"model": {"backbone": "resnet18", "num_stages": 2, "hidden_dim": 32, "fpn_channels": 32, "dynamic_dim": 8,
                  "feedforward_dim": 64, "num_heads": 4, "track_dim": 32, "num_classes": 6},
        "data": {"test_min_size": 64, "test_max_size": 96}, "inference": {"score_threshold": 0.0},
        "run": {"device": "cpu"}}
SUMMARY = re.compile(r"(\d+) frames processed, (\d+) captured, (\d+) dropped; mean ([\d.]+) FPS")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("model")
    cfg = VisConfig()
    merge_into(cfg, TINY)
    torch.manual_seed(0)
    save_checkpoint(str(folder / "tiny.pth"), build_queryinst_vis(cfg), None, None, 0, 0, cfg)
    save_config(cfg, str(folder / "tiny.yaml"))
    return folder / "tiny.yaml", folder / "tiny.pth"


def _disc_video(path: Path, fps: float, count: int = 60) -> Path:
    """``count`` frames of a disc moving right."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    for i in range(count):
        frame = np.full((H, W, 3), 50, np.uint8)
        cv2.circle(frame, (10 + i, 32), 10, (0, 200, 255), -1)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def fast_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames at 100 FPS: 0.6 s of camera time."""
    return _disc_video(tmp_path_factory.mktemp("video") / "fast.avi", SOURCE_FPS)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 OpenMP threads on a busy 2-core machine crawl
    yield
    torch.set_num_threads(threads)


def _tool():
    return load_tool("webcam")


def _summary(stdout: str) -> tuple[int, int, int, float]:
    match = SUMMARY.search(stdout)
    assert match, stdout
    return int(match[1]), int(match[2]), int(match[3]), float(match[4])


def test_headless_file_source_drops_frames_and_finalises_the_recording(tmp_path, model_files, fast_video, capsys):
    record = tmp_path / "rec" / "demo.mp4"
    # the network runs at 256 x 384 (a deliberately large input): slower than the 100 FPS source anywhere
    status = _tool().main(["data.test_min_size=256", "data.test_max_size=384", "--source", str(fast_video),
                           "--config", str(model_files[0]), "--weights", str(model_files[1]), "--no-display",
                           "--record", str(record), "--trails"])
    out = capsys.readouterr().out
    assert status == 0
    processed, captured, dropped, fps = _summary(out)
    assert captured == 60 and dropped > 0 and processed + dropped == captured  # nothing queued, nothing lost
    assert "ended: end of file" in out
    source = open_frames(record)
    assert len(list(source)) == processed and (source.width, source.height) == (W, H)
    assert sorted(p.name for p in record.parent.iterdir()) == ["demo.mp4"]  # no temporary file left


def test_max_frames_stops_early(tmp_path, model_files, fast_video, capsys):
    record = tmp_path / "demo.avi"
    status = _tool().main(["--source", str(fast_video), "--config", str(model_files[0]), "--weights",
                           str(model_files[1]), "--no-display", "--max-frames", "3", "--record", str(record)])
    out = capsys.readouterr().out
    assert status == 0 and _summary(out)[0] == 3 and "--max-frames 3" in out
    assert len(list(open_frames(record))) == 3


def test_ctrl_c_still_finalises_the_recording(tmp_path, model_files):
    tool = _tool()
    cfg, model, names, _ = load_vis_model(str(model_files[0]), str(model_files[1]))

    class InterruptingDisplay:  # the user presses Ctrl-C while the third frame is shown
        shown = 0

        def show(self, canvas: np.ndarray) -> bool:
            self.shown += 1
            if self.shown == 3:
                raise KeyboardInterrupt
            return True

        def close(self) -> None:
            pass

    camera = _disc_video(tmp_path / "camera.avi", 20.0)  # 3 s long: still running when Ctrl-C comes
    recorder = LiveRecorder(tmp_path / "demo.mp4")
    stats = tool.run_demo(LatestFrameGrabber(str(camera)), model, cfg, names, InterruptingDisplay(), recorder)
    assert stats.end_reason == "Ctrl-C" and stats.processed == 3 and stats.recording == tmp_path / "demo.mp4"
    assert len(list(open_frames(tmp_path / "demo.mp4"))) == 3


def test_bad_sources_exit_2_with_one_line(tmp_path, model_files, capsys):
    tool = _tool()
    model = ["--config", str(model_files[0]), "--weights", str(model_files[1]), "--no-display"]
    (tmp_path / "text.mp4").write_text("not a video")
    for source, expected in (("97", "camera 97: cannot be opened"), (str(tmp_path / "text.mp4"), "text.mp4"),
                             (str(tmp_path / "missing.avi"), "missing.avi")):
        capsys.readouterr()
        assert tool.main(["--source", source, *model]) == 2
        err = error_lines(capsys.readouterr().err)
        assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0]
    assert tool.main(["--source", "0", "--record", str(tmp_path / "x.gif"), *model]) == 2
    assert "unsupported video suffix" in capsys.readouterr().err


def test_int8_backend_on_a_camera_needs_calibration(model_files, capsys):
    pytest.importorskip("onnxruntime")
    argv = ["--source", "0", "--config", str(model_files[0]), "--weights", str(model_files[1]), "--no-display",
            "--backend", "onnxruntime-int8"]
    assert _tool().main(argv) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "needs --calibration" in err[0]
