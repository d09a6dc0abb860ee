"""AP50 vs MACs of a baseline and a NetAug config over input resolutions and seeds.

Entry point of ``python -m netaug_det.tools.resolution_sweep`` (see its module for the arguments).
"""
from netaug_det.tools.resolution_sweep import main

if __name__ == '__main__':
    main()
