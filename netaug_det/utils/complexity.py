"""Params and MACs of a detector's deployable network, counted with mmengine's jit analysis.

MACs are the multiply-accumulates of convolutions and linear layers only, the paper's convention:
BatchNorm is folded into the preceding convolution at deployment and activations, additions,
upsampling and pooling are free, so none of them is counted. One fused multiply-add counts once
(mmengine's and fvcore's "flop"). The network is the tensor forward of backbone + neck + head
(``mode='tensor'``): no data preprocessing, box decoding or NMS.
"""
from typing import Dict, Union

import torch
from mmdet.registry import MODELS
from mmengine.analysis.jit_analysis import JitModelAnalysis
from mmengine.analysis.jit_handles import (addmm_flop_jit, bmm_flop_jit, conv_flop_jit,
                                           einsum_flop_jit, linear_flop_jit, matmul_flop_jit)
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

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


def build_detector(cfg: Union[str, Config, dict]) -> nn.Module:
    """Builds a detector in the mmdet scope from a config (or its path; its ``model`` is built
    in its ``default_scope``) or from a model config dict."""
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    scope, model_cfg = 'mmdet', cfg
    if isinstance(cfg, Config):
        scope, model_cfg = cfg.get('default_scope', 'mmdet'), cfg.model
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(model_cfg)


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
    deploy = export_plain_model(model)
    was_training = deploy.training
    deploy.eval()
    try:
        inputs = torch.zeros(1, 3, input_size, input_size,
                             device=next(deploy.parameters()).device)
        analyzer = MACAnalyzer(deploy, (inputs, ))
        with torch.no_grad():
            macs = analyzer.total()
        unused = analyzer.uncalled_modules()
    finally:
        deploy.train(was_training)
    params = sum(param.numel() for name, param in deploy.named_parameters()
                 if name.rpartition('.')[0] not in unused)
    return dict(params=params, macs=macs)
