"""Dynamic layers equal their static counterparts on the leading slice."""
import pytest
import torch
from mmcv.cnn import ConvModule
from torch import nn

from netaug_det.models.netaug import DynamicBatchNorm2d, DynamicConv2d, DynamicLinear


def static_conv_from_slice(dynamic: DynamicConv2d, in_channels: int, out_channels: int,
                           groups: int = 1) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, dynamic.kernel_size, dynamic.stride,
                     dynamic.padding, groups=groups, bias=dynamic.bias is not None)
    conv.weight.data.copy_(dynamic.weight.data[:out_channels, :in_channels // groups])
    if dynamic.bias is not None:
        conv.bias.data.copy_(dynamic.bias.data[:out_channels])
    return conv


def test_dense_conv_uses_input_width_and_active_out_channels():
    conv = DynamicConv2d(8, 12, 3, stride=2, padding=1, bias=True)
    x = torch.randn(2, 5, 9, 11)
    assert conv(torch.randn(2, 8, 9, 11)).shape == (2, 12, 5, 6)
    conv.active_out_channels = 7
    out = conv(x)
    assert out.shape == (2, 7, 5, 6)
    assert torch.equal(out, static_conv_from_slice(conv, 5, 7)(x))


def test_depthwise_conv_follows_input_width():
    conv = DynamicConv2d(10, 10, 5, padding=2, groups=10, bias=False)
    x = torch.randn(1, 6, 8, 8)
    assert torch.equal(conv(x), static_conv_from_slice(conv, 6, 6, groups=6)(x))
    conv.active_out_channels = 6
    with pytest.raises(RuntimeError, match='follows its input width'):
        conv(x)


def test_conv_rejects_what_it_cannot_slice():
    with pytest.raises(ValueError, match='dense'):
        DynamicConv2d(8, 8, 3, groups=2)
    with pytest.raises(ValueError, match='padding_mode'):
        DynamicConv2d(8, 8, 3, padding_mode='reflect')
    with pytest.raises(ValueError, match='more than the 4'):
        DynamicConv2d(4, 4, 1)(torch.randn(1, 5, 2, 2))
    too_wide = DynamicConv2d(4, 6, 1)
    too_wide.active_out_channels = 7
    with pytest.raises(ValueError, match='7 active output channels asked, more than the 6'):
        too_wide(torch.randn(1, 4, 2, 2))


@pytest.mark.parametrize('momentum', [0.1, None])
def test_batchnorm_matches_static_bn_on_leading_slice(momentum):
    dynamic = DynamicBatchNorm2d(10, momentum=momentum)
    nn.init.normal_(dynamic.weight)
    nn.init.normal_(dynamic.bias)
    static = nn.BatchNorm2d(6, momentum=momentum)
    static.load_state_dict({k: v[:6] if v.dim() else v for k, v in dynamic.state_dict().items()})
    for _ in range(2):
        x = torch.randn(4, 6, 5, 5) * 3 + 1
        assert torch.equal(dynamic(x), static(x))
    assert torch.equal(dynamic.running_mean[:6], static.running_mean)
    assert torch.equal(dynamic.running_var[:6], static.running_var)
    assert torch.equal(dynamic.running_mean[6:], torch.zeros(4))
    assert torch.equal(dynamic.running_var[6:], torch.ones(4))
    assert dynamic.num_batches_tracked == static.num_batches_tracked == 2
    dynamic.eval()
    static.eval()
    x = torch.randn(2, 6, 3, 3)
    assert torch.equal(dynamic(x), static(x))


def test_untracked_batchnorm_uses_batch_stats_and_touches_nothing():
    """What an augmented pass does to a train-mode BN (``track_running_stats`` off)."""
    bn = DynamicBatchNorm2d(10).train()
    bn.track_running_stats = False
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    x = torch.randn(4, 7, 5, 5) * 3 + 1
    expected = nn.functional.batch_norm(x, None, None, bn.weight[:7], bn.bias[:7], True)
    assert torch.equal(bn(x), expected)
    for name, tensor in bn.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_linear_follows_input_width():
    linear = DynamicLinear(12, 5)
    x = torch.randn(3, 7)
    expected = nn.functional.linear(x, linear.weight[:, :7], linear.bias)
    assert torch.equal(linear(x), expected)
    with pytest.raises(ValueError, match='more than the 12'):
        linear(torch.randn(3, 13))


def test_conv_module_keeps_static_names():
    static = ConvModule(4, 8, 3, padding=1, norm_cfg=dict(type='BN'))
    dynamic = ConvModule(4, 8, 3, padding=1, conv_cfg=dict(type=DynamicConv2d),
                         norm_cfg=dict(type=DynamicBatchNorm2d))
    assert static.state_dict().keys() == dynamic.state_dict().keys()
    dynamic.load_state_dict(static.state_dict())
    x = torch.randn(2, 4, 6, 6)
    assert torch.equal(static(x), dynamic(x))
