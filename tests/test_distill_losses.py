"""Distillation losses against hand computations on tiny tensors, their invariances, gradients
and registry builds."""
import itertools
import math

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.registry import DefaultScope
from torch import nn

import netaug_det  # noqa: F401  (registers the losses)
from netaug_det.models.losses import (FeatureImitationLoss, RKDAngleLoss, RKDDistanceLoss,
                                      YOLOV3SoftTargetLoss, pool_embeddings)


def sigmoid(x: float) -> float:
    """The logistic function of a python float."""
    return 1 / (1 + math.exp(-x))


def binary_kl(p_t: float, p_s: float) -> float:
    """KL(Bernoulli(p_t) || Bernoulli(p_s)), written out."""
    return p_t * math.log(p_t / p_s) + (1 - p_t) * math.log((1 - p_t) / (1 - p_s))


def huber(x: float) -> float:
    """The RKD paper's Huber loss (delta 1) of a difference."""
    return 0.5 * x * x if abs(x) <= 1 else abs(x) - 0.5


def dist(u: list, v: list) -> float:
    """Euclidean distance of two points given as lists."""
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(u, v)))


def cos_at(vertex: list, u: list, v: list) -> float:
    """Cosine of the angle u-vertex-v."""
    du = [a - b for a, b in zip(u, vertex)]
    dv = [a - b for a, b in zip(v, vertex)]
    return sum(a * b for a, b in zip(du, dv)) / (dist(u, vertex) * dist(v, vertex))


def hand_rkd_distance(s: torch.Tensor, t: torch.Tensor) -> float:
    """RKD-D by loops: Huber of normalised pair distances, averaged over pairs i < j."""
    pairs = list(itertools.combinations(range(len(s)), 2))
    s_rows, t_rows = s.tolist(), t.tolist()
    s_d = [dist(s_rows[i], s_rows[j]) for i, j in pairs]
    t_d = [dist(t_rows[i], t_rows[j]) for i, j in pairs]
    s_mu, t_mu = sum(s_d) / len(s_d), sum(t_d) / len(t_d)
    return sum(huber(a / s_mu - b / t_mu) for a, b in zip(s_d, t_d)) / len(pairs)


def hand_rkd_angle(s: torch.Tensor, t: torch.Tensor) -> float:
    """RKD-A by loops: Huber of the cosines at j, averaged over ordered distinct (i, j, k)."""
    triplets = list(itertools.permutations(range(len(s)), 3))
    s_rows, t_rows = s.tolist(), t.tolist()
    return sum(huber(cos_at(s_rows[j], s_rows[i], s_rows[k])
                     - cos_at(t_rows[j], t_rows[i], t_rows[k]))
               for i, j, k in triplets) / len(triplets)


# ---- YOLOV3SoftTargetLoss ----------------------------------------------------------------------

NUM_CLASSES, ANCHORS = 2, 2   # 7 attributes per anchor, 14 channels


def hand_soft_target(s: torch.Tensor, t: torch.Tensor, temp: float, weighted: bool) -> float:
    """YOLOV3SoftTargetLoss (loss_weight 1) by loops over images, anchors, rows and columns."""
    attribs = 5 + NUM_CLASSES
    obj_sum, cls_sum, weight_sum, count = 0.0, 0.0, 0.0, 0
    batch, _, height, width = s.shape
    for b, a, h, w in itertools.product(range(batch), range(ANCHORS), range(height),
                                        range(width)):
        def prob(pred: torch.Tensor, k: int) -> float:
            return sigmoid(pred[b, a * attribs + k, h, w].item() / temp)
        obj_sum += binary_kl(prob(t, 4), prob(s, 4))
        cls = sum(binary_kl(prob(t, k), prob(s, k)) for k in range(5, attribs))
        weight = sigmoid(t[b, a * attribs + 4, h, w].item()) if weighted else 1.0
        cls_sum += weight * cls
        weight_sum += weight
        count += 1
    return temp ** 2 * (obj_sum / count + cls_sum / weight_sum)


@pytest.mark.parametrize('temp,weighted', [(1.0, False), (2.0, True), (0.5, True)])
def test_soft_target_matches_hand_computation(temp, weighted):
    s = torch.randn(2, ANCHORS * (5 + NUM_CLASSES), 2, 3)
    t = torch.randn(2, ANCHORS * (5 + NUM_CLASSES), 2, 3)
    loss = YOLOV3SoftTargetLoss(NUM_CLASSES, temperature=temp, teacher_obj_weight=weighted,
                                loss_weight=3.0)
    assert loss(s, t).item() == pytest.approx(3.0 * hand_soft_target(s, t, temp, weighted),
                                              rel=1e-5)


