"""The memory budget: sizes declared by files, headers and arguments are checked before anything is allocated.

A forged ``.npy`` header (200000² float64 in a 1 kB file), an HDF5 dataset declared (10⁶, 10⁶), a
NIfTI or DICOM header with huge dimensions, or ``--views`` × detectors × slices would otherwise fail
deep in NumPy's allocator (or get the process killed). Readers and commands call
:func:`check_allocation` first: one line naming the source, the field, the need and the budget.

The budget is ``MEDRECON_MEMORY_LIMIT`` when set (bytes or a unit: ``500MB``, ``8GiB``, ``1.5G``;
KB/MB/GB/TB are powers of 1000, K/KiB, M/MiB, G/GiB, T/TiB of 1024), else the memory available
to this process: ``MemAvailable`` (``/proc/meminfo``; else free pages from ``os.sysconf``), or the
room left under the cgroup limit when smaller. A need counts the declared array plus the full-size
working copies the reader makes of it (float64 read and converted to float32: 12 bytes a value).
Arrays are checked one at a time and a run's other memory (solvers, networks) is not counted: the
check refuses what cannot fit; it does not promise that what passes will.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ArgumentError, InputFileError

ENV = "MEDRECON_MEMORY_LIMIT"
_UNITS = {"": 1, "b": 1, "k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30, "gib": 2**30, "t": 2**40, "tib": 2**40}
_UNITS.update({"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12})
_NAMES = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_CGROUP = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # v2
           ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))  # v1  # fmt: skip


def parse_size(text: str) -> int:
    """``"8GiB"``, ``"500MB"``, ``"1.5G"`` or ``"1048576"`` as bytes; :class:`ArgumentError` otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*", text)
    if m is None or m.group(2).lower() not in _UNITS or float(m.group(1)) <= 0:
        raise ArgumentError(f"{ENV}: expected a positive size such as 8GiB, 500MB or a byte count, got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def format_size(nbytes: float) -> str:
    """``298 GiB``, ``21.3 GiB``, ``512 B``: binary units, three significant digits."""
    unit = 0
    while abs(nbytes) >= 1023.5 and unit < len(_NAMES) - 1:
        nbytes, unit = nbytes / 1024, unit + 1
    return f"{nbytes:.0f} {_NAMES[unit]}" if unit == 0 or abs(nbytes) >= 99.95 else f"{nbytes:.3g} {_NAMES[unit]}"


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):  # missing, unreadable, or "max" (no limit)
        return None


def memory_budget() -> tuple[int, str]:
    """The budget in bytes and how it was found (for messages); see the module docstring."""
    if os.environ.get(ENV, "").strip():
        return parse_size(os.environ[ENV]), f"allowed by {ENV}"
    found = []
    try:
        with open("/proc/meminfo") as f:
            found += [int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):  # no such names on this system: no limit known
            found.append(2**63)
    for limit_file, usage_file in _CGROUP:
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None:
            found.append(max(limit - (usage or 0), 0))
    return min(found), "available"


def check_allocation(
    need: int | tuple[Sequence[int], object],
    source: str | Path | None,
    field: str,
    *,
    working: Sequence[object] = (),
    what: str = "an array",
) -> int:
    """Refuse, before allocating, a declared size above :func:`memory_budget`; returns the bytes counted.

    ``need`` is ``(shape, dtype)`` as declared, or bytes; ``working`` the dtypes of the full-size
    copies made from it; ``what`` names it in the message. ``source`` is the file that declares it:
    :class:`InputFileError` naming ``source`` and ``field``, or :class:`ArgumentError` naming
    ``field`` (an argument or setting) when ``source`` is ``None``.
    """
    if isinstance(need, tuple):
        shape, dtype = tuple(int(n) for n in need[0]), np.dtype(need[1])
        count = math.prod(shape)
        nbytes = count * (dtype.itemsize + sum(np.dtype(w).itemsize for w in working))
        counts = Counter(str(np.dtype(w)) for w in working)
        copies = "".join(f" + {n} {t} copies" if n > 1 else f" + a {t} copy" for t, n in counts.items())
        got = f"shape {shape} {dtype}{copies} = {format_size(nbytes)}"
    else:
        nbytes, got = int(need), format_size(int(need))
    budget, how = memory_budget()
    if nbytes <= budget:
        return nbytes
    expected = f"{what} that fits in memory (≤ {format_size(budget)} {how})"
    if source is None:
        raise ArgumentError(f"{field}: expected {expected}, got {got}")
    raise InputFileError(source, field, expected, got)
