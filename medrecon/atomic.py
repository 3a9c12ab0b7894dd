"""Write outputs atomically: to a temporary name in the target folder, renamed on success.

A failed run (exception, Ctrl-C) therefore never leaves a partial output file behind. Before any
work, every command also checks that its outputs are none of its inputs
(:func:`check_not_an_input`): an atomic rename over an input would silently replace it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
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


def _resolved(path: Path) -> Path:
    """``path`` made absolute with symbolic links resolved (as far as it exists)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a link loop: compare the absolute path
        return Path(os.path.abspath(path))


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file or folder: equal resolved paths, or one inode (hard links)."""
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check_not_an_input(out: str | Path, inputs: Iterable[tuple[str, str | Path | None]], option: str = "--out") -> Path:
    """Refuse an output that is one of the command's inputs or lies inside an input folder.

    Outputs are renamed into place (:func:`atomic_output`), so writing to an input would replace
    it without a trace; a file or folder written inside an input folder (a DICOM series, read as a
    whole) would change that input. Paths are compared resolved (symbolic links, ``..``) and, where
    both exist, by inode (:func:`os.path.samefile`: hard links).

    Args:
        out: the output file or folder.
        inputs: ``(option, path)`` for every input, e.g. ``[("--input", args.input)]``; ``None``
            paths (inputs not given) are skipped.
        option: the option (or setting) that named ``out``.

    Returns:
        ``out`` as a :class:`~pathlib.Path`.

    Raises:
        InputFileError: ``out`` is an input, or inside an input folder.
    """
    target = Path(out)
    resolved = _resolved(target)
    for label, path in inputs:
        if path is None or str(path) == "":
            continue
        src = Path(path)
        if _same_file(target, src):
            raise InputFileError(target, option, "a path that is not one of the inputs", f"the same file as {label} ({src})")
        if src.is_dir() and resolved.is_relative_to(_resolved(src)):
            raise InputFileError(
                target,
                option,
                "a path outside the input folders (they are read whole)",
                f"a path inside the folder of {label} ({src})",
            )
    return target


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
