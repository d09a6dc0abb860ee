"""One recipe for every NetAug twin (spec, augment_spec, widest tree, block adapters), and the
NetAug neck and head widening by their backbone's NetAug family."""
import pytest
import torch
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from torch import nn

from netaug_det.models.netaug import (DynamicBatchNorm2d, DynamicConv2d, NetAugModule,
                                      NetAugSupernet, block_adapter, register_adapter)
from netaug_det.models.netaug.adapters import BLOCK_ADAPTERS, ConvModuleAdapter
from netaug_det.models.netaug.module import FactorFn, scale_width

HEAD = dict(
    type='NetAugTinyYOLOV3Head', num_classes=3, out_channels=[24, 24, 24],
    anchor_generator=dict(type='YOLOAnchorGenerator', strides=[32, 16, 8],
                          base_sizes=[[(116, 90), (156, 198), (373, 326)],
                                      [(30, 61), (62, 45), (59, 119)],
                                      [(10, 13), (16, 30), (33, 23)]]),
    bbox_coder=dict(type='YOLOBBoxCoder'), featmap_strides=[32, 16, 8])


def detector(backbone: dict, **part_lists) -> nn.Module:
    return MODELS.build(dict(
        type='TinyYOLOV3', backbone=backbone,
        neck=dict(type='NetAugTinyYOLOV3Neck', num_scales=3, out_channels=[16, 16, 16],
                  **part_lists),
        bbox_head=dict(HEAD, **part_lists)))


@pytest.mark.parametrize('backbone, width_factors', [
    (dict(type='NetAugMobileNetV3'), (1.0, 2.0, 3.0)),
    (dict(type='NetAugMCUNet'), (1.0, 1.6, 2.2)),
    (dict(type='NetAugMobileNetV2', widen_factor=0.35, out_indices=(2, 4, 6),
          aug_width_mult_list=(1.0, 1.5), aug_expand_list=(1.0, 2.0)), (1.0, 1.5)),
], ids=['mbv3', 'mcunet', 'mbv2-own-lists'])
def test_neck_and_head_widen_by_the_backbones_family(backbone, width_factors):
    model = detector(backbone)
    for part in (model.neck, model.bbox_head):
        assert part.aug_width_mult_list == width_factors
        assert part.aug_expand_list == model.backbone.aug_expand_list
    model.neck.set_widths('max')
    assert model.neck.active_spec[0].out_channels == scale_width(16, max(width_factors))


def test_explicit_lists_win_and_a_plain_backbone_gives_mobilenetv2s():
    lists = dict(aug_width_mult_list=(1.0, 1.2), aug_expand_list=(1.0, 1.4))
    model = detector(dict(type='NetAugMobileNetV3'), **lists)
    assert model.neck.aug_width_mult_list == model.bbox_head.aug_width_mult_list == (1.0, 1.2)
    model = detector(dict(type='TinyMobileNetV3'))
    assert model.neck.aug_width_mult_list == (1.0, 1.8, 2.6)
    assert model.bbox_head.aug_expand_list == (1.0, 1.6, 2.2, 2.8)


def test_every_twin_is_built_at_its_widest_spec_and_widens_through_adapters():
    """Backbone, neck and head: 'max' mode runs exactly the widest tree (every dense dynamic
    conv at its full width) and every augmented block has an adapter."""
    model = detector(dict(type='NetAugMobileNetV3'))
    supernet = NetAugSupernet(model)
    assert list(supernet.modules) == ['backbone', 'neck', 'bbox_head']
    for module in supernet.modules.values():
        module.set_widths('max')
        assert module.active_spec == module.widest_spec
        for name, _ in module.named_block_specs(module.widest_spec):
            block_adapter(module.get_submodule(name))
        for layer in module.modules():
            if isinstance(layer, DynamicConv2d) and not layer.is_depthwise:
                assert layer.active_out_channels in (None, layer.out_channels)
        module.set_widths('base')
        assert module.active_spec == module.base_spec
        assert module._channel_counts()[0] == module._channel_counts()[1]


class Expander(nn.Module):
    """A user's block: 1x1 expand, 1x1 project (hidden width: ``hidden``)."""

    def __init__(self, channels: int, hidden: int, cfg: dict) -> None:
        super().__init__()
        self.expand = ConvModule(channels, hidden, 1, **cfg)
        self.project = ConvModule(hidden, channels, 1, **cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(self.expand(x))


class PlainNet(nn.Module):
    def __init__(self, channels: int = 8, hidden: int = 16, cfg: dict = None) -> None:
        super().__init__()
        self.block = Expander(channels, hidden, cfg or dict(norm_cfg=dict(type='BN')))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class NetAugNet(NetAugModule, PlainNet):
    """The recipe of docs/netaug_for_your_model.md on a user's module."""

    plain_cls = PlainNet

    def __init__(self, *args, aug_width_mult_list=(1.0, ), aug_expand_list=(1.0, 2.0, 3.0),
                 **kwargs) -> None:
        plain_kwargs = self.bind_plain_args(args, kwargs)
        base_spec = plain_kwargs['hidden']
        widest_spec = self.augment_spec(base_spec, *self.widest_factors(aug_width_mult_list,
                                                                          aug_expand_list))
        super().__init__(plain_kwargs['channels'], widest_spec, dict(
            conv_cfg=dict(type=DynamicConv2d), norm_cfg=dict(type=DynamicBatchNorm2d)))
        self._setup_netaug(plain_kwargs, base_spec, widest_spec, aug_width_mult_list,
                           aug_expand_list)

    def augment_spec(self, spec: int, width_factor: FactorFn, expand_factor: FactorFn) -> int:
        return scale_width(spec, expand_factor())

    def named_block_specs(self, spec: int) -> list:
        return [('block', spec)]


def test_a_users_block_joins_with_one_registered_adapter():
    with pytest.raises(TypeError, match='no NetAug adapter for Expander'):
        NetAugNet()

    @register_adapter(Expander)
    class ExpanderAdapter:

        @staticmethod
        def set_widths(block: Expander, hidden: int) -> None:
            ConvModuleAdapter.set_widths(block.expand, hidden)

        @staticmethod
        def sort_channels(block: Expander, base_hidden: int, keep_base: bool) -> list:
            return []

        @staticmethod
        def channels(hidden: int) -> int:
            return hidden

    try:
        model = NetAugNet().eval()
        model.set_widths('max')
        assert model.block.expand.conv.active_out_channels == 48
        assert model._channel_counts() == (48, 16)
        model.set_widths('base')
        x = torch.randn(2, 8, 4, 4)
        assert torch.equal(model(x), model.export().eval()(x))
        assert type(model.export()) is PlainNet
    finally:
        del BLOCK_ADAPTERS[Expander]
