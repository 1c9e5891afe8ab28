"""Tests of queryinst/cli.py: one-line errors, exit codes, the main() wrapper, device selection.
(That importing it loads no torch is checked in tests/test_imports.py.)"""
from __future__ import annotations

import os

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


def test_ctrl_c_is_one_line_and_exit_130(capsys):
    def main(argv):
        raise KeyboardInterrupt

    assert cli.run(main, []) == cli.EXIT_INTERRUPTED == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("interrupted: ") and "was not written" in err
    assert "Traceback" not in err


def test_output_checks_create_nothing_and_name_the_problem(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert cli.check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert cli.check_output_file(tmp_path / "new" / "out.json") == tmp_path / "new" / "out.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # nothing created
    with pytest.raises(ValueError, match=r"file.txt/sub: cannot write the output folder there: .*file.txt is a file"):
        cli.check_output_dir(a_file / "sub")
    with pytest.raises(ValueError, match=r"file.txt: cannot write the output folder there: .* is a file, not a folder"):
        cli.check_output_dir(a_file)
    with pytest.raises(ValueError, match=r"cannot write the output file there: .* is a folder"):
        cli.check_output_file(tmp_path)
    with pytest.raises(ValueError, match=r"/proc/x/y.json: cannot write the output file there: /proc is not writable"):
        cli.check_output_file("/proc/x/y.json")  # not writable even for root


# Each tool checks where it will write before any work: an output under an existing file fails at once
# with one line (with bogus inputs too: the output is checked first), and nothing is written.
TOOLS_WRITING = [
    ("submit_ytvis", ["--config", "c.yaml", "--weights", "w.pth", "--json", "v.json", "--frames", "f",
                      "--out", "{bad}/results.zip"]),
    ("test", ["--config", "configs/synthetic/image_tiny.yaml", "--weights", "w.pth", "--out", "{bad}/eval"]),
    ("eval_ytvis", ["--gt", "gt.json", "--results", "r.json", "--json-out", "{bad}/m.json"]),
    ("ytvis_to_coco", ["--json", "v.json", "--out", "{bad}/coco.json"]),
    ("convert_mmdet", ["src.pth", "{bad}/dst.pth"]),
    ("demo_image", ["--config", "configs/synthetic/image_tiny.yaml", "--weights", "w.pth", "--input", "i.png",
                    "--output", "{bad}/out"]),
    ("export_onnx", ["--out", "{bad}/m.onnx"]),
    ("track_video", ["--input", "assets/sample.mp4", "--output", "{bad}/out"]),
    ("tracker_oracle", ["--json", "v.json", "--frames", "f", "--json-out", "{bad}/t.json"]),
    ("compare_embeddings", ["--weights", "w.pth", "--json", "v.json", "--frames", "f", "--gt", "g.json",
                            "--json-out", "{bad}/t.json"]),
    ("train", ["--config", "configs/synthetic/image_tiny.yaml", "run.output_dir={bad}/run"]),
]


@pytest.mark.parametrize("tool, argv", TOOLS_WRITING, ids=[t for t, _ in TOOLS_WRITING])
def test_unusable_output_path_is_refused_before_any_work(tool, argv, tmp_path, load_tool, repo_root, capsys,
                                                         monkeypatch):
    monkeypatch.chdir(repo_root)
    bad = tmp_path / "a_file"
    bad.write_text("not a folder")
    status = cli.run(load_tool(tool).main, [a.replace("{bad}", str(bad)) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert "cannot write" in err[0] and str(bad) in err[0] and "is a file" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


# --------------------------------------------------------------------------------------------------
# --threads
# --------------------------------------------------------------------------------------------------
def test_threads_default_follows_omp_num_threads_else_the_cores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cli.default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.setattr(cli, "busy_cores", lambda interval=0.25: 0.0)  # an idle machine: every core
    assert cli.default_threads() == cores >= 1
    # cores another process keeps busy are left to it (a busy neighbour made 2 threads 5x slower)
    monkeypatch.setattr(cli, "busy_cores", lambda interval=0.25: 1.0)
    assert cli.default_threads() == max(1, cores - 1) if cores > 1 else 1
    monkeypatch.setattr(cli, "busy_cores", lambda interval=0.25: 64.0)
    assert cli.default_threads() == 1


def test_busy_cores_reads_the_machine():
    busy = cli.busy_cores(0.05)
    assert 0.0 <= busy <= (os.cpu_count() or 1) + 0.5


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


def test_process_shard_follows_torchruns_rank_and_world_size(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert cli.process_shard("abcde") == list("abcde")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert cli.process_shard("abcde") == ["b", "d"]
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK=2 outside WORLD_SIZE=2"):
        cli.process_shard("abcde")
