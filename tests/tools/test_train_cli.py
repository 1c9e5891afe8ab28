"""tools/train.py, tools/test.py and tools/demo_image.py end to end on tiny synthetic data.

The main flow runs the tools as ``python tools/x.py`` from the repository root; the error cases call
their ``main(argv)`` in this process (a subprocess spends seconds importing torch).
"""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from queryinst.image.data.synthetic import CocoSceneOptions, make_coco_splits
from support.repo import REPO_ROOT, load_tool

pytestmark = pytest.mark.slow  # trainings and tool end-to-end runs

TINY = "configs/synthetic/image_tiny.yaml"
SMALL = ["data.min_sizes=[64]", "data.max_size=96", "data.test_min_size=64", "data.test_max_size=96",
         "data.batch_size=1", "model.num_stages=2", "model.num_proposals=10", "model.hidden_dim=32",
         "model.fpn_channels=32", "model.dynamic_dim=8", "model.feedforward_dim=64", "model.num_heads=4",
         "run.log_period=1", "run.device=cpu"]


def _run(tool: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # 2 OpenMP threads on a busy 2-core machine crawl
    return subprocess.run([sys.executable, f"tools/{tool}.py", *map(str, args)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _main(tool: str, *args: str) -> int:
    return load_tool(tool).main([str(a) for a in args])


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.chdir(REPO_ROOT)
    yield
    torch.set_num_threads(threads)


def _data_overrides(data) -> list[str]:
    return [f"data.train_json={data}/train/annotations.json", f"data.train_images={data}/train/images",
            f"data.val_json={data}/val/annotations.json", f"data.val_images={data}/val/images"]


def _error_line(capsys, tool: str, *args: str) -> str:
    """Run a tool that must fail: exit status 2 and exactly one ``error: ...`` line on stderr."""
    capsys.readouterr()
    status = _main(tool, *args)
    err = capsys.readouterr().err
    assert status == 2, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err[-2000:]
    return lines[0]


def _leftovers(folder) -> list[str]:
    return [f for _, _, files in os.walk(folder) for f in files if "tmp" in f]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """tools/train.py for 2 iterations (+ evaluation at the stop) on 3 training and 2 val images."""
    root = tmp_path_factory.mktemp("cli")
    make_coco_splits(root / "coco", 3, 2, height=64, width=96, seed=3, options=CocoSceneOptions(empty_prob=0.0))
    overrides = [*SMALL, *_data_overrides(root / "coco"), f"run.output_dir={root / 'run'}"]
    proc = _run("train", "--config", TINY, *overrides, "solver.max_iters=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, overrides


def test_train_then_test_then_demo(trained):
    root, overrides = trained
    run = root / "run"
    assert sorted(os.listdir(run)) == ["config.yaml", "last.pth", "log.jsonl", "metrics_iter2.json",
                                       "results_iter2.json"]
    assert [json.loads(line)["iter"] for line in (run / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["num_proposals"] == 10

    proc = _run("test", "--config", run / "config.yaml", "--weights", run / "last.pth", "--out", root / "test")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split(":")[0]: line for line in proc.stdout.splitlines() if line.startswith(("bbox:", "segm:"))}
    assert set(rows) == {"bbox", "segm"} and all(len(r.split()) == 1 + 2 * 12 for r in rows.values())
    metrics = json.loads((root / "test" / "metrics.json").read_text())
    assert len([k for k in metrics if k.startswith(("bbox/", "segm/"))]) == 24
    results = json.loads((root / "test" / "results.json").read_text())
    assert results and {"image_id", "category_id", "bbox", "score", "segmentation"} <= results[0].keys()

    assert _main("demo_image", "--config", TINY, *overrides, "--weights", run / "last.pth",
                 "--input", root / "coco" / "val" / "images", "--output", root / "demo", "--score-thr", "0") == 0
    assert sorted(os.listdir(root / "demo")) == ["000000.png", "000001.png"]


def test_print_config_and_unknown_key(tmp_path, capsys):
    assert _main("train", "--config", TINY, "--print-config", "solver.base_lr=3e-4") == 0
    assert yaml.safe_load(capsys.readouterr().out)["solver"]["base_lr"] == 3e-4
    out = tmp_path / "never"
    line = _error_line(capsys, "train", "--config", TINY, "model.num_clases=3", f"run.output_dir={out}")
    assert "model.num_clases" in line and "num_classes" in line
    assert not out.exists()


def test_checkpoint_from_another_config_is_refused(trained, tmp_path, capsys):
    root, overrides = trained
    line = _error_line(capsys, "test", "--config", TINY, *overrides, "model.num_proposals=7",
                       "--weights", root / "run" / "last.pth", "--out", tmp_path / "out")
    assert "model.num_proposals: checkpoint has 10, config has 7" in line
    assert not (tmp_path / "out").exists()


def test_missing_image_is_named_and_leaves_no_partial_output(trained, tmp_path, capsys):
    root, overrides = trained
    data = tmp_path / "coco"
    shutil.copytree(root / "coco", data)
    (data / "train" / "images" / "000001.jpg").unlink()
    out = tmp_path / "run"
    line = _error_line(capsys, "train", "--config", TINY, *overrides, *_data_overrides(data),
                       f"run.output_dir={out}", "data.num_workers=1")
    # found when the data are loaded, before the output folder is touched (not at an iteration)
    assert f"{data / 'train' / 'images' / '000001.jpg'} (missing)" in line
    assert "listed images are missing or unusable" in line
    assert not out.exists()

    missing = tmp_path / "nothing.jpg"
    line = _error_line(capsys, "demo_image", "--config", TINY, *overrides, "--weights", root / "run" / "last.pth",
                       "--input", missing, "--output", tmp_path / "demo")
    assert str(missing) in line
    assert not (tmp_path / "demo").exists()

    # a folder with unreadable images: the good ones are drawn, every bad one reported at the end, exit 3
    folder = tmp_path / "mixed"
    shutil.copytree(root / "coco" / "val" / "images", folder)
    (folder / "broken_a.png").write_bytes(b"not an image")
    (folder / "broken_b.jpg").write_bytes(b"")
    capsys.readouterr()
    status = _main("demo_image", "--config", TINY, *overrides, "--weights", root / "run" / "last.pth",
                   "--input", folder, "--output", tmp_path / "mixed_out", "--score-thr", "0")
    err = capsys.readouterr().err
    assert status == 3, err
    warnings = [w for w in err.splitlines() if w.startswith("warning: skipped ")]
    assert len(warnings) == 2 and "broken_a.png" in warnings[0] and "broken_b.jpg" in warnings[1], err
    assert sorted(os.listdir(tmp_path / "mixed_out")) == ["000000.png", "000001.png"]
