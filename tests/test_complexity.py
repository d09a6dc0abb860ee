"""MAC and parameter counting of deployable detectors, and the paper's Figure-5 costs."""
import os.path as osp
import sys

import pytest
import torch
from mmengine.analysis import parameter_count
from torch import nn

import netaug_det  # noqa: F401
from netaug_det.models.builders import build_detector
from netaug_det.analysis.complexity import MACAnalyzer, get_detector_complexity

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def config(name: str) -> str:
    return osp.join(REPO_ROOT, 'configs', name)


def test_hand_counted_small_model():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 1), nn.Upsample(scale_factor=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, 10)).eval()
    # 16x16 outputs: 3x3 conv 3->8, depthwise 3x3 on 8, 1x1 8->16; then a 16->10 linear.
    # BatchNorm, activations, upsampling and pooling count nothing.
    expected = 8 * 3 * 9 * 256 + 8 * 9 * 256 + 16 * 8 * 256 + 16 * 10
    with torch.no_grad():
        assert MACAnalyzer(model, (torch.rand(1, 3, 32, 32), )).total() == expected


def count_by_hooks(model: nn.Module, size: int) -> tuple:
    """Independent count from forward hooks: MACs of every executed conv and linear layer from
    its output size, and the parameters of every executed layer that holds parameters."""
    macs, params = [], []

    def hook(module, inputs, output):
        params.append(sum(p.numel() for p in module.parameters(recurse=False)))
        if isinstance(module, nn.Conv2d):
            macs.append(output.numel() * module.in_channels // module.groups *
                        module.kernel_size[0] * module.kernel_size[1])
        elif isinstance(module, nn.Linear):
            macs.append(output.numel() * module.in_features)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if list(m.parameters(recurse=False))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for handle in handles:
        handle.remove()
    return sum(macs), sum(params)


def test_detector_count_matches_independent_count():
    # MobileNetV3 has every layer kind of the configs: SE convs, 5x5 depthwise, 80 classes
    model = build_detector(config('yolov3_mbv3_coco.py'))
    result = get_detector_complexity(model, 128)
    assert (result['macs'], result['params']) == count_by_hooks(model, 128)
    # the backbone's final 1x1 conv2 is built (checkpoint compatibility) but never run
    unused = parameter_count(model.backbone.conv2)['']
    assert result['params'] == parameter_count(model)[''] - unused


def test_netaug_detector_is_measured_as_deployed():
    netaug = build_detector(config('yolov3_mbv2_netaug_voc.py'))
    baseline = get_detector_complexity(config('yolov3_mbv2_voc.py'), 96)
    assert get_detector_complexity(netaug, 96) == baseline
    # the augmented weights are not part of the deployable detector
    assert parameter_count(netaug)[''] > 2 * baseline['params']


# Paper, Figure 5 (YOLOv3 + MobileNetV2-w0.35), digitised to about +-1%: MACs in millions.
FIGURE5 = {
    'yolov3_mbv2_voc.py': {256: 100, 288: 127, 320: 156, 352: 189, 384: 225, 416: 264},
    'yolov3_mbv2_coco.py': {288: 153, 448: 370},
}


@pytest.mark.parametrize('name', sorted(FIGURE5))
def test_figure5_macs_within_5_percent(name):
    model = build_detector(config(name))
    for size, paper_macs in FIGURE5[name].items():
        macs = get_detector_complexity(model, size)['macs'] / 1e6
        assert abs(macs / paper_macs - 1) < 0.05, (name, size, macs, paper_macs)


def test_rejects_sizes_yolo_cannot_take():
    with pytest.raises(ValueError, match='multiple of 32'):
        get_detector_complexity(config('yolov3_mbv2_voc.py'), 300)


def test_get_macs_tool(monkeypatch, capsys):
    from netaug_det.tools import get_macs
    monkeypatch.setattr(sys, 'argv', [
        'get_macs.py', config('yolov3_mbv2_voc.py'), '--cfg-options', 'input_size=256'])
    get_macs.main()
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    # the config's (overridden) input_size; 0.336M params and 101.4M MACs (docs/models.md)
    assert rows == [['256', '0.336', '101.4']]
