"""int8 QueryInst-VIS on ONNX Runtime: static QDQ quantisation of the exported per-frame network
(``vis.modeling.export.export_onnx``), calibrated on frames; the tools' ``--backend onnxruntime-int8``.

The quantised file has the fp32 file's inputs, outputs and metadata, so ``OnnxQueryInstVIS`` runs it and
``vis.inference.track_frames`` runs that unchanged: selection, mask paste, tracker and RLE are the fp32
path's own code; only the network's arithmetic changes.

Recipe (ONNX Runtime's ``quantize_static``; the measurements behind it are in docs/benchmarks.md, "int8"):
- QDQ format, uint8 activations with int8 weights (the u8s8 form of the VNNI dot-product instructions;
  ``onnxruntime/quantization/quantize.py``, "Choosing parameters for CPU inference"), symmetric weights
  with one scale per output channel, no reduced range (VNNI does not saturate).
- ``Conv`` only by default. The query stages' dynamic convolutions are ``MatMul``s of two activations
  (their parameters come from the queries): quantised, they gained nothing and drifted far at 360x640,
  so ``MatMulConstBOnly`` leaves them in fp32; quantising the fully connected layers as well
  (``op_types``) was a little faster on R50 but broke the embeddings of the MobileNetV3 model at 360x640.
- Activation ranges: minimum and maximum over the calibration frames, each prepared exactly as
  ``OnnxQueryInstVIS.detect`` prepares a frame (test resize, normalisation and padding from the file's
  metadata).
- Before quantising, every initializer that the exporter shares through ``Identity`` nodes gets its own
  copy (``_unshare_initializers``), so that every Conv bias is quantised and fused.

Nothing is cached: ``int8_runtime_model`` exports and quantises into a temporary folder, removed once ONNX
Runtime has loaded the file; ``quantize_onnx`` writes under a temporary name beside its target and renames
it into place (docs/design.md#conventions).
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...image.data.collate import pad_and_normalize
from ..inference import frame_to_tensor
from .export import INPUT_NAMES, METADATA_KEY, OnnxQueryInstVIS, export_onnx, onnx_runtime_model

BACKENDS = ("pytorch", "onnxruntime", "onnxruntime-int8")
DEFAULT_CALIBRATION_FRAMES = 16
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class Int8Recipe:
    """What ``quantize_onnx`` quantises (defaults: the measured choice, see the module docstring).

    op_types: ONNX operator types to quantise; per_channel: one weight scale per output channel;
    calibration: how activation ranges come from the frames, "minmax" (default), "entropy" or
    "percentile" (ONNX Runtime's 99.999th percentile).
    """

    op_types: tuple[str, ...] = ("Conv",)
    per_channel: bool = True
    calibration: str = "minmax"


def read_settings(path: str | os.PathLike) -> dict[str, Any]:
    """The ``export_onnx`` metadata of an ONNX file (ValueError when it has none)."""
    import onnx

    proto = onnx.load(os.fspath(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    raise ValueError(f"{path}: not written by queryinst.vis.modeling.export.export_onnx (no '{METADATA_KEY}' metadata)")


def calibration_feeds(frames: Iterable[np.ndarray], settings: dict[str, Any], min_size: int, max_size: int,
                      limit: int = DEFAULT_CALIBRATION_FRAMES) -> list[dict[str, np.ndarray]]:
    """The network's inputs for the first ``limit`` RGB uint8 frames [H, W, 3], prepared as
    ``OnnxQueryInstVIS.detect`` prepares them (``settings``: the ONNX file's metadata)."""
    if limit < 1:
        raise ValueError(f"the calibration needs at least 1 frame, got {limit}")
    feeds = []
    for frame in frames:
        image = frame_to_tensor(frame, min_size, max_size)
        batch = pad_and_normalize([image], settings["pixel_mean"], settings["pixel_std"], settings["size_divisor"])
        feeds.append({INPUT_NAMES[0]: batch.tensors.numpy(),
                      INPUT_NAMES[1]: np.asarray(batch.image_sizes[0], dtype=np.float32)})
        if len(feeds) == limit:
            break
    if not feeds:
        raise ValueError("no calibration frame: the calibration source gave no frame")
    return feeds


def read_calibration_frames(source: str | os.PathLike, limit: int = DEFAULT_CALIBRATION_FRAMES,
                            max_size: int = 0) -> list[np.ndarray]:
    """The first ``limit`` frames (RGB uint8) of a video file, image folder or glob (``vis.io.reader``),
    downscaled to ``max_size`` as the tools' ``--max-size`` does. FileNotFoundError / ValueError as
    ``open_frames``."""
    from ..io.reader import open_frames

    if limit < 1:
        raise ValueError(f"the calibration needs at least 1 frame, got {limit}")
    frames = []
    with open_frames(source, max_size=max_size) as stream:
        for frame in stream:
            frames.append(frame.image)
            if len(frames) == limit:
                break
    return frames


def _unshare_initializers(path: str, out: str) -> None:
    """Write ``path`` to ``out`` with every ``Identity`` of an initializer replaced by its own copy of it.

    The exporter stores equal initializers once and feeds their other users through ``Identity`` nodes
    (with BatchNorm folded, the zero biases of a random-weight backbone are all equal). ``quantize_static``
    only quantises a bias that is an initializer (``qdq_quantizer.py``, ``quantize_bias_tensor``), and ONNX
    Runtime fuses a QDQ Conv into ``QLinearConv`` only then: such Convs stayed in fp32 between a
    DequantizeLinear and a QuantizeLinear, and the random-weight R50 network came out 1.4x slower than fp32."""
    import onnx

    proto = onnx.load(path)
    graph = proto.graph
    initializers = {t.name: t for t in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in initializers:
            copy = onnx.TensorProto()
            copy.CopyFrom(initializers[node.input[0]])
            copy.name = node.output[0]
            graph.initializer.append(copy)
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    onnx.save(proto, out)


def quantize_onnx(src: str | os.PathLike, dst: str | os.PathLike, feeds: Sequence[dict[str, np.ndarray]],
                  recipe: Int8Recipe = Int8Recipe()) -> str:
    """Write the int8 (QDQ) version of the fp32 network ``src`` (an ``export_onnx`` file) to ``dst``,
    calibrated on ``feeds`` (``calibration_feeds``): under a temporary name in ``dst``'s folder, renamed
    into place. Returns ``dst``."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if recipe.calibration not in methods:
        raise ValueError(f"unknown calibration method '{recipe.calibration}'; choose from {list(CALIBRATION_METHODS)}")
    if not feeds:
        raise ValueError("no calibration frame to quantise with")
    src, dst = os.fspath(src), os.fspath(dst)
    read_settings(src)  # one clear error for a file that export_onnx did not write

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dst)}.", suffix=".onnx",
                               dir=os.path.dirname(os.path.abspath(dst)))
    os.close(fd)
    root = logging.getLogger()
    root.addFilter(_no_preprocessing_advice)
    try:
        with tempfile.TemporaryDirectory(prefix="queryinst_quantize_") as work:
            unshared = os.path.join(work, "unshared.onnx")
            _unshare_initializers(src, unshared)
            quantize_static(unshared, tmp, Reader(), quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=list(recipe.op_types), per_channel=recipe.per_channel,
                            reduce_range=False, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=methods[recipe.calibration],
                            extra_options={"MatMulConstBOnly": True, "WeightSymmetric": True})
        os.replace(tmp, dst)
    finally:
        root.removeFilter(_no_preprocessing_advice)
        if os.path.exists(tmp):
            os.remove(tmp)
    return dst


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    """Drops quantize_static's advice to run ``quant_pre_process`` first (logged on the root logger): its
    symbolic shape inference fails on this graph (RoiAlign / NonZero), and without it the optimisation
    pass changed neither the speed nor the outputs of the quantised MobileNetV3 network (measured)."""
    return "pre-processing" not in record.getMessage()


def export_int8(model: Any, folder: str | os.PathLike, frames: Iterable[np.ndarray], min_size: int, max_size: int,
                limit: int = DEFAULT_CALIBRATION_FRAMES, recipe: Int8Recipe = Int8Recipe(),
                extra: dict[str, Any] | None = None) -> tuple[str, str]:
    """``model`` (a ``QueryInstVIS``, moved to the CPU) exported to ``folder``/model.onnx and quantised to
    ``folder``/model_int8.onnx on the first ``limit`` of ``frames`` (RGB uint8 [H, W, 3], resized as the
    loop resizes them: ``min_size`` / ``max_size``). Returns both paths (fp32, int8)."""
    fp32 = export_onnx(model.cpu().eval(), os.path.join(folder, "model.onnx"), 64, 64, extra=extra)
    feeds = calibration_feeds(frames, read_settings(fp32), min_size, max_size, limit)
    return fp32, quantize_onnx(fp32, os.path.join(folder, "model_int8.onnx"), feeds, recipe)


def int8_runtime_model(model: Any, frames: Iterable[np.ndarray], min_size: int, max_size: int,
                       num_threads: int | None = None, limit: int = DEFAULT_CALIBRATION_FRAMES,
                       recipe: Int8Recipe = Int8Recipe(), extra: dict[str, Any] | None = None) -> OnnxQueryInstVIS:
    """``export_int8`` into a temporary folder, removed once ONNX Runtime has loaded the int8 file."""
    with tempfile.TemporaryDirectory(prefix="queryinst_int8_") as folder:
        _, int8 = export_int8(model, folder, frames, min_size, max_size, limit, recipe, extra)
        return OnnxQueryInstVIS(int8, num_threads=num_threads)


def add_backend_arguments(parser: Any, calibration_default: str) -> None:
    """The tools' ``--backend``, ``--calibration`` and ``--calibration-frames`` (argparse), for
    ``runtime_model``; ``calibration_default`` says what is calibrated on without ``--calibration``."""
    parser.add_argument("--backend", choices=BACKENDS, default="pytorch",
                        help="run the network in PyTorch, or in ONNX Runtime on the CPU (exported at start), "
                             "fp32 or int8 (quantised at start)")
    parser.add_argument("--calibration", help="onnxruntime-int8: the frames to calibrate on, a video, image "
                                              f"folder or glob (default: {calibration_default})")
    parser.add_argument("--calibration-frames", type=int, default=DEFAULT_CALIBRATION_FRAMES,
                        help="onnxruntime-int8: how many of its first frames (default %(default)s)")


def runtime_model(model: Any, backend: str, min_size: int, max_size: int,
                  calibration: str | os.PathLike | Iterable[np.ndarray] | None = None,
                  limit: int = DEFAULT_CALIBRATION_FRAMES, max_frame_size: int = 0,
                  num_threads: int | None = None) -> Any:
    """``model`` on the chosen backend (``BACKENDS``): itself ("pytorch"), exported to ONNX Runtime
    ("onnxruntime"), or exported, quantised to int8 and run by ONNX Runtime ("onnxruntime-int8"), calibrated
    on the first ``limit`` frames of ``calibration`` (a video file, image folder or glob, read downscaled to
    ``max_frame_size`` as the tools' ``--max-size``, or RGB uint8 frames). The tools' ``--backend``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}'; choose from {list(BACKENDS)}")
    if backend == "pytorch":
        return model
    if backend == "onnxruntime":
        return onnx_runtime_model(model, num_threads=num_threads)
    if calibration is None:
        raise ValueError("the onnxruntime-int8 backend needs calibration frames (a video, image folder or glob)")
    if isinstance(calibration, (str, os.PathLike)):
        calibration = read_calibration_frames(calibration, limit, max_frame_size)
    return int8_runtime_model(model, calibration, min_size, max_size, num_threads, limit)
