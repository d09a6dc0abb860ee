# mmdet's runtime (default_scope='mmdet', hooks, logging, visualizer) plus the netaug_det plugins.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['netaug_det'], allow_failed_imports=False)

# Long schedules: keep a checkpoint every 10 epochs (and the last three only).
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
