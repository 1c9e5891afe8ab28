import numpy as np
import pytest
from pycocotools import mask as mask_utils

from queryinst.vis.inference import FrameResult, VideoTrackAccumulator, encode_masks, frame_to_tensor


def _frame(index, ids, labels, scores, h=8, w=10):
    masks = np.zeros((len(ids), h, w), dtype=bool)
    for k in range(len(ids)):
        masks[k, k:k + 2, 1:4] = True
    return FrameResult(index, np.array(ids), np.zeros((len(ids), 4)), np.array(scores, dtype=float),
                       np.array(labels), encode_masks(masks), None, h, w)


def test_aggregation_mean_score_majority_label_and_nulls():
    acc = VideoTrackAccumulator(num_frames=4)
    acc.add(_frame(0, [1, 2], [0, 1], [0.9, 0.5]))
    acc.add(_frame(1, [1], [2], [0.7]))
    acc.add(_frame(3, [1, 2], [2, 1], [0.5, 0.3]))
    recs = acc.records(video_id=11, cat_ids=[10, 20, 30])
    assert [r["video_id"] for r in recs] == [11, 11]
    r1, r2 = recs
    assert r1["category_id"] == 30  # labels 0, 2, 2 -> majority 2 -> category id 30
    assert r1["score"] == pytest.approx((0.9 + 0.7 + 0.5) / 3)
    assert r2["category_id"] == 20 and r2["score"] == pytest.approx(0.4)
    assert len(r1["segmentations"]) == 4 and r1["segmentations"][2] is None
    assert r2["segmentations"][1] is None and r2["segmentations"][3] is not None
    rle = r1["segmentations"][0]
    assert isinstance(rle["counts"], str) and rle["size"] == [8, 10]
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert decoded.sum() == 6


def test_aggregation_tie_goes_to_first_label_and_bad_index_fails():
    acc = VideoTrackAccumulator(num_frames=2)
    acc.add(_frame(0, [4], [1], [0.2]))
    acc.add(_frame(1, [4], [0], [0.4]))
    assert acc.records(1, [7, 8])[0]["category_id"] == 8
    with pytest.raises(ValueError, match="outside"):
        acc.add(_frame(2, [4], [0], [0.4]))


def test_encode_masks_gives_pycocotools_strings():
    """encode_masks builds the RLEs from the masks' non-empty columns: the same strings as pycocotools'
    encode of the whole frames, on random masks, boxes, full and empty masks, masks touching every border
    (runs that continue from one column into the next) and 1-pixel frames."""
    rng = np.random.default_rng(0)
    for trial in range(600):
        h, w = (int(v) for v in rng.integers(1, 24, 2))
        k, kind = int(rng.integers(0, 4)), trial % 5
        if kind == 0:
            masks = rng.random((k, h, w)) < rng.random()
        elif kind == 1:
            masks = np.ones((k, h, w), dtype=bool)
        elif kind == 2:
            masks = np.zeros((k, h, w), dtype=bool)
        elif kind == 3:
            masks = np.zeros((k, h, w), dtype=bool)
            for m in masks:
                y0, x0 = rng.integers(0, h), rng.integers(0, w)
                m[y0:rng.integers(y0, h + 1), x0:rng.integers(x0, w + 1)] = True
        else:
            masks = np.broadcast_to((np.arange(h)[:, None] + np.arange(w)) % 3 == 0, (k, h, w))
        want = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8))) if k else []
        got = encode_masks(masks)
        assert [r["counts"] for r in got] == [r["counts"].decode("ascii") for r in want], trial
        assert all(r["size"] == [h, w] for r in got)


def test_frame_to_tensor_resizes_like_the_test_transform():
    frame = np.full((90, 160, 3), 255, dtype=np.uint8)
    t = frame_to_tensor(frame, 45, 1000)
    assert t.shape == (3, 45, 80) and float(t.max()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="RGB uint8"):
        frame_to_tensor(frame[..., 0], 45, 1000)



class _FixedNetwork:
    """A FrameDetector whose 'network' is fixed random outputs (as ONNX Runtime's would be, whatever torch's
    threads), followed by the real selection and mask paste; records torch's threads in ``detect``."""

    def __init__(self, postprocess_threads):
        import torch

        g = torch.Generator().manual_seed(0)
        self.device = torch.device("cpu")
        self.postprocess_threads = postprocess_threads
        self.cls = torch.randn(10, 3, generator=g)
        xy = torch.rand(10, 2, generator=g) * 60
        self.boxes = torch.cat([xy, xy + 5 + torch.rand(10, 2, generator=g) * 60], 1)
        self.mask_logits = torch.randn(10, 3, 28, 28, generator=g)
        self.embeddings = torch.randn(10, 8, generator=g)
        self.seen = []

    def detect(self, images, orig_sizes=None):
        import torch

        from queryinst.vis.modeling.model import FrameDetections, paste_label_masks, select_detections

        self.seen.append(torch.get_num_threads())
        out = []
        for image, (oh, ow) in zip(images, orig_sizes):
            scores, labels, queries = select_detections(self.cls + image[0, 0, 0], 10, 0.0)
            h, w = image.shape[-2:]
            boxes = self.boxes[queries] * torch.tensor([ow / w, oh / h, ow / w, oh / h])
            masks = paste_label_masks(self.mask_logits[queries], labels, boxes, oh, ow, 0.5)
            out.append(FrameDetections(boxes, scores, labels, masks, self.embeddings[queries], queries))
        return out


def test_postprocess_threads_apply_inside_the_loop_only_and_change_no_result():
    """A model's ``postprocess_threads`` (OnnxQueryInstVIS: 1) sets torch's threads while a batch is
    processed (resize, selection, paste), not while the caller holds a result, and changes no result."""
    import torch

    from queryinst.tracking import OnlineTracker
    from queryinst.vis.inference import track_frames

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (90, 150, 3), dtype=np.uint8) for _ in range(3)]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        plain, single = _FixedNetwork(None), _FixedNetwork(1)
        want = list(track_frames(plain, OnlineTracker(), frames, 60, 100, batch_size=2))
        got = []
        for result in track_frames(single, OnlineTracker(), frames, 60, 100, batch_size=2):
            got.append(result)
            assert torch.get_num_threads() == 2  # restored while the caller holds a result
    finally:
        torch.set_num_threads(before)
    assert plain.seen == [2, 2] and single.seen == [1, 1]  # two batches
    assert len(got) == len(want) == 3 and any(len(r.rles) for r in want)
    for a, b in zip(got, want):
        assert np.array_equal(a.track_ids, b.track_ids) and np.array_equal(a.boxes, b.boxes)
        assert np.array_equal(a.scores, b.scores) and a.rles == b.rles
