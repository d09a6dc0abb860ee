"""glibc malloc settings that keep freed CPU memory for reuse (``env_cfg.malloc_cfg``).

PyTorch's CPU tensors come from the C allocator. glibc serves an allocation above its mmap
threshold (dynamic, at most 32 MiB by default) with a fresh ``mmap`` and returns it to the system
when freed, and trims freed memory at the top of its heap: every training step then pays page
faults and the kernel's zeroing for the same activations and gradient buffers again. NetAug's
augmented passes have wider activations and full-width gradients of the supernet's weights, so
more of their tensors cross the threshold: on the 2-core development machine these settings made
a NetAug step of the MobileNetV2 detector (batch 8, 256x256) 28% (width phase) and 15% (expand
phase) faster, and the baselines 3% to 7% (``docs/netaug_training.md``, "Training cost and its
knobs"). PyTorch's
performance guide recommends jemalloc or tcmalloc for the same reason; these two settings get the
same reuse from glibc without another library. The process keeps its peak memory instead of
giving it back between steps.
"""
import ctypes
import platform
from typing import Optional

# mallopt parameter numbers, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def tune_glibc_malloc(mmap_threshold: int = 1 << 30,
                      trim_threshold: int = 1 << 30) -> Optional[str]:
    """Sets glibc's mmap and trim thresholds (bytes, at most ``2**31 - 1``) for this process and
    the processes it forks later.

    Returns None when applied, else why not (not glibc, or glibc refused a value); nothing
    changes then.
    """
    for name, value in (('mmap_threshold', mmap_threshold), ('trim_threshold', trim_threshold)):
        if not 0 <= value < 2**31:
            raise ValueError(f'malloc_cfg.{name} must be between 0 and 2**31 - 1 bytes, got '
                             f'{value}')
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return f'the C library is not glibc ({platform.system()} {platform.libc_ver()[0]})'
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    # The mmap threshold first: a refused one leaves everything as it was (setting only the trim
    # threshold would fix the mmap threshold at its small starting value, which is slower).
    for param, value in ((M_MMAP_THRESHOLD, mmap_threshold), (M_TRIM_THRESHOLD, trim_threshold)):
        if mallopt(param, value) != 1:
            return f'glibc refused mallopt({param}, {value})'
    return None


def apply_malloc_cfg(env_cfg: dict) -> Optional[str]:
    """``tune_glibc_malloc(**env_cfg['malloc_cfg'])`` when the key is set and not None.

    Returns why a set ``malloc_cfg`` was not applied, else None.
    """
    malloc_cfg = env_cfg.get('malloc_cfg')
    return None if malloc_cfg is None else tune_glibc_malloc(**malloc_cfg)
