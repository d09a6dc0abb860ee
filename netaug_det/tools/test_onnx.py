"""Evaluate an ONNX export (raw, or with NMS inside) with onnxruntime on the config's test split.

``python tools/deployment/test_onnx.py CONFIG MODEL.onnx [--threads T] [--metrics-json FILE]``

The images go through the config's test pipeline at the graph's input size, onnxruntime runs the
graph (float32 or int8), mmdet's ``predict_by_feat`` post-processes a raw graph's outputs with
rescaling (a graph exported ``--with-postprocess`` has its decoding and NMS inside: its boxes
are rescaled to the original images by the head's own code), and the config's
``test_evaluator`` scores them: the same metrics, keys and path as
``tools/test.py CONFIG CHECKPOINT`` (e.g. ``pascal_voc/AP50``), with onnxruntime in place of
the PyTorch network.
"""
import argparse
import json
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate an ONNX export with onnxruntime')
    parser.add_argument('config', help='config the graph was exported from')
    parser.add_argument('model', help='.onnx graph, raw or exported --with-postprocess')
    parser.add_argument('--threads', type=int, default=1, help='onnxruntime threads (default 1)')
    parser.add_argument('--batch-size', type=int, default=8, help='images per run (default 8)')
    parser.add_argument('--metrics-json', help='also write the metrics to this json file')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from netaug_det.deployment import exit_without_onnx_packages, user_errors
    exit_without_onnx_packages()

    import netaug_det  # noqa: F401  registers modules
    from netaug_det.utils.outputs import check_outputs
    from netaug_det.deployment.runtime import evaluate_onnx, load_graph_config
    with user_errors():
        check_outputs({'--metrics-json': (args.metrics_json, ('.json', ))},
                      [args.config, args.model])
        cfg = load_graph_config(args.config, args.model)
        metrics = evaluate_onnx(cfg, args.model, args.threads, args.batch_size)
    print(json.dumps({key: float(value) for key, value in metrics.items()}))
    if args.metrics_json:
        with open(args.metrics_json, 'w') as f:
            json.dump({key: float(value) for key, value in metrics.items()}, f, indent=2)


if __name__ == '__main__':
    main()
