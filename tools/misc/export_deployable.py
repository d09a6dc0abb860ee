"""Export a NetAug checkpoint as a checkpoint of the plain baseline model.

Entry point of ``python -m netaug_det.tools.export_deployable`` (see its module for the arguments).
"""
from netaug_det.tools.export_deployable import main

if __name__ == '__main__':
    main()
