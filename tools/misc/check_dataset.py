"""Check a config's datasets and report every bad file with its name and reason.

Entry point of ``python -m netaug_det.tools.check_dataset`` (see its module for the arguments).
"""
from netaug_det.tools.check_dataset import main

if __name__ == '__main__':
    main()
