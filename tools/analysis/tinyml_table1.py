"""Params and MACs of the TinyML backbones as ImageNet classifiers, against the paper's Table 1.

Entry point of ``python -m netaug_det.tools.tinyml_table1`` (see its module for the details).
"""
from netaug_det.tools.tinyml_table1 import main

if __name__ == '__main__':
    main()
