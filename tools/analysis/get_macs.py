"""Params and MACs of a config's deployable model.

Entry point of ``python -m netaug_det.tools.get_macs`` (see its module for the arguments).
"""
from netaug_det.tools.get_macs import main

if __name__ == '__main__':
    main()
