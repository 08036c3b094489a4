"""``python -m variability`` runs the command line."""

from variability.cli.app import main

main()
