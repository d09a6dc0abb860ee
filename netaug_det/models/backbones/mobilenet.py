"""Plain (deployable) MobileNetV2 / MobileNetV3-Large backbones for tiny detectors.

One table per architecture (``arch_settings``) is turned into a :class:`MobileNetArch` (the widths
of every layer) by ``build_arch``; :class:`InvertedResidualNet` builds the module tree from such an
arch with mmcv's ``ConvModule`` and mmdet's ``InvertedResidual``. The NetAug backbones
(``netaug_mobilenet.py``) build the very same tree from the widest arch with dynamic layers. The
TinyML backbones of the paper's Table 1 (``tinyml.py``) are built the same way.
"""
import copy
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from mmcv.cnn import ConvModule
from mmdet.models.layers import InvertedResidual
from mmdet.models.utils import make_divisible
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...utils.checkpoint import load_error_detail, pretrained_state_dict, shape_relation


@dataclass(frozen=True)
class BlockSpec:
    """Widths and layout of one inverted residual block (expand 1x1, depthwise kxk, [SE], 1x1).

    ``with_expand_conv`` and ``with_shortcut`` are fixed by the base widths when the arch is
    built; ``se_channels`` is None for blocks without squeeze-and-excitation.
    """
    in_channels: int
    mid_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    act_cfg: dict
    se_channels: Optional[int]
    with_expand_conv: bool
    with_shortcut: bool


def block_spec(in_channels: int,
               mid_channels: int,
               out_channels: int,
               kernel_size: int,
               stride: int,
               act_cfg: dict,
               se_channels: Optional[int] = None,
               allow_shortcut: bool = True) -> BlockSpec:
    """A :class:`BlockSpec` with mmdet's rules: an expand conv when the hidden width differs from
    the input width, an identity shortcut when stride is 1 and the width is kept (and
    ``allow_shortcut``: the official ProxylessNAS and MCUNet never give the first block of a
    stage a shortcut)."""
    return BlockSpec(in_channels, mid_channels, out_channels, kernel_size, stride, act_cfg,
                     se_channels, mid_channels != in_channels,
                     allow_shortcut and stride == 1 and in_channels == out_channels)


def inverted_residual_stages(
        in_channels: int,
        rows: Sequence[Tuple[Sequence[float], Sequence[int], int, int]],
        widen_factor: float,
        act_cfg: dict,
        first_block_shortcut: bool = True) -> Tuple[Tuple[BlockSpec, ...], ...]:
    """The stages of a table whose rows give each block's expand ratio and kernel size.

    Args:
        in_channels (int): Input channels of the first stage (the stem's width).
        rows (Sequence[tuple]): Per stage: the expand ratio of each block, the kernel size of
            each block, the output channels at ``widen_factor`` 1.0, the stride of the first block.
        widen_factor (float): Output widths are ``make_divisible(channels * widen_factor, 8)``,
            hidden widths ``make_divisible(round(expand_ratio * in_channels), 8)`` (official
            NetAug rounding).
        act_cfg (dict): Activation of every block.
        first_block_shortcut (bool): False: the first block of a stage never gets an identity
            shortcut (the official ProxylessNAS and MCUNet rule). Defaults to True (mmdet's).
    """
    stages = []
    for expand_ratios, kernel_sizes, channels, stride in rows:
        out_channels = make_divisible(channels * widen_factor, 8)
        blocks = []
        for i, (expand_ratio, kernel_size) in enumerate(zip(expand_ratios, kernel_sizes)):
            mid_channels = make_divisible(round(expand_ratio * in_channels), 8)
            blocks.append(block_spec(in_channels, mid_channels, out_channels, kernel_size,
                                     stride if i == 0 else 1, act_cfg,
                                     allow_shortcut=first_block_shortcut or i > 0))
            in_channels = out_channels
        stages.append(tuple(blocks))
    return tuple(stages)


@dataclass(frozen=True)
class MobileNetArch:
    """Every width of a MobileNet backbone: stem ``conv1``, ``layer1``..``layerN``, ``conv2``.

    ``head_channels`` None means no final 1x1 ``conv2`` (MCUNet ends with an inverted block).
    """
    stem_channels: int
    stem_act_cfg: dict
    stages: Tuple[Tuple[BlockSpec, ...], ...]
    head_channels: Optional[int]
    head_act_cfg: Optional[dict]

    @property
    def layer_channels(self) -> Tuple[int, ...]:
        """Output channels of layer1..layerN and conv2 if any (what ``out_indices`` index)."""
        head = () if self.head_channels is None else (self.head_channels, )
        return tuple(stage[-1].out_channels for stage in self.stages) + head

    @property
    def blocks(self) -> Tuple[BlockSpec, ...]:
        """All blocks, shallow to deep."""
        return tuple(block for stage in self.stages for block in stage)


