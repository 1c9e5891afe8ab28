"""Smoke tests of tools/eval_ytvis.py, run as a script from the repository root."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from queryinst.vis.bench.ytvis_case import make_benchmark_case
from queryinst.vis.eval import STAT_KEYS
from queryinst.vis.eval.submission import write_results_zip
from support.repo import REPO_ROOT

pytestmark = pytest.mark.slow  # tool end-to-end runs (subprocesses)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "tools/eval_ytvis.py", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)


def _write_case(tmp_path: Path) -> tuple[Path, Path, list[dict]]:
    gt, results = make_benchmark_case(num_videos=4, preds_per_video=3, height=24, width=32, length=3, seed=1)
    gt_path, results_path = tmp_path / "gt.json", tmp_path / "results.json"
    gt_path.write_text(json.dumps(gt))
    results_path.write_text(json.dumps(results))
    return gt_path, results_path, results


def test_good_input_prints_table_and_writes_json(tmp_path):
    gt_path, results_path, results = _write_case(tmp_path)
    out = tmp_path / "metrics" / "metrics.json"
    proc = _run("--gt", str(gt_path), "--results", str(results_path), "--json-out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Average Precision") == 6 and proc.stdout.count("Average Recall") == 6
    metrics = json.loads(out.read_text())
    assert list(metrics) == list(STAT_KEYS)
    assert all(v == -1.0 or 0.0 <= v <= 1.0 for v in metrics.values())
    # A submission zip of the same records scores the same.
    zipped = write_results_zip(results, tmp_path / "results.zip")
    out_zip = tmp_path / "metrics_zip.json"
    assert _run("--gt", str(gt_path), "--results", str(zipped), "--json-out", str(out_zip)).returncode == 0
    assert json.loads(out_zip.read_text()) == metrics


def test_malformed_json_fails_naming_the_file(tmp_path):
    gt_path, _, _ = _write_case(tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"video_id": 1,')
    out = tmp_path / "metrics.json"
    proc = _run("--gt", str(gt_path), "--results", str(broken), "--json-out", str(out))
    assert proc.returncode != 0
    assert "broken.json" in proc.stderr and "malformed JSON" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1  # one clear line, no traceback
    assert not out.exists()


def test_missing_file_and_invalid_records_fail(tmp_path):
    gt_path, results_path, results = _write_case(tmp_path)
    proc = _run("--gt", str(tmp_path / "nope.json"), "--results", str(results_path))
    assert proc.returncode != 0 and "nope.json" in proc.stderr
    results[0]["score"] = 2.0
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps(results))
    proc = _run("--gt", str(gt_path), "--results", str(invalid))
    assert proc.returncode != 0
    assert "invalid.json" in proc.stderr and "result 0" in proc.stderr
