"""Folder in, folder out: one task command over every input of a folder, resumable, shared among ``torchrun`` ranks.

A task command that works on one input file (``reconstruct mri X.h5 --out Y.h5``) becomes a
folder command by routing its ``run`` through :func:`run_inputs`: when the input is a folder of
inputs, every entry of a known type is processed into ``OUT/<entry's name>`` by the same
single-file code, and

- outputs are written atomically by the single-file code (:mod:`medrecon.atomic`), so an output
  that exists is finished: a rerun skips it, and a run killed by SIGKILL loses at most the
  volume in flight;
- while a volume is in flight its output has a claim file ``.NAME.claim`` (``HOST-PID``,
  :mod:`medrecon.tasks.run_records`), so two runs (or two ranks) never work on one output; a claim
  whose process on this host has ended is taken over;
- under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` in the environment) the sorted
  entries are dealt round-robin to the ranks, each rank on ``cuda:LOCAL_RANK`` when
  ``--device cuda``; no process group is needed (ranks share nothing but the folder);
- a bad entry (unreadable, of another type) is reported in one line and the rest are processed;
  the exit status is 2 at the end (1 if an entry hit a bug);
- each rank appends a JSON-lines log ``OUT.logs/run_<UTC time>_rank<R>.jsonl`` beside the output
  folder (inside it, fastMRI's ``evaluate.py``, which opens every file of a target folder, would
  fail on it): the command line, every setting, package versions, host and device, then one
  record per entry (done, skipped, failed, seconds) and a summary.

Hand-written because no library here does it: torch's ``DistributedSampler`` shards samples of a
dataset, not files of a command, and knows nothing of finished outputs.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ArgumentError, InputFileError, MedreconError
from .run_records import RunLog, claim, claim_holder, done_entries, drop_stale_claim, settings_changes


@dataclass(frozen=True)
class FolderSpec:
    """How a command maps a folder of inputs to a folder of outputs.

    Attributes:
        suffixes: lower-case name endings of the inputs it reads (``(".h5", ".npz")``).
        out_name: output name of an input entry (``"file1.h5"`` → ``"file1.h5"``).
        series: whether a sub-folder is one input (a DICOM series); else sub-folders are ignored.
        paired: options naming further inputs (``"--guide"``); with a folder input each must be a
            folder holding an entry of the same stem (:func:`paired_entry`).
        out_is_folder: outputs are folders (DICOM series), whatever dots their names have.
    """

    suffixes: tuple[str, ...]
    out_name: Callable[[str], str]
    series: bool = False
    paired: tuple[str, ...] = ()
    out_is_folder: bool = False


KNOWN_SUFFIXES = (".nii.gz", ".nii", ".h5", ".hdf5", ".npz", ".dcm", ".tif", ".tiff", ".png", ".e2e", ".fds", ".fda", ".img", ".oct")


def stem(name: str) -> str:
    """``NAME`` of ``NAME.nii.gz`` / ``NAME.h5`` / … (only the suffixes medrecon reads are cut: a series
    folder ``1.2.840.99`` keeps its whole name)."""
    low = name.lower()
    for suffix in KNOWN_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from ``torchrun``'s environment; ``(0, 1, 0)`` outside it.

    Raises:
        ArgumentError: the variables are not integers with ``0 <= RANK < WORLD_SIZE``.
    """
    try:
        rank, size, local = (int(os.environ.get(k, d)) for k, d in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)))
    except ValueError:
        raise ArgumentError(
            f"RANK / WORLD_SIZE / LOCAL_RANK: expected integers (torchrun sets them), got {os.environ.get('RANK')!r} / "
            f"{os.environ.get('WORLD_SIZE')!r} / {os.environ.get('LOCAL_RANK')!r}"
        ) from None
    if size < 1 or not 0 <= rank < size or local < 0:
        raise ArgumentError(f"RANK / WORLD_SIZE: expected 0 <= RANK < WORLD_SIZE, got RANK={rank} WORLD_SIZE={size}")
    return rank, size, local


