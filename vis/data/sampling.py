"""Training pairs for QueryInst-VIS: a key frame and a reference frame of the same video.

MaskTrack R-CNN's sampling (Yang et al. 2019, Sec. 4.1; docs/design.md#queryinst-vis): every annotated frame
that holds at least one object is a key frame; the reference frame is drawn uniformly from the video's OTHER
frames that hold an object (within ``ref_range`` frames of the key when > 0); a video with a single
such frame pairs the frame with itself. Both frames get the same resize and flip.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ...image.data.transforms import InstanceTransforms, ResizeShortSide
from ...image.types import Targets
from ..config import VisDataConfig
from .ytvis import YTVISDataset, load_frame


class ResizeRange(v2.Transform):
    """SipMask's multi-scale option (mmdetection Resize multiscale_mode='range', keep_ratio=True):
    draw the long edge in ``long`` and the short edge in ``short``, then rescale keeping the aspect
    ratio so the image fits inside (long, short)."""

    def __init__(self, short: tuple[int, int], long: tuple[int, int]) -> None:
        super().__init__()
        self.short, self.long = short, long

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = v2.query_size(flat_inputs)
        long_edge = int(torch.randint(self.long[0], self.long[1] + 1, ()).item())
        short_edge = int(torch.randint(self.short[0], self.short[1] + 1, ()).item())
        scale = min(long_edge / max(h, w), short_edge / min(h, w))
        return {"size": [max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask):
            return F.resize(inpt, params["size"], interpolation=v2.InterpolationMode.NEAREST_EXACT)
        return self._call_kernel(F.resize, inpt, params["size"], antialias=False)


def build_pair_transforms(cfg: VisDataConfig) -> InstanceTransforms:
    """Training resize (360 x 640, or SipMask's multi-scale range) + horizontal flip."""
    resize = (ResizeRange(cfg.multiscale_short, cfg.multiscale_long) if cfg.multiscale
              else ResizeShortSide(cfg.min_sizes, cfg.max_size))
    return InstanceTransforms(v2.Compose([resize, v2.RandomHorizontalFlip(p=cfg.flip_prob)]))


class YTVISPairs(Dataset):
    """(key image, key Targets, ref image, ref Targets); images float [3, H, W] in [0, 1], targets
    with ``instance_ids`` (the YouTube-VIS annotation ids)."""

    def __init__(self, dataset: YTVISDataset, transforms: InstanceTransforms | None = None,
                 ref_range: int = 0) -> None:
        if not dataset.has_annotations:
            raise ValueError(f"{dataset.json_path}: a training split needs 'annotations'")
        self.dataset, self.transforms, self.ref_range = dataset, transforms, ref_range
        self.valid_frames: list[list[int]] = []  # per video: frames with at least one non-crowd object
        self.samples: list[tuple[int, int]] = []
        for v, video in enumerate(dataset.videos):
            frames = [f for f in range(video.length)
                      if any(a.segmentations[f] is not None and not a.iscrowd for a in dataset.annotations(v))]
            self.valid_frames.append(frames)
            self.samples += [(v, f) for f in frames]
        if not self.samples:
            raise ValueError(f"{dataset.json_path}: no annotated frame holds an object")

    def __len__(self) -> int:
        return len(self.samples)

    def _reference(self, video: int, key: int) -> int:
        candidates = [f for f in self.valid_frames[video]
                      if f != key and (self.ref_range <= 0 or abs(f - key) <= self.ref_range)]
        if not candidates:
            return key
        return candidates[int(torch.randint(len(candidates), ()).item())]

    def _load(self, video: int, frame: int, image_id: int) -> tuple[Tensor, Targets]:
        path, ft = self.dataset.frame_targets(video, frame)
        image = torch.from_numpy(load_frame(path)).permute(2, 0, 1).contiguous()
        return image, ft.to_targets(image_id)

    def __getitem__(self, index: int) -> tuple[Tensor, Targets, Tensor, Targets]:
        video, key = self.samples[index]
        ref = self._reference(video, key)
        frames = [self._load(video, key, index), self._load(video, ref, index)]
        if self.transforms is not None:
            frames = self.transforms.apply_many(frames)
        (ki, kt), (ri, rt) = frames
        return ki.float().div_(255.0), kt, ri.float().div_(255.0), rt


def collate_pairs(batch: list[tuple[Tensor, Targets, Tensor, Targets]]
                  ) -> tuple[list[Tensor], list[Targets], list[Tensor], list[Targets]]:
    """DataLoader collate: four lists (key images, key targets, ref images, ref targets)."""
    return ([b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch], [b[3] for b in batch])
