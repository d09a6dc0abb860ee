from .demo_data import DEMO_CLASSES, demo_dataset_at, generate_demo_dataset, read_dataset_meta
from .demo_imagefolder import generate_demo_imagefolder
from .imagefolder import (ImageFolderDataset, LoadPILImage, PackClsInputs, ResizeCenterCrop,
                          TopKAccuracy, TorchVision)

__all__ = [
    'DEMO_CLASSES', 'demo_dataset_at', 'generate_demo_dataset',
    'read_dataset_meta', 'generate_demo_imagefolder',
    'ImageFolderDataset', 'LoadPILImage', 'PackClsInputs', 'ResizeCenterCrop', 'TopKAccuracy',
    'TorchVision'
]
