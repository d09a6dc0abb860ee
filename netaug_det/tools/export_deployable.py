"""Export a NetAug or distillation checkpoint as a checkpoint of the plain baseline model.

``python -m netaug_det.tools.export_deployable NETAUG_CONFIG CHECKPOINT [--out FILE]
[--check-config BASELINE_CONFIG]``

Does what ``NetAugHook`` does at the end of training, for any checkpoint of a NetAug run (e.g.
``epoch_12.pth`` or ``best_*.pth``; with ``EMAHook`` the averaged weights, which mmengine stores
as the checkpoint's ``state_dict``): every NetAug module is replaced by its plain export and the
NetAug state dropped; a distilled run's training-only ``distiller.*`` weights (adapters) are
left out. The result is tested with ``tools/test.py BASELINE_CONFIG FILE``. The checkpoint
must load strictly into the config's model (its distiller aside), and with ``--check-config``
the export strictly into the baseline's; a mismatch is explained and nothing is written.
"""
import argparse
import os.path as osp
from typing import List, Optional

CHECKPOINT_SUFFIXES = ('.pth', '.pt')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a NetAug checkpoint as a deployable baseline checkpoint')
    parser.add_argument('config', help='config of the NetAug or distillation run')
    parser.add_argument('checkpoint', help='checkpoint written by that run')
    parser.add_argument('--out', help='output file; defaults to <checkpoint>_deploy.pth')
    parser.add_argument(
        '--check-config',
        help='baseline config to load the export into (strictly) before it is written')
    return parser.parse_args(argv)


def export(config: str, checkpoint: str, out: str, check_config: Optional[str] = None) -> dict:
    """Writes the deployable checkpoint of ``checkpoint`` (a run of ``config``) to ``out`` and
    returns it; raises FileNotFoundError / ValueError naming the fix, writing nothing."""
    from mmengine.config import Config
    from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint

    from netaug_det.models.netaug import deployable_checkpoint
    from netaug_det.models.netaug.supernet import netaug_modules
    from netaug_det.utils.checkpoint import explain_mismatch
    from netaug_det.models.builders import build_detector
    from netaug_det.utils.outputs import check_outputs

    for path, what in ((config, 'config'), (checkpoint, 'checkpoint'),
                       (check_config, 'check config')):
        if path is not None and not osp.isfile(path):
            raise FileNotFoundError(f'{what} not found: {path}')
    check_outputs({'--out': (out, CHECKPOINT_SUFFIXES)}, [config, checkpoint, check_config])
    cfg = Config.fromfile(config)
    model = build_detector(cfg)
    distilled = cfg.get('distiller') is not None
    if not netaug_modules(model) and not distilled:
        raise ValueError(f'{config} builds a plain model (no NetAug modules, no distiller), '
                         'whose checkpoints are deployable as they are; pass the NetAug or '
                         'distillation config the checkpoint was trained with')
    source = _load_checkpoint(checkpoint, map_location='cpu')
    state = {name.removeprefix('module.'): tensor
             for name, tensor in source.get('state_dict', source).items()}
    if distilled:  # the distiller's adapters: training only, never exported
        state = {name: tensor for name, tensor in state.items()
                 if not name.startswith('distiller.')}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise ValueError(explain_mismatch(checkpoint, model, config)) from None
    deployable = deployable_checkpoint(model, source.get('meta'))
    if check_config is not None:
        try:
            build_detector(check_config).load_state_dict(deployable['state_dict'], strict=True)
        except RuntimeError as error:
            raise ValueError(f'the export of {checkpoint} does not load into {check_config}: '
                             f'{str(error).splitlines()[0]} Pass the baseline config that '
                             f'{config} inherits; nothing was written') from None
    save_checkpoint(deployable, out)
    return deployable


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from netaug_det.utils.cli import user_errors

    out = args.out or f'{osp.splitext(args.checkpoint)[0]}_deploy.pth'
    with user_errors():
        export(args.config, args.checkpoint, out, args.check_config)
    checked = f' (loads strictly into {args.check_config})' if args.check_config else ''
    print(f'deployable checkpoint saved to {out}{checked}')


if __name__ == '__main__':
    main()
