"""medrecon's error family: what the user gave is wrong, not the code.

The command line prints these as one line on stderr and exits 2; every other exception is a bug
and keeps its traceback (exit 1). Each subclass also derives from the built-in type a library
caller would expect (``ValueError``, ``ImportError``), so ``except ValueError`` keeps working.

- :class:`InputFileError`: a file (or a file's field) that cannot be used as given.
- :class:`ArgumentError`: an argument, option or setting outside what is accepted.
- :class:`MissingDependencyError`: an optional piece is not installed; names the pip command.
"""

from __future__ import annotations

from pathlib import Path


class MedreconError(Exception):
    """Base of the errors caused by input (files, arguments, configs, environment)."""


class InputFileError(MedreconError, ValueError):
    """A file that cannot be used as given.

    The message reads ``"<file>: <field>: expected <expected>, got <received>"`` so a user sees in one
    line what is wrong and where.
    """

    def __init__(self, path: str | Path, field: str, expected: str, received: str) -> None:
        self.path = str(path)
        self.field = field
        self.expected = expected
        self.received = received
        super().__init__(f"{self.path}: {field}: expected {expected}, got {received}")


class ArgumentError(MedreconError, ValueError):
    """An argument or setting outside what is accepted; the message names it, what was expected and what was received."""


class MissingDependencyError(MedreconError, ImportError):
    """A package medrecon needs for this step is not importable.

    Args:
        module: the import name that failed (``astra``).
        pip_name: what to install (``astra-toolbox``).
        purpose: what needs it (``CT projectors``).
    """

    def __init__(self, module: str, pip_name: str, purpose: str) -> None:
        self.module, self.pip_name = module, pip_name
        super().__init__(f"{purpose} need the package '{module}', which is not installed: pip install {pip_name}", name=module)


# import name -> pip name, for the dependencies a broken or partial install can lack
PIP_NAMES = {
    "astra": "astra-toolbox",
    "sigpy": "sigpy",
    "pydicom": "pydicom",
    "h5py": "h5py",
    "nibabel": "nibabel",
    "monai": "monai",
    "einops": "einops",
    "skimage": "scikit-image",
    "safetensors": "safetensors",
    "yaml": "pyyaml",
    "pydantic": "pydantic",
    "matplotlib": "matplotlib",
    "pylibjpeg": "pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle",
    "bm3d": "bm3d",
    "pywt": "PyWavelets",
    "tifffile": "tifffile",
    "PIL": "pillow",
}


def missing_dependency(err: ImportError) -> MissingDependencyError | None:
    """The :class:`MissingDependencyError` for an ``ImportError`` of a known third-party package, else ``None``."""
    name = (getattr(err, "name", None) or "").split(".")[0]
    if name not in PIP_NAMES:
        return None
    return MissingDependencyError(name, PIP_NAMES[name], "this command's steps")
