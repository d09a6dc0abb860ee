"""Static int8 quantization of a raw ONNX export.

Entry point of ``python -m netaug_det.tools.quantize_onnx`` (see its module for the arguments).
"""
from netaug_det.tools.quantize_onnx import main

if __name__ == '__main__':
    main()
