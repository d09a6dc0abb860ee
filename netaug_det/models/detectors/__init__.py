from .tiny_yolo import TinyYOLOV3

__all__ = ['TinyYOLOV3']
