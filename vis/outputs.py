"""The files of a tracked video: annotated MP4, JSON, PNG track-id maps, MOT and MOTS text files.

``write_track_files`` is what ``VideoTracker.track_to_files`` (vis/api.py) and tools/track_video.py run
for one input. Per input, in the output folder (each written under a temporary name beside its target and
renamed once complete; on an error every temporary file is removed and nothing of that input remains,
docs/design.md#conventions):

  <stem>.mp4         the frames with masks, boxes, "id class score" labels (and trails)
  <stem>.json        {"source", "backend", "fps", "width", "height", "source_width", "source_height",
                      "stride", "start", "end", "categories": [{"id", "name", "class_id"}],
                      "frames": [{"frame_index", "source_frame", "timestamp",
                                  "tracks": [{"track_id", "box" (x1 y1 x2 y2 px), "score", "class_id",
                                              "class_name", "rle" (COCO compressed RLE)}]}],
                      "tracks": [{"track_id", "class_name", "first_frame", "last_frame",
                                  + the YouTube-VIS record}],
                      "num_frames", "frames_decoded", "truncated", "errors"}
                     frame_index counts processed frames (the index into a track's "segmentations";
                     first_frame / last_frame are such indices); coordinates refer to the processed
                     frame (after max_size).
  <stem>_masks/      png_masks: <frame_index:06d>.png, 16-bit, pixel = track id (0 background)
  <stem>_mot.txt     mot: MOT-challenge lines ``frame,id,x,y,w,h,score,-1,-1,-1`` (vis/io/mot.py)
  <stem>_mots.txt    mots: MOTS lines ``frame class*1000+id class h w rle`` (vis/io/mot.py)

MOT and MOTS frame numbers are the processed frame indices + 1; MOTS class ids are the dataset's
category ids (the JSON's "categories" ids).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import cv2

from queryinst.progress import Progress

from ..tracking import OnlineTracker
from .config import VisConfig
from .inference import FrameDetector, FrameResult, VideoTrackAccumulator, track_frames
from .io.common import Frame
from .io.mot import mot_lines, mots_lines
from .io.reader import FrameSource, open_frames
from .io.writer import VideoWriter
from .visualize import TrackTrails, draw_tracks, track_id_map

VIDEO_ID = 1  # the "video_id" of the per-track records (one video per JSON)


@dataclass
class TrackedFiles:
    """What ``write_track_files`` did for one input.

    source: the input path; num_frames: processed frames; paths: the files and folders written (final
    names); frames_decoded: frames read from the source (before the stride); errors: decode problems
    (a truncated input's message last); damaged: the input was truncated or corrupt mid-way (what
    decoded was processed and written).
    """

    source: str
    num_frames: int
    paths: list[Path] = field(default_factory=list)
    frames_decoded: int = 0
    errors: list[str] = field(default_factory=list)
    damaged: bool = False


def check_read_options(stride: int, batch_frames: int, max_size: int) -> None:
    """Raises ValueError for a stride or batch below 1 or a negative max_size."""
    if stride < 1 or batch_frames < 1 or max_size < 0:
        raise ValueError("--stride and --batch-frames must be >= 1 and --max-size >= 0")


def output_stem(path: str) -> str:
    """The output name of an input: a file's stem, a folder's name, or a glob's folder name."""
    name = Path(path.rstrip("/\\"))
    return name.stem if not any(ch in path for ch in "*?[") else name.parent.name or "frames"


def output_stems(inputs: Sequence[str]) -> dict[str, str]:
    """Output stem per input; two inputs whose outputs would overwrite each other are a ValueError."""
    stems: dict[str, str] = {}
    for path in inputs:
        stem = output_stem(path)
        if stem in stems.values():
            other = next(p for p, s in stems.items() if s == stem)
            raise ValueError(f"{path}: its outputs would overwrite those of {other} (same name '{stem}')")
        stems[path] = stem
    return stems


