"""onnxruntime (CPU) sessions, a config's images as preprocessed batches, and evaluation of an
exported graph, raw or with post-processing (NMS) inside, with the config's test metric (the AP50
``tools/test.py`` reports)."""
import copy
import os.path as osp
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
from mmdet.registry import DATASETS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..models.builders import build_detector
from . import require_onnx_packages
from .export import load_config
from .postprocess import POSTPROCESS_OUTPUT_NAMES, predict_from_raw, split_detections

require_onnx_packages()
import onnxruntime as ort  # noqa: E402


def create_session(path: str, threads: int = 1) -> ort.InferenceSession:
    """A CPU session for ``path`` running operators one at a time on ``threads`` threads."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'ONNX file not found: {path}; write one with '
                                'python -m netaug_det.tools.export_onnx')
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def fixed_batch_size(session: ort.InferenceSession) -> Optional[int]:
    """The graph's batch size, or None when its batch dimension is dynamic."""
    batch = session.get_inputs()[0].shape[0]
    return batch if isinstance(batch, int) else None


def run_session(session: ort.InferenceSession, inputs: np.ndarray) -> List[np.ndarray]:
    """All outputs of the graph for a (B, 3, N, N) batch, in the graph's output order.

    A graph with a fixed batch size runs on consecutive chunks of that size (the last one padded
    with zero images whose outputs are dropped).
    """
    name = session.get_inputs()[0].name
    batch = fixed_batch_size(session)
    if batch is None or batch == len(inputs):
        return session.run(None, {name: inputs})
    chunks = []
    for start in range(0, len(inputs), batch):
        chunk = inputs[start:start + batch]
        padding = np.zeros((batch - len(chunk), ) + chunk.shape[1:], chunk.dtype)
        outputs = session.run(None, {name: np.concatenate([chunk, padding])})
        chunks.append([output[:len(chunk)] for output in outputs])
    return [np.concatenate(parts) for parts in zip(*chunks)]


def load_graph_config(config: str, onnx_path: str) -> Config:
    """``config`` at the input size N of the graph's (B, 3, N, N) input (see ``load_config``)."""
    return load_config(config, create_session(onnx_path).get_inputs()[0].shape[-1])


def is_postprocessed(session: ort.InferenceSession) -> bool:
    """Whether the graph has decoding and NMS inside (``export_onnx --with-postprocess``)."""
    return tuple(output.name for output in session.get_outputs()) == POSTPROCESS_OUTPUT_NAMES


def check_graph(session: ort.InferenceSession, detector: nn.Module, cfg: Config,
                onnx_path: str) -> None:
    """Raises a ValueError unless the graph is an export of ``cfg``'s detector at the config's
    input size: a raw one (output names, channels and map sizes) or a post-processed one
    (:data:`POSTPROCESS_OUTPUT_NAMES`; its input size)."""
    if is_postprocessed(session):
        size = session.get_inputs()[0].shape[-1]
        if size != cfg.input_size:
            raise ValueError(f'{onnx_path} takes {size} x {size} images, {cfg.filename} is read '
                             f'at input size {cfg.input_size}; pass the config it was exported '
                             'from')
        return
    outputs = {output.name: output.shape for output in session.get_outputs()}
    head = detector.bbox_head
    expected = {
        f'pred_map_s{stride}':
        [head.num_base_priors * head.num_attrib, cfg.input_size // stride,
         cfg.input_size // stride] for stride in head.featmap_strides
    }
    found = {name: shape[1:] for name, shape in outputs.items()}
    if found != expected:
        raise ValueError(f'{onnx_path} is not an export of {cfg.filename} at input size '
                         f'{cfg.input_size}: its outputs are {found}, the config\'s detector '
                         f'returns {expected} (channels, height, width), or with '
                         f'post-processing {list(POSTPROCESS_OUTPUT_NAMES)}. Pass the config it '
                         'was exported from')


def _with_pipeline(dataset_cfg: dict, pipeline: list) -> dict:
    """``dataset_cfg`` (possibly a wrapper of datasets) with every leaf dataset's pipeline."""
    if 'datasets' in dataset_cfg:
        dataset_cfg['datasets'] = [_with_pipeline(sub, pipeline) for sub in dataset_cfg['datasets']]
    elif 'dataset' in dataset_cfg:
        dataset_cfg['dataset'] = _with_pipeline(dataset_cfg['dataset'], pipeline)
    else:
        dataset_cfg['pipeline'] = copy.deepcopy(pipeline)
    return dataset_cfg


def build_dataset(cfg: Config, split: str = 'test', num_images: Optional[int] = None) -> Dataset:
    """The config's test images (``split='test'``) or training images (``'train'``, e.g. for
    calibration), both through the test pipeline; the first ``num_images`` when given.

    Raises:
        FileNotFoundError: the dataset's files are missing (names the fix for the demo data).
    """
    if split not in ('train', 'test'):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    if split == 'train':
        dataset_cfg = _with_pipeline(copy.deepcopy(cfg.train_dataloader.dataset),
                                     dataset_cfg.pipeline)
    try:
        dataset = DATASETS.build(dataset_cfg)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f'the {split} images of {cfg.filename} are missing ({error}); for the demo configs '
            'run python -m netaug_det.tools.make_demo_data first') from error
    if num_images is not None:
        dataset = Subset(dataset, range(min(num_images, len(dataset))))
    return dataset


