"""Print every term of a config's training loss on its first training batch, at initialisation.

Entry point of ``python -m netaug_det.tools.loss_terms`` (see its module for the arguments).
"""
from netaug_det.tools.loss_terms import main

if __name__ == '__main__':
    main()