def check_output_folder(out_dir: Path) -> None:
    """Raises ValueError when ``out_dir`` cannot be written into: a file, under a file, or not writable
    (``queryinst.cli.check_output_dir``; nothing is created)."""
    from queryinst.cli import check_output_dir

    check_output_dir(out_dir, "output folder")


class _PendingOutputs:
    """The temporary files of one input; ``commit`` renames them into place, ``discard`` removes them."""

    def __init__(self, out_dir: Path, stem: str, video: bool, png: bool, mot: bool, mots: bool) -> None:
        tag = f"tmp-{os.getpid()}"
        self.json_final, self.json_tmp = out_dir / f"{stem}.json", out_dir / f".{stem}.json.{tag}"
        self.texts: dict[str, tuple[Path, Path]] = {}  # kind -> (temporary, final)
        for kind, wanted in (("mot", mot), ("mots", mots)):
            if wanted:
                self.texts[kind] = (out_dir / f".{stem}_{kind}.txt.{tag}", out_dir / f"{stem}_{kind}.txt")
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
        for tmp, final in self.texts.values():
            os.replace(tmp, final)
            written.append(final)
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
        for tmp, _ in self.texts.values():
            tmp.unlink(missing_ok=True)
        if self.png_tmp is not None and self.png_tmp.exists():
            shutil.rmtree(self.png_tmp)


def _frame_entry(frame: Frame, result: FrameResult, names: list[str]) -> dict:
    tracks = [{"track_id": int(tid), "box": [round(float(v), 2) for v in box], "score": round(float(score), 4),
               "class_id": int(label), "class_name": names[int(label)], "rle": rle}
              for tid, box, score, label, rle in zip(result.track_ids, result.boxes, result.scores, result.labels,
                                                     result.rles)]
    return {"frame_index": result.frame_index, "source_frame": int(frame.index),
            "timestamp": round(float(frame.timestamp), 6), "tracks": tracks}


def _header(source: FrameSource, names: list[str], cat_ids: list[int]) -> dict:
    return {"source": source.path, "backend": source.backend, "fps": source.output_fps, "width": source.width,
            "height": source.height, "source_width": source.source_width, "source_height": source.source_height,
            "stride": source.stride, "start": source.start, "end": source.end,
            "categories": [{"id": c, "name": n, "class_id": k} for k, (c, n) in enumerate(zip(cat_ids, names))]}


def write_track_files(model: FrameDetector, cfg: VisConfig, names: Sequence[str], cat_ids: Sequence[int],
                      path: str, out_dir: str | os.PathLike, stem: str | None = None, *, video: bool = True,
                      png_masks: bool = False, trails: bool = False, mot: bool = False, mots: bool = False,
                      stride: int = 1, start: float = 0.0, end: float | None = None, max_size: int = 0,
                      fps: float = 30.0, batch_frames: int = 1, progress: bool = True) -> TrackedFiles:
    """Track one input (video file, image folder or glob) and write its files (module docstring).

    model/cfg/names/cat_ids: as ``vis.modeling.build.load_vis_model`` returns them; stem: the outputs'
    name (default ``output_stem(path)``); stride/start/end/max_size/fps: how frames are read
    (``vis.io.reader.open_frames``); batch_frames: frames per network batch; progress: a bar on a
    terminal, a line every 10 s otherwise (queryinst/progress.py).
    Raises FileNotFoundError / ValueError for a bad input or option, after removing every temporary file.
    """
    check_read_options(stride, batch_frames, max_size)
    out = Path(out_dir)
    check_output_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    names, cat_ids = list(names), [int(c) for c in cat_ids]
    source = open_frames(path, stride=stride, start=start, end=end, max_size=max_size, fps=fps)
    pending = _PendingOutputs(out, output_stem(path) if stem is None else stem, video, png_masks, mot, mots)
    try:
        with source:
            if pending.video_final is not None:
                pending.writer = VideoWriter(pending.video_final, source.output_fps, (source.width, source.height))
            count = _stream(source, pending, cfg, model, names, cat_ids, trails, batch_frames, progress)
        written = pending.commit()
    except BaseException:
        pending.discard()
        raise
    errors = source.errors + ([source.truncation_message()] if source.truncated else [])
    return TrackedFiles(source.path, count, written, source.frames_decoded, errors, source.damaged)


