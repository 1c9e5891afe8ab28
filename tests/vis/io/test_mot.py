"""vis/io/mot.py: MOT and MOTS lines in the challenges' layouts, read back exactly."""
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from queryinst.vis.io.mot import mot_lines, mots_lines


def test_mot_lines_are_one_based_xywh():
    lines = mot_lines(1, [3, 7], np.array([[10.0, 20.0, 50.0, 80.0], [0.5, 1.0, 2.5, 4.0]]), [0.91, 0.5])
    assert lines == ["1,3,10.00,20.00,40.00,60.00,0.9100,-1,-1,-1", "1,7,0.50,1.00,2.00,3.00,0.5000,-1,-1,-1"]
    assert mot_lines(5, [], np.zeros((0, 4)), []) == []


def test_mots_lines_decode_back_to_the_masks():
    mask = np.zeros((12, 16), dtype=np.uint8)
    mask[2:9, 3:11] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle["counts"] = rle["counts"].decode("ascii")
    (line,) = mots_lines(4, [12], [2], [rle])
    frame, obj, cls, h, w, counts = line.split(" ")
    assert (int(frame), int(obj), int(cls), int(h), int(w)) == (4, 2012, 2, 12, 16)
    back = mask_utils.decode({"size": [12, 16], "counts": counts.encode("ascii")})
    assert np.array_equal(back, mask)
    with pytest.raises(ValueError, match="does not fit the MOTS id scheme"):
        mots_lines(1, [1000], [1], [rle])
