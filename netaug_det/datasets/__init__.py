from .demo_data import DEMO_CLASSES, ensure_demo_dataset, generate_demo_dataset

__all__ = ['DEMO_CLASSES', 'ensure_demo_dataset', 'generate_demo_dataset']
