"""Progress of the long loops (tracking a video, a YouTube-VIS split, evaluation, training) on a terminal
and off it.

On a terminal (stderr is a TTY) a ``tqdm`` bar is drawn, as before. Off a terminal (CI logs, ``nohup``,
a notebook's captured stderr) a bar would print nothing useful until the end, so ``Progress`` writes one
plain line every ``interval`` seconds instead (docs/design.md#conventions)::

    sample.mp4: 240/1000 frames, 12.3 frames/s

The clock and the stream are arguments, so the behaviour is tested without waiting. Importing this
module imports neither torch nor tqdm.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

DEFAULT_INTERVAL = 10.0  # seconds between two progress lines off a terminal


def is_terminal(stream: Any) -> bool:
    """True when ``stream`` is an interactive terminal (a closed or fake stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def announce(message: str, stream: TextIO | None = None) -> None:
    """One status line on stderr (``loading the model ...``), flushed so that a piped log shows it at once."""
    stream = sys.stderr if stream is None else stream
    print(message, file=stream, flush=True)


class Progress:
    """Counts done units of a loop of ``total`` (None: unknown) and reports them.

    Args:
        total: units expected (None when unknown, e.g. a stream); desc: what is being processed (the
            input's name); unit: plural unit name ("frames", "iterations").
        initial: units already done (a resumed training). enabled: False reports nothing.
        stream: where to report (default: stderr); interval: seconds between two lines off a terminal;
        clock: a monotonic clock in seconds (tests pass a fake one).
    """

    def __init__(self, total: int | None, desc: str, unit: str = "frames", *, initial: int = 0,
                 enabled: bool = True, stream: TextIO | None = None, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit, self.done = total, desc, unit, initial
        self.stream = sys.stderr if stream is None else stream
        self.interval, self.clock = interval, clock
        self._initial = initial
        self._postfix: dict[str, str] = {}
        self._bar = None
        self._enabled = enabled
        self._start = self._last = clock()
        if enabled and is_terminal(self.stream):
            from tqdm import tqdm

            singular = unit[:-1] if unit.endswith("s") else unit
            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=singular, file=self.stream,
                             dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        """``n`` more units done; off a terminal, a line when ``interval`` seconds passed since the last."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        if not self._enabled:
            return
        now = self.clock()
        if now - self._last >= self.interval:
            self._last = now
            print(self.line(now), file=self.stream, flush=True)

    def set_postfix(self, **values: Any) -> None:
        """Values shown after the counts (``loss=0.41``): in the bar, or in the next line."""
        self._postfix = {k: str(v) for k, v in values.items()}
        if self._bar is not None:
            self._bar.set_postfix(self._postfix)

    def line(self, now: float | None = None) -> str:
        """The plain progress line: ``<desc>: <done>/<total> <unit>, <rate> <unit>/s[, key=value ...]``."""
        now = self.clock() if now is None else now
        elapsed = now - self._start
        rate = (self.done - self._initial) / elapsed if elapsed > 0 else 0.0
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        extra = "".join(f", {k}={v}" for k, v in self._postfix.items())
        return f"{self.desc}: {count} {self.unit}, {rate:.1f} {self.unit}/s{extra}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
