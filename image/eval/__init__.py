"""Evaluation of the still-image model: COCO box and mask AP (``coco_eval``)."""
from .coco_eval import CocoEvaluator, mask_to_rle

__all__ = ["CocoEvaluator", "mask_to_rle"]
