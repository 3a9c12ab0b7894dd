"""medrecon.physics: forward models as torch LinearOperators (MRI, CT) and measurement models."""

from .linop import Identity, LinearOperator, RepeatItems

__all__ = ["LinearOperator", "Identity", "RepeatItems"]
