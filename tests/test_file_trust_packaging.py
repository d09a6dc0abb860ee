"""netaug_det is an OpenMMLab package as mim and mmengine expect one: model-index.yml imports a
metafile.yml per config folder that lists every config exactly once, the package ships them in
``netaug_det/.mim/``, and an installed netaug_det resolves ``netaug_det::<folder>/<config>.py``
(a config's ``_base_``, ``mmengine.hub.get_config``). No network: pip runs with --no-index."""
import glob
import os.path as osp

import pytest
import yaml

from conftest import REPO_ROOT
from test_packaging import install_copy, run

CONFIG_FOLDERS = ('configs', 'configs/demo', 'configs/imagenet', 'configs/real')


def read_yaml(relative):
    with open(osp.join(REPO_ROOT, relative)) as f:
        return yaml.safe_load(f)


def test_model_index_lists_every_config_once():
    index = read_yaml('model-index.yml')
    assert index['Import'] == [f'{folder}/metafile.yml' for folder in CONFIG_FOLDERS]
    listed = []
    for metafile in index['Import']:
        meta = read_yaml(metafile)
        collections = {collection['Name']: collection for collection in meta['Collections']}
        for collection in collections.values():
            assert collection['Paper']['URL'] == 'https://arxiv.org/abs/2110.08890'
            assert osp.isfile(osp.join(REPO_ROOT, collection['README']))
        for model in meta['Models']:
            assert model['In Collection'] in collections, model
            assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]
            assert osp.dirname(model['Config']) == osp.dirname(metafile)
            assert ('netaug' in model['Name']) == ('NetAug' in model['In Collection'])
            for result in model.get('Results', []):
                assert all(isinstance(v, float) for v in result['Metrics'].values()), result
            listed.append(model['Config'])
    configs = sorted(osp.relpath(path, REPO_ROOT) for folder in CONFIG_FOLDERS
                     for path in glob.glob(osp.join(REPO_ROOT, folder, '*.py')))
    assert sorted(listed) == configs  # each once, none missing, none stale


RESOLVE_SCRIPT = '''
import os.path as osp
import netaug_det  # lets mmengine resolve netaug_det::
from mmengine.config import Config
from mmengine.hub import get_config
from netaug_det.models.builders import build_detector
with open('team_config.py', 'w') as f:
    f.write("_base_ = 'netaug_det::demo/yolov3_mbv2_demo.py'\\ninput_size = 64\\n")
cfg = Config.fromfile('team_config.py')
assert cfg.model.type == 'TinyYOLOV3', cfg.model.type
build_detector(cfg)
hub_cfg = get_config('netaug_det::demo/yolov3_mbv2_netaug_demo.py')
assert hub_cfg.filename.startswith(osp.join(osp.dirname(netaug_det.__file__), '.mim', 'configs'))
print('resolved', hub_cfg.filename)
'''


@pytest.mark.slow
def test_installed_package_resolves_its_configs(tmp_path):
    """A non-editable install into a fresh venv (test_packaging's)."""
    python, site, _ = install_copy(tmp_path)
    package = osp.join(site, 'netaug_det')
    for name in ['model-index.yml'] + [f'{folder}/metafile.yml' for folder in CONFIG_FOLDERS]:
        assert osp.isfile(osp.join(package, '.mim', name)), name
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    out = run([python, '-c', RESOLVE_SCRIPT], cwd=elsewhere)
    assert 'resolved' in out
