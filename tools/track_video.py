"""Track the instances of videos with QueryInst-VIS: annotated video + JSON per input.

    python tools/track_video.py --input clip.mp4 [clip2.avi frames_dir/ 'shots/*.png' ...] --output out/ \\
        [--config C.yaml --weights W.pth] [--device auto] [--stride 2] [--max-size 1280] [--start 3 --end 10] \\
        [--score-thr 0.3] [--batch-frames 4] [--no-video] [--png-masks] [--trails]

Without --config/--weights the demo model is used (DEMO_CONFIG/DEMO_WEIGHTS in vis/modeling/build.py, found
relative to the repository, whatever the current directory).
Dotted config overrides (``tracker.mode=masktrack``) go before --input or after ``--``.
Inputs: video files (decord, OpenCV fallback), image folders (natural order) or globs of images.

Per input, in --output (each written under a temporary name, renamed once complete):
  <stem>.mp4         the frames with masks, boxes, "id class score" labels (and trails)
  <stem>.json        {"source", "backend", "fps", "width", "height", "source_width", "source_height",
                      "stride", "start", "end", "categories": [{"id", "name", "class_id"}],
                      "frames": [{"frame_index", "source_frame", "timestamp",
                                  "tracks": [{"track_id", "box" (x1 y1 x2 y2 px), "score", "class_id",
                                              "class_name", "rle" (COCO compressed RLE)}]}],
                      "tracks": [YouTube-VIS record per track + "track_id", "class_name"],
                      "num_frames", "frames_decoded", "truncated", "errors"}
                     frame_index counts processed frames (the index into a track's "segmentations");
                     coordinates refer to the processed frame (after --max-size).
  <stem>_masks/      with --png-masks: <frame_index:06d>.png, 16-bit, pixel = track id (0 background)

Exit status: 0 all inputs done; 2 bad input or arguments (one "error: ..." line each, nothing written for
that input); 3 an input was truncated or corrupt mid-way (what decoded is processed and written, and the
gap reported in the JSON and a "warning: ..." line). 2 takes precedence over 3.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from collections import deque
from pathlib import Path

import cv2
from tqdm import tqdm

from queryinst import cli
from queryinst.tracking import OnlineTracker
from queryinst.vis.config import VisConfig
from queryinst.vis.inference import FrameResult, VideoTrackAccumulator, track_frames
from queryinst.vis.io.common import Frame
from queryinst.vis.io.reader import FrameSource, open_frames
from queryinst.vis.io.writer import VideoWriter
from queryinst.vis.modeling.build import DEMO_CONFIG, DEMO_WEIGHTS, load_vis_model
from queryinst.vis.modeling.export import onnx_runtime_model
from queryinst.vis.modeling.model import QueryInstVIS
from queryinst.vis.visualize import (
    TrackTrails,
    draw_tracks,
    track_id_map,
)

VIDEO_ID = 1  # the "video_id" of the per-track records (one video per JSON)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", required=True, help="video files, image folders or image globs")
    parser.add_argument("--output", required=True, help="folder for the results (created if needed)")
    parser.add_argument("--config", help=f"VIS config (default: the demo model's, {DEMO_CONFIG})")
    parser.add_argument("--weights", help=f"VIS checkpoint (default: the demo model, {DEMO_WEIGHTS})")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: the config's run.device")
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
    parser.add_argument("--backend", choices=("pytorch", "onnxruntime"), default="pytorch",
                        help="run the network in PyTorch or in ONNX Runtime on the CPU (exported at start)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    return parser


def _stems(inputs: list[str]) -> dict[str, str]:
    """Output stem per input (file stem, folder name, or glob's folder name); clashes are an error."""
    stems: dict[str, str] = {}
    for path in inputs:
        name = Path(path.rstrip("/\\"))
        stem = name.stem if not any(ch in path for ch in "*?[") else name.parent.name or "frames"
        if stem in stems.values():
            other = next(p for p, s in stems.items() if s == stem)
            raise ValueError(f"{path}: its outputs would overwrite those of {other} (same name '{stem}')")
        stems[path] = stem
    return stems


class _PendingOutputs:
    """The temporary files of one input; ``commit`` renames them into place, ``discard`` removes them."""

    def __init__(self, out_dir: Path, stem: str, video: bool, png: bool) -> None:
        tag = f"tmp-{os.getpid()}"
        self.json_final, self.json_tmp = out_dir / f"{stem}.json", out_dir / f".{stem}.json.{tag}"
        self.video_final = out_dir / f"{stem}.mp4" if video else None
        self.png_final = out_dir / f"{stem}_masks" if png else None
        self.png_tmp = Path(tempfile.mkdtemp(prefix=f".{stem}_masks.", dir=out_dir)) if png else None
        if self.png_tmp is not None:
            os.chmod(self.png_tmp, 0o755)  # mkdtemp makes it private
        self.writer: VideoWriter | None = None

    def commit(self) -> list[Path]:
        written = []
        if self.writer is not None:
            written.append(self.writer.close())
            self.writer = None
        os.replace(self.json_tmp, self.json_final)
        written.append(self.json_final)
        if self.png_tmp is not None:
            if self.png_final.exists():
                shutil.rmtree(self.png_final)
            os.replace(self.png_tmp, self.png_final)
            written.append(self.png_final)
        return written

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.discard()
        self.json_tmp.unlink(missing_ok=True)
        if self.png_tmp is not None and self.png_tmp.exists():
            shutil.rmtree(self.png_tmp)


def _frame_entry(frame_index: int, frame: Frame, result: FrameResult, names: list[str]) -> dict:
    tracks = [{"track_id": int(tid), "box": [round(float(v), 2) for v in box], "score": round(float(score), 4),
               "class_id": int(label), "class_name": names[int(label)], "rle": rle}
              for tid, box, score, label, rle in zip(result.track_ids, result.boxes, result.scores, result.labels,
                                                     result.rles)]
    return {"frame_index": frame_index, "source_frame": int(frame.index), "timestamp": round(float(frame.timestamp), 6),
            "tracks": tracks}


def _header(source: FrameSource, names: list[str], cat_ids: list[int]) -> dict:
    return {"source": source.path, "backend": source.backend, "fps": source.output_fps, "width": source.width,
            "height": source.height, "source_width": source.source_width, "source_height": source.source_height,
            "stride": source.stride, "start": source.start, "end": source.end,
            "categories": [{"id": c, "name": n, "class_id": k} for k, (c, n) in enumerate(zip(cat_ids, names))]}


def track_input(path: str, stem: str, out_dir: Path, cfg: VisConfig, model: QueryInstVIS, names: list[str],
                cat_ids: list[int], args: argparse.Namespace) -> tuple[FrameSource, list[Path], int]:
    """Track one input and write its outputs; returns (source, written paths, processed frame count).

    Raises FileNotFoundError/ValueError for a bad input, after removing every temporary file.
    """
    source = open_frames(path, stride=args.stride, start=args.start, end=args.end, max_size=args.max_size, fps=args.fps)
    pending = _PendingOutputs(out_dir, stem, video=not args.no_video, png=args.png_masks)
    try:
        with source:
            if pending.video_final is not None:
                pending.writer = VideoWriter(pending.video_final, source.output_fps, (source.width, source.height))
            count = _stream(source, pending, cfg, model, names, cat_ids, args)
        return source, pending.commit(), count
    except BaseException:
        pending.discard()
        raise


def _stream(source: FrameSource, pending: _PendingOutputs, cfg: VisConfig, model: QueryInstVIS, names: list[str],
            cat_ids: list[int], args: argparse.Namespace) -> int:
    """Run the tracking loop, writing the video, PNGs and the JSON (streamed: frames are not held);
    returns the number of processed frames."""
    queued: deque[Frame] = deque()  # frames pulled by track_frames, not yet paired with their result

    def images():
        for frame in source:
            queued.append(frame)
            yield frame.image

    accumulator = VideoTrackAccumulator(num_frames=sys.maxsize)  # the length is known only at the end
    trails = TrackTrails() if args.trails else None
    keep_masks = pending.writer is not None or pending.png_tmp is not None
    seen: set[int] = set()
    count = 0
    bar = tqdm(total=source.expected_frames(), desc=Path(source.path).name, unit="frame", disable=None)
    with open(pending.json_tmp, "w") as out:
        out.write(json.dumps(_header(source, names, cat_ids))[:-1] + ', "frames": [')
        for result in track_frames(model, OnlineTracker(cfg.tracker), images(), cfg.data.test_min_size,
                                   cfg.data.test_max_size, args.batch_frames, keep_masks=keep_masks):
            frame = queued.popleft()
            out.write((", " if count else "") + json.dumps(_frame_entry(result.frame_index, frame, result, names)))
            accumulator.add(result)
            seen.update(int(t) for t in result.track_ids)
            if pending.writer is not None:
                pending.writer.write(draw_tracks(frame.image, result, names, trails))
            if pending.png_tmp is not None:
                png = pending.png_tmp / f"{result.frame_index:06d}.png"
                if not cv2.imwrite(str(png), track_id_map(result)):
                    raise ValueError(f"{png}: cannot write the PNG")
            count += 1
            bar.update(1)
        bar.close()
        accumulator.num_frames = count
        tracks = []
        for track_id, record in zip(sorted(seen), accumulator.records(VIDEO_ID, cat_ids)):
            tracks.append({"track_id": track_id, "class_name": names[cat_ids.index(record["category_id"])], **record})
        trailer = {"tracks": tracks, "num_frames": count, "frames_decoded": source.frames_decoded,
                   "truncated": source.truncated, "errors": source.errors
                   + ([source.truncation_message()] if source.truncated else [])}
        out.write("], " + json.dumps(trailer)[1:])
    return count


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.stride < 1 or args.batch_frames < 1 or args.max_size < 0:
            raise ValueError("--stride and --batch-frames must be >= 1 and --max-size >= 0")
        out_dir = Path(args.output)
        cli.check_output_dir(out_dir, "--output folder")
        stems = _stems(args.input)
        cfg, model, names, cat_ids = load_vis_model(args.config, args.weights, args.overrides, args.device,
                                                    args.score_thr)
        if args.backend == "onnxruntime":
            model = onnx_runtime_model(model)
        out_dir.mkdir(parents=True, exist_ok=True)
    except (ValueError, FileNotFoundError, ImportError) as e:  # ConfigError is a ValueError
        return cli.fail(e)
    status = cli.EXIT_OK
    for path, stem in stems.items():
        try:
            source, written, count = track_input(path, stem, out_dir, cfg, model, names, cat_ids, args)
        except (ValueError, FileNotFoundError) as e:
            cli.fail(e)
            status = cli.EXIT_BAD_INPUT
            continue
        for message in source.errors + ([source.truncation_message()] if source.truncated else []):
            print(f"warning: {message}", file=sys.stderr)
        if source.damaged and status == cli.EXIT_OK:
            status = cli.EXIT_DAMAGED
        print(f"{path}: {count} frames -> {', '.join(str(p) for p in written)}")
    return status


if __name__ == "__main__":
    sys.exit(cli.run(main))
