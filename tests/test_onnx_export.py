"""ONNX deployment: export, onnxruntime parity, in-graph post-processing, graph identity of
NetAug's deploy.pth and the baseline, int8 quantization and evaluation, and the tools' errors.

Every test works on the checkpoints of the session's ``trained_runs`` (tests/conftest.py): the
demo baseline detector trained for 20 iterations and the NetAug one for 2, at 64x64 on a
16-image demo dataset.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

import netaug_det  # noqa: F401  registers modules and checkpoint handling
from conftest import REPO_ROOT
from netaug_det.deployment import MissingOnnxPackagesError, require_onnx_packages
from netaug_det.deployment.checks import (check_parity, detection_parity, graph_signature,
                                          parity_passes, signature_differences)
from netaug_det.deployment.export import (export_onnx, load_config, load_detector,
                                          tensor_shapes)
from netaug_det.deployment.postprocess import predict_from_raw
from netaug_det.deployment.quantize import calibration_batches, quantize_int8
from netaug_det.deployment.runtime import (build_dataset, create_session, evaluate_onnx,
                                           preprocessed_batches, run_session)

BASELINE = osp.join(REPO_ROOT, 'configs/demo/yolov3_mbv2_demo.py')
NETAUG = osp.join(REPO_ROOT, 'configs/demo/yolov3_mbv2_netaug_demo.py')
SIZE = 64
# The class scores are still near their initial 0.01, below the config's score_thr of 0.05.
LOW_SCORE_THR = {'model.test_cfg.score_thr': 0.005}


def run_python(args, cwd, check=True):
    """Runs a repository script with the worktree importable; asserts success unless told."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable] + [str(a) for a in args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture
def in_runs(trained_runs, monkeypatch):
    """The shared runs folder as working directory (the configs read data/demo/ from there)."""
    monkeypatch.chdir(trained_runs)
    return trained_runs


@pytest.fixture(scope='module')
def raw_export(trained_runs, tmp_path_factory):
    """The baseline's raw export with a dynamic batch: (path, config, detector)."""
    cfg = load_config(BASELINE, SIZE, LOW_SCORE_THR)
    detector = load_detector(cfg, str(trained_runs / 'baseline' / 'epoch_10.pth'))
    path = str(tmp_path_factory.mktemp('onnx') / 'baseline.onnx')
    export_onnx(detector, path, SIZE, batch_size=None)
    return path, cfg, detector


