"""Atomic outputs: a killed run's temporary is removed by the next write; outputs follow the umask."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from medrecon.atomic import atomic_output, remove_stale_temporaries, temporary_beside

KILLED_WHILE_WRITING = textwrap.dedent(
    """
    import os, signal, sys
    from medrecon.atomic import atomic_output
    with atomic_output(sys.argv[1]) as tmp:
        tmp.write_bytes(b"half")
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def test_sigkill_leftover_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "recon.nii.gz"
    proc = subprocess.run([sys.executable, "-c", KILLED_WHILE_WRITING, str(target)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    left = _leftovers(tmp_path)
    assert len(left) == 1 and left[0].startswith(".recon.nii.gz.") and left[0].endswith(".partial.nii.gz")
    assert not target.exists()
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"whole")
    assert _leftovers(tmp_path) == [] and target.read_bytes() == b"whole"


def test_a_live_process_temporary_and_other_names_are_kept(tmp_path):
    target = tmp_path / "a.h5"
    mine = temporary_beside(target)  # this process is alive: another writer in flight
    other = temporary_beside(tmp_path / "a.h5.bak")  # another output's temporary
    foreign = tmp_path / ".a.h5.otherhost-1.abc.partial.h5"  # another host's: its process may run
    foreign.write_bytes(b"")
    assert remove_stale_temporaries(target) == []
    assert mine.exists() and other.exists() and foreign.exists()


def test_killed_folder_temporary_is_removed(tmp_path):
    target = tmp_path / "series"
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; from medrecon.atomic import temporary_beside; "
         "d = temporary_beside(Path(sys.argv[1]), folder=True); (d / 'CT00001.dcm').write_bytes(b'x'); print(d)", str(target)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    left = tmp_path / proc.stdout.strip()
    assert left.is_dir()
    assert remove_stale_temporaries(target) == [left] and not left.exists()


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        with atomic_output(tmp_path / f"out{mask}.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / f"out{mask}.json").st_mode) == 0o666 & ~mask
