# The transfer experiment on real photographs (docs/real_data.md, "From each pretraining"): the
# out-of-domain classifiers of transfer_demo.py (generated shapes and textures; shared with that
# plan and read back from its work_dir where they finished there with exactly these settings),
# then plain detectors on the NEON tree crowns (configs/real/yolov3_mbv2_neon_trees.py, the demo
# detector and schedule on 321 real 128x128 tiles) from every classifier, each pretraining at its
# tuned detection learning rate over 3 detection seeds, and the detector from random init.
#   OMP_NUM_THREADS=1 python -m netaug_det.tools.run_plan configs/plans/transfer_real.py
_base_ = ['transfer_demo.py']
title = 'Transfer to real photographs: out-of-domain classifiers -> NEON tree detectors (CPU)'
work_dir = 'work_dirs/transfer_real'
# the tree photographs are fetched from the deepforest wheel (PyPI, MIT) through the package
# cache, the classification data generated; an out_dir holding anything else is refused
datasets = [
    dict(type='real_detection', name='neon_trees', out_dir='data/neon_trees'),
    dict(type='ood_classification', out_dir='data/transfer_cls', num_train=1200, num_val=240),
]
classifier = dict(work_dir='work_dirs/transfer_demo')
# lr_mults (0.5, 1, 2) now of the trees config's 0.008, tuned from random init on these trees.
# One detection seed per grid point picks noise here (detectors from one classifier differ by
# up to 10 AP50 between seeds on these 92 val tiles), so the grid runs 3; the picked point's
# seeds are stage 3's classifier-seed-0 detectors, read back there.
detection = dict(config='configs/real/yolov3_mbv2_neon_trees.py', grid_seeds=[0, 1, 2])
