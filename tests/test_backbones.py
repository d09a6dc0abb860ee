"""Plain and NetAug MobileNet backbones: widths, export, gradients, sorting, BatchNorm, sampling."""
import copy
from collections import defaultdict

import pytest
import torch
from mmdet.models.backbones import MobileNetV2
from mmdet.models.utils import make_divisible
from mmdet.registry import MODELS
from mmengine.analysis import FlopAnalyzer
from torchvision.models import mobilenet_v2, mobilenet_v3_large

from netaug_det.models.backbones import (NetAugMobileNetV2, NetAugMobileNetV3, TinyMobileNetV2,
                                         TinyMobileNetV3)
from netaug_det.models.netaug import (DynamicBatchNorm2d, DynamicConv2d, NetAugSupernet,
                                      permute_named_tensors)

NETAUG_CLASSES = [NetAugMobileNetV2, NetAugMobileNetV3]
# the NetAug paper's MobileNetV2 (TinyMobileNetV2's defaults are mmdet's: w1.0, (1, 2, 4, 7))
W035 = dict(widen_factor=0.35, out_indices=(2, 4, 6))


def w035(cls: type) -> dict:
    """The arguments giving ``cls`` its w0.35 layout of the NetAug paper (the defaults of the
    MobileNetV3 backbones already do)."""
    return W035 if cls in (TinyMobileNetV2, NetAugMobileNetV2) else {}
INPUT_SIZES = [(64, 64), (70, 90), (97, 65)]


