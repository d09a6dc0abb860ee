"""Official NetAug checkpoint names and shapes convert one-to-one into the plain backbones."""
import os
import sys

import pytest
import torch
from mmdet.models.utils import make_divisible

from netaug_det.models.backbones import (NetAugMobileNetV3, TinyMobileNetV2, TinyMobileNetV3,
                                         convert_official_netaug)
from netaug_det.tools import netaug_to_mmdet


class OfficialStateDict(dict):
    """Random tensors under the names and shapes of ``netaug/models/base`` (mit-han-lab/tinyml),
    written from the official layer definitions (ConvLayer, DsConvLayer, InvertedBlock,
    SeInvertedBlock, LinearLayer)."""

    def conv_layer(self, prefix, in_channels, out_channels, kernel_size, groups=1, norm=True):
        self[f'{prefix}.conv.weight'] = torch.randn(out_channels, in_channels // groups,
                                                    kernel_size, kernel_size)
        if not norm:
            self[f'{prefix}.conv.bias'] = torch.randn(out_channels)
            return
        for name in ('weight', 'bias', 'running_mean', 'running_var'):
            self[f'{prefix}.norm.{name}'] = torch.rand(out_channels) + 0.5
        self[f'{prefix}.norm.num_batches_tracked'] = torch.tensor(7)

    def block(self, prefix, in_channels, mid_channels, out_channels, kernel_size,
              se_channels=None, expand=True):
        if expand:
            self.conv_layer(f'{prefix}.inverted_conv', in_channels, mid_channels, 1)
        self.conv_layer(f'{prefix}.depth_conv', mid_channels, mid_channels, kernel_size,
                        groups=mid_channels)
        if se_channels:
            for name, (cin, cout) in (('reduce_conv', (mid_channels, se_channels)),
                                      ('expand_conv', (se_channels, mid_channels))):
                self[f'{prefix}.se_layer.{name}.weight'] = torch.randn(cout, cin, 1, 1)
                self[f'{prefix}.se_layer.{name}.bias'] = torch.randn(cout)
        self.conv_layer(f'{prefix}.point_conv', mid_channels, out_channels, 1)

    def linear(self, prefix, in_features):
        self[f'{prefix}.linear.weight'] = torch.randn(1000, in_features)
        self[f'{prefix}.linear.bias'] = torch.randn(1000)


def official_mbv2(width_mult=0.35):
    stage = [make_divisible(w * width_mult, 8) for w in [32, 16, 24, 32, 64, 96, 160]]
    head = [make_divisible(320 * width_mult, 8), max(make_divisible(1280 * width_mult, 8), 1280)]
    sd = OfficialStateDict()
    sd.conv_layer('backbone.input_stem.op_list.0', 3, stage[0], 3)
    sd.block('backbone.input_stem.op_list.1.conv', stage[0], stage[0], stage[1], 3, expand=False)
    in_channels = stage[1]
    for s, ((t, n, _), c) in enumerate(
            zip([[6, 2, 2], [6, 3, 2], [6, 4, 2], [6, 3, 1], [6, 3, 2]], stage[2:])):
        for i in range(n):
            sd.block(f'backbone.stages.{s}.op_list.{i}.conv', in_channels,
                     make_divisible(round(t * in_channels), 8), c, 3)
            in_channels = c
    sd.block('head.op_list.0.conv', in_channels, round(in_channels * 6), head[0], 3)
    sd.conv_layer('head.op_list.1', head[0], head[1], 1)
    sd.linear('head.op_list.3', head[1])
    return sd


def official_mbv3(width_mult=0.35):
    stage = [make_divisible(w * width_mult, 8) for w in [16, 24, 40, 80, 112, 160]]
    head = [make_divisible(960 * width_mult, 8), 1280]
    sd = OfficialStateDict()
    sd.conv_layer('backbone.input_stem.op_list.0', 3, stage[0], 3)
    sd.block('backbone.input_stem.op_list.1.conv', stage[0], stage[0], stage[0], 3, expand=False)
    in_channels = stage[0]
    configs = [([64, 72], 3, False), ([72, 120, 120], 5, True), ([240, 200, 184, 184], 3, False),
               ([480, 672], 3, True), ([672, 960, 960], 5, True)]
    for s, ((mids, kernel, use_se), c) in enumerate(zip(configs, stage[1:])):
        for i, mid in enumerate(mids):
            mid = make_divisible(round(mid * width_mult), 8)
            se = max(make_divisible(mid / 4, 8), 16) if use_se else None
            sd.block(f'backbone.stages.{s}.op_list.{i}.conv', in_channels, mid, c, kernel, se)
            in_channels = c
    sd.conv_layer('head.op_list.0', in_channels, head[0], 1)
    sd.conv_layer('head.op_list.2', head[0], head[1], 1, norm=False)
    sd.linear('head.op_list.3', head[1])
    return sd


