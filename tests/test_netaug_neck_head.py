"""NetAug on the neck and head: the widened depthwise YOLOv3 neck and head export exactly the
plain ones, keep their plain interfaces (the neck's concatenations included) in every mode,
sort without changing the widest model, and join the backbone in one supernet."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from netaug_det.models.dense_heads import NetAugTinyYOLOV3Head, TinyYOLOV3Head
from netaug_det.models.necks import NetAugTinyYOLOV3Neck, TinyYOLOV3Neck
from netaug_det.models.netaug import (NETAUG_MODES, NetAugSupernet, export_plain_model,
                                      permute_named_tensors)
from netaug_det.models.builders import build_detector
from test_backbones import randomize_batchnorm

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NECK_IN = [112, 32, 16]  # MobileNetV2-w0.35 strides 32, 16, 8
WIDTHS = [40, 40, 40]
HEAD = dict(num_classes=3, in_channels=WIDTHS, out_channels=[80, 80, 80])
LISTS = dict(aug_width_mult_list=(1.0, 1.5), aug_expand_list=(1.0, 2.0))


def feats(size: int = 64) -> tuple:
    """Backbone-like maps, shallow to deep: strides 8, 16, 32."""
    return tuple(torch.rand(2, c, size // s, size // s) for c, s in zip(NECK_IN[::-1], (8, 16, 32)))


def flat(outputs) -> list:
    """The tensors of nested tuples/lists (the head returns a tuple of a list of maps)."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [tensor for item in outputs for tensor in flat(item)]


def randomize(module: torch.nn.Module) -> torch.nn.Module:
    randomize_batchnorm(module)
    return module


def test_head_is_built_as_wide_as_its_widest_mode():
    """The widest bridge is what 'max' mode runs, for every base width (width factor, then
    expand factor, each rounded: 48 x 2.6 -> 125, x 2.8 -> 350, not round(48 x 7.28) = 349)."""
    for width in range(8, 130):
        head = NetAugTinyYOLOV3Head(num_classes=2, in_channels=[8], out_channels=[width],
                                    featmap_strides=[32], anchor_generator=dict(
                                        type='YOLOAnchorGenerator', strides=[32],
                                        base_sizes=[[(10, 13), (16, 30), (33, 23)]]))
        head.set_widths('max', None)
        assert head.convs_bridge[0].pointwise_conv.conv.out_channels == head.active_spec[0]


@pytest.mark.parametrize('build, plain_cls, inputs', [
    (lambda: NetAugTinyYOLOV3Neck(3, NECK_IN, WIDTHS, **LISTS), TinyYOLOV3Neck, feats),
    (lambda: NetAugTinyYOLOV3Head(**HEAD, **LISTS), TinyYOLOV3Head,
     lambda: tuple(torch.rand(2, 40, s, s) for s in (2, 4, 8))),
], ids=['neck', 'head'])
def test_base_mode_equals_export_and_every_mode_keeps_the_interface(build, plain_cls, inputs):
    module = randomize(build()).eval()
    plain = module.export()
    assert type(plain) is plain_cls
    assert plain.state_dict().keys() == module.state_dict().keys()
    x = inputs()
    for out, plain_out in zip(flat(module(x)), flat(plain(x))):
        assert torch.equal(out, plain_out)
    supernet = NetAugSupernet(module.train())
    for mode in NETAUG_MODES[1:]:
        with supernet.augmented(mode, torch.Generator().manual_seed(1)):
            assert supernet.width_ratio() >= 1.0
            outs = flat(module(x))
        assert [o.shape for o in outs] == [o.shape for o in flat(plain.train()(x))]


def test_concatenations_stay_at_plain_widths():
    """The neck concatenates the upsampled lateral branch with the backbone feature: both stay
    at their plain widths in every mode, so the next block reads them as a leading slice."""
    neck = NetAugTinyYOLOV3Neck(3, NECK_IN, WIDTHS, **LISTS)
    widths = []
    hooks = [getattr(neck, f'detect{i}').conv1.register_forward_pre_hook(
        lambda module, args: widths.append(args[0].shape[1])) for i in (2, 3)]
    supernet = NetAugSupernet(neck)
    for mode in NETAUG_MODES:
        with supernet.augmented(mode, torch.Generator().manual_seed(2)):
            neck(feats())
    for hook in hooks:
        hook.remove()
    assert widths == [WIDTHS[1] + NECK_IN[1], WIDTHS[2] + NECK_IN[2]] * len(NETAUG_MODES)
    assert neck.detect2.conv1.conv.weight.shape[1] == WIDTHS[1] + NECK_IN[1]


@pytest.mark.parametrize('build, inputs', [
    (lambda: NetAugTinyYOLOV3Neck(3, NECK_IN, WIDTHS, **LISTS), feats),
    (lambda: NetAugTinyYOLOV3Head(**HEAD, **LISTS),
     lambda: tuple(torch.rand(2, 40, s, s) for s in (2, 4, 8))),
], ids=['neck', 'head'])
def test_sort_keeps_the_widest_model_and_reports_what_it_moved(build, inputs):
    module = randomize(build()).double().eval()
    unsorted = copy.deepcopy(module)
    x = tuple(t.double() for t in inputs())
    module.set_widths('max')
    with torch.no_grad():
        before = module(x)
        permutations = module.sort_channels()
        after = module(x)
    for a, b in zip(flat(before), flat(after)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    permute_named_tensors(unsorted, permutations)
    for name, tensor in module.state_dict().items():
        assert torch.equal(unsorted.state_dict()[name], tensor), name
    assert module.sort_channels(keep_base=True)


def test_all_operators_config_is_one_supernet_exporting_the_baseline():
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'demo',
                                   'yolov3_mbv2_netaug_all_demo.py'))
    model = build_detector(cfg)
    model.init_weights()
    supernet = NetAugSupernet(model)
    assert list(supernet.modules) == ['backbone', 'neck', 'bbox_head']
    baseline = build_detector(Config.fromfile(osp.join(REPO_ROOT, 'configs', 'demo',
                                                       'yolov3_mbv2_demo.py')))
    plain = export_plain_model(model)
    baseline.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        for a, b in zip(model._forward(x)[0], baseline.eval()._forward(x)[0]):
            assert torch.equal(a, b)
    model.train()
    sum(o.square().mean() for o in model._forward(x)[0]).backward()
    with supernet.augmented('random', torch.Generator().manual_seed(0)):
        sum(o.square().mean() for o in model._forward(x)[0]).backward()
    grad = model.neck.detect1.conv2.pointwise_conv.conv.weight.grad
    assert grad[80:].abs().sum() > 0  # wide hidden channels of the neck learn in the aux pass
