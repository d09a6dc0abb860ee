"""Compare methods over seeds: one table (mean ± sd, range, cost) and one bar chart.

Entry point of ``python -m netaug_det.tools.compare_runs`` (see its module for the arguments).
"""
from netaug_det.tools.compare_runs import main

if __name__ == '__main__':
    main()
