"""Every case of the hostile-input corpus (:mod:`corpus`) ends GOOD.

GOOD: exit status 2; stderr is exactly one line ``medrecon: error: ...`` that names the file (or
argument) at fault, what was expected and what was found (``expected ..., got ...``), without a
traceback or a Python comparison error; no file or folder appeared (temporaries included) and no
input changed (bytes and mtime, of the case's files and of the shared valid inputs); it ended
within :data:`TIMEOUT_S`. Cases run in-process (``main(argv)`` under an alarm), those that could
block a reader forever (named pipes) in a subprocess with a timeout.
"""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import pytest
from corpus import Case, baseline_commands, build_cases, case_names, good_inputs

from medrecon.cli.main import main

TIMEOUT_S = 60
# warnings a command-line run would not print (Python's default filters hide them outside __main__)
HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


class CaseTimeout(Exception):
    """Raised by the alarm when an in-process case runs past :data:`TIMEOUT_S`."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, Case]]:
    root = tmp_path_factory.mktemp("corpus")
    return root, {c.name: c for c in build_cases(root)}


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder`` (hidden ones included, links not followed): kind, and for files size, mtime and SHA-256.

    Special files (named pipes) are never opened; folders are compared by presence (their mtime
    changes when a temporary is made and removed, which leaves nothing behind).
    """
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                out[os.path.relpath(p, folder)] = (kind, st.st_size, st.st_mtime_ns, digest)
            elif stat.S_ISLNK(st.st_mode):
                out[os.path.relpath(p, folder)] = (kind, os.readlink(p), st.st_mtime_ns)
            else:
                out[os.path.relpath(p, folder)] = (kind,)
    return out


def _in_process(c: Case, capfd) -> tuple[object, str]:
    """``main(argv)`` in the case's folder under an alarm; returns (exit status or 'hang', stderr as a user would see it)."""

    def on_alarm(signum, frame):
        raise CaseTimeout

    old_cwd = os.getcwd()
    old_env = {k: os.environ.get(k) for k in c.env}
    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    extra = ""
    capfd.readouterr()
    try:
        os.chdir(c.folder)
        os.environ.update(c.env)
        signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                status: object = main(list(c.argv))
            except SystemExit as err:  # argparse
                status = err.code
            except CaseTimeout:
                status = "hang"
            except BaseException:  # a bug: the console script would print the traceback and exit 1
                status, extra = 1, traceback.format_exc()
        signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        os.chdir(old_cwd)
        for k, v in old_env.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    err = capfd.readouterr().err + extra
    shown = [w for w in caught if not issubclass(w.category, HIDDEN_WARNINGS)]
    err += "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in shown)
    return status, err


def _in_subprocess(c: Case) -> tuple[object, str]:
    try:
        r = subprocess.run(
            [sys.executable, "-m", "medrecon", *c.argv],
            cwd=c.folder,
            env={**os.environ, **c.env},
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as err:
        stderr = err.stderr.decode() if isinstance(err.stderr, bytes) else err.stderr or ""
        return "hang", stderr
    return r.returncode, r.stderr


def verdict(c: Case, status: object, err: str, before: dict, after: dict) -> list[str]:
    """What keeps a finished case from being GOOD (empty: GOOD)."""
    problems = []
    if status != 2:
        problems.append(f"exit status {status!r}, expected 2")
    lines = err.splitlines()
    line = lines[0] if lines else ""
    if len(lines) != 1 or not line.strip():
        problems.append(f"stderr has {len(lines)} lines, expected exactly one")
    if not line.startswith("medrecon: error: "):
        problems.append("the line does not start with 'medrecon: error: '")
    if c.names not in line:
        problems.append(f"the line does not name {c.names!r}")
    message = line.replace(str(c.folder), "<case>")  # fragments must not match the case's folder name
    for fragment in (*c.expect, "expected", "got"):
        if fragment not in message:
            problems.append(f"the line does not contain {fragment!r}")
    for forbidden in ("Traceback", "not supported between", "object has no attribute"):
        if forbidden in err:
            problems.append(f"stderr contains {forbidden!r}")
    created = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    for what, paths in (("created", created), ("removed", removed), ("modified", changed)):
        if paths:
            problems.append(f"{what}: {paths}")
    return problems


@pytest.mark.parametrize("name", case_names())
def test_case_ends_good(name: str, corpus, capfd):
    root, cases = corpus
    c = cases[name]
    folders = (root / "_good", c.folder)
    before = {f"{f.name}/{k}": v for f in folders for k, v in snapshot(f).items()}
    status, err = _in_subprocess(c) if c.isolate else _in_process(c, capfd)
    after = {f"{f.name}/{k}": v for f in folders for k, v in snapshot(f).items()}
    problems = verdict(c, status, err, before, after)
    assert not problems, f"{name}: " + "; ".join(problems) + f"\ncommand: medrecon {' '.join(c.argv)}\nstderr:\n{err}"


def test_valid_inputs_pass(corpus, tmp_path, capsys):
    """The commands the cases are made from succeed on the valid inputs (which they leave unchanged)."""
    root, _ = corpus
    before = snapshot(root / "_good")
    for what, argv in baseline_commands(good_inputs(root), tmp_path).items():
        assert main(argv) == 0, f"{what}: medrecon {' '.join(argv)}\n{capsys.readouterr().err}"
    assert snapshot(root / "_good") == before


def test_corpus_size_and_coverage():
    """At least 60 cases, across every input kind and task."""
    names = case_names()
    assert len(names) >= 60, len(names)
    assert len(set(names)) == len(names)
    for area in ("mri_", "ct_", "sino_", "pet_", "prior_", "config_", "train_", "evaluate_", "translate_", "_out_"):
        assert sum(area in n for n in names) >= 3, area


def test_verdict_can_fail(tmp_path):
    """The judge refuses a success, a traceback, two lines, a created file and a modified input."""
    c = Case("x", ("reconstruct",), "in.h5", ("kspace",), folder=tmp_path)
    good = "medrecon: error: in.h5: kspace: expected complex64 k-space, got dtype float32\n"
    assert verdict(c, 2, good, {}, {}) == []
    assert verdict(c, 0, "", {}, {})
    assert verdict(c, 1, "Traceback (most recent call last):\n" + good, {}, {})
    assert verdict(c, 2, good + good, {}, {})
    assert verdict(c, 2, good, {}, {"x/.r.nii.gz.host-1.partial": (0,)})
    assert verdict(c, 2, good, {"x/in.h5": (0, 1, 2, "a")}, {"x/in.h5": (0, 1, 3, "a")})
    assert verdict(c, 2, good.replace("kspace", "data"), {}, {})
