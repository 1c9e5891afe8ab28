"""Tests of queryinst/resources.py: the shipped configs, demo model and sample clip are found through the
package, from any working directory, and the model loader uses them. (The same from an installed wheel:
tests/test_wheel.py.)"""
from __future__ import annotations

import pytest

from queryinst import resources
from support.repo import REPO_ROOT


def test_shipped_files_are_the_repository_files_in_the_editable_install(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing depends on the current directory
    config, weights = resources.demo_model()
    assert config == REPO_ROOT / resources.DEMO_CONFIG and weights == REPO_ROOT / resources.DEMO_WEIGHTS
    assert resources.path(resources.SAMPLE_VIDEO) == REPO_ROOT / "assets" / "sample.mp4"
    assert resources.config("synthetic/vis_tiny.yaml").read_text() == \
        (REPO_ROOT / "configs" / "synthetic" / "vis_tiny.yaml").read_text()
    shipped = sorted(p.name for p in resources.files("configs").joinpath("vis").iterdir() if p.name.endswith(".yaml"))
    assert shipped == sorted(p.name for p in (REPO_ROOT / "configs" / "vis").glob("*.yaml"))


def test_unknown_files_and_folders_are_named():
    with pytest.raises(FileNotFoundError, match=r"^configs/synthetic/nope.yaml: not found among the files shipped"):
        resources.path("configs/synthetic/nope.yaml")
    with pytest.raises(FileNotFoundError, match="^configs: not found"):
        resources.path("configs")  # a folder is not a file
    with pytest.raises(ValueError, match=r"^data: not a shipped folder \(one of configs, models, assets\)"):
        resources.path("data/x.json")


def test_demo_model_loads_from_another_directory(tmp_path, monkeypatch):
    from queryinst.vis.modeling.build import load_vis_model

    monkeypatch.chdir(tmp_path)
    cfg, model, names, cat_ids = load_vis_model(None, None, device="cpu")
    assert cfg.model.num_classes == len(names) == len(cat_ids) == 6 and not model.training
    assert "circle" in names
