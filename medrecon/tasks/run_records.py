"""What a folder run leaves while and after it works: claims on outputs in flight, and its JSON-lines log.

- :func:`claim`: ``.NAME.claim`` beside an output, holding ``HOST-PID``, created exclusively; a
  live holder keeps others off the output, a claim whose process on this host has ended is taken
  over (claims of other hosts are never judged ended: their process may run).
- :class:`RunLog`: ``OUT.logs/run_<UTC time>_rank<R>.jsonl``, each record flushed as written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

VERSIONED = ("medrecon", "torch", "numpy", "monai", "sigpy", "astra-toolbox", "h5py", "nibabel", "pydicom", "scikit-image")


def _process_alive(tag: str) -> bool:
    """Whether the ``HOST-PID`` of a claim may still run (another host's always may)."""
    host, _, pid = tag.strip().rpartition("-")
    if host != socket.gethostname() or not pid.isdigit():
        return bool(tag.strip())
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextlib.contextmanager
def claim(out: Path) -> Iterator[bool]:
    """Claim ``out`` for this process while its volume is computed; yields False when a live process holds it."""
    path = out.with_name(f".{out.name}.claim")
    tag = f"{socket.gethostname()}-{os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = path.read_text()
            except FileNotFoundError:
                continue
            if _process_alive(holder):
                yield False
                return
            path.unlink(missing_ok=True)  # a killed run's claim
            continue
        with os.fdopen(fd, "w") as f:
            f.write(tag)
        try:
            yield True
        finally:
            path.unlink(missing_ok=True)
        return
    yield False


def drop_stale_claim(out: Path) -> None:
    """Remove ``out``'s claim when the process that made it (on this host) has ended."""
    path = out.with_name(f".{out.name}.claim")
    with contextlib.suppress(FileNotFoundError):
        if not _process_alive(path.read_text()):
            path.unlink(missing_ok=True)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in VERSIONED:
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def log_folder(out: Path) -> Path:
    """Where the run logs of the output folder ``out`` go: ``OUT.logs`` beside it."""
    return out.with_name(out.name + ".logs")


class RunLog:
    """The JSON-lines log of one rank's folder run (each record flushed as written, so a killed run keeps its log)."""

    def __init__(self, out: Path, args: argparse.Namespace, rank: int, size: int, assigned: int, total: int) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.path = log_folder(out) / f"run_{stamp}_rank{rank}.jsonl"
        self.path.parent.mkdir(exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        settings = {k: _jsonable(v) for k, v in vars(args).items() if k != "func"}
        self.write(
            event="start",
            argv=sys.argv,
            settings=settings,
            versions=_versions(),
            host=socket.gethostname(),
            pid=os.getpid(),
            rank=rank,
            world_size=size,
            inputs=total,
            assigned=assigned,
        )

    def write(self, **record) -> None:
        self._file.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
