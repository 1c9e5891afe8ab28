"""tools/convert_mmdet.py end to end (subprocess): an mmdetection-format QueryInst checkpoint in, ours out.

The R50 checkpoint is synthetic: random tensors with the names, shapes and dtypes mmdetection 3.3.0
saves for queryinst_r50_fpn_1x_coco (tests/data/mmdet_queryinst_r50_keys.tsv), wrapped as
{"meta": {...}, "state_dict": ...}. It is converted once; the layout and error cases use a tiny
ResNet-18 model so that they stay fast.
"""
import subprocess
import sys

import pytest
import torch

from queryinst.image.build import build_queryinst
from queryinst.image.checkpoint import load_checkpoint
from queryinst.image.config import Config, config_from_dict
from queryinst.image.mmdet_import import COCO_CLASSES, to_mmdet_state_dict
from support.repo import REPO_ROOT

pytestmark = pytest.mark.slow  # tool end-to-end runs (subprocesses, R50 checkpoints)

TOOL = REPO_ROOT / "tools" / "convert_mmdet.py"
TSV = REPO_ROOT / "tests" / "data" / "mmdet_queryinst_r50_keys.tsv"


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(TOOL), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=300)


def _synthetic_r50() -> dict[str, torch.Tensor]:
    """Random tensors of the listed shapes: small weights, positive BatchNorm variances."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for line in TSV.read_text().splitlines():
        if line.startswith("#"):
            continue
        key, shape, dtype = line.split("\t")
        size = () if shape == "scalar" else tuple(int(x) for x in shape.split("x"))
        if dtype == "int64":
            state[key] = torch.randint(0, 10**5, size, generator=g)
        elif key.endswith("running_var"):
            state[key] = torch.rand(size, generator=g) + 0.5
        else:
            state[key] = torch.randn(size, generator=g) * 0.05
    return state


@pytest.fixture(scope="module")
def r50(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mmdet_r50")
    mm_state = _synthetic_r50()
    src, dst = folder / "queryinst_r50_mmdet.pth", folder / "queryinst_r50_ours.pth"
    torch.save({"meta": {"mmdet_version": "3.3.0", "epoch": 12, "seed": 0}, "state_dict": mm_state}, src)
    result = _run(src, dst)
    stored = torch.load(dst, map_location="cpu", weights_only=True, mmap=True) if result.returncode == 0 else None
    return mm_state, dst, result, stored


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """A small QueryInst in mmdetection's names, converted three ways by concurrent CLI runs:
    bare state_dict with a DDP prefix; a key missing; an extra key."""
    cfg = Config()
    m = cfg.model
    m.backbone, m.num_proposals, m.num_classes, m.num_stages = "resnet18", 4, 3, 2
    m.hidden_dim = m.fpn_channels = 32
    m.dynamic_dim, m.feedforward_dim = 8, 64
    torch.manual_seed(0)
    state = to_mmdet_state_dict(build_queryinst(cfg).state_dict())
    folder = tmp_path_factory.mktemp("mmdet_tiny")
    missing = {k: v for k, v in state.items() if k != "roi_head.mask_head.1.conv_logits.bias"}
    extra = {**state, "roi_head.bbox_head.0.fc_extra.weight": torch.zeros(2)}
    inputs = {
        "ddp_bare": {"module." + k: v for k, v in state.items()},
        "missing": {"meta": {}, "state_dict": missing},
        "extra": {"meta": {"dataset_meta": {"classes": ("cube", "ball", "cone")}}, "state_dict": extra},
    }
    procs = {}
    for name, data in inputs.items():
        torch.save(data, folder / f"{name}.pth")
        procs[name] = _start(folder / f"{name}.pth", folder / f"{name}_ours.pth")
    runs = {name: (p, *p.communicate(timeout=300)) for name, p in procs.items()}
    return state, cfg, folder, runs


def test_bare_state_dict_with_ddp_prefix(tiny_runs):
    state, cfg, folder, runs = tiny_runs
    proc, out, err = runs["ddp_bare"]
    assert proc.returncode == 0, err
    stored = torch.load(folder / "ddp_bare_ours.pth", map_location="cpu", weights_only=True)
    assert config_from_dict(stored["config"], Config).model == cfg.model  # everything detected
    assert stored["extra"]["class_names"] == ["class_0", "class_1", "class_2"]  # no meta, not 80 classes
    back = to_mmdet_state_dict(stored["model"])
    assert set(back) == set(state) and all(torch.equal(back[k], v) for k, v in state.items())


@pytest.mark.parametrize("case,expected", [
    ("missing", "1 missing: roi_head.mask_head.1.conv_logits.bias"),
    ("extra", "1 unexpected: roi_head.bbox_head.0.fc_extra.weight"),
])
def test_key_mismatch_is_one_error_and_no_output(tiny_runs, case, expected):
    _, _, folder, runs = tiny_runs
    proc, out, err = runs[case]
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error: " in lines[0], err
    assert str(folder / f"{case}.pth") in lines[0] and expected in lines[0]
    assert not (folder / f"{case}_ours.pth").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(f".{case}_ours.pth")]  # no temp file left


def test_r50_converts_and_loads_strictly(r50):
    mm_state, dst, result, stored = r50
    assert result.returncode == 0, result.stderr
    assert "resnet50, 100 proposals, 80 classes, 6 stages (780 tensors)" in result.stdout
    assert stored["extra"]["class_names"] == list(COCO_CLASSES)
    assert stored["extra"]["source"]["mmdet_version"] == "3.3.0"
    cfg = config_from_dict(stored["config"], Config)
    assert cfg.model == Config().model  # queryinst_r50_fpn_1x_coco: our default model
    model = build_queryinst(cfg)
    load_checkpoint(str(dst), model, cfg=cfg, strict=True)  # raises on any missing/unexpected tensor
    model.eval()
    x = torch.zeros(1, 3, 64, 96)
    x[:, :, :60, :90] = torch.randn(1, 3, 60, 90, generator=torch.Generator().manual_seed(1))
    out = model.raw_outputs(x, (60, 90))
    assert len(out["cls_logits"]) == len(out["boxes"]) == 6
    assert out["cls_logits"][-1].shape == (100, 80) and out["boxes"][-1].shape == (100, 4)
    assert out["mask_logits"].shape == (100, 80, 28, 28)
    assert all(torch.isfinite(t).all() for t in [*out["cls_logits"], *out["boxes"], out["mask_logits"]])


def test_r50_is_lossless(r50):
    mm_state, _, result, stored = r50
    assert result.returncode == 0, result.stderr
    back = to_mmdet_state_dict(stored["model"])
    assert set(back) == set(mm_state) and len(back) == 780
    for key, value in mm_state.items():
        assert back[key].dtype == value.dtype and torch.equal(back[key], value), key


def test_converted_checkpoint_fits_the_paper_config_and_starts_vis_finetuning(r50):
    """tools/test.py loads weights with the config check; QueryInst-VIS starts from the same file."""
    from queryinst.image.config import load_config
    from queryinst.vis.modeling.build import build_queryinst_vis
    from queryinst.vis.config import VisConfig

    _, dst, result, _ = r50
    assert result.returncode == 0, result.stderr
    cfg = load_config(str(REPO_ROOT / "configs" / "image" / "queryinst_r50_1x_coco.yaml"), ["model.pretrained="])
    model = build_queryinst(cfg)  # as tools/test.py: no ImageNet download, --weights supply everything
    load_checkpoint(str(dst), model, cfg=cfg)  # what tools/test.py does; raises on another config
    vis_cfg = load_config(str(REPO_ROOT / "configs" / "vis" / "queryinst_vis_r50_ytvis19.yaml"),
                          [f"model.init_from={dst}"], schema=VisConfig)
    vis = build_queryinst_vis(vis_cfg)
    state = vis.detector.state_dict()
    assert torch.equal(state["stages.5.box_head.ffn_in.weight"], model.state_dict()["stages.5.box_head.ffn_in.weight"])
    assert torch.equal(state["proposals.boxes.weight"], model.state_dict()["proposals.boxes.weight"][:10])
    assert state["stages.0.box_head.cls_logits.weight"].shape[0] == 40
