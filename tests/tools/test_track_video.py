"""tools/track_video.py end to end with a tiny random-weight QueryInst-VIS on generated videos.

Most runs call ``main(argv)`` in this process (a subprocess spends seconds importing torch); one smoke
test runs the script itself. The model is random, so the tests check structure, not accuracy.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from queryinst.cli import run as cli_run
from queryinst.image.checkpoint import save_checkpoint
from queryinst.image.config import merge_into, save_config
from queryinst.vis.config import VisConfig
from queryinst.vis.data.synthetic import make_ytvis_dataset
from queryinst.vis.modeling.build import build_queryinst_vis
from support.repo import REPO_ROOT, error_lines, load_tool
from support.videos import write_mjpeg_avi

H, W = 64, 96
CLASS_NAMES = ["square", "circle", "triangle", "star", "ellipse", "cross"]
TINY = {"model": {"backbone": "resnet18", "num_stages": 2, "hidden_dim": 32, "fpn_channels": 32, "dynamic_dim": 8,
                  "feedforward_dim": 64, "num_heads": 4, "track_dim": 32, "num_classes": 6},
        "data": {"test_min_size": 64, "test_max_size": 96},
        "inference": {"score_threshold": 0.0},  # a random model scores ~0.01-0.06: keep every query
        "run": {"device": "cpu"}}


def tiny_model(folder: Path, **model_changes) -> tuple[Path, Path]:
    """Save a random-weight tiny VIS model: (config.yaml, weights.pth), a valid --config/--weights pair."""
    cfg = VisConfig()
    merge_into(cfg, {**TINY, "model": {**TINY["model"], **model_changes}})
    torch.manual_seed(0)
    model = build_queryinst_vis(cfg)
    weights, config = folder / "tiny.pth", folder / "tiny.yaml"
    save_checkpoint(str(weights), model, None, None, 0, 0, cfg, extra={"class_names": CLASS_NAMES})
    save_config(cfg, str(config))
    return config, weights


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def synthetic_frames(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """Eight RGB frames of moving shapes (vis/data/synthetic.py)."""
    files = make_ytvis_dataset(tmp_path_factory.mktemp("synth") / "ds", 1, length=8, height=H, width=W, seed=5)
    names = json.loads(files.json_path.read_text())["videos"][0]["file_names"]
    return [cv2.cvtColor(cv2.imread(str(files.frames_root / n)), cv2.COLOR_BGR2RGB) for n in names]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 OpenMP threads on a busy 2-core machine crawl
    yield
    torch.set_num_threads(threads)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0, fourcc: str = "MJPG",
                color: bool = True) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, frames[0].shape[1::-1], color)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if color else frame)
    writer.release()
    return path


def _main(*args: str | Path) -> int:
    return load_tool("track_video").main([str(a) for a in args])


def _model_args(model_files: tuple[Path, Path]) -> list[str]:
    return ["--config", str(model_files[0]), "--weights", str(model_files[1])]


def _count_frames(path: Path) -> tuple[int, tuple[int, int]]:
    capture = cv2.VideoCapture(str(path))
    count, size = 0, (0, 0)
    while True:
        ok, frame = capture.read()
        if not ok:
            return count, size
        count, size = count + 1, frame.shape[:2]


def _check_outputs(out: Path, stem: str, frames: int, height: int, width: int, png: bool = True) -> dict:
    """Schema and consistency of one input's outputs; returns the JSON."""
    data = json.loads((out / f"{stem}.json").read_text())
    assert data["num_frames"] == len(data["frames"]) == frames
    assert (data["height"], data["width"]) == (height, width)
    assert [c["name"] for c in data["categories"]] == CLASS_NAMES
    assert [f["frame_index"] for f in data["frames"]] == list(range(frames))
    for entry in data["frames"]:
        assert set(entry) == {"frame_index", "source_frame", "timestamp", "tracks"}
        for track in entry["tracks"]:
            assert set(track) == {"track_id", "box", "score", "class_id", "class_name", "rle"}
            assert track["class_name"] == CLASS_NAMES[track["class_id"]] and len(track["box"]) == 4
            assert track["rle"]["size"] == [height, width] and isinstance(track["rle"]["counts"], str)
            rle = {"size": track["rle"]["size"], "counts": track["rle"]["counts"].encode()}
            assert mask_utils.decode(rle).shape == (height, width)
    per_frame_ids = {t["track_id"] for entry in data["frames"] for t in entry["tracks"]}
    assert [t["track_id"] for t in data["tracks"]] == sorted(per_frame_ids)
    for record in data["tracks"]:
        assert len(record["segmentations"]) == frames and record["video_id"] == 1
        assert record["class_name"] == CLASS_NAMES[record["category_id"] - 1] and 0 <= record["score"] <= 1
    video = out / f"{stem}.mp4"
    count, size = _count_frames(video)
    assert count == frames and size == (height + height % 2, width + width % 2)  # odd sizes padded by 1
    if png:
        pngs = sorted((out / f"{stem}_masks").iterdir())
        assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(frames)]
        for entry, path in zip(data["frames"], pngs):
            ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            assert ids.dtype == np.uint16 and ids.shape == (height, width)
            assert set(np.unique(ids).tolist()) - {0} <= {t["track_id"] for t in entry["tracks"]}
    return data


