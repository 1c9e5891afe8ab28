"""ONNX export of QueryInst-VIS's per-frame network, and ``OnnxQueryInstVIS``: ``QueryInstVIS.detect`` on
ONNX Runtime, so that ``vis.inference.track_frames`` runs it unchanged.

The exported graph (``FrameNetwork``), batch 1, any padded size (H and W are dynamic axes):
    image       [1, 3, Hp, Wp] float32, normalised and zero-padded (``pad_and_normalize``)
    image_size  [2] float32, the unpadded (h, w) inside ``image``
 -> cls_logits  [N, C]          last stage
    boxes       [N, 4]          last stage, xyxy in input pixels
    mask_logits [N, C, 28, 28]  the last stage's mask head, every query at its box
    embeddings  [N, D]          every query's association embedding (``QueryInstVIS.frame_embeddings``)
The per-query selection (``select_detections``), the mask paste and the tracker stay in Python on these
outputs, shared with ``QueryInstVIS.detect``; the model's settings (normalisation, thresholds) travel in
the ONNX file's metadata (``METADATA_KEY``).

RoIAlign: torchvision's ONNX symbolic turns ``roi_align(aligned=True)`` into RoiAlign-16 with
``coordinate_transformation_mode="half_pixel"`` (so opset >= 16; 17 is used). ``multilevel_roi_align`` skips
an empty level with a Python ``if``, which tracing would freeze, so ``pool_static`` has no Python control
flow: per level it gathers that level's RoIs (``nonzero``, possibly none), pools them and scatters them
into place (``index_put``: ScatterND), the same values (RoIAlign computes each RoI on its own) with each
RoI pooled once. (It used to pool every RoI at every level and keep its own level with ``where``: 4x the
RoIAlign work, a third of the MobileNetV3 network's time at 192x320 in ONNX Runtime, docs/benchmarks.md.)
The lazy P2/P3 of ``QueryInst.run_stages`` are not used in the graph.
"""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.ops import roi_align

from ...image.box_ops import cxcywh_to_xyxy, decode_deltas
from ...image.data.collate import pad_and_normalize
from ...image.roi_pooler import assign_levels, boxes_to_rois
from ...image.stage import QueryStage
from ...image.types import ImageBatch
from .model import FrameDetections, QueryInstVIS, paste_label_masks, select_detections

OPSET = 17  # RoiAlign-16 is the first with half_pixel (aligned=True) coordinates
INPUT_NAMES = ("image", "image_size")
OUTPUT_NAMES = ("cls_logits", "boxes", "mask_logits", "embeddings")
METADATA_KEY = "queryinst_vis"


def pool_static(features: list[Tensor], rois: Tensor, output_size: int, stage: QueryStage) -> Tensor:
    """``multilevel_roi_align`` without data-dependent control flow: rois [K, 5] -> [K, C, S, S]; each RoI
    pooled at its own level only (a RoI of no level, -1, stays zero as there)."""
    levels = assign_levels(rois[:, 1:], len(features), stage.finest_scale)
    out = features[0].new_zeros((rois.shape[0], features[0].shape[1], output_size, output_size))
    for lvl, (feat, stride) in enumerate(zip(features, stage.strides)):
        idx = torch.nonzero(levels == lvl)[:, 0]
        pooled = roi_align(feat, rois[idx], output_size, spatial_scale=1.0 / stride,
                           sampling_ratio=stage.sampling_ratio, aligned=True)
        out = out.index_put((idx,), pooled)
    return out


