"""YOLOv3 post-processing for deployment: in the ONNX graph, or in Python with mmdet's code.

:class:`YOLOV3PostProcess` is mmdet's ``YOLOV3Head.predict_by_feat`` with ``rescale=False``
(plus ``TinyYOLOV3Head``'s clipping) written with fixed tensor shapes, so that it exports to ONNX
with a variable batch: the same decoding (``head.bbox_coder.decode`` on
``head.prior_generator``'s anchors), the same filters (objectness ``>= conf_thr``, class score
``> score_thr``, the ``nms_pre`` best (box, class) pairs by class score, boxes wider and taller
than ``min_bbox_size``), score fusion (class score x objectness), mmcv's ``batched_nms`` (class
offsets of ``label * (max coordinate + 1)``, IoU threshold ``nms.iou_threshold``) and the
``max_per_img`` best detections, whose boxes are clipped to the network input. The NMS itself is
the custom op ``netaug_det::batched_nms_mask``: mmcv's ``nms`` per image in PyTorch, ONNX's
``NonMaxSuppression`` (batched) in the graph.

Images are letterboxed (``Resize`` with ``keep_ratio`` then ``Pad`` to N x N), so the graph, which
has no image metadata, works on the network input: boxes are in input pixels and clipped to
[0, N]. mmdet's ``predict(..., rescale=False)`` clips to ``img_shape`` instead (the resized image
without padding); the two agree when ``img_shape`` is the input size. Rescaling to the original
image (divide by ``scale_factor``, clip to ``ori_shape``) is left to the caller.

:func:`predict_from_raw` post-processes the raw outputs of an exported graph with mmdet's own
``predict_by_feat``, rescaling included: the reference Python post-processing.
"""
from typing import List, Sequence, Tuple

import numpy as np
import torch
from mmcv.ops import nms
from mmdet.models.dense_heads import YOLOV3Head
from mmengine.structures import InstanceData
from torch import Tensor, nn

from . import require_onnx_packages

require_onnx_packages()
from onnxscript import opset18 as op  # noqa: E402
from onnxscript.onnx_types import BOOL  # noqa: E402

POSTPROCESS_OUTPUT_NAMES = ('num_dets', 'boxes', 'scores', 'labels')
# Candidate scores at or below this are absent; fused scores are products of sigmoids (>= 0).
_ABSENT = -1.0


@torch.library.custom_op('netaug_det::batched_nms_mask', mutates_args=())
def batched_nms_mask(boxes: Tensor, scores: Tensor, iou_threshold: float,
                     max_per_image: int) -> Tensor:
    """Greedy NMS of each image's candidates, as a keep mask.

    Args:
        boxes (Tensor): (B, K, 4) boxes, x1 y1 x2 y2.
        scores (Tensor): (B, K) scores; a negative score marks an absent candidate.
        iou_threshold (float): A box whose IoU with a kept, higher-scoring box exceeds this is
            suppressed.
        max_per_image (int): At most this many boxes are kept per image (the best ones).

    Returns:
        Tensor: (B, K) bool, True for the kept boxes (mmcv's ``nms`` on the present candidates).
    """
    keep_mask = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    for image, (image_boxes, image_scores) in enumerate(zip(boxes, scores)):
        present = (image_scores >= 0).nonzero().squeeze(1)
        if present.numel():
            _, keep = nms(image_boxes[present], image_scores[present], iou_threshold)
            keep_mask[image, present[keep[:max_per_image]]] = True
    return keep_mask


@batched_nms_mask.register_fake
def _batched_nms_mask_fake(boxes: Tensor, scores: Tensor, iou_threshold: float,
                           max_per_image: int) -> Tensor:
    return scores.new_empty(scores.shape, dtype=torch.bool)


