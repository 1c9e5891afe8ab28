"""image/safe_load.py: every broken or unsafe checkpoint gets one line that says what it is, nothing from
the file runs, and torch's weights_only advice is never passed on; the tools that read weights use it."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from queryinst.image.checkpoint import load_checkpoint, read_model_state
from queryinst.image.mmdet_import import load_mmdet_checkpoint
from queryinst.image.safe_load import UnsafeCheckpointError, read_torch_file
from support.repo import error_lines

REPO = Path(__file__).resolve().parents[2]
ADVICE = ("weights_only=False", "add_safe_globals", "safe_globals", "\x1b[")


class _Payload:
    """Unpickling this runs ``exec``: it would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def _files(tmp_path: Path) -> dict[str, Path]:
    marker = tmp_path / "PAYLOAD_RAN"
    good = {"model": {"w": torch.randn(64)}}
    files = {
        "pickle_zip": tmp_path / "evil_zip.pth",
        "pickle_legacy": tmp_path / "evil_legacy.pth",
        "pickle_plain": tmp_path / "evil_plain.pth",
        "lfs": tmp_path / "lfs.pth",
        "empty": tmp_path / "empty.pth",
        "truncated": tmp_path / "truncated.pth",
        "garbage": tmp_path / "garbage.pth",
    }
    torch.save({**good, "evil": _Payload(marker)}, files["pickle_zip"])
    torch.save({**good, "evil": _Payload(marker)}, files["pickle_legacy"], _use_new_zipfile_serialization=False)
    with open(files["pickle_plain"], "wb") as f:
        pickle.dump({"evil": _Payload(marker)}, f, protocol=4)
    files["lfs"].write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 12345\n")
    files["empty"].write_bytes(b"")
    torch.save(good, tmp_path / "good.pth")
    data = (tmp_path / "good.pth").read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["garbage"].write_bytes(bytes(range(256)) * 20)
    return files


EXPECTED = {
    "pickle_zip": "refused: the file holds pickled code or objects (`builtins.exec`); it may be unsafe and is not loaded",
    "pickle_legacy": "refused: the file holds pickled code or objects (`builtins.exec`); it may be unsafe and is not loaded",
    "pickle_plain": "refused: the file holds pickled code or objects (`builtins.exec`); it may be unsafe and is not loaded",
    "lfs": "a git-LFS pointer, not the weights (run git lfs pull)",
    "empty": "empty file (0 bytes), not a checkpoint",
    "truncated": "not a readable PyTorch checkpoint: truncated or corrupt (",
    "garbage": "not a readable PyTorch checkpoint: truncated or corrupt (",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
@pytest.mark.parametrize("reader", ["read_torch_file", "load_checkpoint", "read_model_state", "load_mmdet_checkpoint"])
def test_each_bad_file_is_named_for_what_it_is(tmp_path: Path, kind: str, reader: str) -> None:
    path = _files(tmp_path)[kind]
    call = {
        "read_torch_file": lambda: read_torch_file(path),
        "load_checkpoint": lambda: load_checkpoint(str(path), torch.nn.Linear(2, 2)),
        "read_model_state": lambda: read_model_state(str(path)),
        "load_mmdet_checkpoint": lambda: load_mmdet_checkpoint(str(path)),
    }[reader]
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{path}: {EXPECTED[kind]}"), message
    assert "\n" not in message and not any(a in message for a in ADVICE), message
    if kind.startswith("pickle"):
        assert isinstance(info.value, UnsafeCheckpointError)
    assert not (tmp_path / "PAYLOAD_RAN").exists()


def test_a_good_file_still_loads(tmp_path: Path) -> None:
    torch.save({"model": {"weight": torch.ones(2, 2), "bias": torch.zeros(2)}}, tmp_path / "ok.pth")
    torch.save({"model": {"weight": torch.ones(2, 2), "bias": torch.zeros(2)}}, tmp_path / "legacy.pth",
               _use_new_zipfile_serialization=False)
    for name in ("ok.pth", "legacy.pth"):
        layer = torch.nn.Linear(2, 2)
        load_checkpoint(str(tmp_path / name), layer)
        assert torch.equal(layer.weight, torch.ones(2, 2))


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        read_torch_file(tmp_path / "nope.pth")


@pytest.mark.slow  # a tool run in a subprocess
@pytest.mark.parametrize("kind", ["pickle_zip", "lfs"])
def test_track_video_refuses_with_one_line_and_runs_nothing(tmp_path: Path, kind: str) -> None:
    weights = _files(tmp_path)[kind]
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "track_video.py"), "--input", str(REPO / "assets" / "sample.mp4"),
         "--output", str(out), "--config", str(REPO / "configs" / "synthetic" / "vis_demo.yaml"),
         "--weights", str(weights)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc.stderr)
    assert lines == [f"error: {weights}: {EXPECTED[kind]}"], proc.stderr
    assert not out.exists() and not (tmp_path / "PAYLOAD_RAN").exists()