def rank_device(device: str | None, local_rank: int, size: int) -> str | None:
    """``cuda`` under several ranks → ``cuda:LOCAL_RANK`` (one GPU per rank); anything else as given."""
    return f"cuda:{local_rank}" if device == "cuda" and size > 1 else device


def is_folder_input(path: Path, spec: FolderSpec) -> bool:
    """Whether ``path`` is a folder of inputs, not one input.

    A folder is one input (a DICOM series) when the command reads series and the folder holds no
    entry of the command's file types (``spec.suffixes``, which for such commands never include
    ``.dcm``: a folder of DICOM files is a series) and no sub-folder.
    """
    if not path.is_dir():
        return False
    if not spec.series:
        return True
    entries = [e for e in path.iterdir() if not e.name.startswith(".")]
    return any(e.is_dir() or e.name.lower().endswith(spec.suffixes) for e in entries)


def folder_entries(folder: Path, spec: FolderSpec) -> tuple[list[Path], list[Path]]:
    """``(inputs, others)``: entries of the command's types (sorted by name) and the rest (hidden names ignored)."""
    inputs, others = [], []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        ok = (spec.series and entry.is_dir()) or (entry.is_file() and entry.name.lower().endswith(spec.suffixes))
        (inputs if ok else others).append(entry)
    return inputs, others


def _check_out_folder(out: Path, source: Path, spec: FolderSpec, option: str) -> None:
    from ..atomic import check_not_an_input

    if out.exists() and not out.is_dir():
        raise InputFileError(out, option, "a folder for the outputs (the input is a folder)", "an existing file")
    if not out.exists() and out.name.lower().endswith(spec.suffixes + KNOWN_SUFFIXES):
        raise InputFileError(out, option, "a folder for the outputs (the input is a folder)", f"a file name {out.name!r}")
    if not out.parent.exists():
        raise InputFileError(out, option, "a folder whose parent exists", f"missing folder {out.parent}")
    check_not_an_input(out, [("the input folder", source)], option=option)


def _paired_folders(args: argparse.Namespace, spec: FolderSpec) -> dict[str, Path]:
    folders = {}
    for option in spec.paired:
        value = getattr(args, option.lstrip("-").replace("-", "_"), None)
        if value is None:
            continue
        if not Path(value).is_dir():
            raise InputFileError(value, option, "a folder with an entry of each input's name (the input is a folder)", "not a folder")
        folders[option] = Path(value)
    return folders


