"""Evaluate a raw ONNX export with onnxruntime on the config's test split.

Entry point of ``python -m netaug_det.tools.test_onnx`` (see its module for the arguments).
"""
from netaug_det.tools.test_onnx import main

if __name__ == '__main__':
    main()
