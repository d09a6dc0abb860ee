from .tiny_yolo_neck import TinyYOLOV3Neck

__all__ = ['TinyYOLOV3Neck']
