"""Checks of COCO segmentations (RLE counts, polygons) before pycocotools sees them.

pycocotools decodes any string: a garbage ``counts`` such as ``"not-an-rle!!"`` becomes a mask of
millions of pixels on a 48x64 frame. ``rle_problem`` reads the run lengths the way pycocotools'
``rleFrString`` does (maskApi.c: 5 bits per character from '0', a continuation bit, sign extension,
each run after the second stored as a difference to the run two before) and says what is wrong, if
anything: a character outside '0'..'o', a string that ends inside a number, a negative run, or runs
that do not add up to height x width.
"""
from __future__ import annotations

_FIRST, _LAST = ord("0"), ord("0") + 63


def rle_runs(counts: str) -> list[int] | None:
    """The run lengths of a compressed RLE string, or None when it is not one (bad character or a
    number cut short). Runs are not checked here (see ``rle_problem``)."""
    runs: list[int] = []
    pos, n = 0, len(counts)
    while pos < n:
        value, shift, more = 0, 0, True
        while more:
            if pos >= n:
                return None  # the string ends inside a number
            code = ord(counts[pos])
            if not _FIRST <= code <= _LAST:
                return None
            c = code - _FIRST
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and (c & 0x10):
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def rle_problem(counts: str | bytes | list, height: int, width: int) -> str | None:
    """None for valid RLE counts of a height x width mask (a compressed string, or the uncompressed list of
    run lengths of the YouTube-VIS train JSON), else what is wrong (one phrase)."""
    if isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            return "uncompressed RLE 'counts' must be non-negative integers"
        if sum(counts) != height * width:
            return f"uncompressed RLE counts sum to {sum(counts)}, not height x width = {height * width}"
        return None
    if not isinstance(counts, (str, bytes)):
        return "RLE 'counts' must be a string or a list of integers"
    if isinstance(counts, bytes):
        try:
            counts = counts.decode("ascii")
        except UnicodeDecodeError:
            return "RLE 'counts' is not ASCII"
    runs = rle_runs(counts)
    if runs is None:
        return f"RLE 'counts' {counts[:24]!r}{'...' if len(counts) > 24 else ''} is not a compressed RLE string"
    if any(r < 0 for r in runs):
        return "RLE 'counts' decodes to a negative run length"
    total = sum(runs)
    if total != height * width:
        return f"RLE 'counts' covers {total} pixels, not height x width = {height * width}"
    return None


MIN_POLYGON_COORDS = 6  # a polygon needs >= 3 points; pycocotools reads a 4-number list as a box


def valid_polygon(polygon: object) -> bool:
    """A flat list of >= 3 (x, y) number pairs, as pycocotools' ``frPyObjects`` needs."""
    return (isinstance(polygon, list) and len(polygon) >= MIN_POLYGON_COORDS and len(polygon) % 2 == 0
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in polygon))
