"""image/solver.py: parameter groups, the per-iteration schedule and gradient clipping."""
import io

import pytest
import torch
from torch import nn

from queryinst.image.config import SolverConfig
from queryinst.image.solver import (build_optimizer, build_scheduler, clip_gradients, iterations_per_epoch)


class _Toy(nn.Module):
    """Names like QueryInst's: backbone.body (ResNet), backbone.fpn (neck), a head, a frozen stem."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.body = nn.Module()
        self.backbone.body.stem = nn.Linear(2, 2)
        self.backbone.body.layer2 = nn.Linear(2, 2)
        self.backbone.fpn = nn.Linear(2, 2)
        self.head = nn.Linear(2, 3)
        for p in self.backbone.body.stem.parameters():
            p.requires_grad_(False)


def _solver(**kw) -> SolverConfig:
    cfg = SolverConfig(base_lr=1e-3, backbone_lr_mult=0.1, weight_decay=1e-4, warmup_iters=10, warmup_factor=0.001,
                       epochs=4, steps=(3, 4), gamma=0.1)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def test_param_groups_backbone_mult_and_frozen_left_out():
    model = _Toy()
    opt = build_optimizer(_solver(), model)
    groups = {g["name"]: g for g in opt.param_groups}
    backbone_ids = {id(p) for p in groups["backbone"]["params"]}
    head_ids = {id(p) for p in groups["head"]["params"]}
    assert backbone_ids == {id(p) for p in model.backbone.body.layer2.parameters()}
    # the FPN is mmdetection's neck: base lr
    assert {id(p) for p in model.backbone.fpn.parameters()} <= head_ids
    assert not any(id(p) in backbone_ids | head_ids for p in model.backbone.body.stem.parameters())
    assert groups["backbone"]["lr"] == pytest.approx(1e-4)
    assert groups["head"]["lr"] == pytest.approx(1e-3)
    assert all(g["weight_decay"] == 1e-4 for g in opt.param_groups)
    assert isinstance(opt, torch.optim.AdamW)
    assert all(g["fused"] for g in opt.param_groups)  # the CPU's fused kernel


def test_fused_cpu_step_equals_the_plain_adamw_step_to_rounding():
    model = _Toy()
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    plain = torch.optim.AdamW([dict(g) for g in build_optimizer(_solver(), model).param_groups])
    for g in plain.param_groups:
        g["fused"] = None
    before = [p.detach().clone() for p in model.parameters()]
    plain.step()
    expected = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p, b in zip(model.parameters(), before):
            p.copy_(b)
    build_optimizer(_solver(), model).step()
    for p, e, b in zip(model.parameters(), expected, before):
        assert torch.allclose(p - b, e - b, rtol=1e-5, atol=1e-9)


def test_schedule_values_at_given_iterations():
    model = _Toy()
    opt = build_optimizer(_solver(), model)
    sched = build_scheduler(_solver(), opt, iters_per_epoch=5)  # decays at iterations 15 and 20
    lrs = []
    for _ in range(22):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    head = [lr[1] for lr in lrs]
    expected = {0: 1e-6, 5: 1e-3 * (0.001 + 0.999 * 0.5), 9: 1e-3 * (0.001 + 0.999 * 0.9), 10: 1e-3, 14: 1e-3,
                15: 1e-4, 19: 1e-4, 20: 1e-5, 21: 1e-5}
    for it, lr in expected.items():
        assert head[it] == pytest.approx(lr, rel=1e-9), it
    assert all(b == pytest.approx(h * 0.1, rel=1e-9) for b, h in lrs)  # backbone follows at 0.1x


def test_scheduler_state_round_trips_through_weights_only_load():
    model = _Toy()
    opt = build_optimizer(_solver(), model)
    sched = build_scheduler(_solver(), opt, 5)
    for _ in range(12):
        opt.step()
        sched.step()
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt2 = build_optimizer(_solver(), model)
    # a resumed run continues the saved schedule even if built with other milestones
    sched2 = build_scheduler(_solver(steps=(1,)), opt2, 5)
    opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    for _ in range(6):
        opt.step()
        sched.step()
        opt2.step()
        sched2.step()
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in opt2.param_groups]
    assert sched2.last_epoch == 18


def test_clip_gradients_limits_the_global_norm():
    params = [nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(4))]
    params[0].grad = torch.tensor([3.0, 0.0, 0.0])
    params[1].grad = torch.tensor([0.0, 4.0, 0.0, 0.0])
    assert clip_gradients(params, 0.0) is None  # disabled
    assert params[0].grad[0] == 3.0
    norm = clip_gradients(params, 1.0)
    assert float(norm) == pytest.approx(5.0)
    total = torch.cat([p.grad for p in params]).norm()
    assert float(total) == pytest.approx(1.0, rel=1e-5)


def test_errors_and_iterations_per_epoch():
    with pytest.raises(ValueError, match="solver.optimizer 'sgd'"):
        build_optimizer(_solver(optimizer="sgd"), _Toy())
    opt = build_optimizer(_solver(), _Toy())
    with pytest.raises(ValueError, match="solver.steps has epoch 7"):
        build_scheduler(_solver(steps=(7,)), opt, 5)
    assert iterations_per_epoch(5, 2) == 3  # the last, shorter group still steps
    assert iterations_per_epoch(4, 1) == 4
