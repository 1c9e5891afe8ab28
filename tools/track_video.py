"""Track the instances of videos with QueryInst-VIS: annotated video + JSON per input.

    python tools/track_video.py --input clip.mp4 [clip2.avi frames_dir/ 'shots/*.png' ...] --output out/ \\
        [--weights W.pth [--config C.yaml]] [--device auto] [--threads N] [--stride 2] [--max-size 1280] \\
        [--start 3 --end 10] [--score-thr 0.3] [--batch-frames 4] [--no-video] [--png-masks] [--trails] \\
        [--mot] [--mots] [--backend onnxruntime|onnxruntime-int8 [--calibration SOURCE]] [key=value ...]

A thin layer over the Python API: ``VideoTracker.track_to_files`` (vis/api.py, vis/outputs.py).
Under ``torchrun --nproc_per_node N`` the inputs are shared out over the processes (each on its own device),
each writing its inputs' outputs: the output folder ends as one process leaves it.
Without --weights the demo model is used (DEMO_CONFIG/DEMO_WEIGHTS in vis/modeling/build.py, shipped in the
package and found by queryinst/resources.py, whatever the current directory). --weights may also be an image
QueryInst checkpoint (ours, or converted from mmdetection): it tracks with its query embeddings, no video
training needed (docs/design.md#association-embeddings). The checkpoint's stored config is used unless
--config is given.
Dotted config overrides (``tracker.mode=masktrack``) may stand anywhere, also among the inputs: an argument
of the form ``section.key=value`` that is not an existing file is an override.
Inputs: video files (decord, OpenCV fallback), image folders (natural order) or globs of images.
--backend onnxruntime runs the network in ONNX Runtime (exported at start); onnxruntime-int8 also quantises
it to int8 at start (vis/modeling/quantize.py), calibrated on the first --calibration-frames frames of
--calibration (a video, image folder or glob; default: the first input). Nothing is cached between runs.

Per input, in --output (each written under a temporary name, renamed once complete): <stem>.json (per-frame
tracks with RLE masks, a YouTube-VIS record per track with first/last frame), <stem>.mp4 (unless --no-video),
<stem>_masks/ (--png-masks: 16-bit track-id PNGs), <stem>_mot.txt (--mot), <stem>_mots.txt (--mots).
The exact layout of each file is in vis/outputs.py.

Progress: a bar on a terminal, else one line every 10 s ("clip.mp4: 240/1000 frames, 12.3 frames/s").

Exit status: 0 all inputs done; 2 bad input or arguments (one "error: ..." line each, nothing written for
that input); 3 an input was truncated or corrupt mid-way (what decoded is processed and written, and the
gap reported in the JSON and a "warning: ..." line). 2 takes precedence over 3.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from queryinst import cli, weights
from queryinst.progress import announce
from queryinst.vis.api import VideoTracker
from queryinst.vis.modeling.build import DEMO_CONFIG, DEMO_WEIGHTS, load_vis_model
from queryinst.vis.modeling.quantize import add_backend_arguments, runtime_model
from queryinst.vis.outputs import check_output_folder, check_read_options, output_stems


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", required=True, help="video files, image folders or image globs")
    parser.add_argument("--output", required=True, help="folder for the results (created if needed)")
    parser.add_argument("--weights", help="QueryInst-VIS checkpoint, or an image QueryInst checkpoint (tracked by "
                                           f"its query embeddings), or {weights.NAME_HELP}; "
                                           f"default: the demo model, {DEMO_WEIGHTS}")
    parser.add_argument("--config",
                        help=f"the checkpoint's config (default: the one stored in it; demo: {DEMO_CONFIG})")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: the config's run.device")
    cli.add_threads_argument(parser)
    parser.add_argument("--stride", type=int, default=1, help="process every N-th frame")
    parser.add_argument("--max-size", type=int, default=0, help="downscale frames whose long side is larger")
    parser.add_argument("--start", type=float, default=0.0, help="start time in seconds")
    parser.add_argument("--end", type=float, default=None, help="end time in seconds (default: to the end)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of image folders/globs")
    parser.add_argument("--score-thr", type=float, default=None,
                        help="detections scoring less are not tracked (default: inference.score_threshold)")
    parser.add_argument("--batch-frames", type=int, default=1, help="frames per network batch")
    parser.add_argument("--no-video", action="store_true", help="write the JSON only")
    parser.add_argument("--png-masks", action="store_true", help="also write track-id PNGs per frame")
    parser.add_argument("--trails", action="store_true", help="draw the recent path of every track")
    parser.add_argument("--mot", action="store_true", help="also write <stem>_mot.txt (MOT-challenge boxes)")
    parser.add_argument("--mots", action="store_true", help="also write <stem>_mots.txt (MOTS RLE masks)")
    add_backend_arguments(parser, "the first input")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = cli.parse_with_overrides(_parser(), argv, lists=("input",))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        check_read_options(args.stride, args.batch_frames, args.max_size)
        out_dir = Path(args.output)
        check_output_folder(out_dir)
        stems = output_stems(args.input)  # every input's stem, so that clashes are found on every rank
        # Under torchrun each process tracks every WORLD_SIZE-th input and writes its outputs itself: the
        # files are per input, so the output folder ends as one process would leave it.
        stems = dict(cli.process_shard(list(stems.items())))
        cli.apply_threads(args.threads)
        announce(f"loading the model ({args.weights or 'demo model'}) ...")
        cfg, model, names, cat_ids = load_vis_model(args.config, args.weights, args.overrides, args.device,
                                                    args.score_thr)
        model = runtime_model(model, args.backend, cfg.data.test_min_size, cfg.data.test_max_size,
                              args.calibration or args.input[0], args.calibration_frames, args.max_size)
        tracker = VideoTracker(model, cfg, names, cat_ids)
        out_dir.mkdir(parents=True, exist_ok=True)
    except (ValueError, FileNotFoundError, ImportError) as e:  # ConfigError is a ValueError
        return cli.fail(e)
    status = cli.EXIT_OK
    for path, stem in stems.items():
        try:
            done = tracker.track_to_files(path, out_dir, stem=stem, video=not args.no_video,
                                          png_masks=args.png_masks, trails=args.trails, mot=args.mot,
                                          mots=args.mots, stride=args.stride, start=args.start, end=args.end,
                                          max_size=args.max_size, fps=args.fps, batch_frames=args.batch_frames)
        except (ValueError, FileNotFoundError) as e:
            cli.fail(e)
            status = cli.EXIT_BAD_INPUT
            continue
        for message in done.errors:
            print(f"warning: {message}", file=sys.stderr)
        if done.damaged and status == cli.EXIT_OK:
            status = cli.EXIT_DAMAGED
        print(f"{path}: {done.num_frames} frames -> {', '.join(str(p) for p in done.paths)}")
    return status


if __name__ == "__main__":
    sys.exit(cli.run(main))
