"""image/mmdet_import.py: reading mmdetection checkpoints, architecture detection, lossless renaming.

Shapes come from tests/data/mmdet_queryinst_r50_keys.tsv (mmdet 3.3.0 queryinst_r50_fpn_1x_coco). Most
tests use meta-device tensors (shapes without memory); the round trip uses real random values.
"""
import collections
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from queryinst.image.config import Config
from queryinst.image.mmdet_import import (
    COCO_CLASSES,
    DETECTED_FIELDS,
    class_names_for,
    config_from_mmdet_state,
    convert_mmdet_checkpoint,
    convert_mmdet_state_dict,
    load_mmdet_checkpoint,
    model_shapes,
    to_mmdet_state_dict,
)
from support import repo

TSV = Path(__file__).resolve().parents[1] / "data" / "mmdet_queryinst_r50_keys.tsv"


def _tsv() -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    rows = {}
    for line in TSV.read_text().splitlines():
        if line.startswith("#"):
            continue
        key, shape, dtype = line.split("\t")
        rows[key] = (() if shape == "scalar" else tuple(int(x) for x in shape.split("x")), getattr(torch, dtype))
    return rows


def _meta_state(rows) -> dict[str, torch.Tensor]:
    return {k: torch.empty(shape, dtype=dtype, device="meta") for k, (shape, dtype) in rows.items()}


