"""ONNX export (vis/modeling/export.py): the exported per-frame network on ONNX Runtime matches PyTorch, and
OnnxQueryInstVIS.detect / track_frames give the same detections and tracks as QueryInstVIS."""
import numpy as np
import pytest
import torch

from queryinst.image.postprocess import paste_masks
from queryinst.image.roi_pooler import multilevel_roi_align
from queryinst.tracking import OnlineTracker
from queryinst.vis.inference import track_frames
from queryinst.vis.modeling.build import build_queryinst_vis
from queryinst.vis.modeling.export import FrameNetwork, export_onnx, export_torchscript, pool_static
from support.repo import tiny_config

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from queryinst.vis.modeling.export import OnnxQueryInstVIS  # noqa: E402  (needs onnxruntime)

pytestmark = pytest.mark.slow  # ONNX / TorchScript export

# ONNX Runtime's kernels round differently: |a - b| <= TOL * (1 + max |b|), i.e. 1e-4 relative to the
# tensor's scale (boxes of a random-weight model reach ~600 px; fp32 rounding alone moves them ~1e-3 px).
TOL = 1e-4


def _tiny_model(num_stages: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = tiny_config(vis=True, narrow=True, num_stages=num_stages, track_dim=16)
    cfg.inference.score_threshold = 0.0  # every query detected
    return build_queryinst_vis(cfg).eval()


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(((a - b).abs() <= TOL * (1 + b.abs().max())).all())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = _tiny_model()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx", 96, 128)
    return model, OnnxQueryInstVIS(path, num_threads=1)


def test_frame_network_equals_the_models_raw_outputs():
    model = _tiny_model()
    model.set_embedding("track_head")  # the default query embeddings: test_a_model_without_track_head_...
    batch = model.detector.preprocess([torch.rand(3, 90, 120)])
    with torch.no_grad():
        cls_logits, boxes, mask_logits, embeddings = FrameNetwork(model)(batch.tensors, torch.tensor([90.0, 120.0]))
        raw = model.detector.raw_outputs(batch.tensors, (90, 120))
        rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], 1)
        feats = model.detector.backbone(batch.tensors)
        want_emb = model.embed(feats, rois)
    assert torch.equal(cls_logits, raw["cls_logits"][-1]) and torch.equal(boxes, raw["boxes"][-1])
    assert torch.equal(mask_logits, raw["mask_logits"]) and torch.equal(embeddings, want_emb)