def _stream(source: FrameSource, pending: _PendingOutputs, cfg: VisConfig, model: FrameDetector, names: list[str],
            cat_ids: list[int], trails: bool, batch_frames: int, progress: bool) -> int:
    """Run the tracking loop, writing the video, PNGs, text files and the JSON (streamed: frames are not
    held); returns the number of processed frames."""
    queued: deque[Frame] = deque()  # frames pulled by track_frames, not yet paired with their result

    def images() -> Iterator:
        for frame in source:
            queued.append(frame)
            yield frame.image

    accumulator = VideoTrackAccumulator(num_frames=sys.maxsize)  # the length is known only at the end
    trail_state = TrackTrails() if trails else None
    keep_masks = pending.writer is not None or pending.png_tmp is not None
    spans: dict[int, list[int]] = {}  # track id -> [first, last] frame index
    count = 0
    texts: dict[str, TextIO] = {}
    try:
        for kind, (tmp, _) in pending.texts.items():
            texts[kind] = open(tmp, "w")
        with open(pending.json_tmp, "w") as out, Progress(source.expected_frames(), Path(source.path).name,
                                                          enabled=progress) as bar:
            out.write(json.dumps(_header(source, names, cat_ids))[:-1] + ', "frames": [')
            for result in track_frames(model, OnlineTracker(cfg.tracker), images(), cfg.data.test_min_size,
                                       cfg.data.test_max_size, batch_frames, keep_masks=keep_masks):
                frame = queued.popleft()
                out.write((", " if count else "") + json.dumps(_frame_entry(frame, result, names)))
                accumulator.add(result)
                for tid in result.track_ids:
                    spans.setdefault(int(tid), [result.frame_index, result.frame_index])[1] = result.frame_index
                _write_text_lines(texts, result, cat_ids)
                if pending.writer is not None:
                    pending.writer.write(draw_tracks(frame.image, result, names, trail_state))
                if pending.png_tmp is not None:
                    png = pending.png_tmp / f"{result.frame_index:06d}.png"
                    if not cv2.imwrite(str(png), track_id_map(result)):
                        raise ValueError(f"{png}: cannot write the PNG")
                count += 1
                bar.update(1)
            accumulator.num_frames = count
            tracks = []
            for track_id, record in zip(sorted(spans), accumulator.records(VIDEO_ID, cat_ids)):
                first, last = spans[track_id]
                tracks.append({"track_id": track_id, "class_name": names[cat_ids.index(record["category_id"])],
                               "first_frame": first, "last_frame": last, **record})
            trailer = {"tracks": tracks, "num_frames": count, "frames_decoded": source.frames_decoded,
                       "truncated": source.truncated, "errors": source.errors
                       + ([source.truncation_message()] if source.truncated else [])}
            out.write("], " + json.dumps(trailer)[1:])
    finally:
        for handle in texts.values():
            handle.close()
    return count


def _write_text_lines(texts: dict[str, TextIO], result: FrameResult, cat_ids: list[int]) -> None:
    number = result.frame_index + 1  # MOT counts frames from 1
    if "mot" in texts:
        _write_lines(texts["mot"], mot_lines(number, result.track_ids, result.boxes, result.scores))
    if "mots" in texts:
        classes = [cat_ids[int(label)] for label in result.labels]
        _write_lines(texts["mots"], mots_lines(number, result.track_ids, classes, result.rles))


def _write_lines(handle: TextIO, lines: Iterable[str]) -> None:
    for line in lines:
        handle.write(line + "\n")
