"""Reports: figures (seaborn on the Agg backend, set in style.py) and the HTML page around them.

Importing this package imports no plotting library: ``variability probe`` reads the diagnosis
(diagnosis.py) and draws nothing unless asked for a report.
"""