class FrameNetwork(nn.Module):
    """QueryInst-VIS from the normalised padded image to the raw last-stage outputs of every query
    (the graph that ``export_onnx`` writes; see the module docstring for inputs and outputs)."""

    def __init__(self, model: QueryInstVIS) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor, image_size: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        det = self.model.detector
        features = det.backbone(image)
        h, w = image_size[0], image_size[1]
        # LearnedProposals.forward for one image, with the size as a tensor (a graph input)
        boxes = cxcywh_to_xyxy(det.proposals.boxes.weight)[None] * torch.stack([w, h, w, h])[None, None]
        queries = det.proposals.features.weight[None]
        attn_feats = queries
        cls_logits = queries.new_zeros(0)
        for stage in det.stages:  # QueryStage.forward with pool_static
            roi_feats = pool_static(features, boxes_to_rois(boxes), stage.box_pool_size, stage)
            cls_logits, deltas, queries, attn_feats = stage.box_head(queries, roi_feats)
            boxes = decode_deltas(boxes, deltas, stage.bbox_stds)
        last = det.stages[-1]
        rois = boxes_to_rois(boxes)
        mask_logits = last.mask_head(attn_feats[0], pool_static(features, rois, last.mask_pool_size, last))
        embeddings = self.model.frame_embeddings(queries[0], attn_feats[0],
                                                 lambda: pool_static(features, rois, last.box_pool_size, last))
        return cls_logits[0], boxes[0], mask_logits, embeddings


def _metadata(model: QueryInstVIS) -> dict[str, Any]:
    det = model.detector
    return {"pixel_mean": list(det.pixel_mean), "pixel_std": list(det.pixel_std), "size_divisor": det.size_divisor,
            "max_per_frame": model.max_per_frame, "score_threshold": model.score_threshold,
            "mask_threshold": model.mask_threshold, "num_classes": det.num_classes,
            "num_queries": det.proposals.num_proposals}


