"""ResNet + FPN (P2-P5, 256 channels) built from torchvision's ResNet.

Settings follow mmdetection's Sparse R-CNN / QueryInst configs
(``configs/queryinst/queryinst_r50_fpn_1x_coco.py``; docs/design.md#queryinst-image): the stem and layer1
are frozen (``frozen_stages=1``), BatchNorm runs in eval mode (``norm_eval=True``: running statistics are
never updated). BN affine parameters of layers 2-4 stay trainable as in mmdetection's config
(``norm_cfg=dict(type='BN', requires_grad=True)``); they remain ``nn.Parameter``s, so the parameter
count and the state_dict keys match mmdetection's checkpoints one to one.
"""
from __future__ import annotations

import logging
import os

import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from .lazy_level import LazyLevel
from .safe_load import read_torch_file

logger = logging.getLogger(__name__)

_RESNETS = {
    "resnet18": (torchvision.models.resnet18, (64, 128, 256, 512), "ResNet18_Weights"),
    "resnet34": (torchvision.models.resnet34, (64, 128, 256, 512), "ResNet34_Weights"),
    "resnet50": (torchvision.models.resnet50, (256, 512, 1024, 2048), "ResNet50_Weights"),
    "resnet101": (torchvision.models.resnet101, (256, 512, 1024, 2048), "ResNet101_Weights"),
}


class ResNetBody(nn.Module):
    """torchvision ResNet without the classifier, returning C2-C5.

    Parameter names equal torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1`` ...), which are also
    mmdetection's ResNet names.
    """

    def __init__(self, depth: str = "resnet50", frozen_stages: int = 1, pretrained: str = "",
                 norm_eval: bool = True) -> None:
        super().__init__()
        if depth not in _RESNETS:
            raise ValueError(f"unknown backbone '{depth}'; choose one of {sorted(_RESNETS)}")
        factory, self.out_channels, weights_enum = _RESNETS[depth]
        net = factory(weights=None)
        if pretrained:
            _load_imagenet(net, pretrained, weights_enum)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        frozen = [self.conv1, self.bn1] if frozen_stages >= 0 else []
        frozen += [getattr(self, f"layer{i}") for i in range(1, frozen_stages + 1)]
        for module in frozen:
            for p in module.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> "ResNetBody":
        """Keep every BatchNorm in eval mode (frozen statistics) when ``norm_eval``, as mmdetection; the
        frozen stages' BatchNorms stay in eval mode in any case."""
        super().train(mode)
        frozen = ([self.bn1] if self.frozen_stages >= 0 else []) + [
            getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]
        for m in (self.modules() if self.norm_eval else (x for f in frozen for x in f.modules())):
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] normalised -> [C2, C3, C4, C5] at strides 4, 8, 16, 32."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]


def _load_imagenet(net: nn.Module, pretrained: str, weights_enum: str, ignore_prefix: str = "fc.") -> None:
    if pretrained == "torchvision":
        weights = getattr(torchvision.models, weights_enum).IMAGENET1K_V1
        try:
            state = weights.get_state_dict(progress=False)
        except Exception as e:  # offline machines: one clear error, never a hang
            raise RuntimeError(
                f"could not download torchvision's {weights_enum} ImageNet weights ({e}); "
                "pass a local file with model.pretrained=/path/to/resnet.pth or use model.pretrained=''"
            ) from None
    else:
        if not os.path.isfile(pretrained):
            raise FileNotFoundError(f"ImageNet weights not found: {pretrained}")
        state = read_torch_file(pretrained)  # image/safe_load.py
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    missing, unexpected = net.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected if not k.startswith(ignore_prefix)]
    if missing or unexpected:
        raise ValueError(f"{pretrained}: not a torchvision {weights_enum.split('_Weights')[0]} state_dict (missing {missing[:3]}..., "
                         f"unexpected {unexpected[:3]}...)")
    logger.info("loaded ImageNet weights from %s", pretrained)


