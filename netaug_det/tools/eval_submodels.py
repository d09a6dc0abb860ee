"""Score the base model and the augmented models of trained runs on training and validation data.

``python -m netaug_det.tools.eval_submodels CONFIG CHECKPOINT [--samples N]
[--recalib-batches K] [--splits train val] [--seed S] [--out DIR]``
``python -m netaug_det.tools.eval_submodels --runs DIR [DIR ...] --out DIR [...]``

For a NetAug run (its NetAug config and a training checkpoint such as ``epoch_12.pth``, which
holds the whole supernet) it scores the base model with the BatchNorm statistics training left
(equal to testing the run's ``deploy.pth`` under the baseline config) and with statistics
recalibrated on ``K`` training batches, the widest model and ``N`` seeded random augmented
models, each recalibrated; for a plain run the base model, tracked and recalibrated. Every score
is the config's own evaluator (AP50) on each split: 'val' the test dataloader, 'train' the test
pipeline on the training images (as the experiment tools' train AP50). ``docs/submodels.md``.

``--runs`` takes the run dirs the experiment tools write (``compare_runs``, ``run_demo``,
``lr_grid``, ``resolution_sweep``: ``.../<method>/s<seed>/`` with ``result.json``), or folders
holding them, reads each run's config and overrides from its ``result.json`` and its final
training checkpoint, and adds a table of each method over its seeds (mean ± sd). Writes
``submodels.md`` and ``submodels.json`` into ``--out``; a run that the ``submodels.json``
already there scored with the same settings and the same checkpoint (content) is read back, so
the same command run again as an experiment's runs finish scores only the new ones.
"""
import argparse
import glob
import hashlib
import json
import os
import os.path as osp
from statistics import fmean
from typing import Dict, List, NamedTuple, Optional, Sequence

DEFAULT_SAMPLES = 5
OUT_FILES = {'md': ('.md', ), 'json': ('.json', )}


class RunToScore(NamedTuple):
    """One trained model to score: ``label`` (the method, for the summary), its training
    ``config`` and ``options`` (``KEY=VALUE``), its ``checkpoint``, the ``seed`` it was trained
    with, its ``run_dir`` and the AP50 its ``result.json`` reports per split (run dirs only)."""

    label: str
    config: str
    options: tuple
    checkpoint: str
    seed: Optional[int] = None
    run_dir: Optional[str] = None
    result_ap50: Optional[dict] = None


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Score the base and augmented models of trained runs (BN recalibrated)')
    parser.add_argument('config', nargs='?', help='the run\'s training config (NetAug or plain)')
    parser.add_argument('checkpoint', nargs='?', help='its training checkpoint (epoch_N.pth; '
                        'a NetAug run\'s holds the supernet, its deploy.pth does not)')
    parser.add_argument('--runs', nargs='+', metavar='DIR',
                        help='run dirs of the experiment tools, or folders holding them, '
                        'instead of CONFIG CHECKPOINT')
    parser.add_argument('--samples', type=int,
                        help=f'random augmented models per NetAug run (default '
                        f'{DEFAULT_SAMPLES}; a plain run has none)')
    parser.add_argument('--draw-mode', default='random', choices=['random', 'random_expand'],
                        help='random: widths and expand ratios (NetAug\'s width phase); '
                        'random_expand: expand ratios only')
    parser.add_argument('--recalib-batches', type=int, default=20,
                        help='training batches that re-estimate BatchNorm statistics (all '
                        'of them when the training set has fewer)')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'],
                        choices=['train', 'val'])
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the recalibration batches and of the random draws')
    parser.add_argument('--out', help='output folder (default: submodels_<checkpoint name>/ '
                        'beside CHECKPOINT; needed with --runs)')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='overrides of the config (CONFIG CHECKPOINT only), e.g. '
                        'input_size=64')
    args = parser.parse_args(argv)
    if args.runs and (args.config or args.checkpoint):
        parser.error('give either CONFIG CHECKPOINT or --runs DIR ..., not both')
    if not args.runs and not (args.config and args.checkpoint):
        parser.error('give CONFIG CHECKPOINT (one run) or --runs DIR ... (run dirs)')
    if args.runs and args.cfg_options:
        parser.error('--cfg-options is for CONFIG CHECKPOINT; a run dir\'s overrides are read '
                     'from its result.json')
    if args.runs and not args.out:
        parser.error('--runs needs --out DIR (where the tables go)')
    if args.samples is not None and args.samples < 0:
        parser.error(f'--samples must be >= 0, got {args.samples}')
    if args.recalib_batches < 1:
        parser.error(f'--recalib-batches must be >= 1, got {args.recalib_batches}')
    return args


