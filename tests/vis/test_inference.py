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


def test_frame_to_tensor_resizes_like_the_test_transform():
    frame = np.full((90, 160, 3), 255, dtype=np.uint8)
    t = frame_to_tensor(frame, 45, 1000)
    assert t.shape == (3, 45, 80) and float(t.max()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="RGB uint8"):
        frame_to_tensor(frame[..., 0], 45, 1000)
