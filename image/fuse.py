"""Inference-only BatchNorm folding: every eval-mode BatchNorm that directly follows a convolution is
folded into that convolution's weight and bias (w' = w * g / sqrt(var + eps), b' = (b - mean) * g /
sqrt(var + eps) + beta), and the BatchNorm becomes an ``nn.Identity``.

In eval mode a BatchNorm is an affine map per channel, so the folded network computes the same function;
only float rounding differs (tests/image/test_fuse.py compares outputs before and after). It removes one
full pass over every feature map per conv (BatchNorm was 6 % of an image QueryInst R50 forward on this
project's CPU, docs/benchmarks.md). ONNX Runtime applies the same folding when it loads a graph.

Conv -> BN pairs are recognised structurally, in two places only:
- a container that runs its children in order (``nn.Sequential``, torchvision's ``IntermediateLayerGetter``)
  whose child ``i`` is an ``nn.Conv2d`` and child ``i + 1`` a BatchNorm (torchvision's
  ``Conv2dNormActivation`` in MobileNetV3, ResNet ``downsample``, the mask head's convs, the stem of
  torchvision's detection backbones);
- torchvision's ResNet ``BasicBlock`` / ``Bottleneck`` and this project's ``ResNetBody`` stem, whose
  forward applies ``bnK`` right after ``convK``.
A BatchNorm is ``nn.BatchNorm2d`` in eval mode or torchvision's ``FrozenBatchNorm2d`` (the benchmark folds
torchvision's own R50-FPN the same way, for a like-for-like floor).

A folded model has other state_dict keys (no BN buffers, conv biases) and cannot be trained or
checkpointed: ``fold_batchnorm`` marks it and ``image.checkpoint.save_checkpoint`` refuses it.
"""
from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops.misc import FrozenBatchNorm2d

from .backbone import ResNetBody

FOLDED_ATTR = "bn_folded"  # set to True on the root module by fold_batchnorm


def _named_pairs(module: nn.Module) -> list[tuple[str, str]]:
    if isinstance(module, (BasicBlock, Bottleneck, ResNetBody)):
        return [(f"conv{k}", f"bn{k}") for k in (1, 2, 3) if hasattr(module, f"conv{k}") and hasattr(module, f"bn{k}")]
    return []


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    if not isinstance(conv, nn.Conv2d):
        return False
    if isinstance(bn, nn.BatchNorm2d):
        return bn.track_running_stats and bn.affine and bn.num_features == conv.out_channels
    return isinstance(bn, FrozenBatchNorm2d) and bn.weight.numel() == conv.out_channels


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every conv -> BatchNorm pair of ``model`` in place (eval mode required); returns how many."""
    if model.training:
        raise RuntimeError("fold_batchnorm() is for inference: call model.eval() first")
    count = 0
    for module in list(model.modules()):
        for conv_name, bn_name in _named_pairs(module):
            conv, bn = getattr(module, conv_name), getattr(module, bn_name)
            if _foldable(conv, bn):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
                count += 1
        if isinstance(module, (nn.Sequential, IntermediateLayerGetter)):
            names = list(module._modules)
            for a, b in zip(names[:-1], names[1:]):
                conv, bn = module._modules[a], module._modules[b]
                if _foldable(conv, bn):
                    setattr(module, a, fuse_conv_bn_eval(conv, bn))
                    setattr(module, b, nn.Identity())
                    count += 1
    setattr(model, FOLDED_ATTR, True)
    return count


def is_folded(model: nn.Module) -> bool:
    return bool(getattr(model, FOLDED_ATTR, False))


def folded_copy(model: nn.Module) -> nn.Module:
    """A folded deep copy of an eval-mode ``model``; ``model`` itself is left as it is."""
    folded = copy.deepcopy(model)
    fold_batchnorm(folded)
    return folded