class FPN(nn.Module):
    """Feature pyramid (Lin et al. 2017): 1x1 laterals, nearest top-down, 3x3 outputs; P2-P5 only.

    mmdetection's Sparse R-CNN neck: FPN(num_outs=4) with no extra levels; Xavier-uniform conv init.
    """

    def __init__(self, in_channels: tuple[int, ...], out_channels: int = 256) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, feats: list[Tensor], lazy_levels: tuple[int, ...] = ()) -> list[Tensor | LazyLevel]:
        """feats: [C2..C5] -> [P2..P5], each [B, out_channels, H/s, W/s]. The levels whose index is in
        ``lazy_levels`` come back as ``LazyLevel``s: their output conv runs only where RoIAlign reads them
        (inference; exact, see image/lazy_level.py)."""
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, feats)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[-2:],
                                                              mode="nearest")
        return [LazyLevel(x, conv) if i in lazy_levels else conv(x)
                for i, (conv, x) in enumerate(zip(self.fpn_convs, laterals))]


class Backbone(nn.Module):
    """ResNet body + FPN. ``strides`` are the P2-P5 strides (4, 8, 16, 32)."""

    strides = (4, 8, 16, 32)

    def __init__(self, body: ResNetBody, fpn: FPN) -> None:
        super().__init__()
        self.body = body
        self.fpn = fpn

    def forward(self, x: Tensor, lazy_levels: tuple[int, ...] = ()) -> list[Tensor | LazyLevel]:
        """x: [B, 3, H, W] normalised -> [P2..P5] (``lazy_levels``: see ``FPN.forward``)."""
        return self.fpn(self.body(x), lazy_levels)


class MobileNetBody(nn.Module):
    """torchvision MobileNetV3-Large features cut into four stages ending at strides 4, 8, 16, 32
    (after blocks 3, 6, 12 and the final 1x1 conv: 24, 40, 112, 960 channels).

    A light alternative to ResNet for the real-time and shipped-demo configs (3.0 M parameters against
    ResNet-18's 11.2 M); not a paper setting. ``frozen_stages``/``norm_eval`` behave as for ResNet.
    """

    _CUTS = (4, 7, 13, 17)
    out_channels = (24, 40, 112, 960)

    def __init__(self, frozen_stages: int = -1, pretrained: str = "", norm_eval: bool = True) -> None:
        super().__init__()
        net = torchvision.models.mobilenet_v3_large(weights=None)
        if pretrained:
            _load_imagenet(net, pretrained, "MobileNet_V3_Large_Weights", ignore_prefix="classifier.")
        starts = (0,) + self._CUTS[:-1]
        self.stages = nn.ModuleList(net.features[a:b] for a, b in zip(starts, self._CUTS))
        self.frozen_stages, self.norm_eval = frozen_stages, norm_eval
        if not norm_eval:
            # torchvision builds MobileNetV3 with BatchNorm momentum 0.01 (for long ImageNet runs); trained
            # from scratch in a short run, running statistics that slow lag far behind the weights and
            # eval-mode outputs collapse (seen: flat class scores at eval, a learning classifier in train
            # mode). PyTorch's default 0.1 keeps them current.
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.momentum = 0.1
        for stage in self.stages[: frozen_stages + 1]:
            for p in stage.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> "MobileNetBody":
        super().train(mode)
        modules = self.modules() if self.norm_eval else (
            m for stage in self.stages[: self.frozen_stages + 1] for m in stage.modules())
        for m in modules:
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] normalised -> 4 maps at strides 4, 8, 16, 32."""
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


BODIES = ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v3_large")


def build_backbone(depth: str, frozen_stages: int = 1, pretrained: str = "", channels: int = 256,
                   norm_eval: bool = True) -> Backbone:
    """``depth``: one of BODIES."""
    if depth == "mobilenet_v3_large":
        body: nn.Module = MobileNetBody(frozen_stages, pretrained, norm_eval)
    elif depth in _RESNETS:
        body = ResNetBody(depth, frozen_stages, pretrained, norm_eval)
    else:
        raise ValueError(f"unknown backbone '{depth}'; choose one of {list(BODIES)}")
    return Backbone(body, FPN(body.out_channels, channels))
