"""Each method at its own best learning rate: a learning-rate grid over seeds.

Entry point of ``python -m netaug_det.tools.lr_grid`` (see its module for the arguments).
"""
from netaug_det.tools.lr_grid import main

if __name__ == '__main__':
    main()
