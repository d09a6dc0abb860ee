"""Plans: the paper plan's dry run lists every run and every config it names builds; the demo
plan's runs wait for the pretraining they start from; the report puts results in the paper's
layout beside its figures; a plan naming an unknown pretraining run is refused."""
import os.path as osp

import pytest

from conftest import REPO_ROOT
from netaug_det.experiments.executors import Outcome
from netaug_det.experiments.plan import expand_plan, load_plan, report
from netaug_det.experiments.runs import load_merged
from netaug_det.models.builders import build_detector
from netaug_det.tools import run_plan
from netaug_det.utils.config import apply_config_variables

PAPER = osp.join(REPO_ROOT, 'configs', 'plans', 'paper.py')
DEMO = osp.join(REPO_ROOT, 'configs', 'plans', 'demo.py')


@pytest.mark.slow
def test_paper_dry_run_lists_every_run_and_every_config_builds(capsys):
    run_plan.main([PAPER, '--dry-run'])
    printed = capsys.readouterr().out
    planned = expand_plan(load_plan(PAPER))
    # 4 pretrainings; 2 datasets x 2 backbones x 2 methods x 6 resolutions x 3 seeds
    assert len(planned) == 4 + 2 * 2 * 2 * 6 * 3
    for item in planned:
        assert f'[{item.run.name}]' in printed
    assert 'total: 148 runs' in printed and 'pretraining: 4 runs, ~941 GPU-hours' in printed
    line = next(line for line in printed.splitlines() if '[coco_mbv3/netaug/r448/s2]' in line)
    assert '8 GPU(s) x 2 node(s)' in line and 'waits for: mbv3_netaug' in line
    assert 'torch.distributed.run --nproc_per_node=8 --nnodes=2' in printed
    first = {}  # one run per config: its options as the plan gives them
    for item in planned:
        first.setdefault(item.run.spec.config, item.run.spec)
    assert len(first) == 12  # 4 classifiers + 8 detectors
    for spec in first.values():
        cfg = load_merged(spec.config, [*spec.cfg_options, *spec.train_options])
        apply_config_variables(cfg)
        assert build_detector(cfg) is not None, spec.config


@pytest.mark.slow
def test_demo_plan_runs_wait_for_their_pretraining():
    plan = load_plan(DEMO)
    planned = {item.run.name: item for item in expand_plan(plan)}
    assert set(planned) == {'cls_baseline', 'cls_netaug', 'demo/baseline/r96/s0',
                            'demo/baseline/r128/s0', 'demo/netaug/r96/s0', 'demo/netaug/r128/s0'}
    netaug = planned['demo/netaug/r96/s0'].run
    assert netaug.after == ('cls_netaug', )
    assert any(option.endswith('pretraining/cls_netaug/deploy.pth')
               for option in netaug.spec.train_options)
    baseline = planned['demo/baseline/r128/s0'].run
    assert any(option.endswith('pretraining/cls_baseline/epoch_2.pth')
               for option in baseline.spec.train_options)
    assert 'input_size=128' in baseline.spec.cfg_options
    assert 'train_cfg.max_epochs=2' in baseline.spec.train_options


@pytest.mark.slow
def test_report_puts_results_beside_the_papers_figures(tmp_path):
    plan = load_plan(DEMO)
    plan.work_dir = str(tmp_path)
    plan.detection[0].paper = dict(baseline=60.4, netaug=62.4)
    plan.detection[0].paper_mac_reduction = 0.41
    planned = expand_plan(plan)
    ap50 = {('baseline', 96): 10.0, ('baseline', 128): 20.0, ('netaug', 96): 15.0,
            ('netaug', 128): 25.0}
    outcomes = {}
    for item in planned:
        result = dict(accounting=dict(wall_time_s=360.0, device_hours=0.1,
                                      device_kind='cpu thread'))
        if item.stage == 'detection':
            result['val_ap50'] = ap50[(item.method, item.resolution)]
        outcomes[item.run.name] = Outcome(result)
    outcomes['cls_netaug'] = Outcome(None, 'failed (logs: x.log): boom', 'x.log')
    text = report(plan, planned, outcomes)
    rows = {line.split('|')[2].strip(): line for line in text.splitlines()
            if line.startswith('| MbV2')}
    assert '20.0' in rows['baseline'] and '60.4' in rows['baseline']  # Table 4 at 128
    assert '25.0' in rows['netaug'] and '62.4' in rows['netaug']
    assert 'Paper: 41% fewer MACs' in text
    # NetAug reaches the baseline's best (20.0) halfway between 96 and 128
    assert 'NetAug reaches' in text
    assert osp.isfile(osp.join(str(tmp_path), 'demo', 'resolution_sweep.png'))
    assert '6 planned, 5 finished, 1 failed' in text and '0.500 cpu thread-hours' in text
    assert 'cls_netaug: failed (logs: x.log)' in text


def test_a_plan_naming_an_unknown_pretraining_is_refused(tmp_path):
    path = tmp_path / 'plan.py'
    path.write_text(f"_base_ = '{DEMO}'\n"
                    "detection = [dict(name='d', baseline='b.py', netaug='n.py', "
                    "pretrained=dict(netaug='missing'), resolutions=[96])]\n")
    with pytest.raises(KeyError, match="'missing', which is not in pretraining"):
        load_plan(str(path))
    path.write_text('work_dir = "w"\n')
    with pytest.raises(KeyError, match="has no 'seeds'"):
        load_plan(str(path))


@pytest.mark.parametrize('plan', [DEMO, osp.join(REPO_ROOT, 'configs', 'plans',
                                                 'transfer_demo.py')], ids=['demo', 'transfer'])
def test_a_plan_never_writes_over_a_dataset_made_with_other_arguments(plan, tmp_path,
                                                                        monkeypatch, capsys):
    """The plans make data/demo with the generator's defaults; a user's own data/demo (here a
    smaller one) is refused with the fix, before any run starts, and left as it was."""
    from netaug_det.datasets import generate_demo_dataset
    monkeypatch.chdir(tmp_path)
    mine = generate_demo_dataset('data/demo', num_train=3, num_val=1, img_size=(64, 64))
    files = {path: path.read_bytes() for path in (tmp_path / 'data').rglob('*') if path.is_file()}
    with pytest.raises(SystemExit) as error:
        run_plan.main([plan, '--work-dir', str(tmp_path / 'plan')])
    message = capsys.readouterr().err
    assert error.value.code == 2 and f"data/demo holds a dataset made with {mine['args']}" in \
        message and 'Remove the folder' in message
    assert {path: path.read_bytes() for path in (tmp_path / 'data').rglob('*')
            if path.is_file()} == files
    assert not (tmp_path / 'plan').exists()
