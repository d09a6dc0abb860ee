"""Checks of an exported graph: parity with the PyTorch detector on real images, and the graph
signature that shows two exports are the same network.

Parity figures:

- raw outputs, per output: ``max_abs_err`` = max |onnxruntime - PyTorch| and ``rel_err`` =
  ``max_abs_err`` / max |PyTorch| (relative to the output's scale; an element-wise relative error
  is meaningless for logits near zero);
- post-processed detections, against ``detector.predict(..., rescale=False)`` with ``img_shape``
  set to the network input (what the graph clips to): the same detections per image (each ONNX
  detection paired with a PyTorch one of the same label), and the largest box-coordinate and
  score differences over the pairs.
"""
from collections import Counter
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData
from torch import nn

from . import require_onnx_packages
from .postprocess import POSTPROCESS_OUTPUT_NAMES, split_detections
from .runtime import build_dataset, create_session, preprocessed_batches, run_session

require_onnx_packages()
import onnx  # noqa: E402

RAW_REL_TOL = 1e-4
BOX_ABS_TOL = 1e-3


def raw_parity(onnx_outputs: Sequence[np.ndarray], torch_outputs: Sequence[np.ndarray],
               names: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """``{name: {'max_abs_err', 'max_abs_ref', 'rel_err'}}`` per output (see module docstring)."""
    figures = {}
    for name, onnx_output, torch_output in zip(names, onnx_outputs, torch_outputs):
        max_abs_err = float(np.abs(onnx_output - torch_output).max())
        max_abs_ref = float(np.abs(torch_output).max())
        figures[name] = dict(max_abs_err=max_abs_err, max_abs_ref=max_abs_ref,
                             rel_err=max_abs_err / max(max_abs_ref, np.finfo(np.float32).tiny))
    return figures


def _match(onnx_result: InstanceData, torch_result: InstanceData) -> List[Tuple[int, int]]:
    """Pairs (onnx index, torch index): each ONNX detection, best first, with the unpaired
    PyTorch detection of the same label whose box is nearest (largest coordinate difference)."""
    pairs, free = [], set(range(len(torch_result)))
    for i in range(len(onnx_result)):
        same_label = [j for j in free if torch_result.labels[j] == onnx_result.labels[i]]
        if same_label:
            errors = [float((onnx_result.bboxes[i] - torch_result.bboxes[j]).abs().max())
                      for j in same_label]
            j = same_label[int(np.argmin(errors))]
            pairs.append((i, j))
            free.remove(j)
    return pairs


def detection_parity(onnx_results: Sequence[InstanceData],
                     torch_results: Sequence[InstanceData]) -> Dict[str, Union[int, float, bool]]:
    """Agreement of two lists of per-image detections.

    Detections are compared as sets: scores agree only to float precision, so two detections
    with nearly equal scores may come out in either order. Each ONNX detection is paired with the
    nearest PyTorch detection of the same label (:func:`_match`).

    Returns:
        dict: ``images``; ``detections`` and ``onnx_detections`` (totals); ``matched`` (pairs
        found); ``same_order`` (identical label sequences); ``max_box_err`` and
        ``max_score_err`` over the pairs.
    """
    box_errors, score_errors, matched, same_order = [0.0], [0.0], 0, True
    for onnx_result, torch_result in zip(onnx_results, torch_results):
        pairs = _match(onnx_result, torch_result)
        matched += len(pairs)
        same_order &= torch.equal(onnx_result.labels.long(), torch_result.labels.long())
        for i, j in pairs:
            box_errors.append(float((onnx_result.bboxes[i] - torch_result.bboxes[j]).abs().max()))
            score_errors.append(abs(float(onnx_result.scores[i] - torch_result.scores[j])))
    return dict(images=len(torch_results),
                detections=sum(len(result) for result in torch_results),
                onnx_detections=sum(len(result) for result in onnx_results), matched=matched,
                same_order=same_order, max_box_err=max(box_errors),
                max_score_err=max(score_errors))


def is_vacuous(figures: dict) -> bool:
    """Whether :func:`check_parity`'s figures compare nothing: a post-processed graph and
    PyTorch both found no detection on the checked images (any graph passes such a check)."""
    return 'detections' in figures and figures['detections'] == figures['onnx_detections'] == 0


def parity_passes(figures: dict, allow_no_detections: bool = False) -> bool:
    """Whether :func:`check_parity`'s figures are within the tolerances: 1e-4 relative for raw
    outputs; for detections, all paired (same labels) with boxes within 1e-3 pixels, and at
    least one detection unless ``allow_no_detections`` (:func:`is_vacuous`)."""
    if is_vacuous(figures):
        return allow_no_detections
    if 'detections' in figures:
        return figures['detections'] == figures['onnx_detections'] == figures['matched'] \
            and figures['max_box_err'] <= BOX_ABS_TOL
    return all(output['rel_err'] <= RAW_REL_TOL for output in figures.values())


def check_parity(detector: nn.Module, onnx_path: str, cfg: Config, num_images: int = 4,
                 threads: int = 1) -> dict:
    """Runs the graph with onnxruntime and ``detector`` with PyTorch on the first
    ``num_images`` test images of ``cfg`` (its test pipeline and data preprocessor).

    Returns:
        dict: :func:`raw_parity` figures for a raw graph, :func:`detection_parity` figures for
        a post-processed one.
    """
    session = create_session(onnx_path, threads)
    names = [output.name for output in session.get_outputs()]
    postprocessed = tuple(names) == POSTPROCESS_OUTPUT_NAMES
    dataset = build_dataset(cfg, 'test', num_images)
    onnx_outputs, torch_outputs = [], []
    for inputs, data_samples in preprocessed_batches(detector.data_preprocessor, dataset,
                                                     batch_size=len(dataset)):
        outputs = run_session(session, inputs.numpy())
        with torch.no_grad():
            if postprocessed:
                for sample in data_samples:
                    sample.set_metainfo(dict(img_shape=tuple(inputs.shape[-2:])))
                torch_outputs += [sample.pred_instances for sample in detector.predict(
                    inputs, data_samples, rescale=False)]
                onnx_outputs += split_detections(*outputs)
            else:
                (pred_maps, ) = detector._forward(inputs)
                torch_outputs.append([pred_map.numpy() for pred_map in pred_maps])
                onnx_outputs.append(outputs)
    if postprocessed:
        return detection_parity(onnx_outputs, torch_outputs)
    return raw_parity([np.concatenate(parts) for parts in zip(*onnx_outputs)],
                      [np.concatenate(parts) for parts in zip(*torch_outputs)], names)


def _attribute_signature(attribute: onnx.AttributeProto) -> Tuple:
    """An attribute's value; a tensor attribute by its type and shape only."""
    if attribute.type == onnx.AttributeProto.TENSOR:
        return attribute.name, attribute.t.data_type, tuple(attribute.t.dims)
    return attribute.name, repr(onnx.helper.get_attribute_value(attribute))


def graph_signature(model: Union[str, onnx.ModelProto]) -> List[Tuple]:
    """The graph without weight values: its inputs and outputs, initializers (name, type,
    shape) and nodes in order (type, attributes, input and output shapes by shape inference)."""
    if isinstance(model, str):
        model = onnx.load(model)
    graph = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph

    def shape(value_type: onnx.TypeProto) -> Tuple:
        dims = value_type.tensor_type.shape.dim
        return value_type.tensor_type.elem_type, tuple(d.dim_param or d.dim_value for d in dims)

    shapes = {value.name: shape(value.type)
              for value in list(graph.input) + list(graph.output) + list(graph.value_info)}
    shapes.update({init.name: (init.data_type, tuple(init.dims)) for init in graph.initializer})
    signature = [('input', value.name, shapes[value.name]) for value in graph.input]
    signature += [('initializer', init.name, shapes[init.name]) for init in graph.initializer]
    signature += [(node.op_type, tuple(_attribute_signature(a) for a in node.attribute),
                   tuple(shapes.get(name) for name in node.input),
                   tuple(shapes.get(name) for name in node.output)) for node in graph.node]
    signature += [('output', value.name, shapes[value.name]) for value in graph.output]
    return signature


def op_counts(model: Union[str, onnx.ModelProto]) -> Counter:
    """Number of nodes per operator type."""
    if isinstance(model, str):
        model = onnx.load(model)
    return Counter(node.op_type for node in model.graph.node)


def signature_differences(a: List[Tuple], b: List[Tuple], most: int = 5) -> List[str]:
    """Up to ``most`` differences between two :func:`graph_signature` lists (empty: same)."""
    differences = [f'#{i}: {x} != {y}' for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(a) != len(b):
        differences.append(f'{len(a)} entries != {len(b)} entries')
    return differences[:most]
