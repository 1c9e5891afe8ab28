"""Tests of the ``queryinst`` command (queryinst/__main__.py): the subcommand table against tools/, the
help and version, the one-line error for an unknown subcommand, and that a subcommand runs the same code
as ``python tools/<tool>.py`` (the same exit status and error line). The installed wheel is tested in
tests/test_wheel.py."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import queryinst
from queryinst.__main__ import SUBCOMMANDS, main
from support.repo import TOOLS_DIR, load_tool

# Repository scripts that write the repository's own shipped files; not subcommands.
REPOSITORY_ONLY = {"make_sample_video", "package_demo_model"}


def test_every_tool_is_a_subcommand_and_every_subcommand_a_tool():
    tools = {p.stem for p in TOOLS_DIR.glob("*.py") if not p.stem.startswith("_")}
    mapped = {module for module, _ in SUBCOMMANDS.values()}
    assert mapped == tools - REPOSITORY_ONLY
    expected = {"track": "track_video", "webcam": "webcam", "image": "demo_image", "train": "train", "test": "test",
                "submit": "submit_ytvis", "eval": "eval_ytvis", "convert": "convert_to_ytvis",
                "convert-mmdet": "convert_mmdet", "ytvis-to-coco": "ytvis_to_coco", "export": "export_onnx",
                "benchmark": "benchmark", "synth": "make_synthetic", "oracle": "tracker_oracle",
                "compare-embeddings": "compare_embeddings"}
    assert {name: SUBCOMMANDS[name][0] for name in expected} == expected


def test_help_lists_each_subcommand_on_one_line_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, (_, summary) in SUBCOMMANDS.items():
        assert f"  {name} " in out and summary in out and "\n" not in summary
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"queryinst {queryinst.__version__}\n"


@pytest.mark.parametrize(("argv", "message"), [
    (["trak", "--input", "x"], "error: unknown subcommand 'trak'; did you mean 'track'?\n"),
    (["submt"], "error: unknown subcommand 'submt'; did you mean 'submit'?\n"),
    ([], "error: no subcommand given (queryinst --help lists them)\n"),
])
def test_bad_subcommand_is_one_error_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err == message


def test_far_off_subcommand_lists_them(capsys):
    assert main(["zzzz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: unknown subcommand 'zzzz' (one of: track, webcam,")


def test_subcommand_runs_the_tool_with_its_name_in_the_usage(tmp_path, capsys):
    missing = tmp_path / "missing.json"
    args = ["--gt", str(missing), "--results", str(tmp_path / "r.json")]
    from queryinst import cli

    assert cli.run(load_tool("eval_ytvis").main, args) == 2
    direct = capsys.readouterr().err
    assert main(["eval", *args]) == 2
    assert capsys.readouterr().err == direct and direct.count("\n") == 1 and str(missing) in direct
    with pytest.raises(SystemExit) as stop:
        main(["ytvis-to-coco", "--help"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("usage: queryinst ytvis-to-coco ")


def test_python_dash_m_and_the_console_script_start_without_torch(tmp_path):
    script = ("import sys\nfrom queryinst.__main__ import main\nassert main(['--help']) == 0\n"
              "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == "False", proc.stderr
    proc = subprocess.run([sys.executable, "-m", "queryinst", "--version"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (0, f"queryinst {queryinst.__version__}\n"), proc.stderr
    console = Path(sys.executable).parent / "queryinst"  # installed by `pip install -e .` (make setup)
    proc = subprocess.run([str(console), "trak"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (2, "error: unknown subcommand 'trak'; did you mean 'track'?\n")
