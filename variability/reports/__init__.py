"""Reports: figures (seaborn on the Agg backend) and the HTML page around them."""

import matplotlib

matplotlib.use("Agg")  # reports never need a display; set before pyplot is imported anywhere
