"""MRI physics: Cartesian SENSE, masks, coil sensitivities."""

from .sense import FourierOperator, MaskOperator, SenseOperator

__all__ = ["FourierOperator", "MaskOperator", "SenseOperator"]
