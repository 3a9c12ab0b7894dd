"""Every LinearOperator the package defines passes the shipped contract checks.

The operators are found by importing every module of medrecon and walking the subclasses of
LinearOperator, so a new operator without an entry in CASES fails here until it is checked.
"""

import importlib
import pkgutil

import pytest
import torch

import medrecon
from medrecon.physics.ct import CTGeometry, CTProjector
from medrecon.physics.gradient import FiniteDifference2D, SliceDifference
from medrecon.physics.linop import Diagonal, Identity, LinearOperator, RepeatItems
from medrecon.physics.mri.sense import FourierOperator, MaskOperator, SenseOperator
from medrecon.physics.pet import EmissionOperator
from medrecon.physics.testing import check_operator


def _all_subclasses(cls):
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _all_subclasses(sub)
    return out


def _sense():
    g = torch.Generator().manual_seed(0)
    maps = torch.complex(torch.randn(2, 3, 12, 10, generator=g), torch.randn(2, 3, 12, 10, generator=g))
    mask = (torch.rand(1, 1, 1, 10, generator=g) > 0.5).float()
    return SenseOperator(maps, mask)


def _ct():
    return CTProjector(CTGeometry.create("parallel", (16, 16), (1.0, 1.0), 12))


def _emission():
    geom = CTGeometry.create("parallel", (16, 16), (2.0, 2.0), 12)
    m = torch.rand((2, *geom.sino_shape), generator=torch.Generator().manual_seed(1)) + 0.1
    return EmissionOperator(geom, m)


# class name -> (operator factory, input shape, dtype, tolerance or None)
CASES = {
    "Identity": (lambda: Identity(), (2, 5, 4), torch.complex64, None),
    "FourierOperator": (lambda: FourierOperator(), (2, 8, 6), torch.complex64, None),
    "MaskOperator": (lambda: MaskOperator(torch.tensor([1.0, 0.0, 1.0, 1.0])), (3, 4), torch.complex64, None),
    "SenseOperator": (_sense, (2, 12, 10), torch.complex64, None),
    "FiniteDifference2D": (lambda: FiniteDifference2D(), (2, 9, 7), torch.float64, None),
    "RepeatItems": (lambda: RepeatItems(_sense(), 3), (6, 12, 10), torch.complex64, None),
    "Diagonal": (lambda: Diagonal(torch.linspace(0.5, 2.0, 7)), (3, 7), torch.complex64, None),
    "SliceDifference": (lambda: SliceDifference(2, anchored=True), (8, 5, 4), torch.float64, None),
    "_Adjoint": (lambda: _sense().H, (2, 3, 12, 10), torch.complex64, None),
    "_Composition": (
        lambda: MaskOperator(torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])) @ FourierOperator(),
        (2, 8, 6),
        torch.complex64,
        None,
    ),
    "CTProjector": (_ct, (2, 16, 16), torch.float32, 1e-4),
    "EmissionOperator": (_emission, (2, 16, 16), torch.float32, 1e-4),
}


def _import_everything():
    for mod in pkgutil.walk_packages(medrecon.__path__, "medrecon."):
        if ".cli" not in mod.name and not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)


def test_every_operator_has_a_contract_check():
    _import_everything()
    defined = {c.__name__ for c in _all_subclasses(LinearOperator) if c.__module__.startswith("medrecon.")}
    assert defined <= set(CASES), f"operators without a contract check here: {sorted(defined - set(CASES))}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_operator_contract(name):
    make, shape, dtype, rtol = CASES[name]
    errs = check_operator(make(), shape, dtype, **({} if rtol is None else {"rtol": rtol}))
    assert all(e >= 0 for e in errs.values())


def test_repeat_items_equals_the_operator_on_repeated_buffers():
    """RepeatItems(A, n) on item-major copies equals A built for the repeated items (the posterior engine's layout)."""
    op = _sense()
    g = torch.Generator().manual_seed(1)
    x = torch.complex(torch.randn(6, 12, 10, generator=g), torch.randn(6, 12, 10, generator=g))
    big = SenseOperator(op.maps.repeat_interleave(3, dim=0), op.mask)
    assert torch.allclose(RepeatItems(op, 3)(x), big(x), atol=1e-6)
    assert torch.allclose(RepeatItems(op, 3).normal(x), big.normal(x), atol=1e-5)
