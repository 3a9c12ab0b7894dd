"""Shared fixtures: synthetic MRI slices and the optional ../shared/data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip (with one reason) where torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (marker 'gpu')")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def assert_refused(argv: list, capsys, match: str, folder: Path) -> None:
    """``medrecon argv`` exits 2 with one error line containing ``match`` and leaves ``folder``'s listing as it was."""
    from medrecon.cli.main import main

    before = sorted(p.name for p in folder.iterdir())
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and match in err, err
    assert sorted(p.name for p in folder.iterdir()) == before


def shared_file(rel: str) -> Path:
    """Path of a file under ../shared/data; skips the test when it is absent."""
    p = SHARED_DATA / rel
    if not p.exists():
        pytest.skip(f"shared data file {p} not present")
    return p


@pytest.fixture(scope="session")
def phantom_mc() -> dict[str, torch.Tensor]:
    """A 128² Shepp-Logan with smooth phase, 8 birdcage coils, fully sampled k-space (complex64)."""
    import sigpy as sp
    import sigpy.mri

    n, c = 128, 8
    img = sp.shepp_logan((n, n)).astype(np.complex64)
    yy, xx = np.mgrid[:n, :n] / n
    img = img * np.exp(1j * (0.6 * xx + 0.3 * yy)).astype(np.complex64)
    maps = sigpy.mri.birdcage_maps((c, n, n)).astype(np.complex64)
    x = torch.from_numpy(img)
    s = torch.from_numpy(maps)
    from medrecon.physics.fft import fftc

    k = fftc(s * x)
    return {"image": x, "maps": s, "kspace": k}
