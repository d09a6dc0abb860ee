from .netaug_yolo_neck import DetectionBlockSpec, NetAugTinyYOLOV3Neck
from .tiny_yolo_neck import TinyYOLOV3Neck

__all__ = ['TinyYOLOV3Neck', 'NetAugTinyYOLOV3Neck', 'DetectionBlockSpec']
