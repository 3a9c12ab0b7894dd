"""Write outputs atomically: to a temporary name in the target folder, renamed on success.

A failed run (exception, Ctrl-C) therefore never leaves a partial output file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InputFileError


def check_output_path(path: str | Path) -> Path:
    """Validate that ``path``'s folder exists (we never create folders silently).

    Raises:
        InputFileError: the parent folder does not exist or ``path`` is a folder.
    """
    p = Path(path)
    if not p.parent.exists():
        raise InputFileError(p, "output folder", "an existing folder", f"missing folder {p.parent}")
    if p.is_dir():
        raise InputFileError(p, "output path", "a file name", "an existing folder")
    return p


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``, else delete it.

    The temporary name keeps ``path``'s suffixes (``.nii.gz``, ``.h5``) so writers that infer the
    format from the name keep working.
    """
    target = check_output_path(path)
    suffix = "".join(target.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".partial{suffix}", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
