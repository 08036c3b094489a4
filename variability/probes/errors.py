"""Errors the probe engine raises for things a user can get wrong."""


class ProbeError(ValueError):
    """A probe cannot run as asked: the message says what was wrong and what to do."""


class NoProbeSitesError(ProbeError):
    """The model has no place where a known nonlinearity is applied, and none was named."""


class TraceError(ProbeError):
    """torch.fx could not trace the model while looking for functional activations."""
