"""Convert an official NetAug ImageNet checkpoint into a netaug_det backbone checkpoint.

Usage:
    python -m netaug_det.tools.netaug_to_mmdet SRC DST --arch mbv2 [--widen-factor 0.35]

``--arch`` is the official model name: mbv2, mbv3, tinymbv2, proxylessnas or mcunet. The result
loads with ``init_cfg=dict(type='Pretrained', checkpoint=DST)`` into the matching plain backbone
(``TinyMobileNetV2``, ``TinyMobileNetV3``, ``MobileNetV2Tiny``, ``ProxylessNASMobile``,
``MCUNet``) and (into the base slices) its NetAug version.
"""
import argparse
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='official checkpoint (a netaug/models/base model)')
    parser.add_argument('dst', help='output checkpoint for init_cfg Pretrained')
    parser.add_argument('--arch', required=True,
                        help='official architecture: a key of OFFICIAL_ARCHS (mbv2, mbv3, '
                        'tinymbv2, proxylessnas, mcunet)')
    parser.add_argument('--widen-factor', type=float, default=None,
                        help="the checkpoint's width multiplier (default: the official "
                        "release's, 0.35 or 1.0 for mcunet)")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from mmengine.runner.checkpoint import save_checkpoint

    from netaug_det.models.backbones import convert_official_netaug
    from netaug_det.utils.checkpoint import load_checkpoint_file
    from netaug_det.utils.cli import user_errors
    from netaug_det.utils.outputs import check_outputs

    with user_errors():
        check_outputs({'dst': (args.dst, ('.pth', '.pt'))}, [args.src])
        checkpoint = load_checkpoint_file(args.src)
        state_dict = checkpoint.get('state_dict', checkpoint)
        converted, dropped = convert_official_netaug(state_dict, args.arch, args.widen_factor)
    save_checkpoint(dict(state_dict=converted), args.dst)  # atomic (utils/checkpoint.py)
    print(f'{len(converted)} tensors written to {args.dst}; dropped classifier keys: {dropped}')

if __name__ == '__main__':
    main()
