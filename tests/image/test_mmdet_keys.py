"""The R50 / 100-query / 80-class model equals mmdetection's QueryInst key for key and in size."""
import math
from pathlib import Path

import pytest
import torch

from queryinst.image.build import build_queryinst
from queryinst.image.config import Config
from queryinst.image.mmdet_keys import mmdet_key_map, to_mmdet_key

TSV = Path(__file__).resolve().parents[1] / "data" / "mmdet_queryinst_r50_keys.tsv"


def _mmdet_shapes() -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in TSV.read_text().splitlines():
        if line.startswith("#"):
            continue
        key, shape, _ = line.split("\t")
        shapes[key] = () if shape == "scalar" else tuple(int(x) for x in shape.split("x"))
    return shapes


@pytest.fixture(scope="module")
def r50_model():
    return build_queryinst(Config())


def test_parameter_count_equals_mmdetection(r50_model):
    # mmdetection queryinst_r50_fpn_1x_coco: 172,688,808 parameters (sum of the TSV's non-buffer shapes)
    shapes = _mmdet_shapes()
    expected = sum(math.prod(s) for k, s in shapes.items() if "running_" not in k and "num_batches" not in k)
    assert expected == 172_688_808
    assert sum(p.numel() for p in r50_model.parameters()) == 172_688_808


def test_state_dict_maps_one_to_one_with_shapes(r50_model):
    shapes = _mmdet_shapes()
    state = r50_model.state_dict()
    assert len(state) == len(shapes) == 780
    mapping = mmdet_key_map(list(state))
    assert set(mapping) == set(shapes)
    for mm_key, our_key in mapping.items():
        assert tuple(state[our_key].shape) == shapes[mm_key], mm_key


def test_unknown_key_is_rejected():
    with pytest.raises(KeyError, match="track_head"):
        to_mmdet_key("track_head.fc1.weight")


def test_frozen_parts_do_not_train(r50_model):
    body = r50_model.backbone.body
    assert not any(p.requires_grad for p in body.conv1.parameters())
    assert not any(p.requires_grad for p in body.layer1.parameters())
    assert all(p.requires_grad for p in body.layer2.parameters())
    r50_model.train()
    assert not body.layer3[0].bn1.training  # norm_eval: BN statistics frozen in train mode
    before = body.layer3[0].bn1.running_mean.clone()
    with torch.no_grad():
        body(torch.randn(1, 3, 64, 64))
    assert torch.equal(before, body.layer3[0].bn1.running_mean)
