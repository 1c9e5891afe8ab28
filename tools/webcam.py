"""Live QueryInst-VIS demo: camera -> newest frame -> model + online tracker -> display / recording.

    python tools/webcam.py --source 0 [--weights W.pth [--config C.yaml]] [--no-display] [--record demo.mp4] \\
        [--max-frames 300] [--max-size 640] [--score-thr 0.3] [--trails] \\
        [--backend onnxruntime|onnxruntime-int8 [--calibration SOURCE]]

--source: a camera index (0), a stream URL (rtsp://..., http://...) or a video file, which stands in for a
camera: it is paced at its own frame rate. A capture thread keeps only the newest frame; the main thread
runs detection + tracking (one tracker for the whole session) on whatever frame is newest when it is
ready, so when inference is slower than the camera, frames are dropped instead of queued
(docs/design.md#the-four-uses).
Without --weights the demo model is used (DEMO_CONFIG/DEMO_WEIGHTS in vis/modeling/build.py, shipped in the
package and found by queryinst/resources.py, whatever the current directory). --weights may also be an image
QueryInst checkpoint (ours, or converted from mmdetection): it tracks with its query embeddings, no video
training needed (docs/design.md#association-embeddings). The checkpoint's stored config is used unless
--config is given.
--backend onnxruntime-int8 quantises the network to int8 at start (vis/modeling/quantize.py), calibrated on
the first --calibration-frames frames of --calibration (a video, image folder or glob; default: --source when
it is a file; a camera or stream needs --calibration).

Display (when a display and an OpenCV GUI exist; --no-display forces headless): q or Esc quits, space
pauses/resumes, s saves a snapshot PNG (webcam_snapshot_<n>.png in the current folder). Every frame shows
the FPS and latency (capture to display). --record writes the annotated stream (at the measured
processing rate) and is finalised on quit, at the end of the source, on a disconnect and on Ctrl-C.
At the end a summary line gives frames processed, captured and dropped, mean FPS and latency.
Exit status: 0 (also after Ctrl-C), 2 bad arguments / camera / model (one "error: ..." line).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from queryinst import cli, weights
from queryinst.progress import announce
from queryinst.tracking import OnlineTracker
from queryinst.vis.config import VisConfig
from queryinst.vis.inference import track_frames
from queryinst.vis.io.capture import LatestFrameGrabber, LiveRecorder
from queryinst.vis.io.common import Frame
from queryinst.vis.modeling.build import DEMO_CONFIG, DEMO_WEIGHTS, load_vis_model
from queryinst.vis.modeling.quantize import add_backend_arguments, runtime_model
from queryinst.vis.modeling.model import QueryInstVIS
from queryinst.vis.visualize import (
    FpsMeter,
    TrackTrails,
    draw_overlay,
    draw_tracks,
)

WINDOW = "QueryInst-VIS"
KEY_WAIT_MS = 1  # cv2.waitKey per displayed frame: just enough for the GUI to refresh
PAUSE_POLL_MS = 30  # key polling period while paused
QUIT_KEYS = (ord("q"), 27)  # q, Esc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="0", help="camera index, stream URL or video file (default 0)")
    parser.add_argument("--weights", help="QueryInst-VIS checkpoint, or an image QueryInst checkpoint (tracked by "
                                           f"its query embeddings), or {weights.NAME_HELP}; "
                                           f"default: the demo model, {DEMO_WEIGHTS}")
    parser.add_argument("--config",
                        help=f"the checkpoint's config (default: the one stored in it; demo: {DEMO_CONFIG})")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: the config's run.device")
    cli.add_threads_argument(parser)
    parser.add_argument("--no-display", action="store_true", help="run headless (no window)")
    parser.add_argument("--record", help="save the annotated stream to this video (.mp4, .avi, .mkv, .mov)")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after this many processed frames")
    parser.add_argument("--max-size", type=int, default=0, help="downscale frames whose long side is larger")
    parser.add_argument("--score-thr", type=float, default=None, help="detections scoring less are not tracked")
    parser.add_argument("--trails", action="store_true", help="draw the recent path of every track")
    add_backend_arguments(parser, "--source when it is a file")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds without a frame that end the demo")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    return parser


@dataclass
class DemoStats:
    """What a session did: frames processed/captured/dropped, wall time, latencies (s), why it ended."""

    processed: int = 0
    captured: int = 0
    dropped: int = 0
    elapsed: float = 0.0
    latency_sum: float = 0.0
    end_reason: str = ""
    recording: Path | None = None

    def summary(self) -> str:
        fps = self.processed / self.elapsed if self.elapsed > 0 else 0.0
        latency = 1000.0 * self.latency_sum / self.processed if self.processed else 0.0
        line = (f"{self.processed} frames processed, {self.captured} captured, {self.dropped} dropped; "
                f"mean {fps:.1f} FPS, mean latency {latency:.0f} ms; ended: {self.end_reason}")
        return line + (f"; recording: {self.recording}" if self.recording else "")


class _Display:
    """The OpenCV window, when one can be opened (a GUI build and a display); otherwise inactive."""

    def __init__(self, wanted: bool) -> None:
        self.active = False
        self.snapshots = 0
        if not wanted:
            return
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            print("note: no display found; running headless (use --no-display to silence this)", file=sys.stderr)
            return
        try:
            cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
            self.active = True
        except cv2.error:
            print("note: this OpenCV has no GUI support; running headless", file=sys.stderr)

    def show(self, canvas: np.ndarray) -> bool:
        """Show an RGB frame and handle the keys (space holds the picture until pressed again, while the
        grabber keeps dropping frames; s saves a snapshot). Returns False when the user quits."""
        if not self.active:
            return True
        paused = False
        while True:
            cv2.imshow(WINDOW, cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
            key = cv2.waitKey(PAUSE_POLL_MS if paused else KEY_WAIT_MS) & 0xFF
            if key in QUIT_KEYS:
                return False
            if key == ord("s"):
                self.snapshots += 1
                path = f"webcam_snapshot_{self.snapshots}.png"
                if cv2.imwrite(path, cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)):
                    print(f"snapshot: {path}")
            if key == ord(" "):
                paused = not paused
            if not paused:
                return True

    def close(self) -> None:
        if self.active:
            cv2.destroyWindow(WINDOW)
            self.active = False


def run_demo(grabber: LatestFrameGrabber, model: QueryInstVIS, cfg: VisConfig, names: list[str],
             display: _Display, recorder: LiveRecorder | None, max_frames: int = 0, trails: bool = False,
             timeout: float = 10.0) -> DemoStats:
    """The live loop: one ``track_frames`` stream (one tracker, frame indices increasing) fed with the
    grabber's newest frames. Stops at the end of the source, a stall of ``timeout`` s, ``max_frames``,
    the q key or Ctrl-C; always stops the grabber and finalises the recording."""
    stats = DemoStats()
    current: list[Frame] = []  # the frame track_frames is working on (batch size 1: one at a time)

    def newest_frames():
        for frame in grabber.frames(timeout):
            current[:] = [frame]
            yield frame.image

    meter, path = FpsMeter(), TrackTrails() if trails else None
    started = time.monotonic()
    try:
        for result in track_frames(model, OnlineTracker(cfg.tracker), newest_frames(), cfg.data.test_min_size,
                                   cfg.data.test_max_size, batch_size=1, keep_masks=True):
            frame = current[0]
            canvas = draw_tracks(frame.image, result, names, path)
            meter.tick()
            latency = grabber.clock() - frame.timestamp
            stats.processed += 1
            stats.latency_sum += latency
            draw_overlay(canvas, [f"{meter.fps:.1f} FPS", f"latency {1000 * latency:.0f} ms",
                                  f"dropped {grabber.dropped}"])
            if recorder is not None:
                recorder.write(canvas)
            if not display.show(canvas):
                stats.end_reason = "quit key"
                break
            if max_frames and stats.processed >= max_frames:
                stats.end_reason = f"--max-frames {max_frames}"
                break
        else:
            stats.end_reason = grabber.end_reason or "source ended"
    except KeyboardInterrupt:
        stats.end_reason = "Ctrl-C"
    finally:
        grabber.stop()
        display.close()
        stats.elapsed = time.monotonic() - started
        stats.captured, stats.dropped = grabber.captured, grabber.dropped
        if recorder is not None:
            stats.recording = recorder.close()
    return stats


def main(argv: list[str] | None = None) -> int:
    args = cli.parse_with_overrides(_parser(), argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.max_frames < 0 or args.max_size < 0 or not args.timeout > 0:
            raise ValueError("--max-frames and --max-size must be >= 0 and --timeout > 0")
        if args.record:
            cli.check_output_file(args.record, "recording")
        recorder = LiveRecorder(args.record) if args.record else None  # checks the suffix early
        cli.apply_threads(args.threads)
        announce(f"loading the model ({args.weights or 'demo model'}) ...")
        cfg, model, names, _ = load_vis_model(args.config, args.weights, args.overrides, args.device, args.score_thr)
        calibration = args.calibration or (args.source if os.path.isfile(args.source) else None)
        if args.backend == "onnxruntime-int8" and calibration is None:
            raise ValueError(f"--backend onnxruntime-int8 needs --calibration (a video, image folder or glob) "
                             f"when --source is a camera or stream ({args.source})")
        model = runtime_model(model, args.backend, cfg.data.test_min_size, cfg.data.test_max_size, calibration,
                              args.calibration_frames, args.max_size)
        grabber = LatestFrameGrabber(args.source, max_size=args.max_size)
    except (ValueError, FileNotFoundError, ImportError) as e:
        return cli.fail(e)
    except KeyboardInterrupt:
        return cli.EXIT_OK
    display = _Display(wanted=not args.no_display)
    print(f"{grabber.name}: {grabber.fps:g} FPS source; running on {model.device}"
          + ("" if display.active else " (headless)"))
    stats = run_demo(grabber, model, cfg, names, display, recorder, args.max_frames, args.trails, args.timeout)
    print(stats.summary())
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.run(main))
