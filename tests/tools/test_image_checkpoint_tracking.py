"""An image QueryInst checkpoint (no track head) tracks through every tool without --config, by its query
embeddings (vis/modeling/build.py): tools/track_video.py, tools/webcam.py on a file, tools/submit_ytvis.py,
and VideoTracker.from_pretrained; for a checkpoint of ours and one converted from mmdetection's format.
Random weights: the tests check the path and the outputs' structure."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from queryinst.image.build import build_queryinst
from queryinst.image.checkpoint import save_checkpoint
from queryinst.image.config import Config, merge_into
from queryinst.image.mmdet_import import convert_mmdet_checkpoint, to_mmdet_state_dict
from queryinst import VideoTracker
from queryinst.vis.config import AUTO_EMBEDDING
from queryinst.vis.data.synthetic import make_ytvis_splits
from support.repo import load_tool
from support.videos import moving_square, write_mjpeg_avi

pytestmark = pytest.mark.slow  # tool end-to-end runs

NAMES = ["square", "circle", "triangle", "star", "ellipse", "cross"]  # the synthetic generator's classes
TINY = {"model": {"backbone": "resnet18", "num_stages": 2, "hidden_dim": 32, "fpn_channels": 32, "dynamic_dim": 8,
                  "feedforward_dim": 64, "num_heads": 4, "num_classes": 6, "num_proposals": 12},
        "data": {"test_min_size": 64, "test_max_size": 96}, "run": {"device": "cpu"}}


@pytest.fixture(scope="module", params=["ours", "mmdetection"])
def image_checkpoint(request, tmp_path_factory) -> Path:
    """An image checkpoint written by this toolkit, or an mmdetection-format file converted by
    tools/convert_mmdet.py's converter (which stores the config derived from the weights)."""
    cfg = merge_into(Config(), TINY)
    torch.manual_seed(0)
    model = build_queryinst(cfg)
    folder = tmp_path_factory.mktemp("image")
    path = folder / "image.pth"
    if request.param == "ours":
        save_checkpoint(str(path), model, None, None, 1, 1, cfg, extra={"class_names": NAMES})
    else:
        torch.save({"meta": {"mmdet_version": "3.3.0"}, "state_dict": to_mmdet_state_dict(model.state_dict())},
                   folder / "mmdet.pth")
        convert_mmdet_checkpoint(str(folder / "mmdet.pth"), str(path), cfg, class_names=NAMES)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_mjpeg_avi(tmp_path_factory.mktemp("video") / "clip.avi", moving_square(6, 64, 96))


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_track_video(tmp_path, image_checkpoint, video, capsys):
    status = load_tool("track_video").main(["--input", str(video), "--output", str(tmp_path / "out"), "--weights",
                                            str(image_checkpoint), "inference.score_threshold=0.0"])
    assert status == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "out" / "clip.json").read_text())
    assert data["num_frames"] == 6 and [c["name"] for c in data["categories"]] == NAMES
    # 12 queries, top 10 a frame, all kept (threshold 0): ten tracked instances on every frame
    assert [len(f["tracks"]) for f in data["frames"]] == [10] * 6
    assert (tmp_path / "out" / "clip.mp4").is_file()


def test_webcam_on_a_file(tmp_path, image_checkpoint, video, capsys):
    status = load_tool("webcam").main(["--source", str(video), "--weights", str(image_checkpoint), "--no-display",
                                       "--record", str(tmp_path / "rec.mp4")])
    out = capsys.readouterr().out
    assert status == 0 and "ended: end of file" in out and (tmp_path / "rec.mp4").is_file()


def test_submit_ytvis(tmp_path, image_checkpoint):
    valid = make_ytvis_splits(tmp_path / "data", num_train=1, num_valid=2, length=4, height=64, width=96,
                              seed=5)["valid"]
    out = tmp_path / "results.zip"
    status = load_tool("submit_ytvis").main(["--weights", str(image_checkpoint), "--json", str(valid.json_path),
                                             "--frames", str(valid.frames_root), "--out", str(out),
                                             "inference.score_threshold=0.0"])
    assert status == 0
    with zipfile.ZipFile(out) as z:
        records = json.loads(z.read("results.json"))
    assert {r["video_id"] for r in records} == {v["id"] for v in json.loads(valid.json_path.read_text())["videos"]}
    assert all(len(r["segmentations"]) == 4 for r in records)


def test_python_side(image_checkpoint, video):
    tracker = VideoTracker.from_pretrained(image_checkpoint, device="cpu", score_threshold=0.0)
    assert tracker.model.track_head is None and tracker.model.embedding == AUTO_EMBEDDING["image"]
    frames = list(tracker.track(str(video)))
    assert len(frames) == 6 and all(len(f) == 10 for f in frames)
    assert set(frames[0].class_names) <= set(NAMES) and np.array_equal(frames[0].track_ids, np.arange(1, 11))
