"""mmdet's SSDHead with its prediction fixed for mmdet 3.3."""
from mmdet.models.dense_heads import SSDHead
from mmdet.registry import MODELS


@MODELS.register_module()
class SSDHeadWithPredictFix(SSDHead):
    """mmdet's ``SSDHead``, able to predict under mmdet 3.3.

    mmdet 3.3's ``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls``, which
    ``SSDHead`` never sets (it computes its classification loss itself), so SSD fails at
    validation and test time (open-mmlab/mmdetection#11780, fix proposed in PR #11524). This
    head sets ``loss_cls = None``; layers, state dict, loss and outputs are ``SSDHead``'s, so its
    checkpoints load into ``SSDHead`` and back. Arguments: those of ``SSDHead``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.loss_cls = None