def batched_nms_mask_onnx(boxes, scores, iou_threshold: float, max_per_image: int):
    """ONNX translation of ``batched_nms_mask``: ``NonMaxSuppression`` over the batch (one class,
    absent candidates below its score threshold), its selection scattered into a (B, K) mask."""
    selected = op.NonMaxSuppression(
        boxes, op.Unsqueeze(scores, [1]), op.Constant(value_int=max_per_image),
        op.Constant(value_float=iou_threshold), op.Constant(value_float=_ABSENT / 2))
    batch_and_box = op.Gather(selected, op.Constant(value_ints=[0, 2]), axis=1)
    ones = op.Expand(op.Constant(value_float=1.0), op.Shape(selected, start=0, end=1))
    mask = op.ScatterND(op.ConstantOfShape(op.Shape(scores)), batch_and_box, ones)
    return op.Cast(mask, to=BOOL.dtype)


# For torch.onnx.export(..., custom_translation_table=...).
CUSTOM_TRANSLATIONS = {torch.ops.netaug_det.batched_nms_mask.default: batched_nms_mask_onnx}


def _gather_rows(values: Tensor, index: Tensor) -> Tensor:
    """``values[b, index[b, k]]`` for (B, M) or (B, M, D) ``values`` and (B, K) ``index``."""
    if values.dim() == 2:
        return values.gather(1, index)
    return values.gather(1, index.unsqueeze(-1).expand(-1, -1, values.size(-1)))