def test_many_inputs_codecs_sizes_and_formats(tmp_path, model_files, synthetic_frames):
    frames = synthetic_frames
    rng = np.random.default_rng(0)
    odd = [rng.integers(0, 255, (97, 131, 3), dtype=np.uint8) for _ in range(3)]
    folder = tmp_path / "folder_clip"
    folder.mkdir()
    for i, frame in enumerate(frames[:4]):
        cv2.imwrite(str(folder / f"img{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))  # grayscale PNGs
    inputs = [write_video(tmp_path / "mp4v_clip.mp4", frames, fourcc="mp4v"),
              write_video(tmp_path / "mjpg_clip.avi", frames[:5]),
              write_mjpeg_avi(tmp_path / "odd_clip.avi", odd),
              write_video(tmp_path / "gray_clip.avi", [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames[:4]],
                          color=False),
              write_video(tmp_path / "single.mp4", frames[:1], fourcc="mp4v"),
              folder]
    out = tmp_path / "out"
    assert _main("--input", *inputs, "--output", out, *_model_args(model_files), "--png-masks", "--trails") == 0
    data = _check_outputs(out, "mp4v_clip", 8, H, W)
    assert data["tracks"] and data["frames"][3]["timestamp"] == pytest.approx(0.3, abs=1e-3)
    _check_outputs(out, "mjpg_clip", 5, H, W)
    _check_outputs(out, "odd_clip", 3, 97, 131)
    _check_outputs(out, "gray_clip", 4, H, W)
    _check_outputs(out, "single", 1, H, W)
    _check_outputs(out, "folder_clip", 4, H, W)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_options_stride_time_range_size_and_json_only(tmp_path, model_files, synthetic_frames):
    clip = write_video(tmp_path / "clip.avi", synthetic_frames + synthetic_frames[::-1], fps=10.0)  # 16 frames
    out = tmp_path / "out"
    status = _main("--input", clip, "--output", out, *_model_args(model_files), "--stride", "2", "--start", "0.3",
                   "--end", "1.2", "--max-size", "48", "--no-video", "--batch-frames", "3", "--score-thr", "0.02")
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ["clip.json"]
    data = json.loads((out / "clip.json").read_text())
    assert [f["source_frame"] for f in data["frames"]] == [3, 5, 7, 9, 11]
    assert (data["width"], data["height"], data["source_width"]) == (48, 32, W)
    assert data["fps"] == pytest.approx(5.0)
    scores = [t["score"] for f in data["frames"] for t in f["tracks"]]
    assert all(s >= 0.02 for s in scores)


def test_truncated_input_is_processed_and_exits_3(tmp_path, model_files, synthetic_frames, capsys):
    clip = write_video(tmp_path / "clip.avi", synthetic_frames * 2)  # 16 frames
    cut = tmp_path / "cut.avi"
    cut.write_bytes(clip.read_bytes()[: int(clip.stat().st_size * 0.6)])
    out = tmp_path / "out"
    assert _main("--input", cut, "--output", out, *_model_args(model_files)) == 3
    data = json.loads((out / "cut.json").read_text())
    assert 0 < data["num_frames"] < 16 and data["truncated"] and "declares 16 frames" in data["errors"][0]
    assert _count_frames(out / "cut.mp4")[0] == data["num_frames"]
    assert "warning: " in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["missing", "zero-byte", "text", "cut-mp4"])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, model_files, synthetic_frames, capsys, kind):
    path = tmp_path / "bad.mp4"
    if kind == "zero-byte":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello, I am not a video\n" * 10)
    elif kind == "cut-mp4":  # an MP4 cut short loses its index: nothing decodes
        good = write_video(tmp_path / "good.mp4", synthetic_frames, fourcc="mp4v")
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    out = tmp_path / "out"
    capsys.readouterr()
    assert _main("--input", path, "--output", out, *_model_args(model_files)) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith("error: ") and "bad.mp4" in err[0]
    assert list(out.iterdir()) == []


def test_good_and_bad_inputs_together(tmp_path, model_files, synthetic_frames, capsys):
    good = write_video(tmp_path / "good.avi", synthetic_frames[:3])
    out = tmp_path / "out"
    assert _main("--input", tmp_path / "nope.avi", good, "--output", out, *_model_args(model_files)) == 2
    assert sorted(p.name for p in out.iterdir()) == ["good.json", "good.mp4"]
    assert "nope.avi" in capsys.readouterr().err


