"""A paper config (ImageNet-pretrained backbone in its recipe) refuses to train from random
initialisation unless the config opts in; the demo configs train from scratch on purpose."""
import pytest
from mmengine.config import Config
from mmengine.registry import RUNNERS

from netaug_det.datasets.checks import DataError
from netaug_det.utils.cli import RunRefusedError

PAPER = 'configs/yolov3_mbv2_voc.py'
pytestmark = pytest.mark.slow  # each builds a runner of the paper detector


def train(tmp_path, **options):
    cfg = Config.fromfile(PAPER)
    cfg.merge_from_dict(dict(work_dir=str(tmp_path), input_size=64, **options))
    RUNNERS.build(cfg).train()


def test_paper_config_without_imagenet_checkpoint_is_refused(tmp_path):
    with pytest.raises(RunRefusedError) as refusal:
        train(tmp_path)
    message = str(refusal.value)
    for part in (PAPER, 'random weights', 'backbone_checkpoint=PATH', 'docs/pretraining.md',
                 'allow_random_init=True'):
        assert part in message


@pytest.mark.parametrize('options', [dict(allow_random_init=True),
                                     dict(backbone_checkpoint='imagenet.pth')])
def test_opt_in_or_a_checkpoint_passes_the_check(tmp_path, options):
    with pytest.raises(DataError, match='data not found'):  # past the check, at the data
        train(tmp_path, **options)
