"""ONNX export of a detector checkpoint with torch's torch.export-based exporter (``dynamo=True``).

The graph's input is ``input``: (B, 3, N, N) float32, the output of the config's data
preprocessor (letterboxed to N x N, BGR -> RGB, normalised with the config's mean and std). The
raw graph returns exactly what the detector's ``_forward`` returns, one map per head level,
deepest first: ``pred_map_s32`` (B, A * (5 + C), N/32, N/32), ``pred_map_s16`` (.., N/16, N/16)
and ``pred_map_s8`` (.., N/8, N/8), with A = 3 anchors per position and C classes (channels per
anchor: x, y, w, h, objectness, C class logits). With post-processing the graph returns
:data:`~netaug_det.deployment.postprocess.POSTPROCESS_OUTPUT_NAMES` (see ``YOLOV3PostProcess``).
"""
import os
import os.path as osp
import warnings
from typing import List, Optional, Tuple, Union

import onnx
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import load_checkpoint
from torch import Tensor, nn

from ..models.netaug import export_plain_model
from ..utils.checkpoint import explain_mismatch
from ..models.builders import build_detector
from ..utils.config import MAX_STRIDE, apply_config_variables, check_input_size
from ..utils.outputs import check_outputs
from . import require_onnx_packages
from .postprocess import CUSTOM_TRANSLATIONS, POSTPROCESS_OUTPUT_NAMES, YOLOV3PostProcess

require_onnx_packages()

INPUT_NAME = 'input'
# The torch.export-based exporter's op library (onnxscript's torchlib) is written for opset 18.
DEFAULT_OPSET = 18


def load_config(config: str, input_size: Optional[int] = None,
                cfg_options: Optional[dict] = None) -> Config:
    """Reads ``config``, merges ``cfg_options`` (``{'model.test_cfg.score_thr': 0.1}``, as
    ``--cfg-options`` gives them) and resizes its pipelines to ``input_size`` (default: the
    config's).

    Raises:
        FileNotFoundError: ``config`` does not exist.
        ValueError: the size is not a positive multiple of 32, or the config has none.
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}; pass the config the checkpoint '
                                'was trained with, e.g. configs/demo/yolov3_mbv2_demo.py')
    if input_size is not None and (input_size <= 0 or input_size % MAX_STRIDE):
        raise ValueError(f'--input-size must be a positive multiple of {MAX_STRIDE} (the largest '
                         f'YOLOv3 stride), got {input_size}; e.g. --input-size 320')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if input_size is not None:
        cfg.input_size = input_size
    if cfg.get('input_size') is None:
        raise ValueError(f'{config} defines no input_size; pass --input-size N')
    apply_config_variables(cfg)  # also checks the size
    return cfg


def load_detector(cfg: Config, checkpoint: str) -> nn.Module:
    """The deployable detector of ``cfg`` with the weights of ``checkpoint``, in eval mode.

    The checkpoint must load strictly. A NetAug config's detector is replaced by its deployable
    twin (``export_plain_model``), so a NetAug run's ``epoch_N.pth`` exports with its NetAug
    config and its ``deploy.pth`` with the baseline config.

    Raises:
        FileNotFoundError: ``checkpoint`` does not exist.
        ValueError: ``checkpoint`` does not fit ``cfg``'s detector (names the keys and the fix).
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}; pass a file written by '
                                'tools/train.py (e.g. work_dirs/<run>/epoch_12.pth) or a NetAug '
                                "run's deploy.pth")
    detector = build_detector(cfg)
    try:
        load_checkpoint(detector, checkpoint, map_location='cpu', strict=True, logger='silent')
    except RuntimeError:
        raise ValueError(explain_mismatch(checkpoint, detector, cfg)) from None
    return export_plain_model(detector).eval()


def raw_output_names(detector: nn.Module) -> List[str]:
    """``pred_map_s<stride>`` per head level, in the order ``_forward`` returns them."""
    return [f'pred_map_s{stride}' for stride in detector.bbox_head.featmap_strides]


class ExportableDetector(nn.Module):
    """The detector's ``_forward`` with flat tuple outputs, optionally post-processed.

    Args:
        detector (nn.Module): A deployable single-stage detector (e.g. ``TinyYOLOV3``).
        input_size (int): Side of the square input (fixes the post-processing's anchors).
        with_postprocess (bool): Append ``YOLOV3PostProcess``. Defaults to False.
    """

    def __init__(self, detector: nn.Module, input_size: int, with_postprocess: bool = False):
        super().__init__()
        self.detector = detector
        self.postprocess = YOLOV3PostProcess(detector.bbox_head, input_size) \
            if with_postprocess else None
        self.output_names = list(POSTPROCESS_OUTPUT_NAMES) if with_postprocess \
            else raw_output_names(detector)

    def forward(self, input: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, N, N) preprocessed images -> the raw maps or the post-processed detections."""
        (pred_maps, ) = self.detector._forward(input)
        if self.postprocess is None:
            return tuple(pred_maps)
        return self.postprocess(pred_maps)


def export_onnx(detector: nn.Module,
                out: str,
                input_size: int,
                batch_size: Optional[int] = 1,
                opset: int = DEFAULT_OPSET,
                with_postprocess: bool = False) -> onnx.ModelProto:
    """Exports ``detector`` to the single, self-contained ONNX file ``out`` and checks it.

    Args:
        detector (nn.Module): A deployable detector in eval mode (:func:`load_detector`).
        out (str): Output ``.onnx`` path (its folder is created).
        input_size (int): N of the (B, 3, N, N) input; a positive multiple of 32.
        batch_size (int, optional): B, fixed in the graph; None: a dynamic batch dimension.
            Defaults to 1.
        opset (int): ONNX opset of the default domain, at least 18. Defaults to 18.
        with_postprocess (bool): Box decoding and NMS in the graph. Defaults to False.

    Returns:
        onnx.ModelProto: The written model, after ``onnx.checker.check_model(full_check=True)``.
    """
    check_input_size(input_size)
    check_outputs({'out': (out, ('.onnx', ))}, [])
    if opset < DEFAULT_OPSET:
        raise ValueError(f'opset {opset} is below {DEFAULT_OPSET}, the opset of the exporter\'s '
                         f'op library; use --opset {DEFAULT_OPSET} or higher')
    if batch_size is not None and batch_size < 1:
        raise ValueError(f'batch size must be at least 1, got {batch_size}')
    module = ExportableDetector(detector, input_size, with_postprocess).eval()
    # a dynamic batch is traced with 2 images: torch.export specialises a dimension of size 1
    example = torch.randn(batch_size or 2, 3, input_size, input_size,
                          generator=torch.Generator().manual_seed(0))
    dynamic_shapes = None if batch_size else {'input': {0: torch.export.Dim('batch', min=1)}}
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # exporter deprecation and tracing notes
        torch.onnx.export(
            module, (example, ),
            out,
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=module.output_names,
            opset_version=opset,
            dynamic_shapes=dynamic_shapes,
            custom_translation_table=CUSTOM_TRANSLATIONS if with_postprocess else None,
            external_data=False,
            verbose=False)
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    return model


def tensor_shapes(model: Union[str, onnx.ModelProto]) -> dict:
    """``{name: [dim, ...]}`` of the graph's inputs and outputs (a symbolic dim by its name)."""
    if isinstance(model, str):
        model = onnx.load(model)
    return {
        value.name: [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]
        for value in list(model.graph.input) + list(model.graph.output)
    }
