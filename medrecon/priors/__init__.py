"""The priors shipped inside the package.

``medrecon/priors/<name>/`` holds ``prior.safetensors`` + ``prior.json`` (see
:func:`medrecon.diffusion.prior_folder.load_prior`) and a ``NOTICE.md`` naming the training data and
their licences (the demo brain slice, a training slice of the brain prior, lives in
:mod:`medrecon.datasets`). Located through :mod:`importlib.resources`, so this works from a source checkout,
an editable install and a wheel alike.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SHIPPED_PRIORS = ("brain", "ct", "mr2ct-head")


def shipped_prior_dir(name: str) -> Path:
    """Folder of the shipped prior ``name`` (one of :data:`SHIPPED_PRIORS`); it may lack weights in a source tree without them."""
    if name not in SHIPPED_PRIORS:
        raise ValueError(f"prior: expected one of {SHIPPED_PRIORS} or a folder, got {name!r}")
    return Path(str(files("medrecon"))) / "priors" / name
