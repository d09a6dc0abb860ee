"""Print every term of a config's training loss on its first training batch, at initialisation.

``python -m netaug_det.tools.loss_terms CONFIG [--seed 0] [--cfg-options KEY=VALUE ...]``

Builds the config's runner (config variables applied, the distiller attached), lets its hooks
attach their terms as in training (``NetAugHook``: the auxiliary pass, here in 'random' mode,
with self-distillation; ``DistillationHook``: the teacher's terms), runs the first training
batch without gradients and prints each logged entry and its share of the detection loss. Used
to choose loss weights (e.g. the distillation demos give each distillation term about a tenth of
the detection loss at the start; docs/distillation.md).
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
    import tempfile

    import torch
    from mmengine.config import Config
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from netaug_det.engine.hooks import DistillationHook, NetAugHook
    from netaug_det.utils.cli import release_runner

    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(dict(randomness=dict(seed=args.seed), **(args.cfg_options or {})))
    with tempfile.TemporaryDirectory(prefix='loss_terms_') as work_dir:
        cfg.work_dir = work_dir
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
        try:
            model = runner.model
            model.init_weights()
            # the terms the run's own hooks attach, as they attach them
            for hook in runner.hooks:
                if isinstance(hook, (NetAugHook, DistillationHook)):
                    hook.before_train(runner)
                if isinstance(hook, NetAugHook):
                    hook.term.prepare_step('random', hook.aux_interval, args.seed)
            data = model.data_preprocessor(next(iter(runner.train_dataloader)), True)
            with torch.no_grad():
                losses = model.loss(data['inputs'], data['data_samples'])
        finally:
            release_runner(runner)
    base = float(losses['base_total'])
    print(f'{"term":<28} {"value":>12} {"/ base_total":>12}')
    for name, value in losses.items():
        value = float(value.mean() if isinstance(value, torch.Tensor) else sum(
            item.mean() for item in value))
        print(f'{name:<28} {value:>12.4f} {value / base:>12.3f}')


if __name__ == '__main__':
    main()
