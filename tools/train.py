"""Train a detector (or classifier) from a config, like mmdet's tools/train.py.

Entry point of ``python -m netaug_det.tools.train`` (see its module for the arguments).
"""
from netaug_det.tools.train import main

if __name__ == '__main__':
    main()
