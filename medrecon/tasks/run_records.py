"""What a folder run leaves while and after it works: claims on outputs in flight, and its JSON-lines log.

- :func:`claim`: ``.NAME.claim`` beside an output, holding ``HOST-PID``, created with its content
  in one step (a hard link of a written temporary); a live holder keeps others off the output, a
  claim whose process on this host has ended is taken over by one process only (an atomic rename
  aside). Claims of other hosts are never judged ended (their process may run): the run reports
  them, and a user removes them by hand when that host's run is known dead.
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

from ..atomic import owner_tag, process_ended

VERSIONED = ("medrecon", "torch", "numpy", "monai", "sigpy", "astra-toolbox", "h5py", "nibabel", "pydicom", "scikit-image")


_HELD: set[Path] = set()  # the claims this process holds (a claim with our own tag that is not here is a dead namesake's)


def _process_alive(tag: str, path: Path | None = None) -> bool:
    """Whether the ``HOST-PID`` of a claim may still run (:func:`medrecon.atomic.process_ended`: another
    host's always may); an unreadable tag is dead, and so is our own tag on a claim this process does
    not hold (a restarted container with the same host name and PID)."""
    tag = tag.strip()
    host, _, pid = tag.rpartition("-")
    if not host or not pid.isdigit():
        return False
    if tag == owner_tag():
        return path is not None and path in _HELD
    return not process_ended(tag)


def _claim_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.claim")


def _try_create(path: Path, tag: str) -> bool:
    """Create the claim with its tag in one step (a temporary file hard-linked to the name); False if it exists."""
    tmp = path.with_name(f"{path.name}.{tag}.tmp")
    tmp.write_text(tag)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _take_over(path: Path) -> None:
    """Remove a dead claim; of several processes that see it dead, only the one whose rename succeeds removes it."""
    aside = path.with_name(f"{path.name}.{owner_tag()}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if _process_alive(aside.read_text(), path):  # replaced by a live claim between the check and the rename: put it back
        with contextlib.suppress(OSError):
            os.link(aside, path)
    aside.unlink(missing_ok=True)


@contextlib.contextmanager
def claim(out: Path) -> Iterator[bool]:
    """Claim ``out`` for this process while its volume is computed; yields False when a live process holds it."""
    path = _claim_path(out)
    for _ in range(3):
        if _try_create(path, owner_tag()):
            _HELD.add(path)
            try:
                yield True
            finally:
                _HELD.discard(path)
                path.unlink(missing_ok=True)
            return
        try:
            holder = path.read_text()
        except FileNotFoundError:
            continue
        if _process_alive(holder, path):
            break
        _take_over(path)  # a killed run's claim
    yield False


def claim_holder(out: Path) -> str | None:
    """The ``HOST-PID`` holding ``out``'s claim, or None."""
    try:
        return _claim_path(out).read_text().strip()
    except FileNotFoundError:
        return None


def drop_stale_claim(out: Path) -> bool:
    """Remove ``out``'s claim when the process that made it (on this host) has ended; True when one was removed."""
    path = _claim_path(out)
    with contextlib.suppress(FileNotFoundError):
        if not _process_alive(path.read_text(), path):
            _take_over(path)
            return True
    return False


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
    out = Path(os.path.abspath(out))
    return out.with_name(out.name + ".logs")


def done_entries(out: Path) -> dict[str, float]:
    """Seconds per output that the run logs of ``out`` record as written (the latest record wins)."""
    done: dict[str, float] = {}
    for log in sorted(log_folder(out).glob("run_*.jsonl")):
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, TypeError):
                rec = json.loads(line)
                if isinstance(rec, dict) and rec.get("event") == "entry" and rec.get("status") == "done":
                    done[str(rec.get("output"))] = float(rec.get("seconds", 0.0))
    return done


RUN_ONLY = ("input", "out", "quiet", "device", "func")  # settings that do not change what is written


def settings_changes(out: Path, args: argparse.Namespace) -> list[str]:
    """``key: before → now`` for each setting that differs from the last earlier run into ``out`` (none: empty)."""
    last = None
    for log in sorted(log_folder(out).glob("run_*.jsonl")):
        with contextlib.suppress(ValueError, OSError):
            first = json.loads(log.read_text(errors="replace").splitlines()[0])
            if isinstance(first, dict) and first.get("event") == "start" and isinstance(first.get("settings"), dict):
                last = first["settings"]
    if last is None:
        return []
    now = {k: _jsonable(v) for k, v in vars(args).items() if k not in RUN_ONLY}
    return [f"{k}: {last.get(k)!r} → {v!r}" for k, v in sorted(now.items()) if k not in RUN_ONLY and last.get(k) != v]


class RunLog:
    """The JSON-lines log of one rank's folder run (each record flushed as written, so a killed run keeps its log)."""

    def __init__(self, out: Path, args: argparse.Namespace, rank: int, size: int, assigned: int, total: int) -> None:
        out = Path(os.path.abspath(out))
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
