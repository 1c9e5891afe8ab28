"""Check, before training starts, that every image a dataset lists is there and has the listed size.

Training used to find a missing frame at its third iteration, after the output folder and
``config.yaml`` were written. ``check_images`` stats every file and reads only the image header
(Pillow opens lazily), so a 100k-image set is checked in well under a minute; every problem is
reported at once: the first 20 in one line, then how many more.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ...cli import listing

MAX_LISTED = 20


def image_problem(path: str | os.PathLike, height: int, width: int) -> str | None:
    """None when ``path`` is an image of height x width, else what is wrong (file named)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        return f"{path} (missing)"
    try:
        with Image.open(path) as image:
            w, h = image.size
    except (UnidentifiedImageError, OSError, ValueError) as err:
        return f"{path} (not a readable image: {err.__class__.__name__})"
    if (h, w) != (height, width):
        return f"{path} (is {h}x{w}, the JSON says {height}x{width})"
    return None


def check_images(items: Iterable[tuple[str | os.PathLike, int, int]], source: str | os.PathLike,
                 total: int | None = None) -> None:
    """Raise ValueError naming ``source`` (the JSON) and every bad image among (path, height, width).

    One line: "<source>: 3 listed images are missing or unusable: a.jpg (missing), ... and 1 more"."""
    problems = []
    for path, height, width in tqdm(items, total=total, desc="checking images", unit="image",
                                    disable=None if (total or 0) > 2000 else True, leave=False):
        problem = image_problem(path, height, width)
        if problem:
            problems.append(problem)
    if problems:
        raise ValueError(f"{source}: {len(problems)} listed images are missing or unusable: "
                         f"{listing(problems, MAX_LISTED)}")
