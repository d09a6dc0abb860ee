"""Print every term of a config's training loss on its first training batch, at initialisation.

``python -m netaug_det.tools.loss_terms CONFIG [--seed 0] [--cfg-options KEY=VALUE ...]``

Builds the config's model (with its distiller, if any) as the runner does, attaches the terms its
hooks would attach (``NetAugHook``: the auxiliary pass in 'random' mode, with self-distillation;
``DistillationHook``: the teacher's terms), runs one batch without gradients and prints each
logged entry and its share of the detection loss. Used to choose loss weights (e.g. the
distillation demos give each distillation term about a tenth of the detection loss at the
start; docs/distillation.md).
"""
import argparse
from typing import List, Optional

from mmengine.config import DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='The terms of a training loss, first batch')
    parser.add_argument('config')
    parser.add_argument('--seed', type=int, default=0, help='initialisation and sampling seed')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides, e.g. distiller.teacher.checkpoint=PATH')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    import torch
    from mmengine.config import Config
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from netaug_det.models.netaug import NetAugAuxLoss, NetAugSupernet
    from netaug_det.models.train_loss import TrainLoss

    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(dict(randomness=dict(seed=args.seed), work_dir='/tmp/loss_terms',
                             **(args.cfg_options or {})))
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    model = runner.model
    model.init_weights()
    loss = TrainLoss.attach(model)
    for hook in cfg.get('custom_hooks') or []:
        if hook['type'] == 'NetAugHook':
            term = NetAugAuxLoss(NetAugSupernet(model), hook.get('alpha', 1.0),
                                 hook.get('self_distill'))
            term.aug_mode = 'random'
            term.generator.manual_seed(args.seed)
            loss.add('netaug', term)
        elif hook['type'] == 'DistillationHook':
            loss.add('distill', model.distiller)
    batch = next(iter(runner.build_dataloader(cfg.train_dataloader)))
    data = model.data_preprocessor(batch, True)
    with torch.no_grad():
        losses = model.loss(data['inputs'], data['data_samples'])
    base = float(losses['base_total'])
    print(f'{"term":<28} {"value":>12} {"/ base_total":>12}')
    for name, value in losses.items():
        value = float(value.mean() if isinstance(value, torch.Tensor) else sum(
            item.mean() for item in value))
        print(f'{name:<28} {value:>12.4f} {value / base:>12.3f}')


if __name__ == '__main__':
    main()
