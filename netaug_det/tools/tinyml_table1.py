"""Params and MACs of the TinyML backbones as ImageNet classifiers, against the paper's Table 1.

``python -m netaug_det.tools.tinyml_table1``

Each plain backbone (MobileNetV2-Tiny, MCUNet, ProxylessNAS-Mobile w0.35) is measured as the
official classifier: all its layers, global average pooling and a 1000-class linear layer, at the
paper's resolution. Params include BatchNorm's (the official ``trainable_param_num``); MACs are
conv and linear multiply-accumulates (``netaug_det.analysis.complexity``). The paper prints two or
three significant digits; a count agrees when it rounds to the paper's figure.
"""
import argparse
from typing import List, NamedTuple, Optional


class PaperRow(NamedTuple):
    """One Table-1 column of the paper: the model, its input size and its printed counts."""
    name: str
    backbone: str
    widen_factor: float
    input_size: int
    params: str  # millions, as printed
    macs: str  # millions, as printed


TABLE1 = (
    PaperRow('MobileNetV2-Tiny', 'MobileNetV2Tiny', 0.35, 144, '0.75', '23.5'),
    PaperRow('MCUNet', 'MCUNet', 1.0, 176, '0.74', '81.8'),
    PaperRow('ProxylessNAS-Mobile w0.35', 'ProxylessNASMobile', 0.35, 160, '1.8', '35.7'),
)


def agrees(measured: float, printed: str) -> bool:
    """Whether ``measured`` (millions) rounds to the paper's ``printed`` figure, i.e. lies within
    half a unit of its last printed digit."""
    decimals = len(printed.partition('.')[2])
    return abs(measured - float(printed)) <= 0.5 * 10**-decimals + 1e-12


def measure(row: PaperRow) -> dict:
    """Params and MACs (in millions) of ``row``'s classifier at the paper's input size."""
    from mmdet.registry import MODELS

    import netaug_det.models  # noqa: F401 (registers the backbones)
    from netaug_det.analysis.complexity import get_classifier_complexity

    backbone_cls = MODELS.get(row.backbone)
    num_layers = len(backbone_cls.build_arch(row.widen_factor, {}).layer_channels)
    backbone = backbone_cls(widen_factor=row.widen_factor, out_indices=(num_layers - 1, ))
    result = get_classifier_complexity(backbone, row.input_size)
    return dict(params=result['params'] / 1e6, macs=result['macs'] / 1e6)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    parse_args(argv)
    import torch
    torch.set_num_threads(1)
    print('| model | backbone | input | params (M): ours | paper | diff | MACs (M): ours | paper '
          '| diff | agrees |')
    print('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
    for row in TABLE1:
        ours = measure(row)
        cells = [row.name, f'`{row.backbone}`', str(row.input_size)]
        for key in ('params', 'macs'):
            printed = getattr(row, key)
            diff = ours[key] / float(printed) - 1
            cells += [f'{ours[key]:.4f}' if key == 'params' else f'{ours[key]:.2f}', printed,
                      f'{diff:+.2%}']
        ok = agrees(ours['params'], row.params) and agrees(ours['macs'], row.macs)
        cells.append('yes' if ok else 'NO')
        print('| ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