def test_soft_target_ignores_box_offsets_and_is_zero_at_teacher():
    t = torch.randn(1, ANCHORS * (5 + NUM_CLASSES), 2, 2)
    loss = YOLOV3SoftTargetLoss(NUM_CLASSES, temperature=2.0)
    assert loss(t.clone(), t).item() == 0.0
    # x, y, w, h are not distilled; attributes read as mmdet's YOLOV3Head.loss_by_feat does
    flat = t.permute(0, 2, 3, 1).reshape(1, -1, 5 + NUM_CLASSES).clone()
    flat[..., :4] += 5.0
    s = flat.reshape(1, 2, 2, -1).permute(0, 3, 1, 2)
    assert loss(s, t).item() == 0.0
    flat[..., 4] += 1.0
    assert loss(flat.reshape(1, 2, 2, -1).permute(0, 3, 1, 2), t).item() > 0


def test_soft_target_gradients_and_bad_shapes():
    s = torch.randn(1, ANCHORS * (5 + NUM_CLASSES), 2, 2, requires_grad=True)
    t = torch.randn(1, ANCHORS * (5 + NUM_CLASSES), 2, 2, requires_grad=True)
    loss = YOLOV3SoftTargetLoss(NUM_CLASSES)
    loss(s, t.detach()).backward()
    assert s.grad.abs().sum() > 0 and t.grad is None
    loss(s, t).backward()   # not detached: the teacher side gets gradients too
    assert t.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='differ'):
        loss(s, t[:, :, :1])
    with pytest.raises(ValueError, match='prediction map'):
        loss(s[:, :13], t[:, :13])


# ---- FeatureImitationLoss ----------------------------------------------------------------------

def test_feature_imitation_matches_hand_computation():
    loss = FeatureImitationLoss(student_channels=2, teacher_channels=3, loss_weight=0.5)
    weight = [[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]]
    bias = [0.1, -0.2, 0.3]
    with torch.no_grad():
        loss.adapter.weight.copy_(torch.tensor(weight).view(3, 2, 1, 1))
        loss.adapter.bias.copy_(torch.tensor(bias))
    s, t = torch.randn(2, 2, 2, 2), torch.randn(2, 3, 2, 2)
    total = 0.0
    for b, c, h, w in itertools.product(range(2), range(3), range(2), range(2)):
        adapted = sum(weight[c][k] * s[b, k, h, w].item() for k in range(2)) + bias[c]
        total += (adapted - t[b, c, h, w].item()) ** 2
    assert loss(s, t).item() == pytest.approx(0.5 * total / (2 * 3 * 2 * 2), rel=1e-5)


def test_feature_imitation_normalized_is_two_minus_two_pearson():
    s, t = torch.randn(3, 2, 2, 2), torch.randn(3, 2, 2, 2)
    per_channel = []
    for c in range(2):
        x, y = s[:, c].flatten().tolist(), t[:, c].flatten().tolist()
        mx, my = sum(x) / len(x), sum(y) / len(y)
        cov = sum((a - mx) * (b - my) for a, b in zip(x, y))
        r = cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))
        per_channel.append(2 * (1 - r))
    expected = sum(per_channel) / 2
    loss = FeatureImitationLoss(2, 2, normalize=True)
    assert loss(s, t).item() == pytest.approx(expected, rel=1e-4)
    # per-channel scale and offset of either side do not matter
    assert loss(3 * s + 1, t - 2).item() == pytest.approx(expected, rel=1e-4)


def test_feature_imitation_adapter_only_when_widths_differ():
    same = FeatureImitationLoss(4, 4)
    assert isinstance(same.adapter, nn.Identity) and not list(same.parameters())
    feat = torch.randn(2, 4, 3, 3)
    assert same(feat.clone(), feat).item() == 0.0
    wider = FeatureImitationLoss(4, 6)
    assert [name for name, _ in wider.named_parameters()] == ['adapter.weight', 'adapter.bias']
    assert wider.adapter.weight.shape == (6, 4, 1, 1)


def test_feature_imitation_gradients_and_bad_shapes():
    loss = FeatureImitationLoss(2, 3)
    s = torch.randn(1, 2, 2, 2, requires_grad=True)
    t = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss(s, t).backward()
    assert s.grad.abs().sum() > 0 and t.grad.abs().sum() > 0
    assert loss.adapter.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='does not match'):
        loss(s, t[:, :, :1])


# ---- RKD ---------------------------------------------------------------------------------------

def test_rkd_distance_matches_hand_computation():
    s, t = torch.randn(4, 3), torch.randn(4, 5)   # widths may differ: only relations count
    assert RKDDistanceLoss(loss_weight=2.0)(s, t).item() == pytest.approx(
        2.0 * hand_rkd_distance(s, t), rel=1e-5)
    # the linear part of the Huber loss: four samples in a cluster and one far away give
    # normalised distances of about 2.5 (the 4 far pairs) and 0 (the 6 others) against all 1
    # for the teacher's equidistant samples: (4 * (1.5 - 0.5) + 6 * 0.5) / 10 = 0.7
    s = torch.tensor([[0.0, 0.0], [0.01, 0.0], [0.0, 0.01], [0.01, 0.01], [100.0, 0.0]])
    t = torch.eye(5)
    assert RKDDistanceLoss()(s, t).item() == pytest.approx(hand_rkd_distance(s, t), rel=1e-5)
    assert hand_rkd_distance(s, t) == pytest.approx(0.7, abs=1e-3)