def find_run_dirs(paths: Sequence[str]) -> List[str]:
    """The run dirs (holding ``result.json``) among ``paths`` and below them, sorted; a path
    with none is an error naming it."""
    from netaug_det.experiments.runs import RESULT_FILE

    found = []
    for path in paths:
        if not osp.isdir(path):
            raise FileNotFoundError(f'--runs {path}: no such folder; pass the run dirs of an '
                                    'experiment tool (e.g. work_dirs/demo_3seeds/netaug/s0) or '
                                    'the work dir that holds them')
        runs = sorted(osp.dirname(result) for result in glob.glob(
            osp.join(path, '**', RESULT_FILE), recursive=True))
        if not runs:
            raise FileNotFoundError(
                f'--runs {path}: no finished run below it (no {RESULT_FILE}, which the '
                'experiment tools write last); finish the runs with the command that started '
                'them, or pass CONFIG CHECKPOINT for a run of tools/train.py')
        found += runs
    return sorted(set(found))


def run_from_dir(run_dir: str, root: str) -> RunToScore:
    """The :class:`RunToScore` of a finished run dir of the experiment tools; ``label`` is the
    path of its method folder relative to ``root`` (e.g. 'netaug' for ``root/netaug/s0``)."""
    from netaug_det.experiments.runs import RESULT_FILE, trained_state

    with open(osp.join(run_dir, RESULT_FILE)) as f:
        result = json.load(f)
    spec = result['spec']
    trained_state(run_dir).require_finished(run_dir)
    label = osp.relpath(osp.dirname(osp.abspath(run_dir)), osp.abspath(root))
    return RunToScore(label if label != '.' else osp.basename(osp.dirname(run_dir)) or run_dir,
                      spec['config'], (*spec['cfg_options'], *spec['train_options']),
                      trained_state(run_dir).checkpoint, spec['seed'], run_dir,
                      {split: result[f'{split}_ap50'] for split in spec['splits']})


def runs_to_score(args: argparse.Namespace) -> List[RunToScore]:
    """The runs the arguments name."""
    if not args.runs:
        return [RunToScore(args.checkpoint, args.config, tuple(args.cfg_options),
                           args.checkpoint)]
    root = osp.commonpath([osp.abspath(path) for path in args.runs])
    return [run_from_dir(run_dir, root) for run_dir in find_run_dirs(args.runs)]


def load_model(cfg, config: str, checkpoint: str):
    """The model of ``cfg`` with the weights of ``checkpoint``, loaded strictly; a deployable
    checkpoint given for a NetAug model, or any mismatch, is an error naming the fix."""
    from netaug_det.models.builders import build_detector
    from netaug_det.models.netaug.supernet import netaug_modules
    from netaug_det.utils.checkpoint import explain_mismatch, load_checkpoint_file, shape_relation

    model = build_detector(cfg)
    source = load_checkpoint_file(checkpoint)
    state = {name.removeprefix('module.'): tensor
             for name, tensor in source.get('state_dict', source).items()
             if not name.startswith(('distiller.', 'module.distiller.'))}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
        own = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
        deployable = 'exported_from' in source.get('meta', {}) or \
            shape_relation(shapes, own) == 'narrower'
        if netaug_modules(model) and deployable:
            example = osp.join(osp.dirname(checkpoint), 'epoch_N.pth')
            raise ValueError(
                f'{checkpoint} holds the plain (deployable) base model, not the NetAug '
                f'supernet of {config}: the augmented models live only in the run\'s training '
                f'checkpoints. Pass one of them (e.g. {example}, the file last_checkpoint '
                'names), or score this file alone with the baseline config') from None
        raise ValueError(explain_mismatch(checkpoint, model, config)) from None
    return model


def split_cfg(run: RunToScore, split: str):
    """The config of ``run`` whose test dataloader and evaluator read ``split`` (the experiment
    tools' train split: the test pipeline on the training images), config variables applied."""
    from netaug_det.experiments.runs import RunSpec, load_merged, split_options
    from netaug_det.utils.config import apply_config_variables

    spec = RunSpec(run.config, run.config, run.run_dir or '', run.seed or 0, run.options)
    cfg = load_merged(run.config, [*run.options, *split_options(spec, split)])
    apply_config_variables(cfg)
    return cfg


def eval_split(cfg, seed: int):
    """The :class:`EvalSplit` of ``cfg``'s test dataloader and evaluator (batches read once)."""
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner

    from netaug_det.analysis.submodels import EvalSplit

    loader = Runner.build_dataloader(cfg.test_dataloader, seed=seed)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo
    return EvalSplit(list(loader), evaluator, len(loader.dataset))


