"""COCO-format data: dataset (``coco``), augmentation (``transforms``) and batching (``collate``)."""
from .collate import collate, pad_and_normalize
from .coco import CocoInstances, load_coco_gt, load_coco_json, read_image, segmentation_to_mask
from .transforms import InstanceTransforms, RandomAbsoluteCrop, ResizeShortSide, build_transforms

__all__ = [
    "CocoInstances",
    "InstanceTransforms",
    "RandomAbsoluteCrop",
    "ResizeShortSide",
    "build_transforms",
    "collate",
    "load_coco_gt",
    "load_coco_json",
    "pad_and_normalize",
    "read_image",
    "segmentation_to_mask",
]
