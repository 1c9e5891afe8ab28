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
    # nothing under the final name yet: at most the hidden temporary file (the H.264 muxer creates it
    # with its first packet, after x264's look-ahead)
    assert not target.exists() and all(p.name.startswith(".") for p in target.parent.iterdir())
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


def test_mp4_is_h264_that_browsers_play(tmp_path):
    av = pytest.importorskip("av")
    target = tmp_path / "clip.mp4"
    with VideoWriter(target, 12.5, (W, H)) as writer:
        for frame in moving_square(7):
            writer.write(frame)
    assert writer.codec == "h264"
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (W, H)
        assert sum(1 for _ in container.decode(stream)) == 7
    got = list(open_frames(target))  # and our own readers decode it
    assert len(got) == 7 and abs(square_x(got[6].image) - square_x(moving_square(7)[6])) <= 1


def test_without_pyav_mp4_falls_back_to_mp4v_and_says_so_once(tmp_path, monkeypatch, caplog):
    import queryinst.vis.io.writer as video_writer

    monkeypatch.setattr(video_writer, "pyav_available", lambda: False)
    monkeypatch.setattr(video_writer, "_warned_no_pyav", False)
    with caplog.at_level("WARNING", logger=video_writer.__name__):
        for name in ("a.mp4", "b.mp4"):
            with VideoWriter(tmp_path / name, 10.0, (W, H)) as writer:
                writer.write(moving_square(1)[0])
            assert writer.codec == "mp4v"
    assert sum("PyAV is not installed" in r.getMessage() for r in caplog.records) == 1
    assert len(list(open_frames(tmp_path / "b.mp4"))) == 1
