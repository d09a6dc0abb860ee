"""Write the seeded demo detection dataset.

Entry point of ``python -m netaug_det.tools.make_demo_data`` (see its module for the arguments).
"""
from netaug_det.tools.make_demo_data import main

if __name__ == '__main__':
    main()
