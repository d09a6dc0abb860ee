"""ONNX deployment proves something: a parity check with no detection on either side fails
unless explicitly allowed, and a graph with NMS inside (the deployed form) is scored like a raw
one. The model is the demo baseline detector at 64x64 with random He-normal convolutions (distinct
scores: mmdet's initialisation scores flat image regions alike, and ties make NMS keep either)."""
import os.path as osp

import pytest
import torch
from torch import nn
from mmengine.runner.checkpoint import save_checkpoint
from mmengine.structures import InstanceData

import netaug_det  # noqa: F401  registers modules and checkpoint handling
from conftest import REPO_ROOT
from netaug_det.datasets.demo_data import generate_demo_dataset
from netaug_det.deployment.checks import detection_parity, is_vacuous, parity_passes
from netaug_det.deployment.export import export_onnx, load_config, load_detector
from netaug_det.deployment.postprocess import split_detections
from netaug_det.deployment.runtime import (build_dataset, create_session, evaluate_onnx,
                                           graph_predictions, preprocessed_batches, run_session)
from netaug_det.models.builders import build_detector

BASELINE = osp.join(REPO_ROOT, 'configs/demo/yolov3_mbv2_demo.py')
SIZE = 64


def test_no_detections_prove_nothing():
    empty = [InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                          labels=torch.zeros(0, dtype=torch.long))] * 4
    figures = detection_parity(empty, empty)
    assert is_vacuous(figures) and not parity_passes(figures)
    assert parity_passes(figures, allow_no_detections=True)


def random_state_dict() -> dict:
    """The demo baseline detector with He-normal convolution weights (seed 0)."""
    detector = build_detector(load_config(BASELINE, SIZE))
    generator = torch.Generator().manual_seed(0)
    for module in detector.modules():
        if isinstance(module, nn.Conv2d):
            std = (2 / module.weight[0].numel())**0.5
            module.weight.data = torch.randn(module.weight.shape, generator=generator) * std
    return detector.state_dict()


@pytest.fixture(scope='module')
def random_detector(tmp_path_factory):
    """A folder with data/demo/ (4 test images) and ``random.pth`` (:func:`random_state_dict`);
    tests run in it: the config reads data/demo/ from the working directory."""
    root = tmp_path_factory.mktemp('onnx_trust')
    generate_demo_dataset(str(root / 'data' / 'demo'), num_train=4, num_val=4, img_size=(64, 96))
    save_checkpoint(random_state_dict(), str(root / 'random.pth'))
    return root


@pytest.mark.slow
def test_vacuous_parity_check_fails(random_detector, monkeypatch, capsys):
    """No score can exceed 1.0: neither side detects anything, and the tool says so."""
    from netaug_det.tools import export_onnx as tool
    monkeypatch.chdir(random_detector)
    with pytest.raises(SystemExit, match='parity check is vacuous.*--allow-no-detections'):
        tool.main([BASELINE, 'random.pth', '--out', 'pp.onnx', '--input-size', str(SIZE),
                   '--with-postprocess', '--cfg-options', 'model.test_cfg.score_thr=1.0'])
    assert 'parity check passed' not in capsys.readouterr().out


@pytest.mark.slow
def test_nms_in_graph_is_scored(random_detector, monkeypatch):
    """test_onnx scores a graph with NMS inside: its detections rescaled to the original images
    as tools/test.py's are, then the config's metric, as for the raw graph."""
    monkeypatch.chdir(random_detector)
    cfg = load_config(BASELINE, SIZE)
    detector = load_detector(cfg, 'random.pth')
    export_onnx(detector, 'raw.onnx', SIZE, batch_size=None)
    export_onnx(detector, 'nms.onnx', SIZE, batch_size=None, with_postprocess=True)
    inputs, samples = next(preprocessed_batches(detector.data_preprocessor,
                                                build_dataset(cfg, 'test'), 4))
    metas = [sample.metainfo for sample in samples]
    session = create_session('nms.onnx')
    rescaled = graph_predictions(session, detector.bbox_head, inputs.numpy(), metas)
    for network, result, meta in zip(split_detections(*run_session(session, inputs.numpy())),
                                     rescaled, metas):
        expected = network.bboxes / torch.tensor(meta['scale_factor']).repeat(2)
        height, width = meta['ori_shape']
        expected = torch.stack([expected[:, 0].clamp(0, width), expected[:, 1].clamp(0, height),
                                expected[:, 2].clamp(0, width), expected[:, 3].clamp(0, height)], 1)
        torch.testing.assert_close(result.bboxes, expected)
        assert torch.equal(result.scores, network.scores) and len(result) > 0
    # mmdet's raw path suppresses on rescaled boxes, the graph on network-input boxes: the
    # letterbox scale differs slightly in x and y, which can change a suppression at the IoU
    # threshold (1 of 400 detections here)
    raw = graph_predictions(create_session('raw.onnx'), detector.bbox_head, inputs.numpy(), metas)
    figures = detection_parity(rescaled, raw)
    assert figures['matched'] >= 0.99 * figures['detections'] > 0, figures
    raw_metrics, nms_metrics = (evaluate_onnx(cfg, path) for path in ('raw.onnx', 'nms.onnx'))
    assert set(nms_metrics) == set(raw_metrics) == {'pascal_voc/mAP', 'pascal_voc/AP50'}
    assert nms_metrics == pytest.approx(raw_metrics, abs=0.02)
