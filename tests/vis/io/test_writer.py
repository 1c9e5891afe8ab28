"""Tests of vis/io/writer.py: atomic video writing, odd sizes, failures."""
from __future__ import annotations

import numpy as np
import pytest

from queryinst.vis.io.reader import open_frames
from queryinst.vis.io.writer import VideoWriter
from support.videos import H, W, moving_square, square_x


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_video_writer_is_atomic_and_round_trips(tmp_path, suffix):
    target = tmp_path / "out" / f"result{suffix}"
    frames = moving_square(5)
    writer = VideoWriter(target, 10.0, (W, H))
    for frame in frames:
        writer.write(frame)
    assert not target.exists() and len(list(target.parent.iterdir())) == 1  # only the hidden temp file
    assert writer.close() == target and sorted(p.name for p in target.parent.iterdir()) == [target.name]
    got = list(open_frames(target))
    assert len(got) == 5 and got[0].image.shape == (H, W, 3)
    assert abs(square_x(got[4].image) - square_x(frames[4])) <= 1


def test_video_writer_pads_odd_sizes_and_discards_on_error(tmp_path):
    odd = tmp_path / "odd.mp4"
    with VideoWriter(odd, 5.0, (131, 97)) as writer:
        writer.write(np.full((97, 131, 3), 200, np.uint8))
    image = next(iter(open_frames(odd))).image
    assert image.shape == (98, 132, 3) and image[:97, :131].mean() > 190 and image[97].mean() < 20
    failed = tmp_path / "failed.avi"
    with pytest.raises(ValueError, match="failed.avi: frames must be RGB uint8"):
        with VideoWriter(failed, 5.0, (W, H)) as writer:
            writer.write(np.zeros((H, W, 3), np.uint8))
            writer.write(np.zeros((H, W), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]
    with pytest.raises(ValueError, match="unsupported video suffix"):
        VideoWriter(tmp_path / "x.gif", 5.0, (W, H))