@pytest.mark.slow
def test_raw_export_matches_pytorch(raw_export, in_runs):
    path, cfg, detector = raw_export
    channels = 3 * (5 + 6)
    assert tensor_shapes(path) == {
        'input': ['batch', 3, SIZE, SIZE],
        'pred_map_s32': ['batch', channels, 2, 2],
        'pred_map_s16': ['batch', channels, 4, 4],
        'pred_map_s8': ['batch', channels, 8, 8],
    }
    figures = check_parity(detector, path, cfg, num_images=4)
    assert list(figures) == ['pred_map_s32', 'pred_map_s16', 'pred_map_s8']
    assert parity_passes(figures), figures
    # the dynamic batch: one image alone gives what it gives inside a batch
    session = create_session(path)
    inputs, _ = next(preprocessed_batches(detector.data_preprocessor,
                                          build_dataset(cfg, 'test', 3), 3))
    batched = run_session(session, inputs.numpy())
    single = run_session(session, inputs[1:2].numpy())
    for whole, alone in zip(batched, single):
        np.testing.assert_allclose(whole[1:2], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_python_postprocess_is_mmdet_predict(raw_export, in_runs):
    """mmdet's post-processing of onnxruntime's raw outputs gives the detector's predictions,
    rescaled to the original images as tools/test.py evaluates them."""
    path, cfg, detector = raw_export
    inputs, samples = next(preprocessed_batches(detector.data_preprocessor,
                                                build_dataset(cfg, 'test', 4), 4))
    metas = [sample.metainfo for sample in samples]
    onnx_results = predict_from_raw(detector.bbox_head,
                                    run_session(create_session(path), inputs.numpy()), metas)
    with torch.no_grad():
        torch_results = [s.pred_instances for s in detector.predict(inputs, samples, rescale=True)]
    figures = detection_parity(onnx_results, torch_results)
    assert figures['detections'] > 0 and parity_passes(figures), figures


@pytest.mark.slow
def test_cli_export_with_postprocess(trained_runs, tmp_path):
    """The tool exports decoding + NMS in the graph (batch 2) and checks it against mmdet's
    predict on the demo test images; the figures show the same detections."""
    out, figures_file = tmp_path / 'pp.onnx', tmp_path / 'figures.json'
    result = run_python([
        osp.join(REPO_ROOT, 'tools/deployment/export_onnx.py'), BASELINE,
        trained_runs / 'baseline' / 'epoch_10.pth', '--out', out, '--input-size', SIZE,
        '--batch', 2,
        '--with-postprocess', '--check-images', 4, '--figures-json', figures_file,
        '--cfg-options', 'model.test_cfg.score_thr=0.005'
    ], cwd=trained_runs)
    assert 'onnx.checker passed' in result.stdout and 'parity check passed' in result.stdout
    figures = json.loads(figures_file.read_text())
    assert figures['images'] == 4 and figures['detections'] > 0
    assert figures['matched'] == figures['detections'] == figures['onnx_detections']
    assert figures['max_box_err'] <= 1e-3
    assert tensor_shapes(str(out)) == {'input': [2, 3, SIZE, SIZE], 'num_dets': [2],
                                       'boxes': [2, 100, 4], 'scores': [2, 100],
                                       'labels': [2, 100]}
    # padded slots past num_dets hold zeros and label -1
    num_dets, boxes, scores, labels = create_session(str(out)).run(
        None, {'input': np.zeros((2, 3, SIZE, SIZE), np.float32)})
    for n, image_boxes, image_scores, image_labels in zip(num_dets, boxes, scores, labels):
        assert (image_labels[n:] == -1).all() and (image_scores[n:] == 0).all()
        assert (image_boxes[n:] == 0).all() and (image_boxes[:n] <= SIZE).all()
        assert (np.diff(image_scores[:n]) <= 0).all()


@pytest.mark.slow
def test_zero_overhead_benchmark(trained_runs, in_runs, tmp_path):
    """The benchmark's export of NetAug's deploy.pth is the baseline's graph; latency and int8
    figures come out for both."""
    from benchmarks import onnx_deploy
    work_dir = tmp_path / 'bench'
    onnx_deploy.main([BASELINE, str(trained_runs / 'baseline' / 'epoch_10.pth'),
                      str(trained_runs / 'netaug' / 'deploy.pth'), '--input-size', str(SIZE),
                      '--warmup', '1', '--runs', '3', '--int8', '--calib-images', '4',
                      '--work-dir', str(work_dir)])
    results = json.loads((work_dir / 'results.json').read_text())
    assert results['graphs_identical'] and results['differences'] == []
    assert results['op_counts']['Conv'] > 50
    assert set(results['latency']) == {'baseline', 'netaug', 'baseline int8', 'netaug int8'}
    assert results['latency_ratio'] > 0
    for name in ('baseline', 'netaug'):
        for precision in ('fp32', 'int8'):
            assert 0 <= results['int8'][name][precision]['pascal_voc/AP50'] <= 1
    # same architecture, different weights
    signatures = [graph_signature(str(work_dir / f'{name}_{SIZE}.onnx'))
                  for name in ('baseline', 'netaug')]
    assert signatures[0] == signatures[1]
    weights = [create_session(str(work_dir / f'{name}_{SIZE}.onnx')) for name in
               ('baseline', 'netaug')]
    image = np.ones((1, 3, SIZE, SIZE), np.float32)
    assert not np.allclose(weights[0].run(None, {'input': image})[0],
                           weights[1].run(None, {'input': image})[0])
    int8_ops = {node.op_type for node in
                onnx.load(str(work_dir / f'netaug_{SIZE}_int8.onnx')).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= int8_ops


@pytest.mark.slow
def test_graph_signature_sees_differences(raw_export):
    path, _, _ = raw_export
    model = onnx.load(path)
    activation = next(node for node in model.graph.node if node.op_type == 'LeakyRelu')
    next(a for a in activation.attribute if a.name == 'alpha').f = 0.2
    assert len(signature_differences(graph_signature(path), graph_signature(model))) == 1
    bigger = onnx.load(path)  # the same graph at 96x96: every feature map's shape changes
    del bigger.graph.value_info[:]
    for value in list(bigger.graph.input) + list(bigger.graph.output):
        for dim in value.type.tensor_type.shape.dim[2:]:
            dim.dim_value = dim.dim_value * 3 // 2
    assert len(signature_differences(graph_signature(path), graph_signature(bigger))) > 1


@pytest.mark.slow
def test_quantize_fixed_batch_and_evaluate(trained_runs, in_runs, tmp_path):
    """A fixed-batch graph is calibrated batch by batch and evaluated like tools/test.py."""
    cfg = load_config(BASELINE, SIZE)
    detector = load_detector(cfg, str(trained_runs / 'baseline' / 'epoch_10.pth'))
    fp32, int8 = str(tmp_path / 'b2.onnx'), str(tmp_path / 'b2_int8.onnx')
    export_onnx(detector, fp32, SIZE, batch_size=2)
    quantize_int8(fp32, int8, calibration_batches(cfg, 5, batch_size=3), per_channel=False)
    metrics = evaluate_onnx(cfg, int8, batch_size=3)
    assert set(metrics) == {'pascal_voc/mAP', 'pascal_voc/AP50'}


@pytest.mark.slow
def test_netaug_checkpoint_exports_base_detector(trained_runs):
    """A NetAug run's own checkpoint, with its NetAug config, loads as the deployable base
    detector: the network of its deploy.pth."""
    run = trained_runs / 'netaug'
    netaug = load_detector(load_config(NETAUG, SIZE), str(run / 'epoch_1.pth'))
    deploy = load_detector(load_config(BASELINE, SIZE), str(run / 'deploy.pth'))
    assert type(netaug.backbone) is type(deploy.backbone)
    netaug_state, deploy_state = netaug.state_dict(), deploy.state_dict()
    assert list(netaug_state) == list(deploy_state)
    assert all(torch.equal(netaug_state[key], deploy_state[key]) for key in deploy_state)


def test_missing_onnx_packages(monkeypatch, capsys):
    from netaug_det.tools import export_onnx as tool
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # import onnxruntime now fails
    with pytest.raises(MissingOnnxPackagesError, match='onnxruntime') as error:
        require_onnx_packages()
    assert 'requirements/pinned.txt' in str(error.value)
    assert 'pip install onnx==' in str(error.value)
    with pytest.raises(SystemExit, match='cannot import: onnxruntime'):
        tool.main([BASELINE, 'ckpt.pth', '--out', 'x.onnx'])


@pytest.mark.slow
def test_clear_errors(trained_runs, tmp_path):
    from netaug_det.tools import export_onnx as tool
    checkpoint = str(trained_runs / 'baseline' / 'epoch_10.pth')
    out = str(tmp_path / 'x.onnx')
    with pytest.raises(SystemExit, match='multiple of 32.*got 100'):
        tool.main([BASELINE, checkpoint, '--out', out, '--input-size', '100'])
    with pytest.raises(SystemExit, match='checkpoint not found: missing.pth'):
        tool.main([BASELINE, 'missing.pth', '--out', out])
    with pytest.raises(SystemExit, match='config file not found: nope.py'):
        tool.main(['nope.py', checkpoint, '--out', out])
    # a deploy.pth belongs to the baseline config, not the NetAug one
    with pytest.raises(SystemExit,
                       match='deploy.pth does not fit.*a plain checkpoint.*baseline config'):
        tool.main([NETAUG, str(trained_runs / 'netaug' / 'deploy.pth'), '--out', out])
    with pytest.raises(SystemExit, match='opset 17 is below 18'):
        tool.main([BASELINE, checkpoint, '--out', out, '--opset', '17'])
    assert not osp.exists(out)
    help_text = run_python([osp.join(REPO_ROOT, 'tools/deployment/export_onnx.py'), '--help'],
                           cwd=tmp_path).stdout
    assert '--with-postprocess' in help_text and '--dynamic-batch' in help_text