class YOLOV3PostProcess(nn.Module):
    """``YOLOV3Head.predict_by_feat(rescale=False)`` with fixed shapes, for ONNX export.

    Args:
        head (YOLOV3Head): The detector's head; its anchors, box coder and ``test_cfg`` are used.
        input_size (int): Side of the square network input (fixes the anchors and the clipping).

    ``forward(pred_maps)`` takes the head's per-level maps (deepest first, as ``head.forward``
    returns them) and returns, for a batch of B images and D = ``max_per_img`` slots:
    ``num_dets`` (B,) int64, ``boxes`` (B, D, 4) float x1 y1 x2 y2 in input pixels, ``scores``
    (B, D) float and ``labels`` (B, D) int64, best first; slots past ``num_dets`` hold zeros and
    label -1.
    """

    def __init__(self, head: YOLOV3Head, input_size: int) -> None:
        super().__init__()
        if not isinstance(head, YOLOV3Head):
            raise TypeError(f'in-graph post-processing supports YOLOv3 heads, got '
                            f'{type(head).__name__}; export the raw outputs and post-process '
                            'them with netaug_det.deployment.postprocess.predict_from_raw')
        cfg = head.test_cfg
        if cfg.get('nms', {}).get('type', 'nms') != 'nms':
            raise ValueError(f'in-graph post-processing implements mmcv nms, but test_cfg.nms is '
                             f'{cfg.nms}; export the raw outputs instead')
        self.bbox_coder = head.bbox_coder
        self.num_attrib = head.num_attrib
        self.num_classes = head.num_classes
        self.input_size = input_size
        self.conf_thr = cfg.get('conf_thr', -1)
        self.score_thr = cfg.get('score_thr', 0)
        self.min_bbox_size = cfg.get('min_bbox_size', -1)
        self.iou_threshold = float(cfg.nms.iou_threshold)
        self.max_per_img = cfg.max_per_img
        featmap_sizes = [(input_size // stride, input_size // stride)
                         for stride in head.featmap_strides]
        anchors = head.prior_generator.grid_priors(featmap_sizes, device='cpu')
        strides = [level.new_full((len(level), 1), stride)
                   for level, stride in zip(anchors, head.featmap_strides)]
        self.register_buffer('anchors', torch.cat(anchors), persistent=False)
        self.register_buffer('strides', torch.cat(strides), persistent=False)
        num_pairs = len(self.anchors) * self.num_classes
        nms_pre = cfg.get('nms_pre', -1)
        self.num_candidates = min(nms_pre, num_pairs) if nms_pre > 0 else num_pairs

    def forward(self, pred_maps: Sequence[Tensor]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Decodes, filters, runs NMS and keeps the best; see the class docstring."""
        preds = torch.cat([
            pred.permute(0, 2, 3, 1).reshape(pred.shape[0], -1, self.num_attrib)
            for pred in pred_maps
        ], dim=1)
        bbox_preds = torch.cat([preds[..., :2].sigmoid(), preds[..., 2:4]], dim=-1)
        bboxes = self.bbox_coder.decode(self.anchors, bbox_preds, self.strides)
        objectness = preds[..., 4].sigmoid()
        cls_scores = preds[..., 5:].sigmoid()

        # (box, class) pairs that pass the thresholds, the nms_pre best by class score
        valid = cls_scores > self.score_thr
        if self.conf_thr > 0:
            valid = valid & (objectness >= self.conf_thr).unsqueeze(-1)
        pair_scores = torch.where(valid, cls_scores, _ABSENT).flatten(1)
        top_scores, top_pairs = pair_scores.topk(self.num_candidates, dim=1)
        box_index = top_pairs // self.num_classes
        labels = top_pairs % self.num_classes
        boxes = _gather_rows(bboxes, box_index)
        scores = top_scores * _gather_rows(objectness, box_index)
        present = top_scores > self.score_thr
        if self.min_bbox_size >= 0:
            present = present & (boxes[..., 2] - boxes[..., 0] > self.min_bbox_size) & (
                boxes[..., 3] - boxes[..., 1] > self.min_bbox_size)

        # mmcv's batched_nms: per-class offsets of (the largest present coordinate + 1)
        max_coordinate = torch.where(present.unsqueeze(-1), boxes, -torch.inf).amax(dim=(1, 2))
        max_coordinate = torch.where(present.any(dim=1), max_coordinate, 0)
        offsets = labels.to(boxes.dtype) * (max_coordinate.unsqueeze(1) + 1)
        keep = batched_nms_mask(boxes + offsets.unsqueeze(-1),
                                torch.where(present, scores, _ABSENT), self.iou_threshold,
                                self.max_per_img)

        det_scores, order = torch.where(keep, scores, _ABSENT).topk(
            min(self.max_per_img, self.num_candidates), dim=1)
        found = det_scores >= 0
        det_boxes = _gather_rows(boxes, order).clamp(0, self.input_size)
        det_boxes = torch.where(found.unsqueeze(-1), det_boxes, 0)
        det_labels = torch.where(found, _gather_rows(labels, order), -1)
        return found.sum(dim=1), det_boxes, torch.where(found, det_scores, 0), det_labels


def predict_from_raw(head: YOLOV3Head, raw_outputs: Sequence[np.ndarray],
                     batch_img_metas: List[dict], rescale: bool = True) -> List[InstanceData]:
    """mmdet's post-processing (``head.predict_by_feat``) of a raw graph's outputs.

    Args:
        head (YOLOV3Head): A head built from the exported config (weights are not used).
        raw_outputs (Sequence[np.ndarray]): The raw graph's outputs, deepest level first.
        batch_img_metas (list[dict]): One meta dict per image (``img_shape``, and with
            ``rescale`` ``scale_factor`` and ``ori_shape``), as the test pipeline writes them.
        rescale (bool): Boxes in original-image pixels (as ``tools/test.py`` evaluates them)
            instead of network-input pixels. Defaults to True.

    Returns:
        list[InstanceData]: ``bboxes``, ``scores``, ``labels`` per image, as
        ``detector.predict`` returns them.
    """
    # copies: predict_by_feat applies sigmoid in place, which can reach the caller's arrays
    pred_maps = [torch.tensor(output) for output in raw_outputs]
    return head.predict_by_feat(pred_maps, batch_img_metas=batch_img_metas, rescale=rescale)


def split_detections(num_dets: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
                     labels: np.ndarray) -> List[InstanceData]:
    """The post-processed graph's padded outputs as one ``InstanceData`` per image."""
    return [
        InstanceData(bboxes=torch.from_numpy(boxes[i, :n]), scores=torch.from_numpy(scores[i, :n]),
                     labels=torch.from_numpy(labels[i, :n])) for i, n in enumerate(num_dets)
    ]
