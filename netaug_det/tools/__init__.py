"""Command-line tools, run as ``python -m netaug_det.tools.<name>`` from any directory (the
repository's ``tools/*.py`` are thin mmdet-style entry points to the same functions).

Training and testing: ``train``, ``test``. Experiments: ``run_demo`` (the main job),
``lr_grid``, ``compare_runs``, ``resolution_sweep``, ``distill_ablation``. Models and losses:
``get_macs``, ``tinyml_table1``, ``loss_terms``, ``export_deployable``, ``netaug_to_mmdet``.
Data: ``make_demo_data``, ``make_demo_imagefolder``, ``check_dataset``. Deployment:
``export_onnx``, ``test_onnx``, ``quantize_onnx``. Each parses its arguments before importing
torch or mmdet-heavy modules of its own.
"""
import warnings

# mmengine imports pkg_resources (and reloads it) to find installed packages; setuptools then
# warns every tool's user about its own deprecation. Only that message is silenced.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated as an API',
                        category=UserWarning)
