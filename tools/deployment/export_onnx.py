"""Export a detector checkpoint to ONNX and check it against PyTorch.

Entry point of ``python -m netaug_det.tools.export_onnx`` (see its module for the arguments).
"""
from netaug_det.tools.export_onnx import main

if __name__ == '__main__':
    main()
