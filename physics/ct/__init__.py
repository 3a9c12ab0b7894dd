"""CT physics: geometries, ASTRA projectors as torch operators, transmission measurement model."""

from .geometry import CTGeometry
from .projector import CTProjector

__all__ = ["CTGeometry", "CTProjector"]
