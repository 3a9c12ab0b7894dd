"""``medrecon benchmark --config FILE.yaml --out DIR``: methods × masks × accelerations × seeds on a folder of fully sampled MRI.

The YAML's ``benchmark`` section (:class:`BenchmarkConfig`) names a folder of fully sampled raw
files (fastMRI / SKM-TEA ``.h5``, ``.npz``), the masks, accelerations and seeds, and the methods
with their settings; diffusion methods run at one network-evaluation budget per slice
(``nfe`` = steps × samples). Each cell is made by the package's own commands, so a benchmark
is what a user would run by hand:

- ``DIR/data/<mask>_<R>x_seed<S>_<data>/``: ``simulate mri`` of the folder (mask seed ``S``; ``<data>``
  a hash of the data folder, the files used and the centre fraction, so other data get new cells);
- ``DIR/recon/<method>-<hash>/<cell>/``: ``reconstruct mri`` of that folder (fastMRI submission
  files; the hash is of the method's settings, so changed settings get new cells);
- ``DIR/cells/<method>-<hash>__<cell>.json``: the cell's per-volume fastMRI metrics and seconds.

Every step skips what is finished (folder runs skip finished volumes, evaluated cells are read
back), so a rerun after a crash, or with a method or seed added, computes only what is new. The
report (:mod:`medrecon.evaluation.benchmark_report`) is ``DIR/results.md`` (one table), ``DIR/results.csv``
(one row per volume and cell) and ``DIR/figures/`` (metric distributions per method, example
slices with error maps).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..config import Settings, build_settings, yaml_section
from ..errors import InputFileError

SECTION = "benchmark"


class MethodSpec(Settings):
    """One method of the grid.

    Attributes:
        name: its label in tables and folder names (letters, digits, ``-``, ``_``).
        method: ``zf``, ``sense``, ``cs`` or ``diffusion``.
        prior: a diffusion prior (a shipped name or a folder).
        settings: the method's settings (``reconstruct mri``'s ``recon`` section for classical
            methods, ``diffusion`` for diffusion), e.g. ``{lam: 3e-4}`` or ``{sampler: dds, samples: 1}``.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    method: Literal["zf", "sense", "cs", "diffusion"]
    prior: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)