def randomize_batchnorm(model: torch.nn.Module) -> None:
    """Give every BN non-trivial affine parameters and running statistics."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)


def leading(shape: torch.Size) -> tuple:
    return tuple(slice(0, n) for n in shape)


def outside_base(tensor: torch.Tensor, base_shape: torch.Size) -> torch.Tensor:
    """``tensor`` with its leading ``base_shape`` slice zeroed."""
    extra = tensor.clone()
    extra[leading(base_shape)] = 0
    return extra


def test_widths_at_w035_follow_official_netaug():
    v2, v3 = TinyMobileNetV2.build_arch(0.35, {}), TinyMobileNetV3.build_arch(0.35, None)
    assert v2.stem_channels == 16 and v3.stem_channels == 8
    assert v2.layer_channels == (8, 8, 16, 24, 32, 56, 112, 1280)
    assert v3.layer_channels == (8, 8, 16, 32, 40, 56, 336)
    assert [[b.mid_channels for b in s] for s in v3.stages[1:]] == [
        [24, 24], [24, 40, 40], [88, 72, 64, 64], [168, 232], [232, 336, 336]]
    assert [b.se_channels for b in v3.blocks if b.se_channels] == [16, 16, 16, 40, 56, 56, 88, 88]
    assert [b.with_shortcut for b in v3.blocks[:3]] == [True, False, True]
    assert TinyMobileNetV2(**W035).out_channels == (16, 32, 112)
    assert TinyMobileNetV3().out_channels == (16, 40, 56)


@pytest.mark.parametrize('cls, torchvision_builder, head_index, eps',
                         [(TinyMobileNetV2, mobilenet_v2, 7, 1e-5),
                          (TinyMobileNetV3, mobilenet_v3_large, 6, 1e-3)])
def test_widen_factor_1_equals_torchvision_features(cls, torchvision_builder, head_index, eps):
    ours = cls(widen_factor=1.0, out_indices=(head_index, ),
               norm_cfg=dict(type='BN', eps=eps)).eval()
    reference = torchvision_builder().features.eval()
    randomize_batchnorm(reference)
    ours_state, reference_state = ours.state_dict(), reference.state_dict()
    assert [t.shape for t in ours_state.values()] == [t.shape for t in reference_state.values()]
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in reference.parameters())
    ours.load_state_dict(dict(zip(ours_state, reference_state.values())))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], reference(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('cls', NETAUG_CLASSES)
def test_base_mode_equals_export(cls):
    model = cls(widen_factor=0.35, out_indices=(0, 2, 4, 5))
    randomize_batchnorm(model)
    plain = model.export()
    assert type(plain) is cls.plain_cls
    assert not any(isinstance(m, (DynamicConv2d, DynamicBatchNorm2d)) for m in plain.modules())
    assert plain.state_dict().keys() == model.state_dict().keys()
    fresh = cls.plain_cls(widen_factor=0.35, out_indices=(0, 2, 4, 5))
    assert [t.shape for t in plain.state_dict().values()] == [
        t.shape for t in fresh.state_dict().values()]
    x = torch.randn(1, 3, 64, 64)
    assert FlopAnalyzer(plain.eval(), x).total() == FlopAnalyzer(fresh.eval(), x).total()
    for height, width in INPUT_SIZES:
        x = torch.randn(2, 3, height, width)
        for training in (False, True):
            model.train(training)
            plain.train(training)
            outs, plain_outs = model(x), plain(x)
            assert [o.shape[1] for o in outs] == list(model.out_channels)
            for out, plain_out in zip(outs, plain_outs):
                assert torch.equal(out, plain_out)


def test_export_loads_into_mmdet_mobilenet_v2():
    model = NetAugMobileNetV2(**W035).eval()
    randomize_batchnorm(model)
    stock = MobileNetV2(widen_factor=0.35, out_indices=(2, 4, 6))
    stock.load_state_dict(model.export().state_dict(), strict=True)
    stock.eval()  # mmdet's MobileNetV2.train() returns None, so no chaining
    x = torch.randn(1, 3, 70, 90)
    outs = model(x)
    assert [o.shape[1] for o in outs] == [16, 32, 112]
    assert [o.shape[2:] for o in outs] == [(9, 12), (5, 6), (3, 3)]
    for out, stock_out in zip(outs, stock(x)):
        assert torch.equal(out, stock_out)


@pytest.mark.parametrize('cls', NETAUG_CLASSES)
def test_every_mode_returns_base_channels(cls):
    model = cls(**w035(cls)).train()
    x = torch.randn(2, 3, 32, 32)
    for mode in ('base', 'max', 'random', 'random_expand'):
        model.set_widths(mode)
        assert tuple(o.shape[1] for o in model(x)) == model.out_channels


@pytest.mark.parametrize('cls', [TinyMobileNetV2, TinyMobileNetV3, *NETAUG_CLASSES])
def test_every_trainable_parameter_gets_a_gradient(cls):
    """What DDP (find_unused_parameters=False) needs: no trainable parameter is left unused."""
    model = cls(**w035(cls)).train()
    assert not any(p.requires_grad for p in model.conv2.parameters())
    sum(out.mean() for out in model(torch.randn(1, 3, 64, 64))).backward()
    unused = [k for k, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []


@pytest.mark.parametrize('cls', NETAUG_CLASSES)
def test_gradients_reach_extra_channels_only_outside_base_mode(cls):
    model = cls(**w035(cls)).train()
    base_shapes = {k: v.shape for k, v in model.export().state_dict().items()}
    x = torch.randn(2, 3, 64, 64)

    def backward(mode, generator=None):
        model.zero_grad()
        model.set_widths(mode, generator)
        sum(out.square().mean() for out in model(x)).backward()
        return {k: p.grad for k, p in model.named_parameters() if p.grad is not None}

    grads = backward('base')
    assert len(grads) > 100
    for name, grad in grads.items():
        assert grad[leading(base_shapes[name])].abs().sum() > 0, name
        assert torch.count_nonzero(outside_base(grad, base_shapes[name])) == 0, name

    grads = backward('random', torch.Generator().manual_seed(3))
    widened = 0
    for block, base, active in zip(model.blocks(), model.base_arch.blocks,
                                   model.active_arch.blocks):
        if block.with_expand_conv and active.mid_channels > base.mid_channels:
            grad = block.expand_conv.conv.weight.grad
            assert grad[:base.mid_channels, :base.in_channels].abs().sum() > 0
            assert grad[base.mid_channels:].abs().sum() > 0
            widened += 1
    assert widened >= 5


@pytest.mark.parametrize('cls', NETAUG_CLASSES)
def test_sort_channels_keeps_max_model_and_puts_top_channels_first(cls):
    # float64, so that only a wrong permutation (not summation order) could change the outputs
    model = cls(**w035(cls)).double().eval()
    randomize_batchnorm(model)
    unsorted = copy.deepcopy(model)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        model.set_widths('max')
        max_before = model(x)
        model.set_widths('base')
        base_before = model(x)
        permutations = model.sort_channels()
        base_after = model(x)
        model.set_widths('max')
        max_after = model(x)
    for before, after in zip(max_before, max_after):
        torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-9)
    assert not torch.allclose(base_before[-1], base_after[-1])

    # the reported permutations are exactly what the sort did, tensor by tensor
    permute_named_tensors(unsorted, permutations)
    for name, tensor in model.state_dict().items():
        assert torch.equal(unsorted.state_dict()[name], tensor), name

    def descending(weight):
        importance = weight.abs().sum(dim=(0, 2, 3))
        return bool((importance[:-1] >= importance[1:]).all())

    sorted_blocks = [b for b in model.blocks() if b.with_expand_conv]
    assert len(sorted_blocks) >= 14
    for block in sorted_blocks:
        assert descending(block.linear_conv.conv.weight)
        if block.with_se:
            assert descending(block.se.conv2.conv.weight)


@pytest.mark.parametrize('cls', NETAUG_CLASSES)
def test_keep_base_sort_moves_no_base_channel(cls):
    """keep_base (a backbone loaded from a plain checkpoint): the base model stays exactly the
    same, tensor by tensor, and the augmented channels behind it are ranked."""
    model = cls(**w035(cls)).eval()
    randomize_batchnorm(model)
    before = model.export().state_dict()
    permutations = model.sort_channels(keep_base=True)
    assert permutations
    for name, tensor in model.export().state_dict().items():
        assert torch.equal(tensor, before[name]), name
    for block, spec in zip(model.blocks(), model.base_arch.blocks):
        if block.with_expand_conv:
            importance = block.linear_conv.conv.weight.abs().sum(dim=(0, 2, 3))
            rest = importance[spec.mid_channels:]
            assert bool((rest[:-1] >= rest[1:]).all())


@pytest.mark.parametrize('cls', NETAUG_CLASSES)
def test_only_base_mode_updates_running_stats(cls):
    """The supernet's one BatchNorm rule: augmented passes normalise with batch statistics and
    update none; base passes are exactly the plain backbone's."""
    model = cls(**w035(cls)).train()
    supernet = NetAugSupernet(model)
    plain = model.export().train()
    x = torch.randn(2, 3, 32, 32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for mode in ('random', 'max', 'random_expand'):
        with supernet.augmented(mode, torch.Generator().manual_seed(0)):
            model(x)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert supernet.mode == 'base' and model.active_arch == model.base_arch
    model(x)
    plain(x)
    exported = model.export().state_dict()
    for name, tensor in plain.state_dict().items():
        if 'running' in name or 'num_batches' in name:
            assert torch.equal(exported[name], tensor), name
    assert plain.conv1.bn.num_batches_tracked == 1


@pytest.mark.parametrize('cls', NETAUG_CLASSES)
def test_seeded_sampling_is_reproducible_and_reaches_every_width(cls):
    model = cls(**w035(cls))

    def draws(mode, seed, num):
        generator = torch.Generator().manual_seed(seed)
        archs = []
        for _ in range(num):
            model.set_widths(mode, generator)
            archs.append(model.active_arch)
        return archs

    assert draws('random', 7, 5) == draws('random', 7, 5)
    assert draws('random', 7, 5) != draws('random', 8, 5)

    base = model.base_arch
    seen = defaultdict(set)
    for arch in draws('random', 0, 200):
        seen['stem'].add(arch.stem_channels)
        seen['head'].add(arch.head_channels)
        for i, block in enumerate(arch.blocks):
            seen[i].add(block.out_channels)
    mults = model.aug_width_mult_list
    assert seen['stem'] == {make_divisible(base.stem_channels * m, 1) for m in mults}
    assert seen['head'] == {make_divisible(base.head_channels * m, 1) for m in mults}
    for i, block in enumerate(base.blocks):
        if not block.with_shortcut:
            assert seen[i] == {make_divisible(block.out_channels * m, 1) for m in mults}

    mids = defaultdict(set)
    for arch in draws('random_expand', 0, 200):
        assert arch.layer_channels == base.layer_channels
        for i, block in enumerate(arch.blocks):
            mids[i].add(block.mid_channels)
    for i, block in enumerate(base.blocks):
        expected = {make_divisible(block.mid_channels * e, 1) for e in model.aug_expand_list}
        assert mids[i] == (expected if block.with_expand_conv else {block.in_channels})

    model.set_widths('max')
    assert model.conv1.conv.weight.shape[0] == max(seen['stem'])
    model.set_widths('base')
    assert model.active_arch == base


def test_frozen_stages_norm_eval_and_train_returns_self():
    model = TinyMobileNetV3(frozen_stages=2)
    assert model.train() is model
    for name in ('conv1', 'layer1', 'layer2'):
        module = getattr(model, name)
        assert not module.training
        assert not any(p.requires_grad for p in module.parameters())
    assert model.layer3.training and all(p.requires_grad for p in model.layer3.parameters())

    netaug = NetAugMobileNetV2(**W035, frozen_stages=1)
    assert netaug.train() is netaug
    assert not netaug.layer1[0].depthwise_conv.bn.training
    assert netaug.export().train().conv1.bn.training is False


@pytest.mark.parametrize('cls', NETAUG_CLASSES)
def test_frozen_stages_stay_at_base_width_and_unsorted(cls):
    """Frozen stages are the base model in every mode: base widths (nothing to widen with),
    never sorted, their eval-mode BatchNorms normalising with running statistics."""
    model = cls(widen_factor=0.35, frozen_stages=2, out_indices=(1, 2, 4))
    randomize_batchnorm(model)
    model.train()
    plain = cls.plain_cls(widen_factor=0.35, frozen_stages=2, out_indices=(1, 2, 4))
    for name in ('conv1', 'layer1', 'layer2'):
        assert [t.shape for t in getattr(model, name).state_dict().values()] == [
            t.shape for t in getattr(plain, name).state_dict().values()], name
    supernet = NetAugSupernet(model)
    x = torch.randn(2, 3, 32, 32)
    base_out = model(x)[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with supernet.augmented('max', None):
        assert model.active_arch.stem_channels == model.base_arch.stem_channels
        assert torch.equal(model(x)[0], base_out)  # layer2 output: frozen, base model
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    sorted_names = {perm.name.split('.')[0] for perm in model.sort_channels()}
    assert sorted_names and not sorted_names & {'conv1', 'layer1', 'layer2'}


@pytest.mark.parametrize('build, message', [
    (lambda: TinyMobileNetV2(out_indices=(2, 8)), 'out_indices'),
    (lambda: TinyMobileNetV3(frozen_stages=7), 'frozen_stages'),
    (lambda: NetAugMobileNetV2(norm_cfg=dict(type='SyncBN')), "type='BN'"),
    (lambda: NetAugMobileNetV3(aug_width_mult_list=(1.5, 2.0)), 'must contain 1.0'),
    (lambda: NetAugMobileNetV2(with_cp=True), 'with_cp=False'),
    (lambda: NetAugMobileNetV2(norm_eval=True), 'use frozen_stages instead'),
    (lambda: NetAugMobileNetV3().set_widths('min'), 'mode must be one of'),
])
def test_bad_arguments_name_the_fix(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_registry_and_pretrained_checkpoint_into_base_slices(tmp_path):
    plain = TinyMobileNetV2(**W035)
    randomize_batchnorm(plain)
    checkpoint = tmp_path / 'plain.pth'
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in plain.state_dict().items()}),
               checkpoint)
    model = MODELS.build(
        dict(type='NetAugMobileNetV2', **W035,
             init_cfg=dict(type='Pretrained', checkpoint=str(checkpoint), prefix='backbone.')))
    model.init_weights()
    exported = model.export().state_dict()
    for name, tensor in plain.state_dict().items():
        assert torch.equal(exported[name], tensor), name
    assert model.base_checkpoint == str(checkpoint)
    wide = model.layer3[0].expand_conv.conv.weight
    assert wide[plain.layer3[0].expand_conv.conv.out_channels:].abs().sum() > 0


