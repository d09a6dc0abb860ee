"""Quantize a raw ONNX export to int8 with onnxruntime, calibrated on the config's images.

``python tools/deployment/quantize_onnx.py CONFIG MODEL.onnx --out MODEL_int8.onnx
[--calib-images 64] [--per-tensor]``

Static quantization (``onnxruntime.quantization.quantize_static``): QDQ format, uint8
activations, int8 weights (per channel unless ``--per-tensor``), MinMax ranges over the first
``--calib-images`` training images of the config, preprocessed as at test time. Evaluate the
result with ``tools/deployment/test_onnx.py CONFIG MODEL_int8.onnx``.
"""
import argparse
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Static int8 quantization of a raw ONNX export')
    parser.add_argument('config', help='config the graph was exported from')
    parser.add_argument('model', help='float32 .onnx graph')
    parser.add_argument('--out', required=True, help='output int8 .onnx file')
    parser.add_argument('--calib-images', type=int, default=64,
                        help='training images of the config used for calibration (default 64)')
    parser.add_argument('--per-tensor', action='store_true',
                        help='one weight scale per tensor instead of per output channel')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from netaug_det.deployment import exit_without_onnx_packages, user_errors
    exit_without_onnx_packages()

    import netaug_det  # noqa: F401  registers modules
    from netaug_det.utils.outputs import check_outputs
    from netaug_det.deployment.quantize import calibration_batches, quantize_int8
    from netaug_det.deployment.runtime import load_graph_config
    with user_errors():
        check_outputs({'--out': (args.out, ('.onnx', ))}, [args.config, args.model])
        cfg = load_graph_config(args.config, args.model)
        quantize_int8(args.model, args.out, calibration_batches(cfg, args.calib_images),
                      per_channel=not args.per_tensor)
    print(f'{args.out}: int8 graph calibrated on {args.calib_images} training images of '
          f'{args.config}')


if __name__ == '__main__':
    main()