class BenchmarkConfig(Settings):
    """The ``benchmark`` section.

    Attributes:
        data: folder of fully sampled raw files (relative to the YAML file's folder).
        volumes: use the first N files by name (all when omitted).
        masks: mask kinds (``simulate mri --mask``).
        accelerations: nominal accelerations.
        center_fraction: fully sampled centre of 1-D masks.
        seeds: mask seeds (and diffusion sampling seeds).
        nfe: network evaluations per slice of every diffusion method (steps × samples); a method
            that sets only ``samples`` gets ``steps = nfe / samples``.
        methods: the methods.
        device: ``cpu`` or ``cuda[:N]``.
    """

    data: str
    volumes: int | None = Field(None, ge=1)
    masks: list[str] = Field(default_factory=lambda: ["equispaced_fraction"], min_length=1)
    accelerations: list[float] = Field(default_factory=lambda: [4.0, 8.0], min_length=1)
    center_fraction: float = Field(0.08, gt=0, lt=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    nfe: int | None = Field(None, ge=1)
    methods: list[MethodSpec] = Field(min_length=1)
    device: str = "cpu"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="MRI methods × masks × accelerations × seeds → a table, a CSV and figures (reruns reuse cells)")
    p.add_argument("--config", required=True, metavar="FILE.yaml", help="YAML with a 'benchmark' section (see configs/benchmark_mri.yaml)")
    p.add_argument("--out", required=True, help="results folder (created; rerun with the same folder to resume)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def method_settings(spec: MethodSpec, cfg: BenchmarkConfig, index: int, file: str) -> dict[str, Any]:
    """The method's settings validated against the MRI task's settings class, with the NFE budget applied."""
    from ..tasks.mri.config import ClassicalConfig, DiffusionConfig

    where = f"{SECTION}.methods[{index}].settings"
    if spec.method != "diffusion":
        build_settings(ClassicalConfig, file_values={"method": spec.method, **spec.settings}, file=file, section=where)
        return dict(spec.settings)
    values = dict(spec.settings)
    if cfg.nfe is not None:
        samples = int(values.get("samples", DiffusionConfig.model_fields["samples"].default))
        steps = values.setdefault("steps", cfg.nfe // max(samples, 1))
        if not isinstance(steps, int) or steps * samples != cfg.nfe:
            raise InputFileError(file, where, f"steps × samples = nfe ({cfg.nfe})", f"{steps} × {samples}")
    build_settings(DiffusionConfig, file_values=values, file=file, section=where)
    if spec.prior is None:
        raise InputFileError(file, f"{SECTION}.methods[{index}].prior", "a prior for a diffusion method", "none")
    return values


def method_key(spec: MethodSpec, settings: dict[str, Any]) -> str:
    """``NAME-HASH``: the hash of the method, prior and settings (changed settings → new cells)."""
    text = json.dumps({"method": spec.method, "prior": spec.prior, "settings": settings}, sort_keys=True)
    return f"{spec.name}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _source_folder(cfg: BenchmarkConfig, config_file: Path, out: Path) -> tuple[Path, str]:
    """The data folder, or ``DIR/source/<key>/`` linking its first ``volumes`` files, and the data's key
    (a hash of the folder, the files used and the centre fraction; it names the cells)."""
    from ..evaluation.folders import RAW_SUFFIXES, target_files

    data = Path(cfg.data) if Path(cfg.data).is_absolute() else config_file.parent / cfg.data
    if not data.is_dir():
        raise InputFileError(config_file, f"{SECTION}.data", "a folder of fully sampled raw files", f"{data} (not a folder)")
    files = target_files(data, RAW_SUFFIXES)
    if not files:
        raise InputFileError(config_file, f"{SECTION}.data", "a folder with .h5 / .npz raw files", f"none in {data}")
    chosen = files if cfg.volumes is None else files[: cfg.volumes]
    text = json.dumps({"data": str(data.resolve()), "files": [f.name for f in chosen], "center_fraction": cfg.center_fraction})
    key = hashlib.sha256(text.encode()).hexdigest()[:8]
    if cfg.volumes is None:
        return data, key
    source = out / "source" / key  # the data's identity in the name: other data or volumes never reuse these cells
    source.mkdir(parents=True, exist_ok=True)
    for f in chosen:
        link = source / f.name
        if not link.exists():
            link.symlink_to(f.resolve())
    return source, key


def _cli(argv: list, output: Path) -> None:
    """Run one medrecon command of the grid; a volume it could not process stops the benchmark (rerun resumes)."""
    from .main import main

    status = main([str(a) for a in argv])
    if status == 1:
        raise RuntimeError(f"medrecon {' '.join(map(str, argv))} hit a bug (see its run log)")
    if status != 0:
        raise InputFileError(
            output, f"medrecon {argv[0]} {argv[1]}", "every volume of the cell written", f"exit status {status} (errors above)"
        )


def run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_output
    from ..evaluation.benchmark_report import cell_name, write_report
    from ..evaluation.folders import evaluate_folders

    cfg = build_settings(BenchmarkConfig, file_values=yaml_section(args.config, SECTION), file=args.config, section=SECTION)
    methods = [(m, method_settings(m, cfg, i, args.config)) for i, m in enumerate(cfg.methods)]
    out = Path(args.out)
    if not out.parent.exists():
        raise InputFileError(out, "--out", "a folder whose parent exists", f"missing folder {out.parent}")
    for sub in ("data", "recon", "cells", "configs", "figures"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    source, data_key = _source_folder(cfg, Path(args.config), out)
    quiet = ["--quiet"] if args.quiet else []
    rows: list[dict] = []
    for mask in cfg.masks:
        for accel in cfg.accelerations:
            for seed in cfg.seeds:
                cell = cell_name(mask, accel, seed, data_key)
                data = out / "data" / cell
                _cli(["simulate", "mri", "--input", source, "--mask", mask, "--accel", f"{accel:g}", "--seed", seed,
                      "--center-fraction", f"{cfg.center_fraction:g}", "--out", data, *quiet], data)  # fmt: skip
                for spec, settings in methods:
                    key = method_key(spec, settings)
                    done = out / "cells" / f"{key}__{cell}.json"
                    if not done.exists():
                        rows_cell = _run_cell(out, data, key, cell, spec, settings, seed, cfg, quiet, evaluate_folders)
                        with atomic_output(done) as tmp:
                            tmp.write_text(json.dumps(rows_cell, indent=1))
                    for row in json.loads(done.read_text()):
                        rows.append({"method": spec.name, "mask": mask, "acceleration": accel, "seed": seed, **row})
    nfe = {spec.name: _nfe(spec, s) for spec, s in methods}
    paths = write_report(rows, nfe, out, [m.name for m, _ in methods], {m.name: method_key(m, s) for m, s in methods}, data_key)
    print(f"{len(rows)} volume results; wrote {', '.join(str(p) for p in paths)}")
    return 0


def _nfe(spec: MethodSpec, settings: dict[str, Any]) -> int:
    if spec.method != "diffusion":
        return 0
    from ..tasks.mri.config import DiffusionConfig

    cfg = DiffusionConfig(**settings)
    return cfg.steps * cfg.samples


def _run_cell(out, data, key, cell, spec, settings, seed, cfg, quiet, evaluate_folders) -> list[dict]:
    """Reconstruct one cell's folder with one method, then its per-volume metrics and seconds per slice."""
    import yaml

    recon = out / "recon" / key / cell
    recon.parent.mkdir(exist_ok=True)
    section = "diffusion" if spec.method == "diffusion" else "recon"
    values = {**settings, **({"seed": seed} if spec.method == "diffusion" and "seed" not in settings else {})}
    config = out / "configs" / f"{key}_seed{seed}.yaml"
    config.write_text(yaml.safe_dump({section: values}))
    argv = ["reconstruct", "mri", data, "--method", spec.method, "--config", config, "--device", cfg.device, "--out", recon, *quiet]
    _cli(argv + (["--prior", spec.prior] if spec.prior else []), recon)
    from ..tasks.run_records import done_entries

    seconds = done_entries(recon)
    rows = evaluate_folders(data, recon)["per_volume"]
    for row in rows:
        name = Path(row["file"]).with_suffix(".h5").name
        row["seconds_per_slice"] = seconds[name] / row["slices"] if name in seconds else None
    return rows
