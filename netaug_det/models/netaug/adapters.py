"""Block adapters: how one block type widens, sorts and counts, in one place per type.

A NetAug module plans the widths of its blocks (a spec per block, e.g. a ``BlockSpec``) and hands
each block to the adapter of its type, which writes the active widths into the block's dynamic
layers, sorts its hidden channels and counts its augmented channels. Supporting a new block type
means writing one adapter and registering it with :func:`register_adapter` (or adding it to
:data:`BLOCK_ADAPTERS`). An adapter is looked up along the block type's MRO, like
``functools.singledispatch``: a subclass uses its closest registered base's adapter.
"""
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmdet.models.dense_heads import YOLOV3Head
from mmdet.models.layers import InvertedResidual
from mmdet.models.necks.yolo_neck import DetectionBlock
from torch import nn

from .channels import (ChannelPermutation, importance_order, output_permutations,
                       permute_named_tensors)


def hidden_channel_permutations(block: nn.Module, producers: Sequence[str],
                                consumer_weights: Sequence[str],
                                order: torch.Tensor) -> List[ChannelPermutation]:
    """Reorders hidden channels with ``order`` and returns the permutations applied.

    ``producers`` are the ConvModules (names inside ``block``) whose outputs are the hidden
    channels, in data-flow order (e.g. expand conv, then depthwise conv); ``consumer_weights``
    are conv weights (names) whose input columns read them. The function computed by the widest
    model does not change.
    """
    permutations = [perm for name in producers
                    for perm in output_permutations(name, block.get_submodule(name), order)]
    permutations += [ChannelPermutation(name, 1, order) for name in consumer_weights]
    permute_named_tensors(block, permutations)
    return permutations


def _active_out(layer: ConvModule, channels: int) -> None:
    layer.conv.active_out_channels = channels


#: The adapter of each supported block type (filled by :func:`register_adapter`).
BLOCK_ADAPTERS: Dict[type, type] = {}


def register_adapter(block_type: type) -> Callable[[type], type]:
    """Class decorator: the decorated adapter serves ``block_type`` (and its subclasses)."""

    def register(adapter: type) -> type:
        BLOCK_ADAPTERS[block_type] = adapter
        return adapter

    return register


def output_layer(parent: nn.Module, name: str) -> str:
    """The name of the ConvModule that writes the output of conv block ``name`` in ``parent``:
    the pointwise conv of a depthwise-separable block, the block itself otherwise."""
    block = parent.get_submodule(name)
    return f'{name}.pointwise_conv' if isinstance(block, DepthwiseSeparableConvModule) else name


@register_adapter(ConvModule)
class ConvModuleAdapter:
    """A single ConvModule (e.g. a backbone's stem or final 1x1 conv) whose spec is its output
    width (int). Its outputs are block outputs: never sorted."""

    @staticmethod
    def set_widths(layer: ConvModule, channels: int) -> None:
        _active_out(layer, channels)

    @staticmethod
    def sort_channels(layer: ConvModule, base_channels: int,
                      keep_base: bool) -> List[ChannelPermutation]:
        return []

    @staticmethod
    def channels(channels: int) -> int:
        return channels


@register_adapter(InvertedResidual)
class InvertedResidualAdapter:
    """mmdet ``InvertedResidual`` (expand 1x1, depthwise kxk, optional SE, linear 1x1).

    Widths come from a :class:`netaug_det.models.backbones.mobilenet.BlockSpec`: the expand conv
    writes ``mid_channels``, the SE squeezes to ``se_channels`` and restores ``mid_channels``,
    the linear conv writes ``out_channels``. Sorting follows the official NetAug code: hidden
    channels by the L1 norm of the linear conv's input columns (expand conv, depthwise conv and
    SE follow), then the SE's squeezed channels by the L1 norm of its restoring conv.
    """

    @staticmethod
    def set_widths(block: InvertedResidual, spec) -> None:
        if block.with_expand_conv:
            _active_out(block.expand_conv, spec.mid_channels)
        if block.with_se:
            _active_out(block.se.conv1, spec.se_channels)
            _active_out(block.se.conv2, spec.mid_channels)
        _active_out(block.linear_conv, spec.out_channels)

    @staticmethod
    def sort_channels(block: InvertedResidual, base_spec,
                      keep_base: bool) -> List[ChannelPermutation]:
        if not block.with_expand_conv:
            return []
        order = importance_order(block.linear_conv.conv.weight,
                                 base_spec.mid_channels if keep_base else 0)
        permutations = hidden_channel_permutations(
            block, ['expand_conv', 'depthwise_conv', *(['se.conv2'] if block.with_se else [])],
            ['linear_conv.conv.weight', *(['se.conv1.conv.weight'] if block.with_se else [])],
            order)
        if block.with_se:
            se_order = importance_order(block.se.conv2.conv.weight,
                                        base_spec.se_channels if keep_base else 0)
            permutations += hidden_channel_permutations(block, ['se.conv1'],
                                                        ['se.conv2.conv.weight'], se_order)
        return permutations

    @staticmethod
    def channels(spec) -> int:
        """Output channels of its layers: hidden and block output."""
        return spec.mid_channels + spec.out_channels