def test_checkpoint_of_another_config_exits_2(tmp_path, model_files, synthetic_frames, capsys):
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    _, other_weights = tiny_model(other_dir, dynamic_dim=4)
    clip = write_video(tmp_path / "clip.avi", synthetic_frames[:2])
    out = tmp_path / "out"
    capsys.readouterr()
    status = _main("--input", clip, "--output", out, "--config", model_files[0], "--weights", other_weights)
    err = error_lines(capsys.readouterr().err)
    assert status == 2 and len(err) == 1
    assert "tiny.pth" in err[0] and "another config" in err[0] and "dynamic_dim" in err[0]
    assert not out.exists()


@pytest.mark.slow
def test_script_runs_from_the_command_line(tmp_path, model_files, synthetic_frames):
    clip = write_video(tmp_path / "clip.avi", synthetic_frames[:3])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "tools/track_video.py", "--input", str(clip), "--output",
                           str(tmp_path / "out"), *_model_args(model_files)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "clip.avi: 3 frames" in proc.stdout and (tmp_path / "out" / "clip.mp4").is_file()


@pytest.mark.slow
def test_torchrun_shares_the_inputs_and_leaves_the_single_process_outputs(tmp_path, model_files, synthetic_frames):
    clips = [write_video(tmp_path / f"clip{k}.avi", synthetic_frames[k:k + 3]) for k in range(3)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["tools/track_video.py", "--input", *map(str, clips), "--no-video", *_model_args(model_files)]
    single = subprocess.run([sys.executable, *args, "--output", str(tmp_path / "single")], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29538"]
    shared = subprocess.run([*torchrun, *args, "--output", str(tmp_path / "shared")], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert shared.returncode == 0, shared.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["clip0.json", "clip1.json", "clip2.json"]
    for k in range(3):  # every input tracked once, by one of the two processes, as one process does it
        a = json.loads((tmp_path / "single" / f"clip{k}.json").read_text())
        b = json.loads((tmp_path / "shared" / f"clip{k}.json").read_text())
        assert a == b
    assert shared.stdout.count("frames ->") == 3  # rank 0 two inputs, rank 1 one


@pytest.mark.skipif(not (REPO_ROOT / "models" / "demo" / "vis_synthetic.pth").is_file(), reason="no shipped demo model")
def test_demo_model_and_sample_are_found_from_any_directory(tmp_path, monkeypatch):
    # The demo model's files are located from the package, not the current directory (running
    # ``python /path/to/tools/track_video.py --input /path/to/assets/sample.mp4 --output out`` from / works).
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert _main("--input", REPO_ROOT / "assets" / "sample.mp4", "--output", out, "--end", "0.25", "--no-video") == 0
    assert json.loads((out / "sample.json").read_text())["num_frames"] == 4  # 0.25 s at 12 FPS, end included


def test_mot_and_mots_files_and_first_last_frames(tmp_path, model_files, synthetic_frames):
    clip = write_video(tmp_path / "clip.avi", synthetic_frames[:4])
    out = tmp_path / "out"
    assert _main("--input", clip, "--output", out, *_model_args(model_files), "--mot", "--mots", "--no-video",
                 "--threads", "1") == 0
    assert sorted(p.name for p in out.iterdir()) == ["clip.json", "clip_mot.txt", "clip_mots.txt"]
    data = json.loads((out / "clip.json").read_text())
    per_frame = [(f["frame_index"] + 1, t["track_id"]) for f in data["frames"] for t in f["tracks"]]
    mot = [tuple(int(v) for v in line.split(",")[:2]) for line in (out / "clip_mot.txt").read_text().splitlines()]
    mots = [line.split() for line in (out / "clip_mots.txt").read_text().splitlines()]
    assert mot == per_frame and [(int(r[0]), int(r[1]) % 1000) for r in mots] == per_frame
    for record in data["tracks"]:
        assert 0 <= record["first_frame"] <= record["last_frame"] < data["num_frames"]


def test_an_override_among_the_inputs_is_an_override(tmp_path, model_files, synthetic_frames, capsys):
    clip = write_video(tmp_path / "clip.avi", synthetic_frames[:3])
    out = tmp_path / "out"
    # a random model scores ~0.01-0.06: a 0.5 threshold leaves no track, proving the override was applied
    assert _main("--input", clip, "inference.score_threshold=0.5", "--output", out, *_model_args(model_files)) == 0
    data = json.loads((out / "clip.json").read_text())
    assert data["num_frames"] == 3 and data["tracks"] == [] and all(not f["tracks"] for f in data["frames"])
    assert "loading the model" in capsys.readouterr().err


def test_a_stray_argument_fails_before_the_model_loads(tmp_path, model_files, capsys):
    tool = load_tool("track_video")
    out = tmp_path / "out"
    status = cli_run(tool.main, ["stray.mp4", "--input", "a.mp4", "--output", str(out), *_model_args(model_files)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err == ["error: stray.mp4: not a key=value config override (e.g. tracker.mode=masktrack);"
                                   " a file goes after its option (--input stray.mp4)"]
    assert not out.exists()