@contextmanager
def _tracing() -> Iterator[None]:
    """no_grad, nn.MultiheadAttention's fused inference fast path off (it has no ONNX symbolic and no
    TorchScript trace), and the tracer's warnings about constant shape checks inside torchvision ops
    and about the legacy exporter silenced (neither concerns this static batch-1 graph)."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def _example(height: int, width: int) -> tuple[Tensor, Tensor]:
    return torch.zeros(1, 3, height, width), torch.tensor([float(height), float(width)])


def export_onnx(model: QueryInstVIS, path: str | os.PathLike, height: int, width: int, opset: int = OPSET,
                extra: dict[str, Any] | None = None) -> str:
    """Write ``FrameNetwork(model)`` to ``path`` as ONNX (legacy TorchScript-based exporter, which
    carries torchvision's RoIAlign symbolic), with the model's settings and ``extra`` (JSON-able, e.g.
    class names) in the metadata. ``height``/``width``: the padded size of the example input; other
    sizes run too. Returns the path."""
    import onnx

    if opset < 16:
        raise ValueError(f"opset {opset}: RoIAlign with aligned=True needs opset >= 16 (RoiAlign-16 half_pixel)")
    path = os.fspath(path)
    with _tracing():
        torch.onnx.export(FrameNetwork(model).eval(), _example(height, width), path, dynamo=False,
                          opset_version=opset, input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                          dynamic_axes={"image": {2: "height", 3: "width"}})
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps({**(extra or {}), **_metadata(model)})
    onnx.save(proto, path)
    return path


def export_torchscript(model: QueryInstVIS, path: str | os.PathLike, height: int, width: int) -> str:
    """Write ``torch.jit.trace(FrameNetwork(model))`` to ``path`` (same inputs and outputs as the ONNX
    graph; any padded size runs). ``torch.jit.script`` does not take the model as written (the FPN's
    ``tuple[int, ...]`` / ``Tensor | LazyLevel`` annotations, DynamicConv's box-head-only attributes).
    Returns the path."""
    path = os.fspath(path)
    with _tracing():
        traced = torch.jit.trace(FrameNetwork(model).eval(), _example(height, width), check_trace=False)
    traced.save(path)
    return path


class OnnxQueryInstVIS:
    """``QueryInstVIS.detect`` on ONNX Runtime (CPU): the exported network, then the same selection and
    mask paste in Python. Usable wherever a ``QueryInstVIS`` is used for inference: it has what
    ``vis.inference.FrameDetector`` asks for, ``detect`` and ``device`` (the CPU: the caller prepares the
    images there, where ONNX Runtime reads them).

    Args:
        path: an ONNX file written by ``export_onnx``.
        num_threads: ONNX Runtime intra-op threads (default: torch's current setting).
        max_per_frame / score_threshold / mask_threshold: override the values stored at export.
    """

    # torch's threads for the small ops around the network in vis.inference.track_frames (resize, selection,
    # paste): the network has ONNX Runtime's own threads; a parallel region of such small ops costs about
    # what it saves alone and waits for a busy core beside another process (docs/benchmarks.md). Each
    # element is computed as with more threads, so the results are the same.
    postprocess_threads = 1

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None, max_per_frame: int | None = None,
                 score_threshold: float | None = None, mask_threshold: float | None = None) -> None:
        import onnxruntime as ort

        if not os.path.isfile(path):
            raise FileNotFoundError(f"ONNX model not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # ONNX Runtime's threads spin between operators by default, which collapses like OpenMP's when
        # another process uses the cores (queryinst/__init__.py); they sleep instead.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = os.fspath(path)
        self.device = torch.device("cpu")  # where the inputs go (ONNX Runtime runs here on the CPU)
        self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if meta is None:
            raise ValueError(f"{path}: not written by queryinst.vis.modeling.export.export_onnx "
                             f"(no '{METADATA_KEY}' metadata)")
        self.settings = json.loads(meta)
        self.max_per_frame = self.settings["max_per_frame"] if max_per_frame is None else max_per_frame
        self.score_threshold = self.settings["score_threshold"] if score_threshold is None else score_threshold
        self.mask_threshold = self.settings["mask_threshold"] if mask_threshold is None else mask_threshold

    def run_network(self, image: Tensor, image_size: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """image [1, 3, Hp, Wp] normalised and padded; image_size the unpadded (h, w) -> (cls_logits [N, C],
        boxes [N, 4], mask_logits [N, C, 28, 28], embeddings [N, D]) as CPU tensors."""
        feeds = {"image": np.ascontiguousarray(image.detach().cpu().numpy(), dtype=np.float32),
                 "image_size": np.asarray(image_size, dtype=np.float32)}
        return tuple(torch.from_numpy(x) for x in self.session.run(list(OUTPUT_NAMES), feeds))

    @torch.no_grad()
    def detect(self, images: list[Tensor] | ImageBatch, orig_sizes: list[tuple[int, int]] | None = None,
               with_masks: bool = True) -> list[FrameDetections]:
        """As ``QueryInstVIS.detect``: images [3, H, W] in [0, 1] (or a prepared ``ImageBatch``) ->
        one ``FrameDetections`` per image in ``orig_sizes`` coordinates (CPU tensors)."""
        s = self.settings
        batch = images if isinstance(images, ImageBatch) else pad_and_normalize(
            [im.cpu() for im in images], s["pixel_mean"], s["pixel_std"], s["size_divisor"])
        orig_sizes = orig_sizes or batch.image_sizes
        out = []
        for i, ((h, w), (oh, ow)) in enumerate(zip(batch.image_sizes, orig_sizes)):
            cls_logits, all_boxes, mask_logits, embeddings = self.run_network(batch.tensors[i:i + 1], (h, w))
            scores, labels, queries = select_detections(cls_logits, self.max_per_frame, self.score_threshold)
            boxes = all_boxes[queries]
            scale = boxes.new_tensor([ow / w, oh / h, ow / w, oh / h])
            if with_masks and len(queries):
                masks = paste_label_masks(mask_logits[queries], labels, boxes * scale, oh, ow, self.mask_threshold)
            else:
                masks = torch.zeros((len(queries), oh, ow), dtype=torch.bool)
            out.append(FrameDetections(boxes * scale, scores, labels, masks, embeddings[queries], queries))
        return out


def onnx_runtime_model(model: QueryInstVIS, num_threads: int | None = None, extra: dict[str, Any] | None = None
                       ) -> OnnxQueryInstVIS:
    """``model`` exported to a temporary ONNX file (removed once loaded) and run by ONNX Runtime: the tools'
    ``--backend onnxruntime``. The model is moved to the CPU (ONNX Runtime runs here on the CPU); the
    example input is small because H and W are dynamic."""
    with tempfile.TemporaryDirectory(prefix="queryinst_onnx_") as folder:
        path = export_onnx(model.cpu().eval(), os.path.join(folder, "model.onnx"), 64, 64, extra=extra)
        return OnnxQueryInstVIS(path, num_threads=num_threads)
