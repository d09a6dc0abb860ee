"""Static int8 quantization of an exported graph with onnxruntime's ``quantize_static``.

Settings (onnxruntime's advice for x86 CPUs with VNNI, and what most int8 toolchains take):
QDQ format, asymmetric uint8 activations and symmetric int8 weights, per-channel weights by
default (depthwise convolutions, whose channels differ widely in range, lose most accuracy
per-tensor), MinMax calibration over the given images. The graph is first prepared with
onnxruntime's ``quant_pre_process`` (shape inference and graph optimization).
"""
import os
import os.path as osp
import tempfile
from typing import Iterable, Iterator, Optional

import numpy as np
from mmengine.config import Config

from ..models.builders import build_detector
from ..utils.outputs import check_outputs
from . import require_onnx_packages
from .runtime import build_dataset, preprocessed_batches

require_onnx_packages()
import onnx  # noqa: E402
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod,  # noqa: E402
                                      QuantFormat, QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: E402


class ImageCalibrationReader(CalibrationDataReader):
    """Feeds preprocessed images to onnxruntime's calibrator, ``batch_size`` at a time.

    Args:
        input_name (str): The graph's input name.
        images (Iterable[np.ndarray]): Preprocessed (B, 3, N, N) batches of any size.
        batch_size (int, optional): The graph's fixed batch size; None (dynamic): each batch as
            given. Images that do not fill a last batch are not used.
    """

    def __init__(self, input_name: str, images: Iterable[np.ndarray],
                 batch_size: Optional[int] = None) -> None:
        self._batches = self._rebatch(images, batch_size)
        self.input_name = input_name

    @staticmethod
    def _rebatch(images: Iterable[np.ndarray], batch_size: Optional[int]) -> Iterator[np.ndarray]:
        if batch_size is None:
            yield from images
            return
        pending = []
        for batch in images:
            pending.extend(batch)
            while len(pending) >= batch_size:
                yield np.stack(pending[:batch_size])
                del pending[:batch_size]

    def get_next(self) -> Optional[dict]:
        """The next calibration input, or None when all have been read."""
        batch = next(self._batches, None)
        return None if batch is None else {self.input_name: batch}


def calibration_batches(cfg: Config, num_images: int, batch_size: int = 8) -> Iterator[np.ndarray]:
    """The first ``num_images`` training images of ``cfg``, preprocessed as at test time."""
    if num_images < 1:
        raise ValueError(f'calibration needs at least one image, got {num_images}')
    data_preprocessor = build_detector(cfg).data_preprocessor
    dataset = build_dataset(cfg, 'train', num_images)
    for inputs, _ in preprocessed_batches(data_preprocessor, dataset, batch_size):
        yield inputs.numpy()


def quantize_int8(fp32_path: str, out_path: str, images: Iterable[np.ndarray],
                  per_channel: bool = True) -> None:
    """Writes the int8 (QDQ) version of the float graph ``fp32_path`` to ``out_path``.

    Args:
        fp32_path (str): A float32 graph with one input (e.g. the raw export).
        out_path (str): Output path of the quantized graph.
        images (Iterable[np.ndarray]): Calibration batches, preprocessed as at test time.
        per_channel (bool): Per-output-channel weight scales. Defaults to True.
    """
    check_outputs({'out_path': (out_path, ('.onnx', ))}, [fp32_path])
    model = onnx.load(fp32_path)
    graph_input = model.graph.input[0]
    batch = graph_input.type.tensor_type.shape.dim[0]
    reader = ImageCalibrationReader(graph_input.name, images,
                                    batch.dim_value if batch.HasField('dim_value') else None)
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        prepared = osp.join(folder, 'prepared.onnx')
        quant_pre_process(fp32_path, prepared)
        quantize_static(prepared, out_path, reader, quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