def test_mbv2_checkpoint_maps_one_to_one():
    official = official_mbv2()
    converted, dropped = convert_official_netaug(
        {f'module.{k}': v for k, v in official.items()}, 'mbv2')
    assert dropped == ['head.op_list.3.linear.weight', 'head.op_list.3.linear.bias']
    assert len(converted) == len(official) - 2
    assert converted['conv1.conv.weight'] is official['backbone.input_stem.op_list.0.conv.weight']
    assert converted['layer1.0.linear_conv.bn.running_var'] is official[
        'backbone.input_stem.op_list.1.conv.point_conv.norm.running_var']
    assert converted['layer4.3.expand_conv.conv.weight'] is official[
        'backbone.stages.2.op_list.3.conv.inverted_conv.conv.weight']
    assert converted['layer7.0.depthwise_conv.bn.bias'] is official[
        'head.op_list.0.conv.depth_conv.norm.bias']
    assert converted['conv2.conv.weight'] is official['head.op_list.1.conv.weight']
    TinyMobileNetV2(widen_factor=0.35).load_state_dict(converted, strict=True)


def test_mbv3_checkpoint_maps_one_to_one():
    official = official_mbv3()
    converted, dropped = convert_official_netaug(official, 'mbv3')
    assert sorted(dropped) == sorted(
        k for k in official if k.startswith(('head.op_list.2', 'head.op_list.3')))
    assert converted['layer6.2.se.conv1.conv.weight'] is official[
        'backbone.stages.4.op_list.2.conv.se_layer.reduce_conv.weight']
    assert converted['layer3.0.se.conv2.conv.bias'] is official[
        'backbone.stages.1.op_list.0.conv.se_layer.expand_conv.bias']
    assert converted['conv2.bn.weight'] is official['head.op_list.0.norm.weight']
    TinyMobileNetV3().load_state_dict(converted, strict=True)


def test_wrong_arch_is_reported():
    with pytest.raises(RuntimeError, match='size mismatch|Missing key'):
        convert_official_netaug(official_mbv3(), 'mbv2')
    with pytest.raises(KeyError, match='--arch'):
        convert_official_netaug({'features.0.weight': torch.zeros(1)}, 'mbv3')


def test_tool_writes_a_checkpoint_for_init_cfg(tmp_path, monkeypatch):
    official = official_mbv3()
    src, dst = tmp_path / 'official.pth', tmp_path / 'mmdet.pth'
    torch.save(dict(state_dict=dict(official)), src)
    monkeypatch.setattr(sys, 'argv', ['netaug_to_mmdet.py', str(src), str(dst), '--arch', 'mbv3'])
    netaug_to_mmdet.main()
    model = NetAugMobileNetV3(init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    model.init_weights()
    plain = model.export()
    assert torch.equal(plain.layer5[1].se.conv1.conv.weight,
                       official['backbone.stages.3.op_list.1.conv.se_layer.reduce_conv.weight'])
    assert torch.equal(plain.conv1.bn.running_mean,
                       official['backbone.input_stem.op_list.0.norm.running_mean'])


def test_tool_replaces_its_output_whole_or_not_at_all(tmp_path, monkeypatch):
    """A write that fails midway (here: the disk is full at fsync) leaves the old file."""
    src, dst = tmp_path / 'official.pth', tmp_path / 'mmdet.pth'
    torch.save(dict(state_dict=dict(official_mbv3())), src)
    dst.write_bytes(b'a complete earlier conversion')

    def disk_full(_fd):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'fsync', disk_full)
    with pytest.raises(OSError, match='disk full'):
        netaug_to_mmdet.main([str(src), str(dst), '--arch', 'mbv3'])
    assert dst.read_bytes() == b'a complete earlier conversion'
    assert sorted(path.name for path in tmp_path.iterdir()) == ['mmdet.pth', 'official.pth']
