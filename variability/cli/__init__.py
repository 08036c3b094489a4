"""The ``variability`` command line: probe, train, compare, report."""
