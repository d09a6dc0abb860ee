"""The depthwise YOLOv3 neck and head, and TinyYOLOV3's derived channels, loss and predict."""
import os.path as osp

import pytest
import torch
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmdet.models.dense_heads import YOLOV3Head
from mmdet.models.necks import YOLOV3Neck
from mmdet.structures import DetDataSample
from mmengine.analysis import parameter_count
from mmengine.config import Config
from mmengine.structures import InstanceData

import netaug_det  # noqa: F401
from netaug_det.models.dense_heads import TinyYOLOV3Head
from netaug_det.models.necks import TinyYOLOV3Neck
from netaug_det.models.builders import build_detector
from netaug_det.analysis.complexity import MACAnalyzer

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NECK_IN = [112, 32, 16]  # MobileNetV2-w0.35 strides 32, 16, 8
WIDTHS = [40, 40, 40]


def shapes(module: torch.nn.Module) -> dict:
    return {name: tuple(p.shape) for name, p in module.state_dict().items()}


def feats(batch: int = 1, size: int = 64) -> tuple:
    """Backbone-like maps, shallow to deep: strides 8, 16, 32."""
    return tuple(torch.rand(batch, c, size // s, size // s)
                 for c, s in zip(NECK_IN[::-1], (8, 16, 32)))


def test_neck_depthwise_3x3_only():
    neck = TinyYOLOV3Neck(3, NECK_IN, WIDTHS)
    for i in range(1, 4):
        block = getattr(neck, f'detect{i}')
        for name in ('conv2', 'conv4'):
            conv = getattr(block, name)
            assert isinstance(conv, DepthwiseSeparableConvModule)
            dw = conv.depthwise_conv.conv
            assert dw.kernel_size == (3, 3) and dw.groups == dw.in_channels == WIDTHS[i - 1]
            assert conv.pointwise_conv.conv.out_channels == 2 * WIDTHS[i - 1]
        for name in ('conv1', 'conv3', 'conv5'):
            conv = getattr(block, name)
            assert isinstance(conv, ConvModule) and conv.conv.kernel_size == (1, 1)
    outs = neck(feats(2, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 40, 2, 2), (2, 40, 4, 4), (2, 40, 8, 8)]


def test_switched_off_equals_mmdet():
    neck_cfg = dict(num_scales=3, in_channels=NECK_IN, out_channels=WIDTHS)
    assert shapes(TinyYOLOV3Neck(use_depthwise=False, **neck_cfg)) == shapes(
        YOLOV3Neck(**neck_cfg))
    head_cfg = dict(num_classes=20, in_channels=WIDTHS, out_channels=[80, 80, 80])
    assert shapes(TinyYOLOV3Head(use_depthwise=False, **head_cfg)) == shapes(
        YOLOV3Head(**head_cfg))


@pytest.mark.parametrize('channels', [40, 96])
def test_depthwise_head_cheaper_than_mmdet(channels):
    cfg = dict(num_classes=20, in_channels=[channels] * 3, out_channels=[2 * channels] * 3)
    tiny, stock = TinyYOLOV3Head(**cfg).eval(), YOLOV3Head(**cfg).eval()
    assert all(isinstance(c, DepthwiseSeparableConvModule) for c in tiny.convs_bridge)
    x = tuple(torch.rand(1, channels, s, s) for s in (4, 8, 16))
    assert [o.shape for o in tiny(x)[0]] == [o.shape for o in stock(x)[0]]
    with torch.no_grad():
        tiny_macs, stock_macs = MACAnalyzer(tiny, (x, )).total(), MACAnalyzer(stock, (x, )).total()
    # per pixel the bridge costs 9c + 2c^2 instead of 18c^2; the 1x1 predictions are shared
    pixels = 16 + 64 + 256
    assert stock_macs - tiny_macs == pixels * (18 * channels**2 - 9 * channels - 2 * channels**2)
    assert parameter_count(tiny)[''] < parameter_count(stock)['']


def build_tiny_yolo(backbone: dict, **neck) -> torch.nn.Module:
    return build_detector(dict(
        type='TinyYOLOV3', backbone=backbone,
        neck=dict(type='TinyYOLOV3Neck', num_scales=3, out_channels=WIDTHS, **neck),
        bbox_head=dict(type='TinyYOLOV3Head', num_classes=3, out_channels=[80, 80, 80])))


W035 = dict(widen_factor=0.35, out_indices=(2, 4, 6))  # TinyMobileNetV2's defaults are mmdet's


@pytest.mark.parametrize('backbone,neck_in', [
    (dict(type='TinyMobileNetV2', **W035), [112, 32, 16]),
    (dict(type='TinyMobileNetV2', widen_factor=0.5, out_indices=(2, 4, 6)), [160, 48, 16]),
    (dict(type='TinyMobileNetV3'), [56, 40, 16]),
    (dict(type='NetAugMobileNetV2', **W035), [112, 32, 16]),
])
def test_detector_derives_channels(backbone, neck_in):
    model = build_tiny_yolo(backbone)
    assert list(model.backbone.out_channels[::-1]) == neck_in
    assert model.neck.in_channels == neck_in
    assert model.neck.detect1.conv1.conv.in_channels == neck_in[0]
    assert model.bbox_head.in_channels == WIDTHS
    outs = model(torch.rand(1, 3, 64, 64))[0]
    assert [tuple(o.shape) for o in outs] == [(1, 24, 2, 2), (1, 24, 4, 4), (1, 24, 8, 8)]


def test_detector_rejects_contradicting_channels():
    with pytest.raises(ValueError, match='remove in_channels'):
        build_tiny_yolo(dict(type='TinyMobileNetV2', **W035), in_channels=[320, 96, 32])
    build_tiny_yolo(dict(type='TinyMobileNetV2', **W035), in_channels=[112, 32, 16])


def packed_batch(boxes: list, size: int = 96) -> dict:
    """Random images with the given (x1, y1, x2, y2, label) boxes, as a dataloader yields them."""
    samples = []
    for img_boxes in boxes:
        sample = DetDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
            scale_factor=(1.0, 1.0), batch_input_shape=(size, size)))
        tensor = torch.tensor([b[:4] for b in img_boxes], dtype=torch.float32).reshape(-1, 4)
        sample.gt_instances = InstanceData(
            bboxes=tensor, labels=torch.tensor([b[4] for b in img_boxes], dtype=torch.long))
        samples.append(sample)
    return dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
                        for _ in boxes], data_samples=samples)


