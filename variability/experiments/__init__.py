"""Many models at once: the comparison of FC, LCW and Han, and the papers' reproductions.

This layer sits above ``runs``, ``reports`` and ``loading`` and below the command line: it plans
the models, runs them (in this process, in worker processes, or on a Ray cluster), and reads
their results back for the reports. The command line only parses arguments and prints.

    jobs.py          the job interface (submit, as_completed, cancel), executors, the local pools
    in_job.py        what a running job asks of its engine: where to write, progress messages
    ray_pool.py      the Ray executor and pool: each model a Ray task (the optional extra)
    run_files.py     run directories carried home from workers without a shared filesystem
    executors.py     the executor by name (``--executor local|ray``)
    comparison/      ``variability compare``: settings, plan, folder, cells, run, report data
    reproductions/   ``variability reproduce NAME``: one module per published result
"""
