"""Convert an official NetAug ImageNet checkpoint into a netaug_det backbone checkpoint.

Usage:
    python tools/model_converters/netaug_to_mmdet.py SRC DST --arch mbv2 [--widen-factor 0.35]

The result loads with ``init_cfg=dict(type='Pretrained', checkpoint=DST)`` into
``TinyMobileNetV2`` / ``TinyMobileNetV3`` and (into the base slices) their NetAug versions.
"""
import argparse

import torch

from netaug_det.models.backbones import OFFICIAL_ARCHS, convert_official_netaug


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='official checkpoint (netaug/models/base MobileNetV2/V3)')
    parser.add_argument('dst', help='output checkpoint for init_cfg Pretrained')
    parser.add_argument('--arch', required=True, choices=sorted(OFFICIAL_ARCHS))
    parser.add_argument('--widen-factor', type=float, default=0.35)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    state_dict = checkpoint.get('state_dict', checkpoint)
    converted, dropped = convert_official_netaug(state_dict, args.arch, args.widen_factor)
    torch.save(dict(state_dict=converted), args.dst)
    print(f'{len(converted)} tensors written to {args.dst}; dropped classifier keys: {dropped}')


if __name__ == '__main__':
    main()
