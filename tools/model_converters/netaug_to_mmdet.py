"""Convert an official NetAug ImageNet checkpoint into a netaug_det backbone checkpoint.

Entry point of ``python -m netaug_det.tools.netaug_to_mmdet`` (see its module for the arguments).
"""
from netaug_det.tools.netaug_to_mmdet import main

if __name__ == '__main__':
    main()