class InvertedResidualNet(BaseModule):
    """Shared body of the MobileNet backbones, built from a :class:`MobileNetArch`.

    Modules: ``conv1`` (3x3 stride-2 ConvModule), ``layer1``..``layerN`` (``nn.Sequential`` of
    mmdet ``InvertedResidual``), ``conv2`` (1x1 ConvModule; none when the arch's
    ``head_channels`` is None). Input (B, 3, H, W); output a tuple of feature maps, one per
    ``out_indices`` entry (index i < N is ``layer{i+1}``, N is ``conv2``), with ``out_channels``
    channels. Each block's identity shortcut is the arch's ``with_shortcut``. ``frozen_stages``
    freezes ``conv1`` and ``layer1`` .. ``layer{frozen_stages}`` (parameters and BN statistics);
    ``norm_eval`` keeps every BN in eval mode during training.
    """

    # Squeeze-and-excitation as in the official MobileNetV3: ReLU, then hard-sigmoid
    # relu6(x + 3) / 6 (mmcv's HSigmoid with bias 3 and divisor 6).
    se_act_cfg = (dict(type='ReLU'), dict(type='HSigmoid', bias=3.0, divisor=6.0))
    default_init_cfg = [
        dict(type='Kaiming', layer='Conv2d'),
        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
    ]

    def __init__(self,
                 arch: MobileNetArch,
                 out_indices: Sequence[int],
                 frozen_stages: int,
                 conv_cfg: Optional[dict],
                 norm_cfg: dict,
                 norm_eval: bool,
                 with_cp: bool,
                 pretrained: Optional[str],
                 init_cfg: Optional[dict]) -> None:
        if init_cfg and pretrained:
            raise ValueError('init_cfg and pretrained cannot be specified at the same time; use '
                             "init_cfg=dict(type='Pretrained', checkpoint=...).")
        if pretrained is not None:
            if not isinstance(pretrained, str):
                raise TypeError(f'pretrained must be a str or None, got {type(pretrained)}')
            warnings.warn('pretrained is deprecated, use init_cfg instead', DeprecationWarning)
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg if init_cfg is not None else copy.deepcopy(self.default_init_cfg))

        num_stages = len(arch.stages)
        num_layers = len(arch.layer_channels)
        out_indices = tuple(out_indices)
        if not out_indices or list(out_indices) != sorted(set(out_indices)) or not set(
                out_indices) <= set(range(num_layers)):
            layers = f'layer1..layer{num_stages}' + (', then conv2' if arch.head_channels else '')
            raise ValueError(f'out_indices must be increasing indices in range(0, {num_layers}) '
                             f'({layers}), got {out_indices}')
        if frozen_stages not in range(-1, num_stages + 1):
            raise ValueError(f'frozen_stages must be in range(-1, {num_stages + 1}), got '
                             f'{frozen_stages}')
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.out_channels: Tuple[int, ...] = tuple(arch.layer_channels[i] for i in out_indices)

        self.conv1 = ConvModule(3, arch.stem_channels, 3, stride=2, padding=1,
                                conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=arch.stem_act_cfg)
        self.layers = []
        for i, stage in enumerate(arch.stages):
            layer = nn.Sequential(
                *(self._make_block(spec, conv_cfg, norm_cfg, with_cp) for spec in stage))
            self.add_module(f'layer{i + 1}', layer)
            self.layers.append(f'layer{i + 1}')
        if arch.head_channels is not None:
            self.conv2 = ConvModule(arch.stages[-1][-1].out_channels, arch.head_channels, 1,
                                    conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                    act_cfg=arch.head_act_cfg)
            self.layers.append('conv2')
        # Layers after the deepest output never run. They stay for state-dict compatibility
        # (mmdet's MobileNetV2, ImageNet checkpoints) and are frozen, so that DDP does not wait
        # for gradients they can never receive.
        for name in self.layers[self.out_indices[-1] + 1:]:
            getattr(self, name).requires_grad_(False)

    def _make_block(self, spec: BlockSpec, conv_cfg: Optional[dict], norm_cfg: dict,
                    with_cp: bool) -> InvertedResidual:
        se_cfg = None
        if spec.se_channels is not None:
            # mmdet's SELayer squeezes to int(channels / ratio); the half-channel margin makes
            # that exactly se_channels despite float rounding.
            se_cfg = dict(channels=spec.mid_channels,
                          ratio=spec.mid_channels / (spec.se_channels + 0.5),
                          conv_cfg=conv_cfg, act_cfg=self.se_act_cfg)
        block = InvertedResidual(spec.in_channels, spec.out_channels, spec.mid_channels,
                                 kernel_size=spec.kernel_size, stride=spec.stride, se_cfg=se_cfg,
                                 with_expand_conv=spec.with_expand_conv, conv_cfg=conv_cfg,
                                 norm_cfg=norm_cfg, act_cfg=spec.act_cfg, with_cp=with_cp)
        # The arch decides, not mmdet's width test: the official ProxylessNAS has a stage whose
        # first block keeps its width without a shortcut, and the widths of a NetAug tree's
        # widest block may meet by chance where the base block has none.
        block.with_res_shortcut = spec.with_shortcut
        return block

    def blocks(self) -> Tuple[InvertedResidual, ...]:
        """All inverted residual blocks, shallow to deep (the order of ``MobileNetArch.blocks``)."""
        return tuple(block for name in self.layers if name.startswith('layer')
                     for block in getattr(self, name))

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> tuple of (B, out_channels[i], H / stride_i, W / stride_i)."""
        x = self.conv1(x)
        outs = []
        for i, name in enumerate(self.layers[:self.out_indices[-1] + 1]):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def init_weights(self) -> None:
        """Initialises; ``init_cfg=dict(type='Pretrained', checkpoint=...)`` loads the file
        strictly (a plain backbone state dict, or a detector or classifier checkpoint whose
        ``backbone.*`` keys hold it) instead of mmengine's partial load, which would leave a
        backbone of another architecture randomly initialised with only a log message."""
        init_cfg = self.init_cfg
        if not (isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'):
            super().init_weights()
            return
        filename = init_cfg['checkpoint']
        own = {name: tensor.shape for name, tensor in self.state_dict().items()}
        state_dict = pretrained_state_dict(filename, own, init_cfg.get('prefix'))
        try:
            self.load_state_dict(state_dict)
        except RuntimeError as error:
            hint = 'pass a checkpoint of the same architecture and widen_factor'
            file_shapes = {name: tuple(tensor.shape) for name, tensor in state_dict.items()}
            if shape_relation(file_shapes, {name: tuple(shape) for name, shape in own.items()}
                              ) == 'wider':
                hint = ('it holds a NetAug supernet (e.g. a NetAug run\'s epoch_N.pth): a plain '
                        'backbone takes that run\'s deploy.pth (or its export_deployable '
                        'export); a NetAug backbone of the same widths takes it whole')
            raise ValueError(f'{filename} does not fit this backbone: '
                             f'{load_error_detail(error)}; {hint}') from None
        self._is_init = True

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        for module in [self.conv1] + [getattr(self, f'layer{i}')
                                      for i in range(1, self.frozen_stages + 1)]:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'InvertedResidualNet':
        """Set train/eval mode, keeping frozen stages (and all BN if ``norm_eval``) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


