"""``python -m variability`` runs the command line."""

from variability.cli.main import main

main()
