"""The TinyML backbones of Table 1 (MobileNetV2-Tiny, MCUNet, ProxylessNAS-Mobile), plain and
NetAug: official widths, Table-1 params and MACs, NetAug modes, sorting, official checkpoints."""
import copy
import sys

import mmdet.models
import pytest
import torch
from mmdet.models.utils import make_divisible
from mmdet.registry import MODELS
from test_backbones import randomize_batchnorm
from test_converter import OfficialStateDict
from test_netaug_hook import _single_thread  # noqa: F401 (autouse: one intra-op thread)

from netaug_det.models.backbones import (MCUNet, MobileNetV2Tiny, NetAugMCUNet,
                                         NetAugMobileNetV2Tiny, NetAugProxylessNASMobile,
                                         ProxylessNASMobile, convert_official_netaug)
from netaug_det.tools import netaug_to_mmdet, tinyml_table1

NETAUG_CLASSES = [NetAugMobileNetV2Tiny, NetAugMCUNet, NetAugProxylessNASMobile]


def official_state_dict(widths, block_configs, head_block, head_conv):
    """Names and shapes of an official ``netaug/models/base`` model (mit-han-lab/tinyml), written
    from its constructor, and the identity shortcut of each block.

    ``widths``: stem conv, input-stem depthwise-separable block, then one per stage;
    ``block_configs``: per stage (expand ratios, kernel sizes, stride); ``head_block``: the head's
    inverted block (out channels, kernel size, hidden channels or None for ``round(6 * in)``);
    ``head_conv``: width of the head's 1x1 conv, or None.
    """
    sd = OfficialStateDict()
    sd.conv_layer('backbone.input_stem.op_list.0', 3, widths[0], 3)
    sd.block('backbone.input_stem.op_list.1.conv', widths[0], widths[0], widths[1], 3,
             expand=False)
    shortcuts = [False]
    in_channels = widths[1]
    for s, ((expand_ratios, kernel_sizes, stride), c) in enumerate(zip(block_configs,
                                                                       widths[2:])):
        for i, (e, k) in enumerate(zip(expand_ratios, kernel_sizes)):
            sd.block(f'backbone.stages.{s}.op_list.{i}.conv', in_channels,
                     make_divisible(round(e * in_channels), 8), c, k)
            shortcuts.append((stride if i == 0 else 1) == 1 and in_channels == c and i != 0)
            in_channels = c
    out_channels, kernel_size, mid_channels = head_block
    sd.block('head.op_list.0.conv', in_channels, mid_channels or round(6 * in_channels),
             out_channels, kernel_size)
    shortcuts.append(False)
    if head_conv is None:
        sd.linear('head.op_list.2', out_channels)  # block, pool, linear
    else:
        sd.conv_layer('head.op_list.1', out_channels, head_conv, 1)
        sd.linear('head.op_list.3', head_conv)  # block, conv, pool, linear
    return sd, shortcuts


def official_tinymbv2():
    """``tiny_mbv2.py``: ``mbv2.py`` at w0.35 with the head block 56 -> 112 and a 448 conv."""
    widths = [make_divisible(w * 0.35, 8) for w in [32, 16, 24, 32, 64, 96, 160]]
    configs = [([t] * n, [3] * n, s)
               for t, n, s in [[6, 2, 2], [6, 3, 2], [6, 4, 2], [6, 3, 1], [6, 3, 2]]]
    return official_state_dict(widths, configs, (112, 3, None), 448)


def official_proxylessnas(width_mult=0.35):
    """``proxylessnas.py``."""
    widths = [make_divisible(w * width_mult, 8) for w in [32, 16, 32, 40, 80, 96, 192]]
    configs = [([3, 3], [5, 3], 2), ([3, 3, 3, 3], [7, 3, 5, 5], 2),
               ([6, 3, 3, 3], [7, 5, 5, 5], 2), ([6, 3, 3, 3], [5, 5, 5, 5], 1),
               ([6, 6, 3, 3], [7, 7, 7, 7], 2)]
    head = (make_divisible(320 * width_mult, 8), 7, None)
    return official_state_dict(widths, configs, head,
                               max(make_divisible(1280 * width_mult, 8), 1280))


def official_mcunet():
    """``mcunet.py``: absolute widths, head block 96 -> 160 (kernel 7, hidden 480), no conv."""
    configs = [([3, 5, 5, 4], [7, 3, 7, 5], 2), ([5, 5, 5], [5, 5, 5], 2),
               ([5, 6, 4], [3, 7, 5], 2), ([5, 5, 5], [5, 7, 3], 1), ([6, 5, 4], [3, 7, 3], 2)]
    return official_state_dict([16, 8, 16, 24, 40, 48, 96], configs, (160, 7, 480), None)