@MODELS.register_module()
class TinyMobileNetV2(InvertedResidualNet):
    """MobileNetV2 backbone with NetAug's width rounding, state-dict compatible with mmdet's.

    Parameter names and shapes equal ``mmdet.models.backbones.MobileNetV2`` for the same
    ``widen_factor``; the layer widths equal those of the official NetAug ``MobileNetV2``
    (``mit-han-lab/tinyml``, ``netaug/models/base/mbv2.py``), so its ImageNet checkpoints convert
    one-to-one (``tools/model_converters/netaug_to_mmdet.py``). Its arguments and defaults are
    mmdet's, so a config of mmdet's ``MobileNetV2`` (and of ``NetAugMobileNetV2``) builds the same
    backbone under either type; the NetAug paper's tiny models set ``widen_factor=0.35``, where
    ``out_indices=(2, 4, 6)`` return 16, 32 and 112 channels at strides 8, 16 and 32.

    Args:
        widen_factor (float): Width multiplier; widths are rounded to multiples of 8, never more
            than 10% below the scaled width. Defaults to 1.0 (mmdet's).
        out_indices (Sequence[int]): Returned layers, 0..6 for layer1..layer7, 7 for conv2.
            Defaults to (1, 2, 4, 7) (mmdet's).
        frozen_stages (int): Freeze conv1 and layer1..layer{frozen_stages}; -1 freezes nothing.
        conv_cfg (dict, optional): Convolution config. Defaults to None (``nn.Conv2d``).
        norm_cfg (dict): Normalization config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation of every layer. Defaults to ``dict(type='ReLU6')``.
        norm_eval (bool): Keep BN layers in eval mode while training. Defaults to False.
        with_cp (bool): Use gradient checkpointing in the blocks. Defaults to False.
        pretrained (str, optional): Deprecated, use ``init_cfg``.
        init_cfg (dict or list[dict], optional): Initialization config, e.g.
            ``dict(type='Pretrained', checkpoint=...)``.
    """

    # expand ratio, channels, number of blocks, stride of the first block (mmdet's table)
    arch_settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                     [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]

    def __init__(self,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (1, 2, 4, 7),
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU6'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(self.build_arch(widen_factor, act_cfg), out_indices, frozen_stages,
                         conv_cfg, norm_cfg, norm_eval, with_cp, pretrained, init_cfg)

    @classmethod
    def build_arch(cls, widen_factor: float, act_cfg: dict) -> MobileNetArch:
        """Layer widths for ``widen_factor`` (official NetAug rounding, mmdet's conv2 width)."""
        stem_channels = make_divisible(32 * widen_factor, 8)
        rows = [([expand_ratio] * num_blocks, [3] * num_blocks, channels, stride)
                for expand_ratio, channels, num_blocks, stride in cls.arch_settings]
        stages = inverted_residual_stages(stem_channels, rows, widen_factor, act_cfg)
        head_channels = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        return MobileNetArch(stem_channels, act_cfg, stages, head_channels, act_cfg)


