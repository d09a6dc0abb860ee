"""Export a detector checkpoint to ONNX and check it against PyTorch.

``python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out FILE.onnx [--input-size N]
[--batch N | --dynamic-batch] [--opset K] [--with-postprocess] [--check-images K]
[--cfg-options KEY=VALUE ...]``

The graph takes ``input`` (B, 3, N, N), the config's preprocessed images (letterboxed, RGB,
normalised), and returns the raw head maps ``pred_map_s32``, ``pred_map_s16``, ``pred_map_s8``
(exactly the detector's ``_forward``), or with ``--with-postprocess`` ``num_dets``, ``boxes``,
``scores``, ``labels`` (decoding and NMS in the graph; see docs/deployment.md). After export the
file passes ``onnx.checker`` and onnxruntime (CPU) runs it on the first K test images of the config
next to PyTorch: raw outputs must agree within 1e-4 relative, post-processed detections in count
and labels with boxes within 1e-3 pixels; otherwise the tool exits with status 1. A
post-processed check in which neither side detects anything proves nothing and fails too, unless
``--allow-no-detections``. ``--out`` must end in .onnx and be none of the inputs.

A NetAug run's ``deploy.pth`` exports with its baseline config; any other checkpoint with the
config that trained it (a NetAug config's detector is exported as its deployable base detector).
"""
import argparse
import json
from typing import List, Optional

from mmengine.config import DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a detector checkpoint to ONNX')
    parser.add_argument('config', help='config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='checkpoint (epoch_N.pth, or a NetAug deploy.pth)')
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--input-size', type=int,
                        help="side N of the square input, a multiple of 32 (default: the config's)")
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument('--batch', type=int, default=1, help='fixed batch size (default 1)')
    batch.add_argument('--dynamic-batch', action='store_true', help='a dynamic batch dimension')
    parser.add_argument('--opset', type=int, default=18, help='ONNX opset, >= 18 (default 18)')
    parser.add_argument('--with-postprocess', action='store_true',
                        help='box decoding and NMS in the graph')
    parser.add_argument('--check-images', type=int, default=4,
                        help='test images of the config for the onnxruntime parity check '
                        '(default 4; 0 skips it)')
    parser.add_argument('--allow-no-detections', action='store_true',
                        help='accept a parity check of a post-processed graph in which neither '
                        'side detects anything (it proves nothing; by default it fails)')
    parser.add_argument('--threads', type=int, default=1, help='onnxruntime threads for the check')
    parser.add_argument('--figures-json', help='also write the parity figures to this json file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.test_cfg.score_thr=0.1 (the '
                        'post-processing thresholds are baked into the graph)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from netaug_det.deployment import exit_without_onnx_packages, user_errors
    exit_without_onnx_packages()

    import netaug_det  # noqa: F401  registers modules and checkpoint handling
    from netaug_det.utils.outputs import check_outputs
    from netaug_det.deployment.checks import check_parity, is_vacuous, op_counts, parity_passes
    from netaug_det.deployment.export import (export_onnx, load_config, load_detector,
                                              tensor_shapes)
    with user_errors():
        check_outputs({'--out': (args.out, ('.onnx', )),
                       '--figures-json': (args.figures_json, ('.json', ))},
                      [args.config, args.checkpoint])
        cfg = load_config(args.config, args.input_size, args.cfg_options)
        detector = load_detector(cfg, args.checkpoint)
        model = export_onnx(detector, args.out, cfg.input_size,
                            batch_size=None if args.dynamic_batch else args.batch,
                            opset=args.opset, with_postprocess=args.with_postprocess)
    print(f'{args.out}: onnx.checker passed; opset {args.opset}, '
          f'{sum(op_counts(model).values())} nodes')
    for name, shape in tensor_shapes(model).items():
        print(f'  {name}: {shape}')
    if args.check_images <= 0:
        return
    with user_errors():
        figures = check_parity(detector, args.out, cfg, args.check_images, args.threads)
    if args.figures_json:
        with open(args.figures_json, 'w') as f:
            json.dump(figures, f, indent=2)
    if 'detections' in figures:
        print(f"parity on {figures['images']} test images: {figures['onnx_detections']} "
              f"detections from onnxruntime, {figures['detections']} from PyTorch, "
              f"{figures['matched']} paired with the same label (same order: "
              f"{figures['same_order']}); max box error {figures['max_box_err']:.3g} px, "
              f"max score error {figures['max_score_err']:.3g}")
    else:
        print(f'parity on {args.check_images} test images (max |ort - torch| / max |torch|):')
        for name, output in figures.items():
            print(f"  {name}: rel {output['rel_err']:.3g} (abs {output['max_abs_err']:.3g})")
    if is_vacuous(figures) and not args.allow_no_detections:
        raise SystemExit(
            f'error: the parity check is vacuous: neither onnxruntime nor PyTorch detects '
            f'anything on the {figures["images"]} test images (score_thr '
            f'{cfg.model.test_cfg.get("score_thr")}), so it compares nothing and {args.out} is '
            'unverified. Check it on images where the model detects objects (more '
            '--check-images, a trained checkpoint) or, for the check only, export once more '
            'with a lower --cfg-options model.test_cfg.score_thr; --allow-no-detections accepts '
            'it unverified')
    if not parity_passes(figures, args.allow_no_detections):
        raise SystemExit('error: onnxruntime and PyTorch disagree beyond the tolerances (1e-4 '
                         'relative for raw outputs; same detections, boxes within 1e-3)')
    print('parity check passed' + (' vacuously (no detections to compare)'
                                    if is_vacuous(figures) else ''))


if __name__ == '__main__':
    main()