OFFICIAL = {
    'tinymbv2': (MobileNetV2Tiny, official_tinymbv2),
    'proxylessnas': (ProxylessNASMobile, official_proxylessnas),
    'mcunet': (MCUNet, official_mcunet),
}


@pytest.mark.parametrize('arch', sorted(OFFICIAL))
def test_widths_kernels_and_shortcuts_follow_the_official_definitions(arch):
    """Every tensor shape (so every width, hidden width and kernel size) and every identity
    shortcut equals the official model's."""
    cls, official = OFFICIAL[arch]
    official_sd, official_shortcuts = official()
    model = cls()
    converted, _ = convert_official_netaug(official_sd, arch)
    assert {k: v.shape for k, v in converted.items()} == {
        k: v.shape for k, v in model.state_dict().items()}
    assert [block.with_res_shortcut for block in model.blocks()] == official_shortcuts


def test_widths_at_the_paper_settings():
    tiny, mcunet, proxyless = MobileNetV2Tiny(), MCUNet(), ProxylessNASMobile()
    assert tiny.build_arch(0.35, {}).layer_channels == (8, 8, 16, 24, 32, 56, 112, 448)
    assert proxyless.build_arch(0.35, {}).layer_channels == (8, 16, 16, 32, 32, 64, 112, 1280)
    mcunet_arch = mcunet.build_arch(1.0, {})
    assert mcunet_arch.layer_channels == (8, 16, 24, 40, 48, 96, 160)
    assert mcunet_arch.head_channels is None and not hasattr(mcunet, 'conv2')
    head = mcunet_arch.stages[-1][0]
    assert (head.in_channels, head.mid_channels, head.kernel_size) == (96, 480, 7)
    assert [b.kernel_size for b in mcunet_arch.stages[1]] == [7, 3, 7, 5]
    # ProxylessNAS w0.35: layer5 keeps 32 channels at stride 1, but its first block has no
    # shortcut (official rule), unlike what mmdet's width test alone would build
    first = proxyless.layer5[0]
    assert (first.depthwise_conv.conv.stride, first.with_res_shortcut) == ((1, 1), False)
    assert proxyless.layer5[1].with_res_shortcut
    assert [m.out_channels for m in (tiny, mcunet, proxyless)] == [
        (16, 32, 112), (24, 48, 160), (16, 32, 112)]


def test_table1_params_and_macs_within_tolerance():
    """The classifiers (all layers, global pooling, 1000-class linear) at the paper's
    resolutions round to Table 1's printed figures: within half a unit of the last digit."""
    spec = {('MobileNetV2Tiny', 0.35, 144): ('0.75', '23.5'),
            ('MCUNet', 1.0, 176): ('0.74', '81.8'),
            ('ProxylessNASMobile', 0.35, 160): ('1.8', '35.7')}
    assert {(r.backbone, r.widen_factor, r.input_size): (r.params, r.macs)
            for r in tinyml_table1.TABLE1} == spec
    for row in tinyml_table1.TABLE1:
        ours = tinyml_table1.measure(row)
        assert tinyml_table1.agrees(ours['params'], row.params), (row.name, ours)
        assert tinyml_table1.agrees(ours['macs'], row.macs), (row.name, ours)
        assert abs(ours['macs'] / float(row.macs) - 1) < 0.001
    assert tinyml_table1.agrees(0.7449, '0.74') and not tinyml_table1.agrees(0.7451, '0.74')


def all_layers(cls):
    """``out_indices`` returning every layer of ``cls``'s backbone."""
    return tuple(range(len(cls.plain_cls().layers)))


@pytest.mark.parametrize('cls', NETAUG_CLASSES)
def test_netaug_base_mode_equals_export(cls):
    model = cls(out_indices=all_layers(cls))
    randomize_batchnorm(model)
    plain = model.export()
    assert type(plain) is cls.plain_cls
    assert plain.state_dict().keys() == model.state_dict().keys()
    for size, training in (((40, 56), False), ((33, 47), True)):
        x = torch.randn(2, 3, *size)
        model.train(training)
        plain.train(training)
        for out, plain_out in zip(model(x), plain(x)):
            assert torch.equal(out, plain_out)


