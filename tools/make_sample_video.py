"""Write the sample clip that ships with the repository (assets/sample.mp4): one synthetic video of
moving, occluding, entering and leaving shapes (vis/data/synthetic.py), every frame listed, encoded
with OpenCV. Deterministic for a given seed.

    python tools/make_sample_video.py --out assets/sample.mp4 --frames 72 --seed 10
"""
from __future__ import annotations

import argparse
import sys
import tempfile

from queryinst import cli
from queryinst.vis.data.synthetic import VideoSceneOptions, make_ytvis_dataset
from queryinst.vis.data.ytvis import YTVISDataset, load_frame
from queryinst.vis.io.writer import VideoWriter


def make_sample_dataset(folder: str, frames: int = 72, height: int = 192, width: int = 320, speed: float = 0.04,
                        seed: int = 10):
    """The clip as a one-video YouTube-VIS set (frames + ground truth), e.g. to score the demo against it."""
    return make_ytvis_dataset(folder, 1, length=frames, height=height, width=width, seed=seed,
                              options=VideoSceneOptions(speed=speed, class_colours=True, max_objects=5,
                                                        enter_leave_prob=0.3))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="assets/sample.mp4")
    parser.add_argument("--frames", type=int, default=72)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--fps", type=float, default=12.0)
    parser.add_argument("--speed", type=float, default=0.04, help="object sides per frame")
    parser.add_argument("--seed", type=int, default=10)  # picked from seeds 4-12 for a readable scene (README)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = make_sample_dataset(f"{tmp}/clip", args.frames, args.height, args.width, args.speed, args.seed)
        video = YTVISDataset(files.json_path, files.frames_root).videos[0]
        with VideoWriter(args.out, args.fps, (args.width, args.height)) as writer:
            for path in video.frame_paths:
                writer.write(load_frame(path))
    print(f"{args.frames} frames -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