@pytest.fixture(scope='module')
def voc_detector():
    """The VOC config's detector, keeping every prediction: with random weights that includes
    boxes of the large stride-32 anchors, which stick out of a 96-pixel image unless clipped."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'yolov3_mbv2_voc.py'))
    cfg.model.test_cfg.update(score_thr=0.0, conf_thr=0.0, max_per_img=1000)
    torch.manual_seed(0)
    model = build_detector(cfg)
    model.init_weights()
    return model


def test_loss_finite_and_empty_image_has_no_box_terms(voc_detector):
    batch = voc_detector.data_preprocessor(
        packed_batch([[(10, 12, 60, 70, 3), (40, 5, 90, 40, 7)], []]), training=True)
    losses = voc_detector.loss(batch['inputs'], batch['data_samples'])
    assert set(losses) == {'loss_cls', 'loss_conf', 'loss_xy', 'loss_wh'}
    for name, values in losses.items():
        assert all(torch.isfinite(v) for v in values), name
        assert sum(values) > 0, name

    empty = voc_detector.data_preprocessor(packed_batch([[]]), training=True)
    losses = voc_detector.loss(empty['inputs'], empty['data_samples'])
    for name in ('loss_cls', 'loss_xy', 'loss_wh'):
        assert sum(losses[name]).item() == 0, name
    conf = sum(losses['loss_conf'])
    assert torch.isfinite(conf) and conf > 0  # every cell is a negative
    conf.backward()
    assert voc_detector.bbox_head.convs_pred[0].weight.grad.abs().sum() > 0


def test_predict_boxes_inside_image(voc_detector):
    voc_detector.eval()
    batch = voc_detector.data_preprocessor(packed_batch([[], []]), training=False)
    with torch.no_grad():
        results = voc_detector.predict(batch['inputs'], batch['data_samples'])
    voc_detector.train()
    for result in results:
        pred = result.pred_instances
        assert len(pred) > 0 and pred.bboxes.shape[1] == 4
        assert torch.isfinite(pred.bboxes).all() and torch.isfinite(pred.scores).all()
        assert (pred.bboxes >= 0).all() and (pred.bboxes <= 96).all()
        assert pred.bboxes.min() == 0 and pred.bboxes.max() == 96  # clipped, not just small
        assert (pred.bboxes[:, 2:] >= pred.bboxes[:, :2]).all()
        assert ((pred.labels >= 0) & (pred.labels < 20)).all()
