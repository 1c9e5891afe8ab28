"""Peak memory of the streaming inference loop against video length (docs/design.md#architecture-and-data-flow:
memory is bounded by the frame size and the live tracks, not the video length).

Streams N generated frames (a few moving shapes, made on the fly, never stored) through the real
per-frame path (QueryInst-VIS detect -> tracker -> RLE) and the YouTube-VIS aggregation, then prints
the process's peak RSS. Run it once per length, each in a fresh process:

    python tools/stream_memory.py --frames 200  --config C --weights W
    python tools/stream_memory.py --frames 2000 --config C --weights W
Without --config/--weights a random-weight tiny model is used (memory behaviour is the same).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import torch

from queryinst import cli, resources, weights
from queryinst.image.config import load_config
from queryinst.tracking import OnlineTracker
from queryinst.vis.config import VisConfig
from queryinst.vis.inference import VideoTrackAccumulator, track_frames
from queryinst.vis.modeling.build import build_queryinst_vis, load_vis_model


def moving_shapes(num_frames: int, height: int, width: int):
    """Frames of three squares moving on a grey background; generated lazily."""
    for t in range(num_frames):
        frame = np.full((height, width, 3), 90, dtype=np.uint8)
        for k, colour in enumerate(((220, 40, 40), (40, 200, 60), (40, 80, 230))):
            x = int((t * (2 + k) + 40 * k) % (width - 30))
            y = int(20 + 30 * k + 10 * np.sin(t / 10 + k)) % (height - 30)
            frame[y:y + 30, x:x + 30] = colour
        yield frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--config", default=str(resources.config("synthetic/vis_tiny.yaml")))
    parser.add_argument("--weights", default="",
                        help=f"a QueryInst-VIS checkpoint or {weights.NAME_HELP}; random weights if empty")
    cli.add_threads_argument(parser)
    args = parser.parse_args(argv)
    cli.apply_threads(args.threads)
    cfg = load_config(args.config, schema=VisConfig)
    cfg.inference.score_threshold = 0.0  # every query tracked: the most memory the loop can need
    if args.weights:
        _, model, _, _ = load_vis_model(cfg, args.weights, device="cpu")
    else:
        cfg.model.init_from = ""
        torch.manual_seed(0)
        model = build_queryinst_vis(cfg).eval()
    tracker = OnlineTracker(cfg.tracker)
    acc = VideoTrackAccumulator(args.frames)
    start = time.perf_counter()
    for result in track_frames(model, tracker, moving_shapes(args.frames, args.height, args.width),
                               cfg.data.test_min_size, cfg.data.test_max_size):
        acc.add(result)
    records = acc.records(1, list(range(1, cfg.model.num_classes + 1)))
    elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"frames {args.frames}  size {args.height}x{args.width}  tracks {len(records)}  "
          f"time {elapsed:.1f} s  peak RSS {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