def test_rkd_angle_matches_hand_computation():
    s, t = torch.randn(4, 3), torch.randn(4, 2)
    assert RKDAngleLoss(loss_weight=2.0)(s, t).item() == pytest.approx(
        2.0 * hand_rkd_angle(s, t), rel=1e-5)
    # right angle at sample 0 (cos 0) against a straight line through it (cos -1)
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    assert RKDAngleLoss()(s, t).item() == pytest.approx(hand_rkd_angle(s, t), rel=1e-5)


def test_rkd_invariances():
    s, t = torch.randn(5, 4), torch.randn(5, 3)
    distance, angle = RKDDistanceLoss(), RKDAngleLoss()
    rotation, _ = torch.linalg.qr(torch.randn(4, 4))
    for loss in (distance, angle):
        ref = loss(s, t).item()
        assert loss(7.5 * s, t).item() == pytest.approx(ref, rel=1e-4)
        assert loss(s, 0.2 * t).item() == pytest.approx(ref, rel=1e-4)
        assert loss(s + torch.randn(4), t - 3.0).item() == pytest.approx(ref, rel=1e-4)
        assert loss(s @ rotation, t).item() == pytest.approx(ref, rel=1e-4)
        assert loss(s, s).item() == 0.0
        assert loss(3 * s + 1, s).item() == pytest.approx(0.0, abs=1e-6)


def test_rkd_gradients_pooling_and_small_batches():
    s = torch.randn(3, 2, 2, 2, requires_grad=True)
    t = torch.randn(3, 4, 2, 2, requires_grad=True)
    for loss in (RKDDistanceLoss(), RKDAngleLoss()):
        s.grad = t.grad = None
        value = loss(s, t)   # maps are average-pooled to (N, C)
        assert value.item() == pytest.approx(
            loss(s.mean(dim=(2, 3)), t.mean(dim=(2, 3))).item(), rel=1e-6)
        value.backward()
        assert s.grad.abs().sum() > 0 and t.grad.abs().sum() > 0
        one = loss(s[:1], t[:1].detach())   # no relation in a batch of one: a connected zero
        assert one.item() == 0.0 and one.requires_grad
    assert RKDAngleLoss()(s[:2], t[:2]).item() == 0.0
    with pytest.raises(ValueError, match='samples'):
        RKDDistanceLoss()(s, t[:2])


def test_pool_embeddings():
    levels = [torch.randn(2, 3, 4, 4), torch.randn(2, 5, 2, 2)]
    pooled = pool_embeddings(levels)
    assert pooled.shape == (2, 8)
    assert torch.allclose(pooled[:, 3:], levels[1].mean(dim=(2, 3)))
    emb = torch.randn(2, 6)
    assert pool_embeddings(emb) is emb


# ---- registry ----------------------------------------------------------------------------------

@pytest.mark.parametrize('cfg,cls', [
    (dict(type='YOLOV3SoftTargetLoss', num_classes=3, temperature=2.0), YOLOV3SoftTargetLoss),
    (dict(type='FeatureImitationLoss', student_channels=8, teacher_channels=16),
     FeatureImitationLoss),
    (dict(type='RKDDistanceLoss', loss_weight=25.0), RKDDistanceLoss),
    (dict(type='RKDAngleLoss', loss_weight=50.0), RKDAngleLoss),
])
def test_build_from_config_in_mmdet_scope(cfg, cls):
    with DefaultScope.overwrite_default_scope('mmdet'):
        loss = MODELS.build(cfg)
    assert type(loss) is cls and isinstance(loss, nn.Module)
    assert loss.loss_weight == cfg.get('loss_weight', 1.0)


def test_soft_target_sum_reduction_sums_what_mean_averages():
    """'sum' over anchors is YOLOv3's own reduction: the objectness term times the number of
    anchors, the class term weighted by the teacher's objectness but not normalised."""
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 3 * 7, 4, 5), torch.randn(2, 3 * 7, 4, 5)
    mean = YOLOV3SoftTargetLoss(num_classes=2, teacher_obj_weight=False)
    total = YOLOV3SoftTargetLoss(num_classes=2, teacher_obj_weight=False, reduction='sum')
    torch.testing.assert_close(total(student, teacher), mean(student, teacher) * 2 * 3 * 4 * 5)
    with pytest.raises(ValueError, match='reduction'):
        YOLOV3SoftTargetLoss(num_classes=2, reduction='none')