@register_adapter(DetectionBlock)
class DetectionBlockAdapter:
    """mmdet YOLOv3 ``DetectionBlock`` (1x1, 3x3, 1x1, 3x3, 1x1; the 3x3 convs may be
    depthwise-separable).

    Widths come from a :class:`netaug_det.models.necks.netaug_yolo_neck.DetectionBlockSpec`:
    ``conv1``, ``conv3`` and ``conv5`` write ``out_channels``, the 3x3 convs ``conv2`` and
    ``conv4`` write ``hidden_channels``. Sorting ranks each hidden group (the outputs of
    ``conv2`` and of ``conv4``) by the L1 norm of the following 1x1 conv's input columns.
    """

    @staticmethod
    def set_widths(block: DetectionBlock, spec) -> None:
        for name in ('conv1', 'conv3', 'conv5'):
            _active_out(getattr(block, name), spec.out_channels)
        for name in ('conv2', 'conv4'):
            _active_out(block.get_submodule(output_layer(block, name)), spec.hidden_channels)

    @staticmethod
    def sort_channels(block: DetectionBlock, base_spec,
                      keep_base: bool) -> List[ChannelPermutation]:
        permutations = []
        for producer, consumer in (('conv2', 'conv3'), ('conv4', 'conv5')):
            weight_name = f'{consumer}.conv.weight'
            order = importance_order(block.get_parameter(weight_name),
                                     base_spec.hidden_channels if keep_base else 0)
            permutations += hidden_channel_permutations(block, [output_layer(block, producer)],
                                                        [weight_name], order)
        return permutations

    @staticmethod
    def channels(spec) -> int:
        """Output channels of its five convs."""
        return 3 * spec.out_channels + 2 * spec.hidden_channels


@register_adapter(YOLOV3Head)
class YOLOV3HeadAdapter:
    """The layers of mmdet's ``YOLOV3Head`` (and ``TinyYOLOV3Head``): per level a bridge conv
    (3x3, maybe depthwise-separable) whose outputs are the hidden channels, read by a 1x1
    prediction conv. The head is its own one block.

    Widths come from a tuple of bridge widths, one per level (see
    :func:`netaug_det.models.dense_heads.netaug_yolo_head.augment_bridges`). Sorting ranks each
    level's bridge outputs by the L1 norm of the prediction conv's input columns.
    """

    @staticmethod
    def set_widths(head: YOLOV3Head, widths: Tuple[int, ...]) -> None:
        for i, width in enumerate(widths):
            _active_out(head.get_submodule(output_layer(head, f'convs_bridge.{i}')), width)

    @staticmethod
    def sort_channels(head: YOLOV3Head, base_widths: Tuple[int, ...],
                      keep_base: bool) -> List[ChannelPermutation]:
        permutations = []
        for i, base in enumerate(base_widths):
            order = importance_order(head.convs_pred[i].weight, base if keep_base else 0)
            permutations += hidden_channel_permutations(
                head, [output_layer(head, f'convs_bridge.{i}')], [f'convs_pred.{i}.weight'], order)
        return permutations

    @staticmethod
    def channels(widths: Tuple[int, ...]) -> int:
        """Output channels of the bridges."""
        return sum(widths)


def block_adapter(block: nn.Module) -> type:
    """The adapter of ``block``'s type (or of its closest registered base class), or a TypeError
    naming what is supported."""
    for cls in type(block).__mro__:
        if cls in BLOCK_ADAPTERS:
            return BLOCK_ADAPTERS[cls]
    raise TypeError(f'no NetAug adapter for {type(block).__name__}; supported block types: '
                    f'{sorted(cls.__name__ for cls in BLOCK_ADAPTERS)} (see '
                    'netaug_det/models/netaug/adapters.py to add one)')
