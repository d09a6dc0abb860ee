"""Dynamic-width layers for NetAug weight sharing.

Each layer subclasses its static PyTorch counterpart, so it holds the weights of the widest
augmented model under the static layer's parameter names; a narrower model uses the leading slice
of every tensor. The active input width always comes from the incoming tensor. The active output
width of a dense layer is owned by the NetAug module that contains it, which writes
``active_out_channels`` (``active_out_features``) in its ``set_widths``; nothing is set as a side
effect of ``forward``.

The layers plug into mmcv's ``ConvModule`` as ``conv_cfg=dict(type=DynamicConv2d)`` and
``norm_cfg=dict(type=DynamicBatchNorm2d)``, which keeps module names (``conv``, ``bn``) identical
to the static network's. How BatchNorm behaves in an auxiliary pass is decided in one place,
:meth:`netaug_det.models.netaug.NetAugSupernet.augmented`.
"""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn


def leading_slice(tensor: Optional[Tensor], num: int) -> Optional[Tensor]:
    """The first ``num`` entries of ``tensor`` along dim 0 (None stays None)."""
    return None if tensor is None else tensor[:num]


def _check_width(layer: nn.Module, width: int, limit: int) -> None:
    if width > limit:
        raise ValueError(f'{type(layer).__name__}: input has {width} channels, more than the '
                         f'{limit} this layer holds weights for.')


class DynamicConv2d(nn.Conv2d):
    """A ``nn.Conv2d`` of maximal size that runs on the leading slice of its weight.

    Dense convolution (``groups=1``): input (N, C_in', H, W) with C_in' <= ``in_channels``,
    output (N, C_out', H', W') with C_out' = ``active_out_channels`` (all ``out_channels`` when
    None). Depthwise convolution (``groups == in_channels == out_channels``): output width follows
    the input width, (N, C', H, W) -> (N, C', H', W'); ``active_out_channels`` must stay None.

    Args are those of ``nn.Conv2d``; only ``padding_mode='zeros'`` and ``groups`` in
    {1, in_channels} are supported.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.padding_mode != 'zeros':
            raise ValueError(f'DynamicConv2d supports padding_mode="zeros" only, got '
                             f'"{self.padding_mode}"; pad the input explicitly instead.')
        self.is_depthwise = self.groups > 1
        if self.is_depthwise and not self.groups == self.in_channels == self.out_channels:
            raise ValueError(
                f'DynamicConv2d supports dense (groups=1) or depthwise '
                f'(groups=in_channels=out_channels) convolution, got groups={self.groups}, '
                f'in_channels={self.in_channels}, out_channels={self.out_channels}.')
        self.active_out_channels: Optional[int] = None

    def forward(self, x: Tensor) -> Tensor:
        in_channels = x.size(1)
        _check_width(self, in_channels, self.in_channels)
        if self.is_depthwise:
            if self.active_out_channels is not None:
                raise RuntimeError('a depthwise DynamicConv2d follows its input width; leave '
                                   'active_out_channels as None.')
            weight = self.weight[:in_channels]
            bias = leading_slice(self.bias, in_channels)
            groups = in_channels
        else:
            out_channels = self.active_out_channels or self.out_channels
            if out_channels > self.out_channels:
                raise ValueError(f'DynamicConv2d: {out_channels} active output channels asked, '
                                 f'more than the {self.out_channels} it holds weights for')
            weight = self.weight[:out_channels, :in_channels]
            bias = leading_slice(self.bias, out_channels)
            groups = 1
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """A ``nn.BatchNorm2d`` of maximal size that normalises the leading channels of its input.

    Input and output (N, C', H, W), C' <= ``num_features``. It behaves exactly like a
    ``nn.BatchNorm2d(C')`` whose parameters and running statistics are the leading slices of this
    layer's (train mode updates those slices; ``track_running_stats=False`` normalises with batch
    statistics and updates nothing, as for ``nn.BatchNorm2d``).
    """

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        channels = x.size(1)
        _check_width(self, channels, self.num_features)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        # Slices of 1-d buffers are views, so F.batch_norm updates the leading running stats.
        running_mean = running_var = None
        if not self.training or self.track_running_stats:
            running_mean = leading_slice(self.running_mean, channels)
            running_var = leading_slice(self.running_var, channels)
        return F.batch_norm(x, running_mean, running_var, leading_slice(self.weight, channels),
                            leading_slice(self.bias, channels), use_batch_stats, momentum,
                            self.eps)


class DynamicLinear(nn.Linear):
    """A ``nn.Linear`` of maximal input size that runs on the leading columns of its weight.

    Input (N, C') with C' <= ``in_features``, output (N, ``out_features``): the output width is
    fixed (e.g. the classes of a classifier), the input width follows the incoming tensor.
    """

    def forward(self, x: Tensor) -> Tensor:
        in_features = x.size(-1)
        _check_width(self, in_features, self.in_features)
        return F.linear(x, self.weight[:, :in_features], self.bias)
