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


# --------------------------------------------------------------------------------------------------
# --threads
# --------------------------------------------------------------------------------------------------
def test_threads_default_follows_omp_num_threads_else_the_cores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cli.default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert cli.default_threads() == cores >= 1


def test_threads_argument_sets_torch_threads(monkeypatch):
    import argparse

    import torch

    parser = argparse.ArgumentParser()
    cli.add_threads_argument(parser)
    before = torch.get_num_threads()
    try:
        assert cli.apply_threads(parser.parse_args(["--threads", "2"]).threads) == 2 == torch.get_num_threads()
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert cli.apply_threads(parser.parse_args([]).threads) == 1 == torch.get_num_threads()
        with pytest.raises(ValueError, match="--threads must be >= 1"):
            cli.apply_threads(0)
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------------
# key=value overrides wherever they stand
# --------------------------------------------------------------------------------------------------
def _override_parser():
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--input", nargs="+", required=True)
    parser.add_argument("--output")
    parser.add_argument("overrides", nargs="*")
    return parser


def test_overrides_among_the_inputs_are_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "odd=name.mp4").write_text("")  # an existing file with '=' in its name stays an input
    args = cli.parse_with_overrides(_override_parser(), ["--input", "b.mp4", "tracker.mode=masktrack",
                                                         "odd=name.mp4", "c.mp4", "--output", "o",
                                                         "inference.score_threshold=0.3"], lists=("input",))
    assert args.input == ["b.mp4", "odd=name.mp4", "c.mp4"]
    assert args.overrides == ["inference.score_threshold=0.3", "tracker.mode=masktrack"]


def test_a_positional_that_is_no_override_is_an_error_before_any_work():
    with pytest.raises(ValueError, match="a.mp4: not a key=value config override"):
        cli.parse_with_overrides(_override_parser(), ["a.mp4", "--input", "b.mp4"], lists=("input",))
    with pytest.raises(ValueError, match="only config overrides"):
        cli.parse_with_overrides(_override_parser(), ["--input", "tracker.mode=masktrack"], lists=("input",))
    args = cli.parse_with_overrides(_override_parser(), ["--input", "b.mp4", "--", "tracker.mode=hungarian"],
                                    lists=("input",))
    assert args.input == ["b.mp4"] and args.overrides == ["tracker.mode=hungarian"]
