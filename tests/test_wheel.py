"""The built wheel on its own: it is built from a copy of the sources (offline: ``--no-build-isolation``
uses the environment's setuptools), installed into a temporary prefix, and its ``queryinst track`` tracks
the shipped sample clip with the shipped demo model from another directory (docs/design.md#module-map).

The installed copy is put first on PYTHONPATH; the probe below checks that the package, the tools and the
demo files really come from it, not from the repository's editable install.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import queryinst
from support.repo import REPO_ROOT

# What a build needs from the repository (the rest, tests/ and docs/, stays out of the wheel).
SOURCES = ("setup.py", "pyproject.toml", "README.md", "LICENSE", "queryinst", "image", "vis", "tracking", "tools",
           "configs", "models", "assets")

pytestmark = pytest.mark.slow  # builds and installs a 12 MB wheel, then runs the demo model


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (no build/ or egg-info left in the repository)."""
    tmp = tmp_path_factory.mktemp("wheel")
    (tmp / "src").mkdir()
    for name in SOURCES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp / "src" / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, tmp / "src" / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", str(tmp / "dist"), str(tmp / "src")], cwd=tmp)
    (built,) = (tmp / "dist").glob("queryinst_vis-*.whl")
    return built


def test_wheel_holds_the_package_data_tools_license_and_entry_point(wheel):
    version = queryinst.__version__
    assert wheel.name == f"queryinst_vis-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"queryinst_vis-{version}.dist-info"
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        metadata = archive.read(f"{info}/METADATA").decode()
        demo_size = archive.getinfo("queryinst/models/demo/vis_synthetic.pth").file_size
    configs = {f"queryinst/configs/{p.relative_to(REPO_ROOT / 'configs').as_posix()}"
               for p in (REPO_ROOT / "configs").rglob("*.yaml")}
    tools = {f"queryinst/tools/{p.name}" for p in (REPO_ROOT / "tools").glob("*.py")}
    assert len(configs) >= 10 and configs <= names
    assert len(tools) >= 17 and tools <= names
    assert {"queryinst/__main__.py", "queryinst/resources.py", "queryinst/weights.yaml", "queryinst/assets/sample.mp4",
            f"{info}/licenses/LICENSE"} <= names
    assert demo_size == (REPO_ROOT / "models" / "demo" / "vis_synthetic.pth").stat().st_size
    assert not {n for n in names if n.startswith(("tests/", "docs/", "work_dirs/", "queryinst/docs"))}
    assert "[console_scripts]\nqueryinst = queryinst.__main__:main" in entry_points
    assert f"Version: {version}\n" in metadata and "License-Expression: Apache-2.0\n" in metadata
    for extra in ("onnx", "decord", "dev"):
        assert f"Provides-Extra: {extra}\n" in metadata


def test_installed_wheel_tracks_the_sample_from_another_directory(wheel, tmp_path):
    site, elsewhere, out = tmp_path / "site", tmp_path / "elsewhere", tmp_path / "out"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
         cwd=tmp_path)
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    probe = ("import queryinst, queryinst.tools.track_video as t, queryinst.resources as r\n"
             "print(queryinst.__file__); print(t.__file__); print(*r.demo_model(), sep='\\n')")
    for line in _run([sys.executable, "-c", probe], cwd=elsewhere, env=env).stdout.splitlines():
        assert Path(line).is_file() and Path(line).is_relative_to(site), line  # the wheel's copy is used
    sample = site / "queryinst" / "assets" / "sample.mp4"
    proc = _run([str(site / "bin" / "queryinst"), "track", "--input", str(sample), "--output", str(out),
                 "--end", "0.5", "--device", "cpu"], cwd=elsewhere, env=env)
    assert "loading the model (demo model)" in proc.stderr
    result = json.loads((out / "sample.json").read_text())
    assert result["num_frames"] >= 5 and result["tracks"]
    assert [c["name"] for c in result["categories"]][:2] == ["circle", "square"]
    assert (out / "sample.mp4").stat().st_size > 1000
    assert sorted(os.listdir(elsewhere)) == []  # nothing written to the current directory
    proc = _run([sys.executable, "-m", "queryinst", "--version"], cwd=elsewhere, env=env)
    assert proc.stdout == f"queryinst {queryinst.__version__}\n"
