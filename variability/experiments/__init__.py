"""Many models at once: the comparison of FC, LCW and Han, and the papers' reproductions.

This layer sits above ``runs``, ``reports`` and ``loading`` and below the command line: it plans
the models, runs them (in this process or in worker processes), and reads their results back
for the reports. The command line only parses arguments and prints.

    jobs.py          the job interface (submit, as_completed, cancel) and the local pools
    comparison/      ``variability compare``: settings, plan, folder, cells, run, report data
    reproductions/   ``variability reproduce NAME``: one module per published result
"""
