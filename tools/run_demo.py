"""The main job: baseline vs NetAug on the demo data, over seeds, on CPU.

Entry point of ``python -m netaug_det.tools.run_demo`` (see its module for the arguments).
"""
from netaug_det.tools.run_demo import main

if __name__ == '__main__':
    main()