def run_inputs(
    args: argparse.Namespace,
    one: Callable[[argparse.Namespace], int],
    spec: FolderSpec,
    input_attr: str = "input",
    input_label: str = "input",
) -> int:
    """Run ``one(args)`` on the input, or on every entry of an input folder into ``args.out`` (a folder).

    Args:
        args: the command's parsed arguments; ``args.out`` is the output (a folder for a folder).
        one: the single-input command; it gets a copy of ``args`` with the entry and its output.
        spec: the command's input types and output names.
        input_attr: the attribute holding the input (``input``).
        input_label: how errors name it (``--input`` or ``input``).

    Returns:
        0 when every entry was written now or by an earlier logged run; 2 when some entry was
        refused, is not of the command's types, is claimed by another run, or its output is a file
        no run log records; 1 when some entry hit a bug (its traceback is in the log).

    Raises:
        ArgumentError: a single input under several ranks (every rank would write one file).
    """
    rank, size, local = world()
    if hasattr(args, "device"):
        args.device = rank_device(args.device, local, size)
    source = Path(getattr(args, input_attr))
    if not is_folder_input(source, spec):
        if getattr(args, "out_format", None) is not None:
            raise ArgumentError(f"--out-format: used with a folder of inputs; for one input the --out name decides, got {args.out_format}")
        if size > 1:
            raise ArgumentError(
                f"{input_label}: expected a folder of inputs under torchrun (WORLD_SIZE={size}), got one input; "
                "every rank would write the same output"
            )
        return one(args)
    inputs, others = folder_entries(source, spec)
    if not inputs:
        raise InputFileError(source, input_label, f"one input, or a folder with {' / '.join(spec.suffixes)} inputs", "a folder with none")
    out = Path(os.path.abspath(args.out))
    _check_out_folder(out, source, spec, "--out")
    _check_distinct_outputs(source, inputs, spec)
    paired = _paired_folders(args, spec)
    out.mkdir(exist_ok=True)
    mine = inputs[rank::size]
    done_before = set(done_entries(out))
    changed = settings_changes(out, args) if done_before else []
    if changed and rank == 0:
        print(
            f"medrecon: note: {out} holds outputs of a run with other settings ({'; '.join(changed)}); "
            "they are kept, not redone (a new --out redoes them)",
            file=sys.stderr,
        )
    outputs = {spec.out_name(e.name) for e in inputs}
    log = RunLog(out, args, rank, size, len(mine), len(inputs))
    counts = {"done": 0, "skipped": 0, "elsewhere": 0, "existing": 0, "failed": 0, "other": 0}
    bug = False
    if rank == 0:
        for entry in others:
            print(
                f"medrecon: error: {entry}: file type: expected {' / '.join(spec.suffixes)}, got another file; not processed",
                file=sys.stderr,
            )
            log.write(event="entry", input=entry.name, status="other type")
            counts["other"] += 1
    from tqdm import tqdm

    start = time.perf_counter()
    with tqdm(
        total=len(mine), desc=f"{source.name} (rank {rank}/{size})" if size > 1 else source.name, unit="input", disable=args.quiet
    ) as bar:
        for entry in mine:
            target = out / spec.out_name(entry.name)
            _remove_orphan_std(target, outputs)

            def record(status: str, seconds: float, error: str | None, **extra) -> None:
                log.write(
                    event="entry", input=entry.name, output=target.name, status=status, seconds=round(seconds, 3), error=error, **extra
                )

            status = _one_entry(args, one, entry, target, paired, input_attr, spec.out_is_folder, done_before, record)
            bug |= status == "bug"
            counts["failed" if status in ("failed", "bug") else status] += 1
            bar.update(1)
    summary = {k: v for k, v in counts.items()}
    log.write(event="end", seconds=round(time.perf_counter() - start, 3), **summary)
    log.close()
    print(
        f"{source}: {counts['done']} written, {counts['skipped']} finished before, {counts['elsewhere']} in progress elsewhere, "
        f"{counts['existing']} already there but not written by a logged run (remove them to redo), {counts['failed']} failed, "
        f"{counts['other']} not of this command's types; log {log.path}"
    )
    if bug:
        return 1
    return 2 if any(counts[k] for k in ("elsewhere", "existing", "failed", "other")) else 0


def _one_entry(
    args: argparse.Namespace,
    one: Callable[[argparse.Namespace], int],
    entry: Path,
    target: Path,
    paired: dict[str, Path],
    input_attr: str,
    out_is_folder: bool = False,
    done_before: set[str] | frozenset = frozenset(),
    record: Callable[..., None] | None = None,
) -> str:
    """Process one entry; its status: done / skipped / elsewhere / existing / failed / bug.

    ``record(status, seconds, error, **extra)`` logs the outcome once; a written output is logged
    while its claim is still held, so a run killed at any moment leaves either a claim or a log
    record beside every output it wrote. An existing output is ``skipped`` when a run log of the
    folder records it as written or a dead run's claim sits beside it (that run wrote it and was
    killed before logging it: it is logged now), else ``existing`` (a file medrecon did not write
    there: never overwritten, reported).
    """
    record = record or (lambda *_, **__: None)
    if target.exists():
        if target.name in done_before:
            drop_stale_claim(target)
            record("skipped", 0.0, None)
            return "skipped"
        if drop_stale_claim(target):
            record("done", 0.0, None, recovered="written by a run killed before it logged it")
            return "skipped"
        record("existing", 0.0, f"{target} exists and no run log of {target.parent} records writing it")
        return "existing"
    start = time.perf_counter()
    with claim(target) as mine:
        if not mine:
            record("elsewhere", 0.0, f"claimed by {claim_holder(target)} (remove {target.parent}/.{target.name}.claim if that run is dead)")
            return "elsewhere"
        if target.exists():
            record("skipped", 0.0, None)
            return "skipped"
        ns = copy.copy(args)
        setattr(ns, input_attr, str(entry))
        ns.out = str(target) + (os.sep if out_is_folder else "")  # a DICOM series folder, whatever dots its name has
        error = None
        try:
            for option, folder in paired.items():
                setattr(ns, option.lstrip("-").replace("-", "_"), str(paired_entry(folder, entry, option)))
            status = "done" if one(ns) == 0 else "failed"
        except MedreconError as err:
            print(f"medrecon: error: {err}", file=sys.stderr)
            status, error = "failed", str(err)
        except Exception as err:  # a bug: keep going with the other volumes, keep the traceback in the log
            print(f"medrecon: internal error on {entry}: {type(err).__name__}: {err} (traceback in the run log)", file=sys.stderr)
            status, error = "bug", traceback.format_exc()
        record(status, time.perf_counter() - start, error)  # before the claim is dropped
    return status


