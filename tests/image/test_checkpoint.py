"""image/checkpoint.py: atomic round trip (model, optimiser, scheduler, RNG) and each error message."""
import os
import random

import numpy as np
import pytest
import torch

from queryinst.image.build import build_queryinst
from queryinst.image.checkpoint import load_checkpoint, save_checkpoint
from queryinst.image.config import load_config
from queryinst.image.solver import build_optimizer, build_scheduler
from support.repo import REPO_ROOT

TINY = "configs/synthetic/image_tiny.yaml"


def _cfg(*overrides: str):
    # smaller than the synthetic config: only the checkpoint logic is under test
    small = ["model.num_stages=2", "model.num_proposals=5", "model.num_classes=3", "model.hidden_dim=32",
             "model.fpn_channels=32", "model.dynamic_dim=8", "model.feedforward_dim=64", "model.num_heads=4"]
    return load_config(os.path.join(REPO_ROOT, TINY), small + list(overrides))


def _trained_state(cfg):
    torch.manual_seed(0)
    model = build_queryinst(cfg)
    opt = build_optimizer(cfg.solver, model)
    sched = build_scheduler(cfg.solver, opt, 4)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.randn_like(p)
    opt.step()
    sched.step()
    return model, opt, sched


def test_round_trip_restores_everything(tmp_path):
    cfg = _cfg()
    model, opt, sched = _trained_state(cfg)
    path = tmp_path / "ckpt" / "last.pth"
    save_checkpoint(str(path), model, opt, sched, epoch=1, iteration=5, cfg=cfg, extra={"class_names": ["a", "b"]})
    assert os.listdir(path.parent) == ["last.pth"]  # no temporary file left
    expected_draws = (torch.rand(3), np.random.rand(), random.random())

    torch.manual_seed(123)
    model2 = build_queryinst(cfg)
    opt2 = build_optimizer(cfg.solver, model2)
    sched2 = build_scheduler(cfg.solver, opt2, 4)
    info = load_checkpoint(str(path), model2, opt2, sched2, cfg=cfg, restore_rng=True)
    assert (torch.rand(3).tolist(), np.random.rand(), random.random()) == (expected_draws[0].tolist(),
                                                                          *expected_draws[1:])
    assert info["epoch"] == 1 and info["iteration"] == 5 and info["extra"]["class_names"] == ["a", "b"]
    assert info["config"]["model"]["num_classes"] == 3
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        assert torch.equal(a, b), k
    assert sched2.last_epoch == 1
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k]["exp_avg"], s2[k]["exp_avg"]) for k in s1)


def test_the_optimizer_keeps_its_own_kernel_choice_on_resume(tmp_path):
    """A checkpoint of a run without the fused AdamW kernel resumes with it on the CPU (the kernel is
    the process's choice, not training state), and the other way round."""
    cfg = _cfg()
    model, opt, sched = _trained_state(cfg)
    for g in opt.param_groups:
        g["fused"] = None
    path = tmp_path / "last.pth"
    save_checkpoint(str(path), model, opt, sched, epoch=1, iteration=5, cfg=cfg)
    opt2 = build_optimizer(cfg.solver, model)
    load_checkpoint(str(path), model, opt2, cfg=cfg)
    assert all(g["fused"] for g in opt2.param_groups)
    for p in model.parameters():
        p.grad = torch.randn_like(p) if p.requires_grad else None
    opt2.step()  # the loaded state works with the fused kernel
    assert all(int(s["step"]) == 2 for s in opt2.state.values())


def test_missing_and_corrupt_files(tmp_path):
    cfg = _cfg()
    model = build_queryinst(cfg)
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_checkpoint(str(missing), model)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(ValueError, match="garbage.pth: not a readable PyTorch checkpoint"):
        load_checkpoint(str(garbage), model)
    truncated = tmp_path / "truncated.pth"
    save_checkpoint(str(truncated), model, None, None, 0, 0, cfg)
    truncated.write_bytes(truncated.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated.pth"):
        load_checkpoint(str(truncated), model)
    a_list = tmp_path / "list.pth"
    torch.save([1, 2, 3], a_list)
    with pytest.raises(ValueError, match="list.pth: not a checkpoint"):
        load_checkpoint(str(a_list), model)


def test_checkpoint_from_another_config_names_the_key(tmp_path):
    cfg = _cfg()
    path = tmp_path / "c.pth"
    save_checkpoint(str(path), build_queryinst(cfg), None, None, 0, 0, cfg)
    other = _cfg("model.num_classes=4")
    with pytest.raises(ValueError, match=r"c.pth: .*model.num_classes: checkpoint has 3, config has 4"):
        load_checkpoint(str(path), build_queryinst(other), cfg=other)
    # inference-only settings and the ImageNet init may differ
    fine = _cfg("model.mask_threshold=0.4", "model.pretrained=''", "model.max_detections=3")
    load_checkpoint(str(path), build_queryinst(fine), cfg=fine)


def test_bare_state_dicts_ddp_prefix_and_shape_errors(tmp_path):
    cfg = _cfg()
    model = build_queryinst(cfg)
    state = {f"module.{k}": v.clone() + 1 for k, v in model.state_dict().items()}
    path = tmp_path / "bare.pth"
    torch.save(state, path)
    model2 = build_queryinst(cfg)
    info = load_checkpoint(str(path), model2, cfg=cfg)  # no stored config: names and shapes decide
    assert info["config"] is None
    key = "proposals.features.weight"
    assert torch.equal(model2.state_dict()[key], state[f"module.{key}"])

    torch.save({"state_dict": {**model.state_dict(), key: torch.zeros(7, 32)}}, path)
    with pytest.raises(ValueError, match=r"bare.pth: 1 tensor\(s\) of another shape: 'proposals.features.weight' "
                                         r"\[7, 32\] in the checkpoint"):
        load_checkpoint(str(path), model2)
    # every mismatching tensor is named, not only the first
    three = {"proposals.features.weight": torch.zeros(7, 32), "proposals.boxes.weight": torch.zeros(7, 4),
             "stages.0.box_head.cls_logits.bias": torch.zeros(2)}
    torch.save({"state_dict": {**model.state_dict(), **three}}, path)
    with pytest.raises(ValueError, match=r"3 tensor\(s\) of another shape") as info:
        load_checkpoint(str(path), model2)
    assert all(f"'{k}'" in str(info.value) for k in three)
    partial = dict(model.state_dict())
    partial.pop(key)
    torch.save(partial, path)
    with pytest.raises(ValueError, match=r"missing from the checkpoint \(proposals.features.weight\)"):
        load_checkpoint(str(path), model2)
    load_checkpoint(str(path), model2, strict=False)
