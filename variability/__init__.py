"""variability: where signal dies in a PyTorch network, and which architectures keep it alive."""

from variability.probes import Activation, register_activation, register_function

__version__ = "0.1.0"

__all__ = ["Activation", "__version__", "register_activation", "register_function"]
