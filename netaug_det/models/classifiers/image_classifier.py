"""Image classifier built from this project's backbones (ImageNet pretraining, mmengine-native)."""
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor

from ..builders import build_backbone, derived, with_backbone_factors
from ..netaug import NetAugModule

ClsSamples = List[BaseDataElement]


@MODELS.register_module()
class TinyImageClassifier(BaseModel):
    """A backbone's last feature map, then a classifier head (pool, [1x1 conv], dropout, linear).

    The head's widths follow the built backbone (as :class:`TinyYOLOV3`'s neck does):
    ``in_channels`` is the backbone's last ``out_channels``; a NetAug head
    (:class:`NetAugTinyClsHead`) also gets ``max_in_channels`` (the backbone's
    ``widest_out_channels``: its final features widened in augmented passes when the backbone is
    built with ``active_last_output=True``) and, from a NetAug backbone, its
    ``aug_width_mult_list`` unless the config sets one. So its checkpoint holds ``backbone.*``
    exactly as a detector's does, and initialises a detection backbone as it is.

    Modes of ``forward(inputs, data_samples, mode)`` with inputs (B, 3, H, W):

    - ``'tensor'``: logits (B, num_classes);
    - ``'loss'``: ``loss_cls`` (cross-entropy with label smoothing) and ``acc_top1`` (the batch's
      top-1 accuracy in %, logged, not summed);
    - ``'predict'``: the data samples with ``pred_score`` (num_classes, softmax) and
      ``pred_label`` (1, ).

    Data samples carry ``gt_label``, a (1, ) long tensor (``PackClsInputs``).

    Args:
        backbone (dict): Backbone config; the built backbone must report ``out_channels``.
        head (dict): Head config without ``in_channels``.
        label_smoothing (float): Label smoothing of the training loss. Defaults to 0.1 (official
            NetAug ImageNet recipe).
        data_preprocessor (dict, optional): e.g. mmengine's ``ImgDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config of the whole model.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 label_smoothing: float = 0.1,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f'label_smoothing must be in [0, 1), got {label_smoothing}')
        self.label_smoothing = label_smoothing
        self.backbone, out_channels = build_backbone(backbone, 'TinyImageClassifier')
        widest = getattr(self.backbone, 'widest_out_channels', out_channels)[-1]
        head = derived(head, 'head', 'in_channels', out_channels[-1],
                       "backbone's last out_channels", 'TinyImageClassifier')
        head_cls = head['type'] if isinstance(head['type'], type) else MODELS.get(head['type'])
        if head_cls is not None and issubclass(head_cls, NetAugModule):
            head = derived(head, 'head', 'max_in_channels', widest,
                           "backbone's widest last output (widest_out_channels)",
                           'TinyImageClassifier')
            head = with_backbone_factors(head, self.backbone, ('aug_width_mult_list', ))
        elif widest != out_channels[-1]:
            raise ValueError(
                f'the backbone returns its last output at its active width (up to {widest} '
                f'channels; active_last_output=True), which only a NetAug head reads: set '
                "head.type='NetAugTinyClsHead', or active_last_output=False")
        self.head = MODELS.build(head)

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """(B, 3, H, W) -> the backbone's last feature map (B, C, H / 32, W / 32)."""
        return self.backbone(inputs)[-1]

    def _forward(self, inputs: Tensor, data_samples: Optional[ClsSamples] = None) -> Tensor:
        """(B, 3, H, W) -> logits (B, num_classes)."""
        return self.head(self.extract_feat(inputs))

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[ClsSamples] = None,
                mode: str = 'tensor') -> Union[Tensor, Dict[str, Tensor], ClsSamples]:
        """Dispatches to :meth:`_forward`, :meth:`loss` or :meth:`predict` (see the class)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f'invalid mode {mode!r}; use "tensor", "loss" or "predict"')

    def loss(self, inputs: Tensor, data_samples: ClsSamples) -> Dict[str, Tensor]:
        """Label-smoothed cross-entropy of the batch, and its top-1 accuracy (not a loss)."""
        logits = self._forward(inputs)
        labels = torch.cat([sample.gt_label for sample in data_samples]).to(logits.device)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        accuracy = (logits.detach().argmax(dim=1) == labels).float().mean() * 100
        return dict(loss_cls=loss, acc_top1=accuracy)

    def predict(self, inputs: Tensor, data_samples: Optional[ClsSamples] = None) -> ClsSamples:
        """Class scores (softmax) and the top class of every image, in its data sample."""
        scores = F.softmax(self._forward(inputs), dim=1)
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(len(scores))]
        for sample, score in zip(data_samples, scores):
            sample.pred_score = score
            sample.pred_label = score.argmax(dim=0, keepdim=True)
        return data_samples
