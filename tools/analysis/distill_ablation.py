"""The distillation ablation on the demo data (teacher KD, NetAug, self-RKD), over seeds.

Entry point of ``python -m netaug_det.tools.distill_ablation`` (see its module for arguments).
"""
from netaug_det.tools.distill_ablation import main

if __name__ == '__main__':
    main()
