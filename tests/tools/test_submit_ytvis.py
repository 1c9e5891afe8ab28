"""tools/submit_ytvis.py end to end on a tiny synthetic split, and its behaviour on bad frames."""
import json
import os
import subprocess
import sys
import zipfile

import pytest
import torch

from queryinst.image.checkpoint import save_checkpoint
from queryinst.image.config import load_config, save_config
from queryinst.vis.config import VisConfig
from queryinst.vis.data.synthetic import make_ytvis_splits
from queryinst.vis.modeling.build import build_queryinst_vis
from support.repo import REPO_ROOT

pytestmark = pytest.mark.slow  # tool end-to-end runs (subprocesses)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("submit")
    splits = make_ytvis_splits(tmp / "data", num_train=1, num_valid=3, length=4, height=64, width=96, seed=5)
    cfg = load_config(os.path.join(REPO_ROOT, "configs/synthetic/vis_tiny.yaml"), ["data.test_min_size=64",
                                                                                 "data.test_max_size=96"],
                      schema=VisConfig)
    torch.manual_seed(0)
    model = build_queryinst_vis(cfg)
    save_checkpoint(str(tmp / "model.pth"), model, None, None, 0, 0, cfg)
    save_config(cfg, str(tmp / "config.yaml"))
    return tmp, splits["valid"]


def _run(tmp, valid, frames, out, *extra):
    return subprocess.run([sys.executable, "tools/submit_ytvis.py", "--config", str(tmp / "config.yaml"),
                           "--weights", str(tmp / "model.pth"), "--json", str(valid.json_path),
                           "--frames", str(frames), "--out", str(out), *extra, "run.device=cpu"],
                          cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_submission_zip_is_valid_and_scores(setup):
    tmp, valid = setup
    out = tmp / "results.zip"
    proc = _run(tmp, valid, valid.frames_root, out)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(out) as z:
        assert z.namelist() == ["results.json"]
        records = json.loads(z.read("results.json"))
    videos = {v["id"]: v for v in json.loads(open(valid.json_path).read())["videos"]}
    for r in records:
        assert len(r["segmentations"]) == videos[r["video_id"]]["length"]
        assert 0.0 <= r["score"] <= 1.0
    ev = subprocess.run([sys.executable, "tools/eval_ytvis.py", "--gt", str(valid.gt_json_path), "--results",
                         str(out), "--json-out", str(tmp / "m.json")], cwd=REPO_ROOT, capture_output=True, text=True)
    assert ev.returncode == 0, ev.stderr
    assert set(json.loads((tmp / "m.json").read_text())) >= {"AP", "AP50", "AR10"}


def test_torchrun_shards_the_videos_and_writes_the_single_process_zip(setup, tmp_path):
    # 2 gloo processes on the CPU, each tracking every other video; rank 0 gathers and writes
    tmp, valid = setup
    single, sharded = tmp_path / "single.zip", tmp_path / "sharded.zip"
    proc = _run(tmp, valid, valid.frames_root, single)
    assert proc.returncode == 0, proc.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29537"]
    proc = subprocess.run([*torchrun, "tools/submit_ytvis.py", "--config", str(tmp / "config.yaml"),
                           "--weights", str(tmp / "model.pth"), "--json", str(valid.json_path),
                           "--frames", str(valid.frames_root), "--out", str(sharded), "run.device=cpu"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(rank 1/2)" in proc.stderr or "rank 1" in proc.stderr  # both ranks worked
    with zipfile.ZipFile(single) as a, zipfile.ZipFile(sharded) as b:
        assert json.loads(a.read("results.json")) == json.loads(b.read("results.json"))
        assert len(json.loads(a.read("results.json"))) > 0


@pytest.mark.parametrize("defect", ["missing", "corrupt"])
def test_bad_frame_is_one_error_naming_it_and_no_zip(setup, tmp_path, defect):
    tmp, valid = setup
    frames = tmp_path / "JPEGImages"
    subprocess.run(["cp", "-r", str(valid.frames_root), str(frames)], check=True)
    victim = sorted(p for p in frames.rglob("*.jpg"))[5]
    if defect == "missing":
        victim.unlink()
    else:
        victim.write_bytes(b"not a jpeg at all")
    out = tmp_path / "results.zip"
    proc = _run(tmp, valid, frames, out)
    assert proc.returncode == 2
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and victim.name in error_lines[0]
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


def test_int8_backend_calibrates_on_the_split_and_writes_a_valid_zip(setup, tmp_path):
    pytest.importorskip("onnxruntime")
    tmp, valid = setup
    out = tmp_path / "int8.zip"
    proc = _run(tmp, valid, valid.frames_root, out, "--backend", "onnxruntime-int8", "--calibration-frames", "5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with zipfile.ZipFile(out) as z:
        records = json.loads(z.read("results.json"))
    lengths = {v["id"]: v["length"] for v in json.loads(open(valid.json_path).read())["videos"]}
    assert records and all(len(r["segmentations"]) == lengths[r["video_id"]] for r in records)
    proc = _run(tmp, valid, valid.frames_root, tmp_path / "x.zip", "--backend", "onnxruntime-int8",
                "--calibration", str(tmp_path / "missing"))
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "missing" in errors[0]
