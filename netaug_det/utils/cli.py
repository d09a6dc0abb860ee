"""What the command-line tools share: mmdet's arguments, config loading, user-facing errors."""
import argparse
import logging
import os
import os.path as osp
import sys
from contextlib import contextmanager
from typing import Iterator, Optional

from mmengine.config import Config, DictAction

from .distributed import setup_cpu_distributed


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments every netaug_det tool shares with mmdet's tools."""
    parser.add_argument('--work-dir', help='the directory to save logs and checkpoints')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, e.g. input_size=320 or '
        'train_dataloader.batch_size=4; key=[a,b] for lists')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher: "pytorch" under torchrun (tools/dist_train.sh)')
    # torchrun passes --local-rank; torch.distributed.launch passes --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Reads ``args.config``, applies ``--cfg-options``, the work dir and the launcher, as mmdet's
    tools do. (Config variables such as ``input_size`` are applied by the config's runner,
    ``NetAugDetRunner``, whichever tool builds it.)"""
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}; pass the path of a '
                                'config, e.g. configs/yolov3_mbv2_voc.py')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = resolve_work_dir(args.config, args.work_dir, cfg.get('work_dir'))
    if args.launcher == 'pytorch':
        setup_cpu_distributed(cfg)
    return cfg


def resolve_work_dir(config_path: str, cli_work_dir: Optional[str],
                     cfg_work_dir: Optional[str]) -> str:
    """CLI > config > ``work_dirs/<config name>``, the mmdet precedence."""
    if cli_work_dir is not None:
        return cli_work_dir
    if cfg_work_dir is not None:
        return cfg_work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


class MissingPackagesError(ImportError):
    """A package a tool needs cannot be imported; the message names the install command."""


class RunRefusedError(RuntimeError):
    """A run that would give a wrong or useless result, or overwrite another run's files, is
    refused; the message names the cause (config key, file or process) and the fix."""


class UserExit(SystemExit):
    """Ends a tool with exit status 2 (argparse's status for bad usage); ``str()`` is the
    ``error: ...`` line the tool printed to stderr."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = f'error: {message}'

    def __str__(self) -> str:
        return self.message


# Errors whose messages name the cause and the fix (DataError is a ValueError).
USER_ERRORS = (MissingPackagesError, FileNotFoundError, ValueError, RunRefusedError)


@contextmanager
def user_errors() -> Iterator[None]:
    """For command-line tools: a missing package, a missing file, a bad value or a refused run
    (errors whose messages name the fix) ends the program with ``error: MESSAGE`` on stderr and
    exit status 2, without a traceback."""
    try:
        yield
    except USER_ERRORS as error:
        exit_ = UserExit(str(error))
        print(exit_, file=sys.stderr, flush=True)
        raise exit_ from error


def forget_instance(instance) -> None:
    """Closes and removes the log files of an mmengine instance kept by name (a logger; a
    visualizer has none) and forgets it, so that no later runner reuses it."""
    for handler in list(getattr(instance, 'handlers', [])):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            instance.removeHandler(handler)
    type(instance)._instance_dict.pop(instance.instance_name, None)


def release_runner(runner) -> None:
    """Closes ``runner``'s log file and forgets its logger and visualizer: mmengine keeps both
    for the process by name, so a later runner would reuse them and write into this run's work
    dir (a deleted temporary one, say)."""
    for instance in (runner.logger, runner.visualizer):
        forget_instance(instance)
