from .netaug_yolo_head import NetAugTinyYOLOV3Head
from .ssd_head import SSDHeadWithPredictFix
from .tiny_yolo_head import TinyYOLOV3Head

__all__ = ['TinyYOLOV3Head', 'NetAugTinyYOLOV3Head', 'SSDHeadWithPredictFix']
