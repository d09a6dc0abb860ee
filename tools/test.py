"""Test a checkpoint with a config, like mmdet's tools/test.py.

Entry point of ``python -m netaug_det.tools.test`` (see its module for the arguments).
"""
from netaug_det.tools.test import main

if __name__ == '__main__':
    main()
