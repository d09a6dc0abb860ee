"""Model analysis above the models: params and MACs of deployable detectors and classifiers."""
from .complexity import (BackboneClassifier, MACAnalyzer, get_classifier_complexity,
                         get_detector_complexity)

__all__ = [
    'BackboneClassifier', 'MACAnalyzer', 'get_classifier_complexity', 'get_detector_complexity'
]