def recalibration_batches(cfg, count: int, seed: int) -> List[dict]:
    """The first ``count`` batches of ``cfg``'s training dataloader (its training pipeline),
    seeded; all of them when it has fewer."""
    from itertools import islice

    from mmengine.runner import Runner, set_random_seed

    set_random_seed(seed)
    return list(islice(Runner.build_dataloader(cfg.train_dataloader, seed=seed), count))


def score_run(run: RunToScore, args: argparse.Namespace) -> dict:
    """Scores one run; its record for ``submodels.json``."""
    from mmengine.registry import DefaultScope

    from netaug_det.analysis.submodels import evaluate_submodels, preprocessed_inputs
    from netaug_det.experiments.runs import METRIC_KEYS, evaluator_type, percent
    from netaug_det.models.netaug.supernet import netaug_modules

    cfg = split_cfg(run, 'val')
    metric_key = METRIC_KEYS[evaluator_type(cfg)]
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        model = load_model(cfg, run.config, run.checkpoint)
        netaug = bool(netaug_modules(model))
        if args.samples and not netaug and not args.runs:
            raise ValueError(
                f'--samples {args.samples}: {run.config} builds a plain model (no NetAug '
                'modules), which has no augmented models to draw; drop --samples (its base is '
                'scored either way), or pass the NetAug config and its training checkpoint')
        samples = (DEFAULT_SAMPLES if args.samples is None else args.samples) if netaug else 0
        batches = recalibration_batches(cfg, args.recalib_batches, args.seed)
        splits = {split: eval_split(split_cfg(run, split), args.seed) for split in args.splits}
        scores = evaluate_submodels(model, splits, preprocessed_inputs(model, batches),
                                    samples, args.seed, args.draw_mode)
    return dict(
        label=run.label, run_dir=run.run_dir, config=run.config, options=list(run.options),
        checkpoint=run.checkpoint, seed=run.seed, netaug=netaug, metric=metric_key,
        recalib_batches=len(batches),
        recalib_images=sum(len(batch['inputs']) for batch in batches),
        result_ap50=run.result_ap50,
        scores=[dict(name=s.name, bn=s.bn, width=round(s.width, 4),
                     ap50={split: round(percent(metric_key, metrics[metric_key]), 2)
                           for split, metrics in s.metrics.items()})
                for s in scores])


def row_kinds(record: dict) -> Dict[str, List[dict]]:
    """The scores of a run record by table row: base (tracked), base (recalibrated), widest,
    and the random draws together."""
    kinds: Dict[str, List[dict]] = {}
    for score in record['scores']:
        kind = 'random draws' if score['name'].startswith('random') else score['name']
        kinds.setdefault(f'{kind} ({score["bn"]} BN)', []).append(score)
    return kinds


def run_table(record: dict, splits: Sequence[str]) -> str:
    """The markdown table of one run: every sub-model, and the mean of the random draws."""
    from netaug_det.experiments.stats import markdown_table

    rows = [[score['name'], score['bn'], f'{score["width"]:.2f}',
             *[f'{score["ap50"][split]:.1f}' for split in splits]] for score in record['scores']]
    draws = row_kinds(record).get('random draws (recalibrated BN)', [])
    if draws:
        rows.append([f'random, mean of {len(draws)}', 'recalibrated',
                     f'{fmean([d["width"] for d in draws]):.2f}',
                     *[f'{fmean([d["ap50"][split] for d in draws]):.1f}' for split in splits]])
    return markdown_table(['model', 'BN statistics', 'width', *[f'{s} AP50' for s in splits]],
                          rows)


def summary_table(records: Sequence[dict], splits: Sequence[str]) -> str:
    """Each method (label) and row kind over its runs: mean ± sd (n) of the per-run values (the
    random draws: each run's mean over its draws)."""
    from netaug_det.experiments.stats import markdown_table, summarize

    cells: Dict[tuple, Dict[str, List[float]]] = {}
    for record in records:
        for kind, scores in row_kinds(record).items():
            cell = cells.setdefault((record['label'], kind), {split: [] for split in splits})
            for split in splits:
                cell[split].append(fmean([score['ap50'][split] for score in scores]))
    rows = [[label, kind, *[summarize(values[split]).format() for split in splits]]
            for (label, kind), values in cells.items()]
    return markdown_table(['method', 'model', *[f'{s} AP50' for s in splits]], rows)