def preprocessed_batches(data_preprocessor: nn.Module, dataset: Dataset,
                         batch_size: int) -> Iterator[Tuple[Tensor, List[DetDataSample]]]:
    """(inputs (B, 3, N, N), data samples) per batch, as the detector sees them at test time."""
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=pseudo_collate)
    for data in loader:
        data = data_preprocessor(data, False)
        yield data['inputs'], data['data_samples']


def graph_predictions(session: ort.InferenceSession, head: nn.Module, inputs: np.ndarray,
                      batch_img_metas: List[dict]) -> List:
    """Per-image detections in original-image pixels, as ``tools/test.py`` evaluates them: a raw
    graph's outputs through mmdet's ``predict_by_feat``; a post-processed graph's (boxes in
    network-input pixels) rescaled and clipped by the head's own ``_bbox_post_process``."""
    outputs = run_session(session, inputs)
    if not is_postprocessed(session):
        return predict_from_raw(head, outputs, batch_img_metas)
    return [head._bbox_post_process(result, head.test_cfg, rescale=True, with_nms=False,
                                    img_meta=meta)
            for result, meta in zip(split_detections(*outputs), batch_img_metas)]


def evaluate_onnx(cfg: Config, onnx_path: str, threads: int = 1, batch_size: int = 8,
                  num_images: Optional[int] = None) -> Dict[str, float]:
    """The config's test metrics of an exported graph run by onnxruntime.

    Images go through the config's test pipeline and data preprocessor; a raw graph's outputs
    through mmdet's ``predict_by_feat`` with ``rescale=True``, a post-processed graph's
    detections rescaled to the original images (:func:`graph_predictions`); then the config's
    ``test_evaluator``: the same path and metric keys as ``tools/test.py`` (e.g.
    ``pascal_voc/AP50``, a fraction).
    """
    detector = build_detector(cfg).eval()
    session = create_session(onnx_path, threads)
    check_graph(session, detector, cfg, onnx_path)
    dataset = build_dataset(cfg, 'test', num_images)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = getattr(dataset, 'dataset', dataset).metainfo
    for inputs, data_samples in preprocessed_batches(detector.data_preprocessor, dataset,
                                                     batch_size):
        results = graph_predictions(session, detector.bbox_head, inputs.numpy(),
                                    [sample.metainfo for sample in data_samples])
        for sample, result in zip(data_samples, results):
            sample.pred_instances = result
        evaluator.process(data_samples)
    return evaluator.evaluate(len(dataset))
