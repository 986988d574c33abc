"""Exception types shared across stages. Each message names the bad value and the fix."""


class TrtllmOciError(Exception):
    """Base class for errors a user can act on."""


class SpecError(TrtllmOciError, ValueError):
    """A release spec (YAML, CLI flags or flow parameters) is invalid."""


class UnknownShapeError(SpecError):
    """A shape name is not in the GPU shape catalog."""