def consistency_note(records: Sequence[dict]) -> str:
    """Whether the base with tracked BN scores what each run's ``result.json`` reports."""
    differing = [f'{record["run_dir"]} {split}: {base["ap50"][split]:.2f} here, {reported:.2f} '
                 'in result.json'
                 for record in records if record['result_ap50']
                 for base in record['scores'][:1]
                 for split, reported in record['result_ap50'].items()
                 if split in base['ap50'] and abs(base['ap50'][split] - reported) > 0.005]
    if not any(record['result_ap50'] for record in records):
        return ''
    if not differing:
        return ('The base with tracked BN scores exactly what each run\'s result.json reports '
                '(its deployable model tested with tools/test.py).\n')
    return ('The base with tracked BN differs from the runs\' result.json (the code or the '
            'data changed since they ran?): ' + '; '.join(differing) + '\n')


def report(records: Sequence[dict], args: argparse.Namespace) -> str:
    """The markdown report: settings, the summary over seeds (several runs) and each run."""
    lines = [
        '# Base and augmented models\n',
        f'AP50 (%) from each config\'s evaluator on {", ".join(args.splits)}; BatchNorm '
        f'statistics "tracked" as training left them, "recalibrated" on '
        f'{records[0]["recalib_batches"]} training batches ({records[0]["recalib_images"]} '
        f'images, training pipeline, seed {args.seed}); random draws in {args.draw_mode!r} '
        f'mode, seed {args.seed}; width: active over base channels of the NetAug modules.\n',
        consistency_note(records)
    ]
    if len(records) > 1:
        lines += ['## Over seeds: mean ± sd (n)\n', summary_table(records, args.splits)]
    for record in records:
        title = record['run_dir'] or record['checkpoint']
        options = ' with ' + ' '.join(record['options']) if record['options'] else ''
        lines += [f'## {title}\n', f'Config `{record["config"]}`{options}, checkpoint '
                  f'`{record["checkpoint"]}`.\n', run_table(record, args.splits)]
    return '\n'.join(line for line in lines if line)


def output_paths(args: argparse.Namespace) -> Dict[str, str]:
    """``submodels.md`` and ``submodels.json`` in the output folder."""
    out = args.out or osp.join(osp.dirname(args.checkpoint),
                               f'submodels_{osp.splitext(osp.basename(args.checkpoint))[0]}')
    return {ext: osp.join(out, f'submodels.{ext}') for ext in OUT_FILES}


def settings_of(args: argparse.Namespace) -> dict:
    """The settings a report's scores depend on (beyond each run's files)."""
    return dict(splits=args.splits, seed=args.seed, recalib_batches=args.recalib_batches,
                draw_mode=args.draw_mode, samples=args.samples)


def run_key(run: RunToScore) -> list:
    """What identifies a scored run: its config, overrides and the checkpoint's content."""
    with open(run.checkpoint, 'rb') as f:
        digest = hashlib.file_digest(f, 'sha256').hexdigest()
    return [run.config, list(run.options), run.checkpoint, digest]


def earlier_records(path: str, settings: dict) -> Dict[str, dict]:
    """The run records of an earlier report at ``path`` made with the same ``settings``, by
    :func:`run_key` (as json), so that scoring more runs into one ``--out`` reuses them."""
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        earlier = json.load(f)
    if earlier.get('settings') != settings:
        return {}
    return {json.dumps(record['key']): record for record in earlier['runs'] if 'key' in record}


def main(argv: Optional[List[str]] = None) -> None:
    """Scores the runs (reusing those an earlier report in ``--out`` scored with the same
    settings and checkpoint) and writes the report; a user error ends with ``error: ...``."""
    args = parse_args(argv)
    from netaug_det.utils.cli import user_errors
    from netaug_det.utils.outputs import check_outputs

    settings = settings_of(args)
    with user_errors():
        runs = runs_to_score(args)
        paths = output_paths(args)
        check_outputs({f'--out ({ext})': (path, OUT_FILES[ext]) for ext, path in paths.items()},
                      [path for run in runs for path in (run.config, run.checkpoint)])
        earlier = earlier_records(paths['json'], settings)
        records = []
        for index, run in enumerate(runs):
            key = run_key(run)
            done = earlier.get(json.dumps(key))
            print(f'[{index + 1}/{len(runs)}] {run.run_dir or run.checkpoint}'
                  + (': scored before, read back' if done else ''), flush=True)
            records.append(done or dict(score_run(run, args), key=key))
    text = report(records, args)
    os.makedirs(osp.dirname(paths['md']), exist_ok=True)
    with open(paths['md'], 'w') as f:
        f.write(text)
    with open(paths['json'], 'w') as f:
        json.dump(dict(settings=settings, runs=records), f, indent=2)
    print(text)
    print(f'written: {paths["md"]}, {paths["json"]}')


if __name__ == '__main__':
    main()
