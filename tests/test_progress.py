"""queryinst/progress.py: a bar on a terminal, one plain line every N seconds off it (fake clock and streams)."""
from __future__ import annotations

import io

from queryinst.progress import Progress, announce, is_terminal


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_one_line_every_interval():
    stream, clock = io.StringIO(), FakeClock()
    assert not is_terminal(stream)
    with Progress(1000, "clip.mp4", stream=stream, interval=10.0, clock=clock) as bar:
        for _ in range(60):  # 60 frames in 7.5 s: no line yet
            clock.now += 0.125
            bar.update()
        assert stream.getvalue() == ""
        for _ in range(100):  # 10 s at frame 80: one line; 20 s at frame 160: the next
            clock.now += 0.125
            bar.update()
    lines = stream.getvalue().splitlines()
    assert lines == ["clip.mp4: 80/1000 frames, 8.0 frames/s", "clip.mp4: 160/1000 frames, 8.0 frames/s"]


def test_unknown_total_postfix_and_resumed_count():
    stream, clock = io.StringIO(), FakeClock()
    bar = Progress(None, "camera 0", stream=stream, interval=5.0, clock=clock)
    clock.now += 5.0
    bar.update(10)
    assert stream.getvalue() == "camera 0: 10 frames, 2.0 frames/s\n"
    train = Progress(1000, "train", "iterations", initial=200, stream=stream, clock=clock)
    train.set_postfix(loss="0.4100")
    clock.now += 20.0
    train.update(40)
    assert stream.getvalue().splitlines()[-1] == "train: 240/1000 iterations, 2.0 iterations/s, loss=0.4100"


def test_disabled_reports_nothing_and_a_terminal_gets_a_bar():
    stream, clock = io.StringIO(), FakeClock()
    bar = Progress(10, "x", enabled=False, stream=stream, clock=clock)
    clock.now += 60
    bar.update(5)
    assert stream.getvalue() == "" and bar.done == 5
    terminal = FakeTerminal()
    with Progress(10, "clip.mp4", stream=terminal, clock=clock) as bar:
        bar.update(4)
    assert "clip.mp4" in terminal.getvalue() and "4/10" in terminal.getvalue()  # tqdm's bar


def test_announce_is_one_flushed_line():
    stream = io.StringIO()
    announce("loading the model (demo model) ...", stream)
    assert stream.getvalue() == "loading the model (demo model) ...\n"
