"""Probe engine: find the probe sites of any PyTorch model and measure them.

This package imports nothing else of the project's, so it works on any model.
"""

from variability.probes.activations import (
    Activation,
    activation_for_module,
    register_activation,
    register_function,
)

__all__ = [
    "Activation",
    "activation_for_module",
    "register_activation",
    "register_function",
]