def _remove_orphan_std(target: Path, outputs: set[str]) -> None:
    """Remove ``NAME_std…`` left without its mean by a killed run (the std is written first; the mean's
    existence marks a finished result); never another input's output."""
    import shutil

    if target.exists():
        return
    base = stem(target.name)
    std = target.with_name(base + "_std" + target.name[len(base) :])
    if std.name in outputs or not (std.exists() or std.is_symlink()):
        return
    shutil.rmtree(std) if std.is_dir() and not std.is_symlink() else std.unlink()


def _check_distinct_outputs(source: Path, inputs: list[Path], spec: FolderSpec) -> None:
    """Refuse, before any work, two inputs whose outputs would have one name (``a.h5`` and ``a.npz``)."""
    seen: dict[str, str] = {}
    for entry in inputs:
        name = spec.out_name(entry.name)
        if name in seen:
            raise InputFileError(source, "inputs", "one output name per input", f"{seen[name]} and {entry.name} both give {name}")
        seen[name] = entry.name


def paired_entry(folder: Path, entry: Path, option: str) -> Path:
    """The entry of a paired folder (``--guide DIR``) whose name's stem is ``entry``'s (``p1.nii.gz`` ↔ ``p1/``)."""
    matches = [e for e in sorted(folder.iterdir()) if not e.name.startswith(".") and stem(e.name) == stem(entry.name)]
    if len(matches) != 1:
        got = "none" if not matches else ", ".join(m.name for m in matches)
        raise InputFileError(
            folder, option, f"one entry named {stem(entry.name)!r} (a file of any type, or a series folder) for {entry.name}", got
        )
    return matches[0]


def h5_name(name: str) -> str:
    """``NAME.h5`` for an input ``NAME.*`` (for MRI folders, a fastMRI submission file)."""
    return stem(name) + ".h5"


def nifti_name(name: str) -> str:
    """``NAME.nii.gz`` for an input ``NAME.*`` or a series folder ``NAME``."""
    return stem(name) + ".nii.gz"


OUT_NAMES = {"h5": h5_name, "nifti": nifti_name, "dicom": stem}
OUT_HELP = {"h5": "NAME.h5 (fastMRI submission file)", "nifti": "NAME.nii.gz", "dicom": "a DICOM series folder NAME"}


def add_out_format(parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("nifti", "dicom")) -> None:
    """``--out-format``: what a folder run writes per input; the first choice is the default."""
    parser.add_argument(
        "--out-format",
        default=None,
        choices=choices,
        help="folder input: one output per input, " + " or ".join(OUT_HELP[c] for c in choices) + f" (default {choices[0]})",
    )


def image_spec(
    args: argparse.Namespace,
    suffixes: tuple[str, ...],
    series: bool = True,
    paired: tuple[str, ...] = (),
    default: str = "nifti",
) -> FolderSpec:
    """A folder spec whose outputs follow ``--out-format`` (``default`` when not given)."""
    fmt = getattr(args, "out_format", None) or default
    return FolderSpec(suffixes, OUT_NAMES[fmt], series, paired, out_is_folder=fmt == "dicom")


__all__: Sequence[str] = (
    "FolderSpec",
    "run_inputs",
    "world",
    "folder_entries",
    "h5_name",
    "nifti_name",
    "image_spec",
    "add_out_format",
)
