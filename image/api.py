"""Still-image QueryInst behind one object: ``Predictor(...)(image)`` -> ``ImageResult``.

    from queryinst import Predictor

    predictor = Predictor.from_pretrained("work_dirs/x/last.pth", config="configs/synthetic/image_tiny.yaml")
    result = predictor("photo.jpg")                # or an RGB uint8 array [H, W, 3]
    print(result.class_names, result.scores)
    overlay = result.plot(score_threshold=0.3)     # RGB uint8, masks, boxes, names, scores

Checkpoints converted from mmdetection (tools/convert_mmdet.py) carry their config and class names,
so ``config`` may be left out for them. A registered name (``Predictor.from_pretrained("queryinst_r50_ms3x_coco")``,
docs/model_zoo.md) is downloaded and converted once into the cache (queryinst/weights.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MASK_ALPHA = 0.5  # weight of the instance colour over the image inside a mask
GOLDEN_RATIO = 0.618033988749895  # hue step between consecutive detections


@dataclass
class ImageResult:
    """Detections of one image, in its pixels: boxes [K, 4] xyxy; scores [K] (descending); labels [K]
    contiguous class indices; class_names [K]; masks [K, H, W] bool; image: the RGB input, for ``plot``."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    masks: np.ndarray
    image: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, score_threshold: float) -> ImageResult:
        """The detections scoring at least ``score_threshold``."""
        keep = np.flatnonzero(self.scores >= score_threshold)
        return ImageResult(self.boxes[keep], self.scores[keep], self.labels[keep],
                           [self.class_names[k] for k in keep], self.masks[keep], self.image)

    def to_json(self, score_threshold: float = 0.0) -> list[dict[str, Any]]:
        """COCO-style records (box as x, y, w, h; compressed RLE with str counts)."""
        from pycocotools import mask as mask_utils

        kept = self.select(score_threshold)
        out = []
        for box, score, label, name, mask in zip(kept.boxes, kept.scores, kept.labels, kept.class_names, kept.masks):
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            x1, y1, x2, y2 = (float(v) for v in box)
            out.append({"bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                        "score": round(float(score), 4), "class_id": int(label), "class_name": name,
                        "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")}})
        return out

    def plot(self, score_threshold: float = 0.3, image: np.ndarray | None = None) -> np.ndarray:
        """The image with the detections scoring at least ``score_threshold`` drawn (RGB uint8)."""
        import cv2

        base = image if image is not None else self.image
        if base is None:
            raise ValueError("plot() needs the image: keep it in the result or pass plot(image=...)")
        canvas = base.copy()
        kept = self.select(score_threshold)
        line = max(1, round(min(canvas.shape[:2]) / 300))
        for i in range(len(kept)):
            hue = int((i * GOLDEN_RATIO % 1.0) * 180)
            colour = cv2.cvtColor(np.array([[[hue, 220, 255]]], dtype=np.uint8), cv2.COLOR_HSV2RGB)[0, 0].tolist()
            mask = kept.masks[i]
            canvas[mask] = (canvas[mask] * (1 - MASK_ALPHA) + np.array(colour) * MASK_ALPHA).astype(np.uint8)
            x1, y1, x2, y2 = (int(round(v)) for v in kept.boxes[i])
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, line)
            text = f"{kept.class_names[i]} {float(kept.scores[i]):.2f}"
            (tw, th), base_line = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * line, 1)
            top = max(y1 - th - base_line, 0)
            cv2.rectangle(canvas, (x1, top), (x1 + tw, top + th + base_line), colour, -1)
            cv2.putText(canvas, text, (x1, top + th), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * line, (0, 0, 0), 1, cv2.LINE_AA)
        return canvas


def _class_names(extra: dict, cfg: Any) -> list[str]:
    names = extra.get("class_names")
    if isinstance(names, list) and len(names) == cfg.model.num_classes:
        return [str(n) for n in names]
    if cfg.data.val_json and os.path.isfile(cfg.data.val_json):
        from .data.coco import load_coco_json

        categories = sorted(load_coco_json(cfg.data.val_json)["categories"], key=lambda c: c["id"])
        if len(categories) == cfg.model.num_classes:
            return [c["name"] for c in categories]
    return [f"class {k}" for k in range(cfg.model.num_classes)]


class Predictor:
    """QueryInst on single images: the model in eval mode (BatchNorm folded), its test resize, class names."""

    def __init__(self, model, cfg, class_names: list[str]) -> None:
        from .data.transforms import ResizeShortSide

        self.model, self.cfg, self.class_names = model, cfg, list(class_names)
        self._resize = ResizeShortSide((cfg.data.test_min_size,), cfg.data.test_max_size)
        self._device = next(model.parameters()).device

    @classmethod
    def from_pretrained(cls, weights: str | os.PathLike, config: str | os.PathLike | None = None,
                        device: str | None = "auto", overrides: list[str] | tuple[str, ...] = ()) -> Predictor:
        """Load a QueryInst checkpoint (ours, or converted from mmdetection) for inference.

        weights: a checkpoint file, or a registered name (queryinst/weights.py: fetched into the cache once).
        config: its config file; None uses the config stored in the checkpoint (written by tools/train.py
        and tools/convert_mmdet.py). device: "auto" | "cpu" | "cuda", None for the config's ``run.device``.
        Class names: the checkpoint's (stored by training), else the categories of ``data.val_json``
        when it has as many, else "class 0", ... Raises FileNotFoundError / ValueError naming the file."""

        from .build import build_queryinst
        from .checkpoint import load_checkpoint
        from .config import Config, config_from_dict, load_config, merge_into, parse_overrides
        from ..cli import select_device
        from ..weights import resolve_weights
        from .fuse import fold_batchnorm
        from .safe_load import read_torch_file

        weights = resolve_weights(weights)  # a registered name -> its cached checkpoint; a path unchanged
        if config is not None:
            cfg = load_config(os.fspath(config), list(overrides), schema=Config)
        else:
            stored = read_torch_file(weights)
            if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
                raise ValueError(f"{weights}: the checkpoint stores no config; pass config=")
            cfg = config_from_dict(stored["config"], Config)
            merge_into(cfg, parse_overrides(list(overrides)))
        cfg.model.pretrained = ""  # every weight comes from the checkpoint: no ImageNet download
        model = build_queryinst(cfg)
        extra = load_checkpoint(weights, model, cfg=cfg, map_location="cpu")["extra"]
        model.eval()
        fold_batchnorm(model)  # inference only (image/fuse.py)
        model.to(select_device(device or cfg.run.device))
        return cls(model, cfg, _class_names(extra, cfg))

    def __call__(self, image: Any) -> ImageResult:
        """``image``: a path, or an RGB uint8 array [H, W, 3]."""
        import torch

        from .data.coco import read_image

        if isinstance(image, (str, os.PathLike)):
            tensor = read_image(os.fspath(image))  # [3, H, W] uint8 RGB; errors name the file
        elif isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
            tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        else:
            raise ValueError(f"expected an image path or an RGB uint8 array [H, W, 3], got {type(image).__name__}")
        height, width = tensor.shape[-2:]
        with torch.no_grad():
            pred = self.model([self._resize(tensor).float().div(255.0).to(self._device)],
                              orig_sizes=[(height, width)])[0]
        labels = pred.labels.cpu().numpy()
        return ImageResult(pred.boxes.float().cpu().numpy(), pred.scores.float().cpu().numpy(), labels,
                           [self.class_names[int(k)] for k in labels], pred.masks.cpu().numpy(),
                           tensor.permute(1, 2, 0).numpy())
