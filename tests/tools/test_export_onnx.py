"""tools/export_onnx.py and tools/track_video.py --backend onnxruntime, end to end on a tiny random model."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from queryinst.image.checkpoint import save_checkpoint
from queryinst.image.config import merge_into, save_config
from queryinst.vis.config import VisConfig
from queryinst.vis.modeling.build import build_queryinst_vis

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from queryinst.vis.modeling.export import OnnxQueryInstVIS  # noqa: E402  (needs onnxruntime)
from support.repo import error_lines, load_tool

pytestmark = pytest.mark.slow  # export and tool end-to-end runs

TINY = {"model": {"backbone": "resnet18", "num_stages": 2, "hidden_dim": 32, "fpn_channels": 32, "dynamic_dim": 8,
                  "feedforward_dim": 64, "num_heads": 4, "track_dim": 16, "num_classes": 3},
        "data": {"test_min_size": 64, "test_max_size": 96},
        "inference": {"score_threshold": 0.0},
        "run": {"device": "cpu"}}


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("model")
    cfg = VisConfig()
    merge_into(cfg, TINY)
    torch.manual_seed(0)
    weights, config = folder / "tiny.pth", folder / "tiny.yaml"
    save_checkpoint(str(weights), build_queryinst_vis(cfg), None, None, 0, 0, cfg,
                    extra={"class_names": ["a", "b", "c"], "cat_ids": [4, 5, 6]})
    save_config(cfg, str(config))
    return config, weights


@pytest.mark.filterwarnings("ignore::FutureWarning")  # --torchscript: TorchScript is deprecated in PyTorch 2.x
def test_export_tool_writes_a_loadable_model_with_metadata(model_files, tmp_path, capsys):
    config, weights = model_files
    out = tmp_path / "tiny.onnx"
    code = load_tool("export_onnx").main(["--config", str(config), "--weights", str(weights), "--out", str(out),
                                      "--torchscript", str(tmp_path / "tiny.pt"), "--check"])
    assert code == 0 and out.is_file() and (tmp_path / "tiny.pt").is_file()
    printed = capsys.readouterr().out
    assert "example input 64x96" in printed and "max |onnxruntime - pytorch|" in printed
    model = OnnxQueryInstVIS(out, num_threads=1)
    assert model.settings["class_names"] == ["a", "b", "c"] and model.settings["cat_ids"] == [4, 5, 6]
    assert len(model.detect([torch.rand(3, 64, 96)])[0].scores) == 10


def test_export_tool_reports_a_missing_checkpoint(tmp_path, capsys):
    code = load_tool("export_onnx").main(["--config", "nope.yaml", "--weights", "nope.pth", "--out", str(tmp_path / "x.onnx")])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and "nope.pth" in lines[0]


def test_track_video_onnxruntime_backend_gives_the_pytorch_tracks(model_files, tmp_path):
    config, weights = model_files
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
    results = {}
    for backend in ("pytorch", "onnxruntime"):
        out = tmp_path / backend
        argv = ["--input", str(frames), "--output", str(out), "--config", str(config), "--weights", str(weights),
                "--no-video", "--backend", backend]
        assert load_tool("track_video").main(argv) == 0
        results[backend] = json.loads((out / "frames.json").read_text())
    for a, b in zip(results["onnxruntime"]["frames"], results["pytorch"]["frames"]):
        assert [t["track_id"] for t in a["tracks"]] == [t["track_id"] for t in b["tracks"]]
        assert [t["class_id"] for t in a["tracks"]] == [t["class_id"] for t in b["tracks"]]
        assert np.allclose([t["box"] for t in a["tracks"]], [t["box"] for t in b["tracks"]], atol=0.02)


def _frames_folder(folder: Path, count: int = 3) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
    return folder


def test_export_tool_writes_an_int8_file_calibrated_on_frames(model_files, tmp_path, capsys):
    config, weights = model_files
    frames = _frames_folder(tmp_path / "frames")
    base = ["--config", str(config), "--weights", str(weights), "--out", str(tmp_path / "tiny.onnx")]
    assert load_tool("export_onnx").main([*base, "--int8", str(tmp_path / "tiny_int8.onnx"), "--calibration",
                                          str(frames), "--check"]) == 0
    printed = capsys.readouterr().out
    assert "int8, calibrated on 3 frames" in printed and "max |int8 - pytorch|" in printed
    model = OnnxQueryInstVIS(tmp_path / "tiny_int8.onnx", num_threads=1)
    assert model.settings["class_names"] == ["a", "b", "c"] and len(model.detect([torch.rand(3, 64, 96)])[0].scores) == 10
    assert load_tool("export_onnx").main([*base, "--int8", str(tmp_path / "other.onnx")]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "--int8 needs --calibration" in lines[0] and not (tmp_path / "other.onnx").exists()


def test_track_video_int8_backend_calibrates_on_the_input_or_on_calibration(model_files, tmp_path, capsys):
    config, weights = model_files
    frames = _frames_folder(tmp_path / "frames")
    base = ["--input", str(frames), "--config", str(config), "--weights", str(weights), "--no-video",
            "--backend", "onnxruntime-int8"]
    for name, extra in (("own", []), ("other", ["--calibration", str(frames / "0.png")])):
        assert load_tool("track_video").main([*base, "--output", str(tmp_path / name), *extra]) == 0
        result = json.loads((tmp_path / name / "frames.json").read_text())
        assert len(result["frames"]) == 3 and all(len(f["tracks"]) == 10 for f in result["frames"])
    capsys.readouterr()
    assert load_tool("track_video").main([*base, "--output", str(tmp_path / "bad"), "--calibration-frames", "0"]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "at least 1 frame" in lines[0]
