"""The output guard of every tool that writes a file: no output destroys an input.

A tool calls :func:`check_outputs` with its outputs (option name, path, the suffixes of the
format it writes) and its inputs before it reads or writes anything. An output that is the same
file as an input, a symlink or hard link to one included (:func:`os.path.samefile`), or as
another output, is refused, as is an output whose suffix does not name the format written (an
ONNX graph written to ``model.pth`` would replace a checkpoint and pass as one). The message
names the option, the file and the fix.
"""
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

# option name -> (path or None, accepted suffixes, lower case with the dot; empty: any)
Outputs = Dict[str, Tuple[Optional[str], Sequence[str]]]


def same_file(a: str, b: str) -> bool:
    """Whether the paths name one file: equal real paths (symlinks resolved), or, when both
    exist, one inode (hard links)."""
    if osp.exists(a) and osp.exists(b):
        return osp.samefile(a, b)
    return osp.realpath(a) == osp.realpath(b)


def suggested_name(path: str, suffix: str) -> str:
    """``path`` renamed to ``suffix`` beside its input: ``ckpt.pth`` -> ``ckpt_out.onnx``."""
    return f'{osp.splitext(path)[0]}_out{suffix}'


def check_outputs(outputs: Outputs, inputs: Sequence[Optional[str]]) -> None:
    """Refuses outputs that would overwrite an input or each other, or misname their format.

    Args:
        outputs (dict): ``{option: (path, suffixes)}``, e.g. ``{'--out': (out, ('.onnx', ))}``;
            a None path (an optional output not asked for) is skipped.
        inputs (Sequence[str | None]): The files the tool reads (None entries are skipped).

    Raises:
        ValueError: naming the option, the file it would overwrite and the fix.
    """
    given = [(option, path, suffixes) for option, (path, suffixes) in outputs.items() if path]
    for option, path, suffixes in given:
        if osp.isdir(path):
            raise ValueError(f'{option} {path} is a folder; pass a file name, e.g. '
                             f'{osp.join(path, "out" + (suffixes[0] if suffixes else ""))}')
        if suffixes and not path.lower().endswith(tuple(suffixes)):
            raise ValueError(
                f'{option} {path}: this output is written as {" or ".join(suffixes)}, and its '
                f'name says otherwise (it could replace a file of another kind and pass as '
                f'one); name it e.g. {suggested_name(path, suffixes[0])}. Nothing was written')
        for source in filter(None, inputs):
            if same_file(path, source):
                link = '' if osp.abspath(path) == osp.abspath(source) else \
                    ' (through a link)'
                raise ValueError(
                    f'{option} {path} is the input {source}{link}: writing it would destroy '
                    f'the input. Pass another output file, e.g. '
                    f'{suggested_name(source, suffixes[0] if suffixes else ".out")}. '
                    'Nothing was written')
    for i, (option, path, _) in enumerate(given):
        for other_option, other, _ in given[i + 1:]:
            if same_file(path, other):
                raise ValueError(f'{option} and {other_option} are the same file ({path}); '
                                 'pass two different files. Nothing was written')
