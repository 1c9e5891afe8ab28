import itertools

import torch

from queryinst.image.matcher import HungarianMatcher, focal_cost, match_cost


def _random_case(g, n, m, c=4):
    logits = torch.randn(n, c, generator=g)
    xy = torch.rand(n, 2, generator=g) * 50
    boxes = torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=g) * 40], 1)
    gxy = torch.rand(m, 2, generator=g) * 50
    gt = torch.cat([gxy, gxy + 5 + torch.rand(m, 2, generator=g) * 40], 1)
    labels = torch.randint(0, c, (m,), generator=g)
    return logits, boxes, labels, gt, torch.tensor([100.0, 80.0, 100.0, 80.0])


def test_matching_is_optimal_against_brute_force():
    g = torch.Generator().manual_seed(1)
    matcher = HungarianMatcher()
    for n, m in [(4, 2), (5, 3), (6, 4), (3, 3)]:
        for _ in range(5):
            logits, boxes, labels, gt, whwh = _random_case(g, n, m)
            cost = match_cost(logits, boxes, labels, gt, whwh)
            q, t = matcher(logits, boxes, labels, gt, whwh)
            got = cost[q, t].sum().item()
            best = min(sum(cost[p[j], j].item() for j in range(m)) for p in itertools.permutations(range(n), m))
            assert abs(got - best) < 1e-4
            assert len(set(q.tolist())) == m and sorted(t.tolist()) == list(range(m))


def test_focal_cost_hand_computed():
    # p = sigmoid(0) = 0.5: pos = -log(0.5)*0.25*0.25, neg = -log(0.5)*0.75*0.25 -> pos - neg = -0.125*log 2
    cost = focal_cost(torch.zeros(1, 2), torch.tensor([1]))
    assert torch.allclose(cost, torch.tensor([[-0.125 * torch.log(torch.tensor(2.0)).item()]]), atol=1e-6)


def test_no_ground_truth_gives_no_match():
    q, t = HungarianMatcher()(torch.zeros(5, 3), torch.zeros(5, 4), torch.zeros(0, dtype=torch.long),
                              torch.zeros(0, 4), torch.ones(4))
    assert q.numel() == 0 and t.numel() == 0