def test_pretrained_loading_is_strict_and_finds_the_backbone(tmp_path):
    """A detector (or classifier) checkpoint initialises a backbone as it is (its backbone.*
    keys); another architecture is refused instead of loaded in part; a NetAug backbone takes a
    whole supernet of its widths into every slice."""
    plain = TinyMobileNetV2(**W035)
    randomize_batchnorm(plain)
    detector_ckpt = tmp_path / 'detector.pth'
    torch.save(dict(state_dict={**{f'backbone.{k}': v for k, v in plain.state_dict().items()},
                                'bbox_head.conv.weight': torch.zeros(1)}), detector_ckpt)
    for cls in (TinyMobileNetV2, NetAugMobileNetV2):
        model = cls(**W035, init_cfg=dict(type='Pretrained', checkpoint=str(detector_ckpt)))
        model.init_weights()
        loaded = model.export() if cls is NetAugMobileNetV2 else model
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in plain.state_dict().items())

    other = tmp_path / 'mbv3.pth'
    torch.save(TinyMobileNetV3().state_dict(), other)
    for cls in (TinyMobileNetV2, NetAugMobileNetV2):
        with pytest.raises(ValueError, match='mbv3.pth does not hold the weights.*missing'):
            cls(**W035, init_cfg=dict(type='Pretrained', checkpoint=str(other))).init_weights()
    narrow = tmp_path / 'w025.pth'
    torch.save(TinyMobileNetV2(widen_factor=0.25).state_dict(), narrow)
    with pytest.raises(ValueError, match='w025.pth does not fit this backbone'):
        TinyMobileNetV2(**W035, init_cfg=dict(type='Pretrained',
                                              checkpoint=str(narrow))).init_weights()

    supernet = NetAugMobileNetV2(**W035)
    randomize_batchnorm(supernet)
    supernet_ckpt = tmp_path / 'supernet.pth'
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in supernet.state_dict().items()}),
               supernet_ckpt)
    model = NetAugMobileNetV2(**W035,
                              init_cfg=dict(type='Pretrained', checkpoint=str(supernet_ckpt)))
    model.init_weights()
    assert model.base_checkpoint is None  # every slice trained: sorting ranks all channels
    assert all(torch.equal(model.state_dict()[k], v) for k, v in supernet.state_dict().items())
