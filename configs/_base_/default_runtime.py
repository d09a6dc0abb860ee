# mmdet's runtime (default_scope='mmdet', hooks, logging, visualizer) plus the netaug_det plugins.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['netaug_det'], allow_failed_imports=False)
# netaug_det's runner: config variables (input_size, data_root, backbone checkpoints) follow
# --cfg-options, data and checkpoints are checked before the first step; mmdet's tools/train.py
# and mim honour it (netaug_det/engine/runner.py).
runner_type = 'NetAugDetRunner'

# CPU memory: glibc keeps freed memory for reuse instead of returning it to the system between
# steps, which made CPU training steps 3% to 28% faster (netaug_det/utils/allocator.py;
# docs/netaug_training.md); malloc_cfg=None keeps glibc's defaults.
env_cfg = dict(malloc_cfg=dict(mmap_threshold=1 << 30, trim_threshold=1 << 30))

# Long schedules: keep a checkpoint every 10 epochs (and the last three only).
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
# Average the logged totals of NetAug's base and auxiliary losses over the logging window, as
# mmengine does for every *loss* entry.
log_processor = dict(mean_pattern=r'.*(loss|time|data_time|grad_norm|_total|_width).*')
