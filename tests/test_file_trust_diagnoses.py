"""A checkpoint that does not fit is explained by its true cause: another backbone width is named
with both widen_factors (it used to be called a NetAug training checkpoint, or a plain checkpoint
under a NetAug model); the NetAug/plain mix-ups keep their own explanation."""
import os.path as osp

import pytest
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import save_checkpoint

import netaug_det  # noqa: F401  registers modules and checkpoint handling
from conftest import REPO_ROOT
from netaug_det.deployment.export import load_config, load_detector
from netaug_det.models.builders import build_detector

BASELINE = osp.join(REPO_ROOT, 'configs/demo/yolov3_mbv2_demo.py')
NETAUG = osp.join(REPO_ROOT, 'configs/demo/yolov3_mbv2_netaug_demo.py')
TEACHER = osp.join(REPO_ROOT, 'configs/demo/yolov3_mbv2_teacher_demo.py')


def checkpoint_of(config, path, widen_factor=None, netaug_state=False):
    """A randomly initialised checkpoint of ``config`` (optionally at another backbone width;
    with NetAugHook's state as a NetAug run writes it)."""
    cfg = load_config(config, 64)
    if widen_factor is not None:
        cfg.model.backbone.widen_factor = widen_factor
    checkpoint = dict(state_dict=build_detector(cfg).state_dict())
    if netaug_state:
        checkpoint['netaug'] = dict(sampler_seed=0, sync_sampling=False)
    save_checkpoint(checkpoint, str(path))
    return str(path)


def diagnosis(config, checkpoint):
    with pytest.raises(ValueError) as error:
        load_detector(load_config(config, 64), checkpoint)
    return str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize('config,widen_factor,model_config', [
    (BASELINE, 1.0, BASELINE),  # wider: was "a NetAug training checkpoint"
    (NETAUG, 0.5, NETAUG),  # NetAug of another width under its NetAug config
    (TEACHER, None, BASELINE),  # the distillation teacher (w1.0) under the student
    (BASELINE, 0.25, BASELINE),  # narrower
])
def test_width_mismatch_names_both_widen_factors(tmp_path, config, widen_factor, model_config):
    path = checkpoint_of(config, tmp_path / 'other_width.pth', widen_factor)
    file_factor = widen_factor or 1.0
    message = diagnosis(model_config, path)
    assert f'trained with backbone widen_factor={file_factor}, the model has ' \
        'widen_factor=0.35' in message, message
    assert f'model.backbone.widen_factor={file_factor}' in message
    assert 'NetAug training checkpoint' not in message and 'plain checkpoint' not in message


def test_width_diagnosis_builds_in_the_config_scope_whatever_the_current_one(tmp_path):
    """A process left in another default scope (e.g. by an earlier runner) must not lose the
    file's widen_factor: the backbone is rebuilt in the config's scope."""
    path = checkpoint_of(BASELINE, tmp_path / 'other_width.pth', 1.0)
    with DefaultScope.overwrite_default_scope('mmengine'):
        message = diagnosis(BASELINE, path)
    assert 'trained with backbone widen_factor=1.0, the model has widen_factor=0.35' in message


@pytest.mark.slow
def test_netaug_and_plain_mixups_keep_their_diagnosis(tmp_path):
    supernet = checkpoint_of(NETAUG, tmp_path / 'epoch_1.pth', netaug_state=True)
    assert 'it is a NetAug training checkpoint' in diagnosis(BASELINE, supernet)
    plain = checkpoint_of(BASELINE, tmp_path / 'deploy.pth')
    assert 'it is a plain checkpoint' in diagnosis(NETAUG, plain)
