"""Params and MACs of a detector's deployable network (or of a backbone as an ImageNet
classifier), counted with mmengine's jit analysis.

MACs are the multiply-accumulates of convolutions and linear layers only, the paper's convention:
BatchNorm is folded into the preceding convolution at deployment and activations, additions,
upsampling and pooling are free, so none of them is counted. One fused multiply-add counts once
(mmengine's and fvcore's "flop"). A detector's network is the tensor forward of backbone + neck +
head (``mode='tensor'``): no data preprocessing, box decoding or NMS.
"""
from typing import Dict, Union

import torch
from mmengine.analysis.jit_analysis import JitModelAnalysis
from mmengine.analysis.jit_handles import (addmm_flop_jit, bmm_flop_jit, conv_flop_jit,
                                           einsum_flop_jit, linear_flop_jit, matmul_flop_jit)
from mmengine.config import Config
from torch import nn
from torch.nn import functional as F

from ..models.builders import build_detector
from ..models.netaug import export_plain_model

# The operators that carry multiply-accumulates of conv and linear layers (a linear layer traces
# as linear, addmm or matmul depending on its input rank).
MAC_OP_HANDLES = {
    'aten::_convolution': conv_flop_jit,
    'aten::linear': linear_flop_jit,
    'aten::addmm': addmm_flop_jit,
    'aten::matmul': matmul_flop_jit,
    'aten::mm': matmul_flop_jit,
    'aten::bmm': bmm_flop_jit,
    'aten::einsum': einsum_flop_jit,
}


class MACAnalyzer(JitModelAnalysis):
    """mmengine's jit model analysis with handles for conv and linear MACs only.

    ``MACAnalyzer(model, inputs).total()`` traces ``model(*inputs)`` and returns the MACs; per
    module and per operator counts come from ``by_module()`` / ``by_operator()``. Every other
    operator (norms, activations, elementwise ops, resampling, pooling) counts zero.
    """

    def __init__(self, model: nn.Module, inputs: tuple) -> None:
        super().__init__(model=model, inputs=inputs)
        self.set_op_handle(**MAC_OP_HANDLES)
        self.unsupported_ops_warnings(False)
        self.uncalled_modules_warnings(False)


def get_detector_complexity(model: Union[str, Config, dict, nn.Module],
                            input_size: int) -> Dict[str, int]:
    """Params and MACs of the deployable detector on one ``input_size`` x ``input_size`` image.

    Args:
        model (str | Config | dict | nn.Module): A detector, or what :func:`build_detector`
            builds one from.
        input_size (int): Side of the square input in pixels; YOLOv3 needs a multiple of 32.

    Returns:
        dict: ``params``, the parameters of the layers that the deployable detector's forward
        runs (BatchNorm's included, as the official NetAug code counts them; layers it never
        calls, such as the backbone's final 1x1 ``conv2`` when ``out_indices`` stop before it,
        are not deployed and not counted), and ``macs``, conv and linear MACs of that forward
        (see the module docstring).
    """
    if input_size <= 0 or input_size % 32:
        raise ValueError(f'input_size must be a positive multiple of 32 (the largest YOLOv3 '
                         f'stride), got {input_size}')
    if not isinstance(model, nn.Module):
        model = build_detector(model)
    return _forward_complexity(export_plain_model(model), input_size)


def _forward_complexity(model: nn.Module, input_size: int) -> Dict[str, int]:
    """``params`` of the layers that ``model``'s forward (in eval mode) runs on one
    ``input_size`` x ``input_size`` image, and the conv and linear ``macs`` of that forward."""
    was_training = model.training
    model.eval()
    try:
        inputs = torch.zeros(1, 3, input_size, input_size, device=next(model.parameters()).device)
        analyzer = MACAnalyzer(model, (inputs, ))
        with torch.no_grad():
            macs = analyzer.total()
        unused = analyzer.uncalled_modules()
    finally:
        model.train(was_training)
    params = sum(param.numel() for name, param in model.named_parameters()
                 if name.rpartition('.')[0] not in unused)
    return dict(params=params, macs=macs)


class BackboneClassifier(nn.Module):
    """An ImageNet classifier around a backbone, laid out as the official NetAug models' head:
    the backbone's last output, global average pooling, a linear layer with bias.

    Input (B, 3, H, W); output (B, num_classes) logits.
    """

    def __init__(self, backbone: nn.Module, num_classes: int = 1000) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.out_channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, num_classes)."""
        return self.fc(F.adaptive_avg_pool2d(self.backbone(x)[-1], 1).flatten(1))


def get_classifier_complexity(backbone: nn.Module, input_size: int,
                              num_classes: int = 1000) -> Dict[str, int]:
    """Params and MACs of ``backbone`` as an ImageNet classifier (:class:`BackboneClassifier`),
    the convention of the NetAug paper's Table 1.

    Args:
        backbone (nn.Module): A MobileNet-style backbone (``layers``, ``out_indices``,
            ``out_channels``) whose last returned layer is its deepest; a NetAug backbone is
            measured through its ``export()``.
        input_size (int): Side of the square input in pixels.
        num_classes (int): Outputs of the linear layer. Defaults to 1000 (ImageNet).

    Returns:
        dict: ``params`` (every parameter of the classifier, BatchNorm's included) and
        ``macs`` (conv and linear MACs, see the module docstring).
    """
    if backbone.out_indices[-1] != len(backbone.layers) - 1:
        raise ValueError(f'a classifier needs the deepest layer ({backbone.layers[-1]}, index '
                         f'{len(backbone.layers) - 1}) as the last of out_indices, got '
                         f'{backbone.out_indices}')
    return _forward_complexity(BackboneClassifier(export_plain_model(backbone), num_classes),
                               input_size)
