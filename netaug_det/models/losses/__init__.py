"""Distillation losses (registered in mmdet's ``MODELS``): soft targets for YOLOv3 outputs,
feature imitation with a 1x1 adapter, and relational KD (distance and angle)."""
from .feature_imitation import FeatureImitationLoss, standardize_channels
from .relational_kd import (RKDAngleLoss, RKDDistanceLoss, angle_potentials,
                            distance_potentials, pool_embeddings)
from .soft_target import YOLOV3SoftTargetLoss, binary_kl_with_logits

__all__ = [
    'FeatureImitationLoss', 'standardize_channels', 'RKDAngleLoss', 'RKDDistanceLoss',
    'angle_potentials', 'distance_potentials', 'pool_embeddings', 'YOLOV3SoftTargetLoss',
    'binary_kl_with_logits'
]
