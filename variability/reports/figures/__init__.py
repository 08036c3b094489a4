"""One function per figure. Each takes plain data (DataFrames, arrays), returns a matplotlib
Figure, or None when the data it needs is missing, so a report can skip it with a note."""