class _Pool(torch.nn.Module):
    def __init__(self, stage):
        super().__init__()
        self.stage = stage

    def forward(self, p2, p3, p4, p5, rois):
        return pool_static([p2, p3, p4, p5], rois, 7, self.stage)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_pool_static_in_onnxruntime_pools_each_roi_at_its_level_empty_levels_included(tmp_path):
    """The graph gathers each level's RoIs with nonzero (possibly none) and scatters them back: ONNX Runtime
    gives multilevel_roi_align's values for RoIs on one level only, on every level, and for an inverted box
    (level -1: zeros), whatever RoIs the graph was traced with."""
    stage = _tiny_model().detector.stages[-1]
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(1, 8, 128 // s, 192 // s, generator=g) for s in (4, 8, 16, 32)]
    traced_with = torch.tensor([[0, 2.0, 3.0, 40.0, 50.0], [0, 0.0, 0.0, 190.0, 127.0]])
    path = tmp_path / "pool.onnx"
    with torch.no_grad():
        torch.onnx.export(_Pool(stage), (*feats, traced_with), path, dynamo=False, opset_version=17,
                          input_names=["p2", "p3", "p4", "p5", "rois"], dynamic_axes={"rois": {0: "k"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    cases = {"one level": [[0, 1.0, 1.0, 20.0, 30.0], [0, 30.0, 40.0, 60.0, 70.0]],
             "every level": [[0, 1.0, 1.0, 20.0, 30.0], [0, 10.0, 5.0, 130.0, 90.0], [0, 0.0, 0.0, 190.0, 127.0],
                             [0, 50.0, 20.0, 120.0, 70.0]],
             "inverted box": [[0, 40.0, 40.0, 10.0, 60.0], [0, 10.0, 5.0, 130.0, 90.0]]}
    for name, rois in cases.items():
        rois = torch.tensor(rois)
        want = multilevel_roi_align(feats, rois, 7, stage.strides, stage.sampling_ratio, stage.finest_scale)
        got = session.run(None, {f"p{i + 2}": f.numpy() for i, f in enumerate(feats)} | {"rois": rois.numpy()})[0]
        assert got.shape == tuple(want.shape) and _close(torch.from_numpy(got), want), name
    assert not want[0].any()  # the inverted box


@pytest.mark.parametrize("size", [(96, 128), (70, 150), (160, 224)])  # the export size, then others
def test_onnxruntime_outputs_match_pytorch(exported, size):
    model, onnx_model = exported
    h, w = size
    batch = model.detector.preprocess([torch.rand(3, h, w, generator=torch.Generator().manual_seed(h))])
    with torch.no_grad():
        want = FrameNetwork(model)(batch.tensors, torch.tensor([float(h), float(w)]))
    got = onnx_model.run_network(batch.tensors, (h, w))
    for name, a, b in zip(("cls_logits", "boxes", "mask_logits", "embeddings"), got, want):
        assert a.shape == b.shape and _close(a, b), name


def test_detect_results_equal(exported):
    model, onnx_model = exported
    g = torch.Generator().manual_seed(5)
    images = [torch.rand(3, 96, 128, generator=g), torch.rand(3, 80, 112, generator=g)]
    sizes = [(192, 256), (80, 112)]
    want = model.detect(images, orig_sizes=sizes)
    got = onnx_model.detect(images, orig_sizes=sizes)
    batch = model.detector.preprocess(images)
    for i, (a, b) in enumerate(zip(got, want)):
        assert torch.equal(a.query_indices, b.query_indices) and torch.equal(a.labels, b.labels)
        for name in ("boxes", "scores", "embeddings"):
            assert _close(getattr(a, name), getattr(b, name)), name
        # Masks: equal wherever PyTorch's probability is not within 1e-3 of the threshold, i.e. between
        # PyTorch's masks pasted at threshold 0.5 + 1e-3 and 0.5 - 1e-3.
        probs = _mask_probs(model, batch, i, b)
        oh, ow = sizes[i]
        inner = paste_masks(probs, b.boxes, oh, ow, model.mask_threshold + 1e-3)
        outer = paste_masks(probs, b.boxes, oh, ow, model.mask_threshold - 1e-3)
        assert (a.masks >= inner).all() and (a.masks <= outer).all()
        assert b.masks.any() and (a.masks != b.masks).float().mean() < 0.01


def _mask_probs(model, batch, i, dets):
    with torch.no_grad():
        raw = model.detector.run_stages(batch)
        rois = torch.cat([torch.full((len(dets.query_indices), 1), float(i)),
                          raw.stages[-1].boxes[i, dets.query_indices]], 1)
        logits = model.detector.stages[-1].predict_masks(raw.features, rois, raw.stages[-1].attn_feats[i, dets.query_indices])
    return logits[torch.arange(len(dets.labels)), dets.labels].sigmoid()


def test_track_frames_runs_the_onnx_model_unchanged(exported):
    model, onnx_model = exported
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (72, 100, 3), dtype=np.uint8) for _ in range(3)]
    want = list(track_frames(model, OnlineTracker(), frames, 96, 128))
    got = list(track_frames(onnx_model, OnlineTracker(), frames, 96, 128))
    for a, b in zip(got, want):
        assert np.array_equal(a.track_ids, b.track_ids) and np.array_equal(a.labels, b.labels)
        assert _close(torch.from_numpy(a.boxes), torch.from_numpy(b.boxes)) and len(a.rles) == len(b.rles)


def test_settings_travel_in_the_file_and_can_be_overridden(exported, tmp_path):
    model, onnx_model = exported
    assert onnx_model.settings["num_queries"] == 10 and onnx_model.score_threshold == model.score_threshold
    stricter = OnnxQueryInstVIS(onnx_model.path, score_threshold=1.0, num_threads=1)
    assert len(stricter.detect([torch.rand(3, 64, 64)])[0].scores) == 0
    with pytest.raises(ValueError, match="opset"):
        export_onnx(model, tmp_path / "old.onnx", 64, 64, opset=13)
    with pytest.raises(FileNotFoundError):
        OnnxQueryInstVIS(tmp_path / "missing.onnx")


@pytest.mark.filterwarnings("ignore::FutureWarning")  # TorchScript is deprecated in PyTorch 2.x (it says so)
def test_torchscript_trace_matches_pytorch(tmp_path):
    model = _tiny_model()
    path = export_torchscript(model, tmp_path / "tiny.pt", 96, 128)
    traced = torch.jit.load(str(path))
    batch = model.detector.preprocess([torch.rand(3, 80, 150)])
    size = torch.tensor([80.0, 150.0])
    with torch.no_grad():
        for a, b in zip(traced(batch.tensors, size), FrameNetwork(model)(batch.tensors, size)):
            assert _close(a, b)


@pytest.mark.parametrize("source", ["queries", "attention"])
def test_a_model_without_track_head_exports_its_query_embeddings(tmp_path, source):
    """An image checkpoint tracks with query embeddings (vis/modeling/build.py): the graph carries them."""
    model = _tiny_model()
    model.track_head = None
    model.set_embedding(source, 10.0)
    onnx_model = OnnxQueryInstVIS(export_onnx(model, tmp_path / "q.onnx", 96, 128), num_threads=1)
    images = [torch.rand(3, 96, 128, generator=torch.Generator().manual_seed(3))]
    want, got = model.detect(images)[0], onnx_model.detect(images)[0]
    assert torch.equal(got.query_indices, want.query_indices)
    assert got.embeddings.shape == (10, 32) and _close(got.embeddings, want.embeddings)
