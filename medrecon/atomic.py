"""Write outputs atomically: to a temporary name in the target folder, renamed on success.

A failed run (exception, Ctrl-C) therefore never leaves a partial output file behind. A run killed
outright (SIGKILL, power loss) can leave its temporary (``.NAME.HOST-PID.XXXX.partial…``); the next
write to ``NAME`` removes every such leftover whose process on this host has ended
(:func:`remove_stale_temporaries`). Outputs get the permissions the umask gives a new file (the
temporary files are created private). Before any work, every command also checks that its
outputs are none of its inputs (:func:`check_not_an_input`): an atomic rename over an input would
silently replace it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
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


def owner_tag() -> str:
    """``HOST-PID`` of this process, as temporary names carry it (no dots: the name's separator)."""
    return f"{socket.gethostname().replace('.', '_')}-{os.getpid()}"


def process_ended(tag: str) -> bool:
    """Whether the ``HOST-PID`` that made a temporary is a process of this host that no longer runs.

    Temporaries of other hosts (a shared file system) are never judged ended: their process may run.
    """
    host, _, pid = tag.rpartition("-")
    if host != socket.gethostname().replace(".", "_") or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by another user
        return False
    return False


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporaries of ``target`` left by killed runs of this host; returns what was removed.

    A temporary in flight in a live process (another rank writing the same name) is kept.
    """
    removed = []
    for name in glob.glob(f".{glob.escape(target.name)}.*.partial*", root_dir=target.parent):
        tag = name[len(target.name) + 2 :].split(".", 1)[0]
        if process_ended(tag):
            stale = target.parent / name
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
            removed.append(stale)
    return removed


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: Path) -> None:
    """Give ``path`` (a file, or a folder and everything in it) the permissions a new one gets under the umask."""
    mask = _umask()
    if path.is_dir():
        for sub in path.rglob("*"):
            os.chmod(sub, (0o777 if sub.is_dir() else 0o666) & ~mask)
        os.chmod(path, 0o777 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)


def temporary_beside(target: Path, folder: bool = False) -> Path:
    """Create a private temporary file (or folder) next to ``target``, named ``.NAME.HOST-PID.XXXX.partial…``.

    A file keeps ``target``'s suffixes (``.nii.gz``, ``.h5``) so writers that infer the format from
    the name keep working. Leftovers of killed runs on ``target`` are removed first.
    """
    remove_stale_temporaries(target)
    prefix = f".{target.name}.{owner_tag()}."
    if folder:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=".partial", dir=target.parent))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=f".partial{''.join(target.suffixes)}", dir=target.parent)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (:func:`temporary_beside`); on success rename it to ``path``, else delete it."""
    target = check_output_path(path)
    tmp_path = temporary_beside(target)
    try:
        yield tmp_path
        follow_umask(tmp_path)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``path`` (an empty or missing folder); on success it replaces ``path`` in one rename, else it is removed."""
    target = Path(path)
    tmp = temporary_beside(target, folder=True)
    try:
        yield tmp
        follow_umask(tmp)
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
