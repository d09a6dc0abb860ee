"""No tool overwrites its own input: every tool that writes a file refuses an output that is one of
its inputs (also through a symlink or a hard link), another of its outputs, or a name whose suffix
is not the format written; the input stays byte for byte and nothing is written."""
import os
import os.path as osp

import pytest

from conftest import REPO_ROOT
from netaug_det.utils.outputs import check_outputs

BASELINE = osp.join(REPO_ROOT, 'configs/demo/yolov3_mbv2_demo.py')
NETAUG = osp.join(REPO_ROOT, 'configs/demo/yolov3_mbv2_netaug_demo.py')
CONTENT = b'a training checkpoint the user cannot recreate'


@pytest.fixture
def inputs(tmp_path):
    """A checkpoint and a graph (their content is never read: the guard runs first), with
    symlinks (one named as a pickle) and a hard link to the checkpoint."""
    checkpoint, graph = tmp_path / 'epoch_12.pth', tmp_path / 'model.onnx'
    checkpoint.write_bytes(CONTENT)
    graph.write_bytes(CONTENT)
    os.symlink(checkpoint, tmp_path / 'link.pth')
    os.symlink(checkpoint, tmp_path / 'link.pkl')
    os.link(checkpoint, tmp_path / 'hard.pth')
    os.symlink(graph, tmp_path / 'link.onnx')
    return tmp_path


def tool_cases(d):
    """(tool module, argv, expected message) per way of destroying an input."""
    from netaug_det.tools import (export_deployable, export_onnx, netaug_to_mmdet, quantize_onnx,
                                  test, test_onnx)
    ckpt, graph = str(d / 'epoch_12.pth'), str(d / 'model.onnx')
    same = 'is the input .*destroy the input'
    return [
        (export_deployable, [NETAUG, ckpt, '--out', ckpt], same),
        (export_deployable, [NETAUG, ckpt, '--out', str(d / 'link.pth')], 'through a link'),
        (export_deployable, [NETAUG, ckpt, '--out', str(d / 'hard.pth')], 'through a link'),
        (export_deployable, [NETAUG, ckpt, '--out', NETAUG], 'written as .pth'),
        (export_onnx, [BASELINE, ckpt, '--out', ckpt], 'written as .onnx.*epoch_12_out.onnx'),
        (export_onnx, [BASELINE, ckpt, '--out', str(d / 'x.pth')], 'written as .onnx'),
        (export_onnx, [BASELINE, ckpt, '--out', str(d / 'new.onnx'), '--figures-json', ckpt],
         'written as .json'),
        (quantize_onnx, [BASELINE, graph, '--out', graph], same),
        (quantize_onnx, [BASELINE, graph, '--out', str(d / 'link.onnx')], 'through a link'),
        (quantize_onnx, [BASELINE, graph, '--out', ckpt], 'written as .onnx'),
        (test_onnx, [BASELINE, graph, '--metrics-json', graph], 'written as .json'),
        (test, [BASELINE, ckpt, '--out', ckpt], 'written as .pkl or .pickle'),
        (test, [BASELINE, ckpt, '--out', str(d / 'link.pkl')], 'through a link'),
        (test, [BASELINE, ckpt, '--out', str(d / 'new.pkl'), '--metrics-json', ckpt],
         'written as .json'),
        (test, [BASELINE, ckpt, '--metrics-json', BASELINE], 'written as .json'),
        (netaug_to_mmdet, [ckpt, ckpt, '--arch', 'mbv2'], same),
        (netaug_to_mmdet, [ckpt, str(d / 'link.pth'), '--arch', 'mbv2'], 'through a link'),
    ]


def test_every_tool_refuses_to_overwrite_its_input(inputs):
    before = {path: path.read_bytes() for path in inputs.iterdir()}
    for tool, argv, message in tool_cases(inputs):
        with pytest.raises(SystemExit, match=message) as error:
            tool.main(argv)
        assert 'Nothing was written' in str(error.value), (tool.__name__, argv)
    assert {path: path.read_bytes() for path in inputs.iterdir()} == before


def test_guard_cases():
    """Two outputs of one file; a folder; any output name passes when no suffix is asked."""
    with pytest.raises(ValueError, match='--a and --b are the same file'):
        check_outputs({'--a': ('x/out.json', ('.json', )), '--b': ('x/../x/out.json', ())}, [])
    with pytest.raises(ValueError, match='is a folder'):
        check_outputs({'--out': (REPO_ROOT, ('.onnx', ))}, [])
    check_outputs({'--out': ('anything.bin', ()), '--skipped': (None, ('.json', ))},
                  [BASELINE, None])
    with pytest.raises(ValueError, match='written as .onnx'):
        check_outputs({'--out': ('MODEL.PTH', ('.onnx', ))}, [])
    check_outputs({'--out': ('MODEL.ONNX', ('.onnx', ))}, [])


def test_library_writers_are_guarded(tmp_path):
    """The deployment functions behind the tools refuse the same outputs."""
    from netaug_det.deployment.export import export_onnx
    from netaug_det.deployment.quantize import quantize_int8
    graph = tmp_path / 'model.onnx'
    graph.write_bytes(CONTENT)
    with pytest.raises(ValueError, match='is the input'):
        quantize_int8(str(graph), str(graph), iter(()))
    with pytest.raises(ValueError, match='written as .onnx'):
        export_onnx(None, str(tmp_path / 'ckpt.pth'), 64)
    assert graph.read_bytes() == CONTENT and not (tmp_path / 'ckpt.pth').exists()