@pytest.mark.parametrize('cls', NETAUG_CLASSES)
def test_netaug_every_mode_returns_base_channels(cls):
    model = cls(out_indices=all_layers(cls)).train()
    x = torch.randn(2, 3, 32, 32)
    generator = torch.Generator().manual_seed(1)
    for mode in ('base', 'max', 'random', 'random', 'random_expand'):
        model.set_widths(mode, generator)
        assert tuple(o.shape[1] for o in model(x)) == model.out_channels
    model.set_widths('max')
    assert model.active_arch.stem_channels > model.base_arch.stem_channels
    assert (model.active_arch.head_channels is None) == (cls is NetAugMCUNet)


def test_netaug_defaults_are_the_official_scripts():
    """``netaug/bash/imagenet/{tinymbv2,mcunet,proxylessnas-0.35}.sh``."""
    expected = {NetAugMobileNetV2Tiny: (1.0, 1.8, 2.6), NetAugMCUNet: (1.0, 1.6, 2.2),
                NetAugProxylessNASMobile: (1.0, 1.8, 2.6)}
    for cls, widths in expected.items():
        model = cls()
        assert model.aug_width_mult_list == widths
        assert model.aug_expand_list == (1.0, 1.6, 2.2, 2.8)


@pytest.mark.parametrize('cls', NETAUG_CLASSES)
def test_netaug_sort_keeps_the_max_model(cls):
    # float64, so that only a wrong permutation (not summation order) could change the outputs
    model = cls().double().eval()
    randomize_batchnorm(model)
    unsorted = copy.deepcopy(model)
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        model.set_widths('max')
        max_before = model(x)
        assert model.sort_channels()
        max_after = model(x)
        model.set_widths('base')
        unsorted.set_widths('base')
        base_changed = not torch.allclose(model(x)[-1], unsorted(x)[-1])
    for before, after in zip(max_before, max_after):
        torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-9)
    assert base_changed


@pytest.mark.parametrize('arch', sorted(OFFICIAL))
def test_official_checkpoint_maps_one_to_one(arch):
    cls, official = OFFICIAL[arch]
    official_sd, _ = official()
    converted, dropped = convert_official_netaug(
        {f'module.{k}': v for k, v in official_sd.items()}, arch)
    linear = [k for k in official_sd if '.linear.' in k]
    assert dropped == linear and len(linear) == 2
    assert len(converted) == len(official_sd) - 2
    assert sorted(map(id, converted.values())) == sorted(
        id(v) for k, v in official_sd.items() if k not in linear)
    assert converted['layer7.0.depthwise_conv.conv.weight'] is official_sd[
        'head.op_list.0.conv.depth_conv.conv.weight']
    assert converted['layer3.1.expand_conv.bn.running_mean'] is official_sd[
        'backbone.stages.1.op_list.1.conv.inverted_conv.norm.running_mean']
    if arch != 'mcunet':
        assert converted['conv2.conv.weight'] is official_sd['head.op_list.1.conv.weight']
    cls().load_state_dict(converted, strict=True)


def test_converter_tool_feeds_a_netaug_backbone(tmp_path, monkeypatch):
    official_sd, _ = official_mcunet()
    src, dst = tmp_path / 'mcunet.pth', tmp_path / 'mmdet.pth'
    torch.save(dict(state_dict=dict(official_sd)), src)
    monkeypatch.setattr(sys, 'argv', ['netaug_to_mmdet.py', str(src), str(dst), '--arch',
                                      'mcunet'])
    netaug_to_mmdet.main()
    model = NetAugMCUNet(init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    model.init_weights()
    plain = model.export()
    assert torch.equal(plain.layer7[0].expand_conv.conv.weight,
                       official_sd['head.op_list.0.conv.inverted_conv.conv.weight'])
    assert torch.equal(
        plain.layer1[0].linear_conv.bn.running_var,
        official_sd['backbone.input_stem.op_list.1.conv.point_conv.norm.running_var'])


def test_registered_under_their_own_names():
    for cls in (MobileNetV2Tiny, MCUNet, ProxylessNASMobile, *NETAUG_CLASSES):
        assert MODELS.get(cls.__name__) is cls
        assert not hasattr(mmdet.models, cls.__name__)
    model = MODELS.build(dict(type='NetAugMCUNet', out_indices=(6, )))
    assert model.out_channels == (160, )
    with pytest.raises(ValueError, match=r'layer1..layer7\), got'):
        MCUNet(out_indices=(7, ))