def _with_r101_blocks(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add layer3 blocks 6..22 (R101 has 23 in layer3, R50 6), shaped like block 1."""
    out = dict(state)
    for key, value in state.items():
        if key.startswith("backbone.layer3.1."):
            for block in range(6, 23):
                out[key.replace("layer3.1.", f"layer3.{block}.")] = torch.empty_like(value)
    return out


@pytest.fixture(scope="module")
def rows():
    return _tsv()


@pytest.fixture(scope="module")
def tiny_cfg() -> Config:
    return repo.tiny_config(narrow=True, num_heads=8, num_proposals=5, num_stages=2, num_cls_fcs=2, num_reg_fcs=1,
                            box_pool_size=5, num_mask_convs=2)


def test_coco_classes():
    assert len(COCO_CLASSES) == 80 == len(set(COCO_CLASSES))
    assert (COCO_CLASSES[0], COCO_CLASSES[62], COCO_CLASSES[79]) == ("person", "tv", "toothbrush")


def test_r50_config_detected_from_names_and_shapes(rows):
    cfg = config_from_mmdet_state(_meta_state(rows))
    assert cfg.model == Config().model  # mmdetection queryinst_r50_fpn_1x_coco is our default model


def test_r101_detected_from_layer3_block_count(rows):
    state = _with_r101_blocks(_meta_state(rows))
    cfg = config_from_mmdet_state(state)
    assert cfg.model.backbone == "resnet101"
    assert len(convert_mmdet_state_dict(state, cfg)) == len(state)


def test_every_detected_field_round_trips(tiny_cfg):
    state = {k: torch.empty(s, device="meta") for k, s in model_shapes(tiny_cfg).items()}
    cfg = config_from_mmdet_state(to_mmdet_state_dict(state))
    for name in DETECTED_FIELDS:
        assert getattr(cfg.model, name) == getattr(tiny_cfg.model, name), name


def test_lossless_both_ways(rows):
    # Distinct values without 690 MB: tensor i is a view of one random buffer starting at offset i,
    # so two tensors of one shape still differ and a swapped pair would be caught.
    biggest = max(torch.Size(s).numel() for s, _ in rows.values())
    base = torch.randn(biggest + len(rows), generator=torch.Generator().manual_seed(0))
    mm = {k: (base[i: i + torch.Size(s).numel()].view(s) if d.is_floating_point else torch.tensor(i))
          for i, (k, (s, d)) in enumerate(rows.items())}
    ours = convert_mmdet_state_dict(mm, config_from_mmdet_state(mm))
    back = to_mmdet_state_dict(ours)
    assert len(back) == len(mm) == 780
    for key, value in mm.items():
        assert back[key].dtype == value.dtype and torch.equal(back[key], value), key


def test_ddp_prefix_is_stripped(rows):
    state = {"module." + k: v for k, v in _meta_state(rows).items()}
    cfg = config_from_mmdet_state(state)
    assert set(convert_mmdet_state_dict(state, cfg)) == set(model_shapes(cfg))


def test_all_problems_in_one_error(rows):
    state = _meta_state(rows)
    del state["roi_head.bbox_head.3.fc_cls.bias"]
    state["roi_head.bbox_head.0.extra.weight"] = torch.empty(3, device="meta")
    state["neck.fpn_convs.2.conv.bias"] = torch.empty(255, device="meta")
    with pytest.raises(ValueError) as err:
        convert_mmdet_state_dict(state, config_from_mmdet_state(state))
    msg = str(err.value)
    assert "\n" not in msg
    assert "1 missing: roi_head.bbox_head.3.fc_cls.bias" in msg
    assert "1 unexpected: roi_head.bbox_head.0.extra.weight" in msg
    assert "neck.fpn_convs.2.conv.bias [255] (model: [256])" in msg


def test_config_must_agree_with_the_weights(rows):
    base = Config()
    base.model.num_classes, base.model.num_proposals = 40, 10
    with pytest.raises(ValueError, match=r"model.num_proposals: config has 10, checkpoint has 100.*"
                                         r"model.num_classes: config has 40, checkpoint has 80"):
        config_from_mmdet_state(_meta_state(rows), base)
    agreeing = Config()
    agreeing.solver.base_lr = 1e-4
    assert config_from_mmdet_state(_meta_state(rows), agreeing).solver.base_lr == 1e-4


def test_not_queryinst_or_unsupported_backbone(rows):
    sparse_rcnn = {k: v for k, v in _meta_state(rows).items() if not k.startswith("roi_head.mask_head.")}
    with pytest.raises(ValueError, match="Sparse R-CNN"):
        config_from_mmdet_state(sparse_rcnn)
    r152 = _meta_state(rows)
    for key, value in list(r152.items()):
        if key.startswith("backbone.layer2.1."):
            for block in range(4, 8):
                r152[key.replace("layer2.1.", f"layer2.{block}.")] = value
    with pytest.raises(ValueError, match=r"unsupported backbone: ResNet with \(3, 8, 6, 3\) bottleneck"):
        config_from_mmdet_state(r152)


# --------------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------------
class _MmengineLike:
    def __init__(self) -> None:
        self.values = np.arange(3)


def test_loads_meta_layout_bare_and_prefixed(tmp_path):
    state = {"a.weight": torch.arange(4.0), "a.num_batches_tracked": torch.tensor(7)}
    layouts = {
        "meta.pth": {"meta": {"epoch": 12, "dataset_meta": {"classes": ("x", "y")}}, "state_dict": state},
        "bare.pth": state,
        "ddp.pth": {"state_dict": {"module." + k: v for k, v in state.items()}},
    }
    for name, data in layouts.items():
        torch.save(data, tmp_path / name)
        ckpt = load_mmdet_checkpoint(str(tmp_path / name))
        assert list(ckpt.state_dict) == list(state), name
        assert all(torch.equal(ckpt.state_dict[k], v) for k, v in state.items())
    assert load_mmdet_checkpoint(str(tmp_path / "meta.pth")).meta["dataset_meta"]["classes"] == ("x", "y")


@pytest.mark.parametrize("zip_format", [True, False])
def test_pickled_objects_need_the_opt_in(tmp_path, zip_format):
    path = tmp_path / "objects.pth"
    meta = {"seed": np.int64(3), "obj": _MmengineLike(), "ordered": collections.OrderedDict(a=1)}
    torch.save({"meta": meta, "state_dict": {"w": torch.ones(2)}}, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(ValueError, match=r"refused: the file holds pickled code or objects \(.*_MmengineLike.*--stub-unknown-objects"):
        load_mmdet_checkpoint(str(path))
    ckpt = load_mmdet_checkpoint(str(path), stub_unknown_objects=True)
    assert torch.equal(ckpt.state_dict["w"], torch.ones(2))
    assert "_MmengineLike" in repr(ckpt.meta["obj"]) and not isinstance(ckpt.meta["obj"], _MmengineLike)
    assert ckpt.meta["ordered"] == {"a": 1}


def test_unreadable_inputs(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_mmdet_checkpoint(str(tmp_path / "absent.pth"))
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        load_mmdet_checkpoint(str(tmp_path / "text.pth"))
    torch.save([torch.ones(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="holds a list"):
        load_mmdet_checkpoint(str(tmp_path / "list.pth"))
    torch.save({"state_dict": {"w": torch.ones(1), "step": 3}}, tmp_path / "mixed.pth")
    with pytest.raises(ValueError, match="non-tensor entries: step"):
        load_mmdet_checkpoint(str(tmp_path / "mixed.pth"))


def test_existing_output_is_kept(tmp_path):
    dst = tmp_path / "out.pth"
    dst.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--overwrite"):
        convert_mmdet_checkpoint(str(tmp_path / "in.pth"), str(dst))
    assert dst.read_bytes() == b"precious"


def test_given_class_names_and_source_are_stored(tmp_path, tiny_cfg):
    from queryinst.image.build import build_queryinst

    torch.manual_seed(0)
    state = to_mmdet_state_dict(build_queryinst(tiny_cfg).state_dict())
    torch.save({"meta": {"CLASSES": ("x", "y", "z")}, "state_dict": state}, tmp_path / "in.pth")
    with pytest.raises(ValueError, match="2 class names given for a model of 3 classes"):
        convert_mmdet_checkpoint(str(tmp_path / "in.pth"), str(tmp_path / "out.pth"), tiny_cfg, class_names=["a", "b"])
    assert not (tmp_path / "out.pth").exists()
    convert_mmdet_checkpoint(str(tmp_path / "in.pth"), str(tmp_path / "out.pth"), tiny_cfg,
                             class_names=("cube", "ball", "cone"), source={"url": "https://example.org/in.pth"})
    extra = torch.load(tmp_path / "out.pth", map_location="cpu", weights_only=True)["extra"]
    assert extra["class_names"] == ["cube", "ball", "cone"]  # not the file's own x, y, z
    assert extra["source"] == {"format": "mmdetection", "file": "in.pth", "url": "https://example.org/in.pth"}


def test_class_names():
    assert class_names_for({}, 80) == list(COCO_CLASSES)
    assert class_names_for({"dataset_meta": {"classes": ("a", "b")}}, 2) == ["a", "b"]
    assert class_names_for({"CLASSES": ["a", "b", "c"]}, 3) == ["a", "b", "c"]  # mmdetection 2.x
    assert class_names_for({"CLASSES": ["a"]}, 3) == ["class_0", "class_1", "class_2"]


def test_model_shapes_builds_nothing_real(tiny_cfg):
    cfg = dataclasses.replace(tiny_cfg)
    cfg.model = dataclasses.replace(tiny_cfg.model, pretrained="torchvision")  # never downloaded here
    shapes = model_shapes(cfg)
    assert shapes["proposals.features.weight"] == torch.Size([5, 32])