@MODELS.register_module()
class TinyMobileNetV3(InvertedResidualNet):
    """MobileNetV3-Large backbone with the official NetAug layout and widths.

    Widths follow ``netaug/models/base/mbv3.py`` of ``mit-han-lab/tinyml``: stage widths
    16, 24, 40, 80, 112, 160 and head 960 times ``widen_factor`` rounded to multiples of 8, hidden
    widths from the absolute lists in ``arch_settings`` times ``widen_factor``, SE widths
    ``max(make_divisible(hidden / 4, 8), 16)``. ``layer1`` is the depthwise-separable block with
    an identity shortcut. At w0.35 the default ``out_indices=(2, 4, 5)`` return 16, 40 and 56
    channels at strides 8, 16 and 32. At ``widen_factor=1.0`` it matches torchvision's
    ``mobilenet_v3_large().features`` layer by layer.

    Args:
        widen_factor (float): Width multiplier. Defaults to 0.35.
        out_indices (Sequence[int]): Returned layers, 0..5 for layer1..layer6, 6 for conv2.
        act_cfg (dict, optional): None keeps the ImageNet activations (ReLU in layer1..layer3,
            hard-swish in conv1, layer4..layer6 and conv2); a dict replaces all of them. SE
            layers always use ReLU and hard-sigmoid. Defaults to None.
        Other args: see :class:`TinyMobileNetV2`.
    """

    # hidden widths per block (None: depthwise-separable block), channels, kernel size, stride
    # of the first block, activation, squeeze-and-excitation
    arch_settings = [[None, 16, 3, 1, 'ReLU', False],
                     [[64, 72], 24, 3, 2, 'ReLU', False],
                     [[72, 120, 120], 40, 5, 2, 'ReLU', True],
                     [[240, 200, 184, 184], 80, 3, 2, 'HSwish', False],
                     [[480, 672], 112, 3, 1, 'HSwish', True],
                     [[672, 960, 960], 160, 5, 2, 'HSwish', True]]

    def __init__(self,
                 widen_factor: float = 0.35,
                 out_indices: Sequence[int] = (2, 4, 5),
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: Optional[dict] = None,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(self.build_arch(widen_factor, act_cfg), out_indices, frozen_stages,
                         conv_cfg, norm_cfg, norm_eval, with_cp, pretrained, init_cfg)

    @classmethod
    def build_arch(cls, widen_factor: float, act_cfg: Optional[dict]) -> MobileNetArch:
        """Layer widths for ``widen_factor`` (official NetAug MobileNetV3 definitions)."""

        def act(name: str) -> dict:
            return dict(type=name) if act_cfg is None else act_cfg

        in_channels = stem_channels = make_divisible(16 * widen_factor, 8)
        stages = []
        for hidden_widths, channels, kernel_size, stride, act_name, with_se in cls.arch_settings:
            out_channels = make_divisible(channels * widen_factor, 8)
            blocks = []
            for i, hidden in enumerate(hidden_widths or [None]):
                mid_channels = in_channels if hidden is None else make_divisible(
                    round(hidden * widen_factor), 8)
                se_channels = max(make_divisible(mid_channels / 4, 8), 16) if with_se else None
                blocks.append(block_spec(in_channels, mid_channels, out_channels, kernel_size,
                                         stride if i == 0 else 1, act(act_name), se_channels))
                in_channels = out_channels
            stages.append(tuple(blocks))
        head_channels = make_divisible(960 * widen_factor, 8)
        return MobileNetArch(stem_channels, act('HSwish'), tuple(stages), head_channels,
                             act('HSwish'))
