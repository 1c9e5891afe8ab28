"""Tests of queryinst/cli.py: one-line errors, exit codes, the main() wrapper, device selection.
(That importing it loads no torch is checked in tests/test_imports.py.)"""
from __future__ import annotations

import pytest

from queryinst import cli


def test_fail_prints_one_line_and_returns_exit_code_2(capsys):
    assert cli.fail(ValueError("data/x.json: not valid JSON\n(line 3)")) == cli.EXIT_BAD_INPUT == 2
    assert capsys.readouterr().err == "error: (line 3)\n"
    assert cli.fail("plain text", status=cli.EXIT_DAMAGED) == 3
    assert capsys.readouterr().err == "error: plain text\n"


def test_run_turns_escaping_user_errors_into_exit_2(capsys):
    def main(argv):
        raise FileNotFoundError(f"{argv[0]}: not found")

    assert cli.run(lambda argv: cli.EXIT_OK, ["x"]) == 0
    assert cli.run(main, ["a.json"]) == 2
    assert capsys.readouterr().err == "error: a.json: not found\n"
    with pytest.raises(KeyError):
        cli.run(lambda argv: {}["missing"], [])  # not a user error: the traceback is kept


def test_select_device():
    assert str(cli.select_device("cpu")) == "cpu"
    with pytest.raises(ValueError, match="must be 'auto', 'cpu' or 'cuda'"):
        cli.select_device("gpu")


def test_repo_root_holds_the_packaged_files():
    assert (cli.REPO_ROOT / "configs" / "synthetic" / "vis_demo.yaml").is_file()
    assert (cli.REPO_ROOT / "tools" / "track_video.py").is_file()
