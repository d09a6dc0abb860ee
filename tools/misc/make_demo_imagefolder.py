"""Write the seeded demo classification dataset (ImageNet's folder layout).

Entry point of ``python -m netaug_det.tools.make_demo_imagefolder`` (see its module for the
arguments).
"""
from netaug_det.tools.make_demo_imagefolder import main

if __name__ == '__main__':
    main()
