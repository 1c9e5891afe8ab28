import pytest
import torch

from queryinst.image.backbone import build_backbone


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_large"])
def test_pyramid_strides_and_channels(name):
    backbone = build_backbone(name, frozen_stages=-1, channels=32).eval()
    outs = backbone(torch.zeros(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 16, 24), (1, 32, 8, 12), (1, 32, 4, 6), (1, 32, 2, 3)]


def test_norm_eval_false_lets_statistics_train_except_in_frozen_stages():
    backbone = build_backbone("resnet18", frozen_stages=1, norm_eval=False).train()
    body = backbone.body
    assert body.layer2[0].bn1.training and not body.layer1[0].bn1.training and not body.bn1.training
    before = body.layer2[0].bn1.running_mean.clone()
    backbone(torch.randn(2, 3, 64, 64))
    assert not torch.equal(before, body.layer2[0].bn1.running_mean)


def test_unknown_backbone_names_the_choices():
    with pytest.raises(ValueError, match="mobilenet_v3_large"):
        build_backbone("vgg16")


def test_missing_pretrained_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_backbone("resnet18", pretrained=str(tmp_path / "nope.pth"))
