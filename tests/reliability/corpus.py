"""A hostile-input corpus for the ``medrecon`` command line, generated (never committed as binaries).

Every case is a command line that must end *GOOD*: exit status 2 with exactly one line on stderr
that names the file (or the argument) at fault, what was expected and what was found; nothing
created, nothing modified, no hang. The corpus covers raw MRI files, CT volumes (DICOM, NIfTI),
sinograms, PET images and sinograms, diffusion priors, YAML settings (``--config`` and
``train``), outputs that would overwrite inputs, and arguments outside what is accepted.

Use:

- :func:`case_names` lists the cases without building anything (for parametrising tests);
- :func:`build_cases` writes the files under a folder and returns the :class:`Case` list;
- ``python -m tests.reliability.corpus --out DIR`` materialises the corpus in ``DIR`` (a new
  folder) and prints one line per case (name and command line), e.g. to replay a case by hand.

Layout under the root: ``_good/`` holds small valid inputs shared by the cases (never to be
modified), and each case has its own folder ``<name>/`` with its malformed inputs; the outputs a
case names lie in its folder, so "nothing created, nothing modified" is checked on ``_good/`` and
the case's folder. :func:`baseline_commands` are the same commands on the valid inputs: they must
succeed, so each case fails for its own change.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The command lines run `medrecon ...` (in-process: medrecon.cli.main.main(argv)).


@dataclass(frozen=True)
class Case:
    """One hostile input.

    Attributes:
        name: unique, a valid folder name (the case's working folder under the root).
        argv: the arguments of ``medrecon`` (``main(argv)``).
        names: a fragment the error line must contain that names the file or argument at fault
            (usually the bad file's path as given in ``argv``, or an option such as ``--dose``).
        expect: further fragments the error line must contain (the field, what was expected).
        isolate: run in a subprocess with a timeout (inputs that could block a reader forever:
            named pipes), so that a regression fails the case instead of hanging the suite.
        env: environment variables set for the case (``MEDRECON_MEMORY_LIMIT``).
        folder: the case's working folder (commands run with it as the current directory).
    """

    name: str
    argv: tuple[str, ...]
    names: str
    expect: tuple[str, ...] = ()
    isolate: bool = False
    env: dict[str, str] = field(default_factory=dict)
    folder: Path = Path(".")


@dataclass(frozen=True)
class Good:
    """Valid small inputs under ``root/_good`` (see :func:`_write_good`)."""

    root: Path
    fastmri: Path  # fastMRI multi-coil .h5, 2 slices, 2 coils, 16 x 16, undersampled with a mask
    recon_nii: Path  # a magnitude reconstruction of it (.nii.gz, 2 x 16 x 16)
    ct_series: Path  # CT DICOM series folder, 3 slices of 32 x 32
    ct_nii: Path  # the same volume as NIfTI in HU
    ct_sino: Path  # CT sinogram .h5 (parallel, 30 views), 2 slices
    pet_npz: Path  # PET/CT slice pairs (.npz: pet_nac, ct), 2 slices of 32 x 32
    pet_nii: Path  # PET activity NIfTI (values in BQML by --unit), 2 slices
    pet_ct_nii: Path  # its CT in HU on the same grid
    pet_sino: Path  # PET sinogram .h5 (parallel, 30 views), 2 slices, unit BQML
    train_npz: Path  # training images (.npz: images, 4 x 16 x 16)
    prior_json: str  # the text of a valid prior.json (the shipped CT prior's)
    fully: Path  # fully sampled fastMRI multi-coil .h5 (no mask), the input of simulate mri


Builder = Callable[[Path, Good], Case]
_BUILDERS: dict[str, Builder] = {}


def case(name: str) -> Callable[[Builder], Builder]:
    """Register a case builder ``make(folder, good) -> Case`` (``Case.name`` and ``folder`` are filled in)."""

    def register(make: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(f"case {name!r} is defined twice")
        _BUILDERS[name] = make
        return make

    return register


def simple(name: str, argv: Callable[[Path, Good], list], names: Callable[[Path, Good], str] | str, *expect: str) -> None:
    """Register a case whose inputs are all in ``_good`` (only its arguments are hostile)."""

    def make(d: Path, g: Good) -> Case:
        return Case(name, tuple(map(str, argv(d, g))), names if isinstance(names, str) else str(names(d, g)), expect)

    case(name)(make)


def case_names() -> list[str]:
    """The names of every case, in definition order (nothing is built)."""
    return list(_BUILDERS)


def build_cases(root: Path, names: list[str] | None = None) -> list[Case]:
    """Write the corpus (the shared valid inputs and each case's files) under ``root``; return the cases.

    Args:
        root: a folder (created when missing; should be new or empty).
        names: build only these cases (default: all).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    good = _write_good(root / "_good")
    out = []
    for name in names or case_names():
        d = root / name
        d.mkdir()
        c = _BUILDERS[name](d, good)
        out.append(Case(name, c.argv, c.names, c.expect, c.isolate, dict(c.env), d))
    return out


# -- small valid inputs -----------------------------------------------------------------------------
def _fastmri_parts(s: int = 2, c: int = 2, h: int = 16, w: int = 16) -> tuple[dict, dict]:
    """Datasets and attributes of a valid undersampled fastMRI multi-coil file."""
    rng = np.random.default_rng(0)
    mask = np.zeros(w, np.float32)
    mask[::2] = 1
    mask[w // 2 - 2 : w // 2 + 2] = 1
    k = ((rng.standard_normal((s, c, h, w)) + 1j * rng.standard_normal((s, c, h, w))) * mask).astype(np.complex64)
    datasets = {
        "kspace": k,
        "mask": mask,
        "reconstruction_rss": np.abs(rng.standard_normal((s, h, w))).astype(np.float32),
        "ismrmrd_header": np.bytes_(_header((h, w, 1), (h, w, 1))),
    }
    return datasets, {"acquisition": "CORPD_FBK", "acceleration": 2.0, "max": 1.0, "norm": 1.0}


def _header(encoded, recon, fov=(8.0, 8.0, 3.0), center: int = 8, maximum: int = 16) -> bytes:
    from medrecon.datasets.fastmri import make_ismrmrd_header

    return make_ismrmrd_header(encoded, recon, fov, center, maximum)


def _h5(path: Path, datasets: dict, attrs: dict | None = None, groups: tuple[str, ...] = ()) -> Path:
    """An HDF5 file; a dataset value ``("declared", shape, dtype)`` is created without data (chunked: no storage)."""
    import h5py

    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            if isinstance(value, tuple) and value and value[0] == "declared":
                f.create_dataset(name, shape=value[1], dtype=value[2], chunks=(1,) * (len(value[1]) - 2) + tuple(value[1][-2:]))
            else:
                f.create_dataset(name, data=value)
        for name in groups:
            f.create_group(name)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
    return path


def _fastmri(path: Path, drop: tuple[str, ...] = (), attrs: dict | None = None, groups: tuple[str, ...] = (), **datasets) -> Path:
    """A fastMRI file: the valid parts, minus ``drop``, with ``datasets`` replaced."""
    parts, base_attrs = _fastmri_parts()
    parts = {k: v for k, v in {**parts, **datasets}.items() if k not in drop and k not in groups}
    return _h5(path, parts, {**base_attrs, **(attrs or {})}, groups)


def _ct_hu(n: int = 32, slices: int = 3) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    sl = np.where(xx**2 + yy**2 < (0.4 * n) ** 2, 40.0, -1000.0)
    return np.stack([sl + 10 * k for k in range(slices)]).astype(np.float32)


CT_AFFINE = np.array([[-1.5, 0, 0, 24.0], [0, -1.5, 0, 24.0], [0, 0, 3.0, -10.0], [0, 0, 0, 1.0]])
PET_AFFINE = np.diag([2.0, 2.0, 3.0, 1.0])


def _sino_parts(modality: str = "CT", slices: int = 2, views: int = 30) -> tuple[dict, dict]:
    """Datasets and attributes of a valid sinogram file (the layout of :mod:`medrecon.datasets.sinogram_io`)."""
    from medrecon.physics.ct.geometry import CTGeometry

    geom = CTGeometry.create("parallel", (32, 32), (2.0, 2.0) if modality == "PET" else (1.5, 1.5), views)
    shape = (slices, *geom.sino_shape)
    aff = PET_AFFINE if modality == "PET" else CT_AFFINE
    attrs = {
        "geometry": geom.to_json(),
        "affine": json.dumps(aff.tolist()),
        "slices": json.dumps(list(range(slices))),
        "modality": modality,
    }
    if modality == "PET":
        datasets = {
            "sinogram": np.full(shape, 5.0, np.float32),
            "multiplicative": np.full(shape, 0.5, np.float32),
            "background": np.full(shape, 0.1, np.float32),
        }
        attrs.update({"unit": "BQML", "calibration": json.dumps([1.0] * slices), "source": ""})
    else:
        datasets = {"sinogram": np.full(shape, 0.5, np.float32)}
        attrs.update({"dose": 1e5, "mu_water_per_mm": 0.0192, "source": "", "seed": 0})
    return datasets, attrs


def _sino(
    path: Path, modality: str = "CT", drop: tuple[str, ...] = (), attrs: dict | None = None, geometry: dict | None = None, **datasets
):
    """A sinogram file: the valid parts, minus ``drop`` (datasets or attributes), ``attrs`` / ``datasets`` replaced,
    ``geometry`` entries replacing those of the geometry JSON."""
    parts, base = _sino_parts(modality)
    if geometry is not None:
        base["geometry"] = json.dumps({**json.loads(base["geometry"]), **geometry})
    parts = {k: v for k, v in {**parts, **datasets}.items() if k not in drop}
    merged = {k: v for k, v in {**base, **(attrs or {})}.items() if k not in drop}
    return _h5(path, parts, merged)


def _write_good(d: Path) -> Good:
    from medrecon.datasets.ct_volume import write_dicom_series
    from medrecon.datasets.image_io import write_nifti
    from medrecon.priors import shipped_prior_dir

    d.mkdir()
    fastmri = _fastmri(d / "under.h5")
    recon = write_nifti(np.abs(np.random.default_rng(1).standard_normal((2, 16, 16))).astype(np.float32), d / "recon.nii.gz")
    hu = _ct_hu()
    series = write_dicom_series(hu, CT_AFFINE, d / "ct_series")
    ct_nii = write_nifti(hu, d / "ct.nii.gz", affine=CT_AFFINE)
    ct_sino = _sino(d / "ct_sino.h5")
    n = 32
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    head = xx**2 + yy**2 < (0.4 * n) ** 2
    act = np.where(head, 1.0, 0.0).astype(np.float32)
    pet_hu = np.where(head, 30.0, -1000.0).astype(np.float32)
    np.savez(d / "pairs.npz", pet_nac=np.stack([act, act]), ct=np.stack([(pet_hu + 1024) / 2524] * 2).astype(np.float32))
    pet_nii = write_nifti(np.stack([act, act]) * 5000.0, d / "pet.nii.gz", affine=PET_AFFINE)
    pet_ct = write_nifti(np.stack([pet_hu, pet_hu]), d / "pet_ct.nii.gz", affine=PET_AFFINE)
    pet_sino = _sino(d / "pet_sino.h5", "PET")
    yy, xx = np.mgrid[:16, :16]
    imgs = np.stack([np.exp(-((yy - 4 - k) ** 2 + (xx - 8) ** 2) / 10.0) for k in range(4)]).astype(np.float32)
    np.savez(d / "images.npz", images=imgs)
    prior_json = (shipped_prior_dir("ct") / "prior.json").read_text()
    parts = {k: v for k, v in _fastmri_parts()[0].items() if k != "mask"}
    rng = np.random.default_rng(2)
    parts["kspace"] = (rng.standard_normal((2, 2, 16, 16)) + 1j * rng.standard_normal((2, 2, 16, 16))).astype(np.complex64)
    fully = _h5(d / "fully.h5", parts, {"acquisition": "CORPD_FBK", "max": 1.0, "norm": 1.0})
    return Good(d, fastmri, recon, series, ct_nii, ct_sino, d / "pairs.npz", pet_nii, pet_ct, pet_sino, d / "images.npz", prior_json, fully)


def good_inputs(root: Path) -> Good:
    """The valid inputs :func:`build_cases` wrote under ``root/_good`` (nothing is written)."""
    from medrecon.priors import shipped_prior_dir

    d = Path(root) / "_good"
    names = ("under.h5", "recon.nii.gz", "ct_series", "ct.nii.gz", "ct_sino.h5", "pairs.npz", "pet.nii.gz", "pet_ct.nii.gz", "pet_sino.h5")
    return Good(d, *(d / n for n in names), d / "images.npz", (shipped_prior_dir("ct") / "prior.json").read_text(), d / "fully.h5")


def baseline_commands(good: Good, out: Path) -> dict[str, list[str]]:
    """Command lines on the valid inputs that must succeed (exit 0), writing into the folder ``out``.

    They show that each hostile case fails for its one change, not because the inputs it is made
    from, or the command line around it, are broken.
    """
    cfg = _yaml(out / "train.yaml", _train_config(out, good))
    argv = {
        "reconstruct mri": ["reconstruct", "mri", good.fastmri, "--method", "zf", "--quiet", "--out", out / "r.nii.gz"],
        "simulate mri": ["simulate", "mri", "--input", good.fully, "--out", out / "u.h5"],
        "evaluate": ["evaluate", "--target", good.fastmri, "--recon", good.recon_nii, "--json", out / "m.json"],
        "simulate ct (DICOM)": ["simulate", "ct", "--input", good.ct_series, "--views", "20", "--quiet", "--out", out / "s1.h5"],
        "simulate ct (NIfTI)": ["simulate", "ct", "--input", good.ct_nii, "--views", "20", "--quiet", "--out", out / "s2.h5"],
        "reconstruct ct": ["reconstruct", "ct", good.ct_sino, "--quiet", "--out", out / "ct.nii.gz"],
        "simulate pet (npz)": ["simulate", "pet", "--input", good.pet_npz, "--views", "20", "--quiet", "--out", out / "p1.h5"],
        "simulate pet (NIfTI)": ["simulate", "pet", "--input", good.pet_nii, "--unit", "BQML", "--ct", good.pet_ct_nii, "--views", "20"]
        + ["--quiet", "--out", out / "p2.h5"],
        "reconstruct pet": ["reconstruct", "pet", good.pet_sino, "--iters", "1", "--subsets", "1", "--quiet", "--out", out / "pet.nii.gz"],
        "train": ["train", "--config", cfg, "--quiet"],
        "translate mr2ct (bulk)": [
            "translate",
            "mr2ct",
            "--input",
            good.recon_nii,
            "--method",
            "bulk",
            "--quiet",
            "--out",
            out / "sct.nii.gz",
        ],
    }
    return {k: [str(a) for a in v] for k, v in argv.items()}


# -- hostile file builders --------------------------------------------------------------------------
def _text(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _forged_npy(shape: tuple[int, ...], descr: str = "<c16") -> bytes:
    """An ``.npy`` whose header declares ``shape`` but which holds 64 bytes of data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


def _npz_members(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


class _Trap:
    """Pickled, it reduces to ``open(PATH, "a")``: a reader that unpickles creates ``PATH`` (caught by the snapshot)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "a"))


def _pickled_npz(path: Path, trap: Path, **arrays) -> Path:
    """An ``.npz`` whose members ``arrays`` are joined by object arrays that create ``trap`` if unpickled."""
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = _Trap(trap), None
    np.savez(path, **{k: (obj if v is None else v) for k, v in arrays.items()})
    return path


def _huge_nifti(path: Path, shape=(30_000, 30_000, 30_000)) -> Path:
    """A single-file NIfTI whose header declares ``shape`` float32 but which holds 64 bytes of data."""
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.float32)
    hdr["vox_offset"] = 352
    buf = io.BytesIO()
    hdr.write_to(buf)
    path.write_bytes(buf.getvalue().ljust(352, b"\0") + b"\0" * 64)
    return path


def _dicom_variant(src_series: Path, out: Path, change: Callable) -> Path:
    """The first file of a series, changed by ``change(ds)``, saved as ``out``."""
    import pydicom

    first = sorted(src_series.iterdir())[0]
    ds = pydicom.dcmread(first)
    change(ds)
    ds.save_as(out)
    return out


def _new_uid(ds) -> None:
    from pydicom.uid import generate_uid

    ds.SOPInstanceUID = generate_uid()


def _yaml(path: Path, data) -> Path:
    import yaml

    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def _train_config(d: Path, g: Good, **changes) -> dict:
    """A valid tiny training config (output ``d/out``) with ``changes`` as ``{"section.key": value}`` (``None``: remove)."""
    cfg = {
        "data": {"paths": [str(g.train_npz)]},
        "prior": {"channels": [8, 8], "attention_levels": [False, False], "num_head_channels": 8, "norm_num_groups": 4},
        "train": {"steps": 1, "batch_size": 2, "crop": 8, "checkpoint_every": 1},
        "output": str(d / "out"),
    }
    for key, value in changes.items():
        section, _, name = key.partition("__")
        target = cfg if not name else cfg.setdefault(section, {})
        k = section if not name else name
        if value is None:
            target.pop(k, None)
        else:
            target[k] = value
    return cfg


def _prior_folder(d: Path, json_text: str | bytes | None, weights: bytes | Path | None) -> Path:
    """A prior folder ``d/prior`` with the given ``prior.json`` text and weights (bytes or a file to copy); ``None``: absent."""
    p = d / "prior"
    p.mkdir()
    if json_text is not None:
        _text(p / "prior.json", json_text)
    if isinstance(weights, Path):
        shutil.copy(weights, p / "prior.safetensors")
    elif weights is not None:
        _text(p / "prior.safetensors", weights)
    return p


def _shipped_weights(name: str) -> Path:
    from medrecon.priors import shipped_prior_dir

    return shipped_prior_dir(name) / "prior.safetensors"


# == MRI: raw k-space files ===========================================================================
def _recon_mri(path: Path, d: Path, *extra) -> list:
    return ["reconstruct", "mri", path, "--method", "zf", "--quiet", "--out", d / "r.nii.gz", *extra]


def _mri_file_case(name: str, write: Callable[[Path, Path], Path], *expect: str, isolate: bool = False) -> None:
    """``reconstruct mri`` on the file ``write(folder, trap)`` makes; the message must name it."""

    def make(d: Path, g: Good) -> Case:
        bad = write(d, d / "UNPICKLED")
        return Case(name, tuple(map(str, _recon_mri(bad, d))), str(bad), expect, isolate)

    case(name)(make)


_mri_file_case("mri_not_hdf5", lambda d, t: _text(d / "k.h5", "this is not HDF5\n"), "file: expected a readable HDF5 file")
_mri_file_case("mri_empty_file", lambda d, t: _text(d / "k.h5", b""), "expected a readable HDF5 file")
_mri_file_case("mri_truncated_h5", lambda d, t: _text(d / "k.h5", _fastmri(d / "full.h5").read_bytes()[:3000]), "file:")
_mri_file_case("mri_kspace_missing", lambda d, t: _fastmri(d / "k.h5", drop=("kspace",)), "kspace: expected an HDF5 dataset 'kspace'")
_mri_file_case("mri_kspace_is_group", lambda d, t: _fastmri(d / "k.h5", groups=("kspace",)), "kspace")
_mri_file_case("mri_kspace_real_dtype", lambda d, t: _fastmri(d / "k.h5", kspace=np.ones((2, 2, 16, 16), np.float32)), "kspace", "complex")
_mri_file_case("mri_kspace_text_dtype", lambda d, t: _fastmri(d / "k.h5", kspace=np.bytes_(b"abc")), "kspace")
_mri_file_case("mri_kspace_ndim2", lambda d, t: _fastmri(d / "k.h5", kspace=np.ones((16, 16), np.complex64)), "kspace", "shape (16, 16)")
_mri_file_case(
    "mri_kspace_zero_slices",
    lambda d, t: _fastmri(d / "k.h5", kspace=np.ones((0, 2, 16, 16), np.complex64)),
    "kspace",
    "at least one slice",
)
_mri_file_case(
    "mri_kspace_zero_size",
    lambda d, t: _fastmri(d / "k.h5", kspace=np.ones((2, 2, 0, 0), np.complex64), drop=("mask",)),
    "kspace",
    "at least one slice and one coil",
)
_mri_file_case("mri_kspace_nan", lambda d, t: _fastmri(d / "k.h5", kspace=np.full((2, 2, 16, 16), np.nan, np.complex64)), "finite values")
_mri_file_case("mri_kspace_inf", lambda d, t: _fastmri(d / "k.h5", kspace=np.full((2, 2, 16, 16), np.inf, np.complex64)), "finite values")
_mri_file_case("mri_mask_nan", lambda d, t: _fastmri(d / "k.h5", mask=np.full(16, np.nan, np.float32)), "mask", "finite values in [0, 1]")
_mri_file_case("mri_mask_all_zero", lambda d, t: _fastmri(d / "k.h5", mask=np.zeros(16, np.float32)), "mask", "all-zero")
_mri_file_case("mri_mask_wrong_shape", lambda d, t: _fastmri(d / "k.h5", mask=np.ones(7, np.float32)), "mask", "shape (7,)")
_mri_file_case("mri_mask_is_group", lambda d, t: _fastmri(d / "k.h5", groups=("mask",)), "mask")
_mri_file_case(
    "mri_target_wrong_slices", lambda d, t: _fastmri(d / "k.h5", reconstruction_rss=np.ones((3, 8, 8), np.float32)), "reconstruction_rss"
)
_mri_file_case(
    "mri_ismrmrd_zero_matrix",
    lambda d, t: _fastmri(d / "k.h5", drop=("reconstruction_rss",), ismrmrd_header=np.bytes_(_header((16, 16, 1), (0, 0, 0)))),
    "ismrmrd_header",
)
_mri_file_case(
    "mri_ismrmrd_not_xml", lambda d, t: _fastmri(d / "k.h5", ismrmrd_header=np.bytes_(b"<not xml")), "ismrmrd_header", "ISMRMRD XML"
)
_mri_file_case(
    "mri_ismrmrd_text_matrix",
    lambda d, t: _fastmri(d / "k.h5", ismrmrd_header=np.bytes_(_header((16, 16, 1), ("abc", 16, 1)))),
    "ismrmrd_header",
)
_mri_file_case(
    "mri_skmtea_without_maps", lambda d, t: _h5(d / "k.h5", {"kspace": np.ones((2, 16, 16, 1, 2), np.complex64)}), "maps", "SKM-TEA"
)
_mri_file_case(
    "mri_h5_declares_huge_kspace",
    lambda d, t: _fastmri(d / "k.h5", kspace=("declared", (100, 64, 100_000, 100_000), np.complex64), drop=("mask", "reconstruction_rss")),
    "kspace",
    "fits in memory",
)
_mri_file_case("mri_npz_not_zip", lambda d, t: _text(d / "k.npz", "PK but not a zip"), "file:")
_mri_file_case("mri_npz_without_kspace", lambda d, t: (np.savez(d / "k.npz", other=np.ones(3)), d / "k.npz")[1], "kspace", "keys ['other']")
_mri_file_case("mri_npz_pickled_kspace", lambda d, t: _pickled_npz(d / "k.npz", t, kspace=None), "without pickled objects")
_mri_file_case(
    "mri_npz_forged_npy_header",
    lambda d, t: _npz_members(d / "k.npz", {"kspace.npy": _forged_npy((200_000, 200_000))}),
    "kspace",
    "fits in memory",
)
_mri_file_case("mri_unknown_suffix", lambda d, t: _text(d / "k.mat", "MATLAB 5.0"), "file type")
_mri_file_case("mri_input_is_folder", lambda d, t: (d / "k.h5").mkdir() or d / "k.h5", "a folder")
_mri_file_case("mri_input_missing", lambda d, t: d / "missing.h5", "no such file")
_mri_file_case("mri_input_fifo", lambda d, t: _fifo(d / "k.h5"), "named pipe", isolate=True)


_mri_file_case("mri_input_symlink_loop", lambda d, t: (os.symlink("k.h5", d / "k.h5"), d / "k.h5")[1], "not accessible")


@case("mri_memory_limit_garbage")
def _(d: Path, g: Good) -> Case:
    return Case(
        "", tuple(map(str, _recon_mri(g.fastmri, d))), "MEDRECON_MEMORY_LIMIT", ("a positive size",), env={"MEDRECON_MEMORY_LIMIT": "lots"}
    )


@case("mri_input_fifo_npz")
def _(d: Path, g: Good) -> Case:
    bad = _fifo(d / "k.npz")
    return Case("", tuple(map(str, _recon_mri(bad, d))), str(bad), ("named pipe",), isolate=True)


# == MRI: outputs and arguments =======================================================================
simple(
    "mri_out_is_input",
    lambda d, g: ["reconstruct", "mri", g.fastmri, "--method", "zf", "--out", g.fastmri],
    "--out",
    "not one of the inputs",
)


@case("mri_out_symlink_to_input")
def _(d: Path, g: Good) -> Case:
    link = d / "link.h5"
    os.symlink(g.fastmri, link)
    return Case(
        "", tuple(map(str, ["reconstruct", "mri", g.fastmri, "--method", "zf", "--out", link])), "--out", ("not one of the inputs",)
    )


@case("mri_out_hardlink_to_input")
def _(d: Path, g: Good) -> Case:
    src = shutil.copy(g.fastmri, d / "k.h5")
    os.link(src, d / "hard.h5")
    return Case(
        "", tuple(map(str, ["reconstruct", "mri", src, "--method", "zf", "--out", d / "hard.h5"])), "--out", ("not one of the inputs",)
    )


simple("mri_out_missing_folder", lambda d, g: _recon_mri(g.fastmri, d / "missing"), lambda d, g: d / "missing", "missing folder")
simple(
    "mri_out_bad_suffix",
    lambda d, g: ["reconstruct", "mri", g.fastmri, "--method", "zf", "--out", d / "r.png"],
    "r.png",
    "output file type",
)


@case("mri_out_is_folder")
def _(d: Path, g: Good) -> Case:
    (d / "r.nii.gz").mkdir()
    return Case("", tuple(map(str, _recon_mri(g.fastmri, d))), str(d / "r.nii.gz"), ("an existing folder",))


simple("mri_slices_reversed", lambda d, g: _recon_mri(g.fastmri, d, "--slices", "3-1"), "--slices")
simple("mri_slices_out_of_range", lambda d, g: _recon_mri(g.fastmri, d, "--slices", "9"), "9", "out of range")
simple("mri_device_tpu", lambda d, g: _recon_mri(g.fastmri, d, "--device", "tpu"), "--device", "'tpu'")
simple(
    "mri_lam_nan", lambda d, g: ["reconstruct", "mri", g.fastmri, "--method", "cs", "--lam", "nan", "--out", d / "r.h5"], "--lam", "finite"
)
simple(
    "mri_iters_negative", lambda d, g: ["reconstruct", "mri", g.fastmri, "--method", "cs", "--iters", "-5", "--out", d / "r.h5"], "--iters"
)
simple("mri_lam_with_diffusion", lambda d, g: _recon_mri(g.fastmri, d, "--method", "diffusion", "--prior", "brain", "--lam", "1"), "--lam")
simple("mri_echo_out_of_range", lambda d, g: _recon_mri(g.fastmri, d, "--echo", "-3"), "--echo")
simple("mri_prior_with_classical", lambda d, g: _recon_mri(g.fastmri, d, "--prior", "brain"), "--prior", "--method diffusion")
simple(
    "mri_simulate_out_is_input",
    lambda d, g: ["simulate", "mri", "--input", g.fully, "--out", g.fully],
    "--out",
    "not one of the inputs",
)
simple("mri_simulate_accel_below_1", lambda d, g: ["simulate", "mri", "--input", g.fully, "--accel", "0.5", "--out", d / "u.h5"], "--accel")
simple(
    "mri_simulate_center_fraction_2",
    lambda d, g: ["simulate", "mri", "--input", g.fully, "--center-fraction", "2", "--out", d / "u.h5"],
    "--center-fraction",
)
simple(
    "mri_simulate_calib_negative",
    lambda d, g: ["simulate", "mri", "--input", g.fully, "--mask", "poisson", "--calib", "-4", "--out", d / "u.h5"],
    "--calib",
)

# == evaluate ==========================================================================================
simple(
    "evaluate_json_onto_target",
    lambda d, g: ["evaluate", "--target", g.fastmri, "--recon", g.recon_nii, "--json", g.fastmri],
    "--json",
    "not one of the inputs",
)
simple(
    "evaluate_json_onto_recon",
    lambda d, g: ["evaluate", "--target", g.fastmri, "--recon", g.recon_nii, "--json", g.recon_nii],
    "--json",
    "not one of the inputs",
)
simple(
    "evaluate_json_missing_folder",
    lambda d, g: ["evaluate", "--target", g.fastmri, "--recon", g.recon_nii, "--json", d / "no" / "m.json"],
    lambda d, g: d / "no",
    "missing folder",
)


@case("evaluate_recon_nan")
def _(d: Path, g: Good) -> Case:
    from medrecon.datasets.image_io import write_nifti

    bad = write_nifti(np.full((2, 16, 16), np.nan, np.float32), d / "nan.nii.gz")
    return Case("", tuple(map(str, ["evaluate", "--target", g.fastmri, "--recon", bad])), str(bad), ("finite",))


@case("evaluate_recon_wrong_slices")
def _(d: Path, g: Good) -> Case:
    from medrecon.datasets.image_io import write_nifti

    bad = write_nifti(np.ones((5, 16, 16), np.float32), d / "five.nii.gz")
    return Case("", tuple(map(str, ["evaluate", "--target", g.fastmri, "--recon", bad])), str(bad), ("slices",))


simple(
    "evaluate_window_reversed", lambda d, g: ["evaluate", "--target", g.ct_nii, "--recon", g.ct_nii, "--window", "500", "-500"], "--window"
)


@case("evaluate_target_fifo")
def _(d: Path, g: Good) -> Case:
    target = _fifo(d / "target.h5")
    return Case("", tuple(map(str, ["evaluate", "--target", target, "--recon", g.recon_nii])), str(target), ("named pipe",), isolate=True)


@case("evaluate_ct_recon_garbage_dcm")
def _(d: Path, g: Good) -> Case:
    bad = _text(d / "r.dcm", "not DICOM")
    return Case("", tuple(map(str, ["evaluate", "--target", g.ct_series, "--recon", bad])), str(bad), ("DICOM",))


# == YAML settings of reconstruct / simulate (--config, --set) ===========================================
def _config_case(name: str, text_or_data, *expect: str, cmd: str = "mri", section_names: str | None = None) -> None:
    """A ``--config`` file for ``reconstruct mri`` (or ``simulate ct`` / ``simulate pet``); the message must name the file."""

    def make(d: Path, g: Good) -> Case:
        cfg = _yaml(d / "c.yaml", text_or_data(d) if callable(text_or_data) else text_or_data)
        if cmd == "mri":
            argv = ["reconstruct", "mri", g.fastmri, "--quiet", "--config", cfg, "--out", d / "r.nii.gz"]
        elif cmd == "ct":
            argv = ["simulate", "ct", "--input", g.ct_nii, "--quiet", "--config", cfg, "--out", d / "s.h5"]
        else:
            argv = ["simulate", "pet", "--input", g.pet_npz, "--quiet", "--config", cfg, "--out", d / "s.h5"]
        return Case("", tuple(map(str, argv)), section_names or str(cfg), expect)

    case(name)(make)


_config_case("config_wrong_type_iters", {"recon": {"method": "cs", "iters": "many"}}, "recon.iters")
_config_case("config_wrong_type_lam_list", {"recon": {"method": "cs", "lam": [1, 2]}}, "recon.lam")
_config_case("config_lam_text", {"recon": {"method": "cs", "lam": "abc"}}, "recon.lam")
_config_case("config_unknown_key", {"recon": {"method": "cs", "lamda": 0.1}}, "recon.lamda", "unknown key")
_config_case("config_iters_negative", {"recon": {"method": "cs", "iters": -3}}, "recon.iters")
_config_case("config_method_unknown", {"recon": {"method": "magic"}}, "recon.method")
_config_case(
    "config_python_tag",
    lambda d: f"recon: !!python/object/apply:builtins.open ['{d / 'PWNED'}', 'a']\n",
    "unreadable",
)
_config_case("config_python_name_tag", "recon:\n  method: !!python/name:os.system\n", "unreadable")
_config_case("config_list_document", "- recon\n- sense\n", "document", "mapping")
_config_case("config_section_scalar", "recon: 5\n", "recon", "mapping")
_config_case("config_section_missing", "other: {}\n", "recon")
_config_case("config_not_utf8", b"recon:\n  method: \xff\xfe\x00cs\n", "unreadable")
_config_case("config_bad_yaml", "recon: {method: [cs\n", "unreadable")
_config_case("config_nan_value", "recon:\n  method: cs\n  lam: .nan\n", "recon.lam")
_config_case("ct_config_views_text", {"scan": {"views": "many"}}, "scan.views", cmd="ct")
_config_case("ct_config_dose_list", {"scan": {"dose": [1, 2]}}, "scan.dose", cmd="ct")
_config_case("ct_config_arc_bool", {"scan": {"arc_deg": "yes"}}, "scan.arc_deg", cmd="ct")
_config_case("pet_config_counts_negative", {"scan": {"counts": -1}}, "scan.counts", cmd="pet")
_config_case("pet_config_views_dict", {"scan": {"views": {"a": 1}}}, "scan.views", cmd="pet")

simple("config_missing_file", lambda d, g: _recon_mri(g.fastmri, d, "--config", d / "none.yaml"), "none.yaml", "missing")


@case("config_is_folder")
def _(d: Path, g: Good) -> Case:
    (d / "c.yaml").mkdir()
    return Case("", tuple(map(str, _recon_mri(g.fastmri, d, "--config", d / "c.yaml"))), str(d / "c.yaml"), ("a folder",))


@case("config_fifo")
def _(d: Path, g: Good) -> Case:
    cfg = _fifo(d / "c.yaml")
    return Case("", tuple(map(str, _recon_mri(g.fastmri, d, "--config", cfg))), str(cfg), ("special file",), isolate=True)


simple("set_without_equals", lambda d, g: _recon_mri(g.fastmri, d, "--set", "lam"), "--set", "key=value")
simple(
    "set_text_for_number",
    lambda d, g: ["reconstruct", "mri", g.fastmri, "--method", "cs", "--set", "lam=abc", "--out", d / "r.h5"],
    "--set lam",
)
simple(
    "set_unknown_key", lambda d, g: ["reconstruct", "mri", g.fastmri, "--method", "cs", "--set", "lamda=1", "--out", d / "r.h5"], "lamda"
)
simple(
    "set_list_for_int",
    lambda d, g: ["reconstruct", "mri", g.fastmri, "--method", "cs", "--set", "iters=[1,2]", "--out", d / "r.h5"],
    "iters",
)

# == CT: volumes in =====================================================================================


def _sim_ct(inp, d: Path, *extra) -> list:
    return ["simulate", "ct", "--input", inp, "--quiet", "--out", d / "s.h5", *extra]


def _ct_file_case(name: str, write: Callable[[Path, Good], Path], *expect: str, isolate: bool = False, names=None) -> None:
    def make(d: Path, g: Good) -> Case:
        bad = write(d, g)
        return Case("", tuple(map(str, _sim_ct(bad, d))), str(names(d) if names else bad), expect, isolate)

    case(name)(make)


_ct_file_case("ct_text_named_dcm", lambda d, g: _text(d / "x.dcm", "not a DICOM file\n"), "DICOM")
_ct_file_case("ct_empty_dcm", lambda d, g: _text(d / "x.dcm", b""), "DICOM")
_ct_file_case(
    "ct_dicom_without_pixel_data", lambda d, g: _dicom_variant(g.ct_series, d / "x.dcm", lambda ds: delattr(ds, "PixelData")), "PixelData"
)
_ct_file_case(
    "ct_dicom_truncated_pixel_data",
    lambda d, g: _dicom_variant(g.ct_series, d / "x.dcm", lambda ds: setattr(ds, "PixelData", ds.PixelData[:100])),
    "PixelData",
)
_ct_file_case(
    "ct_dicom_wrong_modality", lambda d, g: _dicom_variant(g.ct_series, d / "x.dcm", lambda ds: setattr(ds, "Modality", "MR")), "Modality"
)
_ct_file_case(
    "ct_dicom_without_orientation",
    lambda d, g: _dicom_variant(g.ct_series, d / "x.dcm", lambda ds: delattr(ds, "ImageOrientationPatient")),
    "ImageOrientationPatient",
)


@case("ct_dicom_huge_rows")
def _(d: Path, g: Good) -> Case:
    bad = _dicom_variant(g.ct_series, d / "x.dcm", lambda ds: (setattr(ds, "Rows", 65535), setattr(ds, "Columns", 65535)))
    # a budget below the 16 GiB the header declares, whatever the memory of the machine running the corpus
    return Case("", tuple(map(str, _sim_ct(bad, d))), str(bad), ("fits in memory",), env={"MEDRECON_MEMORY_LIMIT": "1GiB"})


@case("ct_series_duplicate_slice")
def _(d: Path, g: Good) -> Case:
    series = shutil.copytree(g.ct_series, d / "series")
    _dicom_variant(series, series / "zz_copy.dcm", _new_uid)
    return Case("", tuple(map(str, _sim_ct(series, d))), str(series))


@case("ct_series_two_sizes")
def _(d: Path, g: Good) -> Case:
    import pydicom

    series = shutil.copytree(g.ct_series, d / "series")
    last = sorted(series.iterdir())[-1]
    ds = pydicom.dcmread(last)
    ds.Rows, ds.Columns = 16, 16
    ds.PixelData = np.zeros((16, 16), np.int16).tobytes()
    ds.save_as(last)
    return Case("", tuple(map(str, _sim_ct(series, d))), str(series))


@case("ct_empty_folder")
def _(d: Path, g: Good) -> Case:
    (d / "series").mkdir()
    return Case("", tuple(map(str, _sim_ct(d / "series", d))), str(d / "series"), ("at least one DICOM image",))


@case("ct_folder_of_text_files")
def _(d: Path, g: Good) -> Case:
    (d / "series").mkdir()
    for k in range(3):
        _text(d / "series" / f"{k}.dcm", "hello")
    return Case("", tuple(map(str, _sim_ct(d / "series", d))), str(d / "series"), ("at least one DICOM image",))


@case("ct_folder_with_fifo")
def _(d: Path, g: Good) -> Case:
    series = shutil.copytree(g.ct_series, d / "series")
    _fifo(series / "zz.dcm")
    _text(series / "readme.txt", "notes")
    # the pipe is skipped (a regular-file listing); the duplicated slice then ends it with one line
    _dicom_variant(series, series / "zz_copy.dcm", _new_uid)
    return Case("", tuple(map(str, _sim_ct(series, d))), str(series), isolate=True)


@case("ct_nifti_nan")
def _(d: Path, g: Good) -> Case:
    from medrecon.datasets.image_io import write_nifti

    hu = _ct_hu()
    hu[1, 5, 5] = np.nan
    bad = write_nifti(hu, d / "nan.nii.gz", affine=CT_AFFINE)
    return Case("", tuple(map(str, _sim_ct(bad, d))), str(bad), ("finite",))


_ct_file_case("ct_nifti_garbage", lambda d, g: _text(d / "x.nii.gz", b"\x1f\x8b garbage"), "NIfTI")
_ct_file_case("ct_nifti_truncated", lambda d, g: _text(d / "x.nii", g.ct_nii.read_bytes()[:200]), "NIfTI")
_ct_file_case("ct_nifti_huge_header", lambda d, g: _huge_nifti(d / "x.nii"), "fits in memory")


@case("ct_nifti_4d")
def _(d: Path, g: Good) -> Case:
    import nibabel as nib

    bad = d / "x.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 2, 3), np.float32), np.eye(4)), bad)
    return Case("", tuple(map(str, _sim_ct(bad, d))), str(bad), ("image",))


_ct_file_case("ct_input_fifo", lambda d, g: _fifo(d / "x.dcm"), "named pipe", isolate=True)
_ct_file_case("ct_input_fifo_nifti", lambda d, g: _fifo(d / "x.nii.gz"), "named pipe", isolate=True)
_ct_file_case("ct_input_missing", lambda d, g: d / "none.nii.gz", "no such file")

# == CT: arguments of simulate ==========================================================================
simple("ct_dose_nan", lambda d, g: _sim_ct(g.ct_nii, d, "--dose", "nan"), "--dose", "finite")
simple("ct_dose_inf", lambda d, g: _sim_ct(g.ct_nii, d, "--dose", "inf"), "--dose", "finite")
simple("ct_dose_negative", lambda d, g: _sim_ct(g.ct_nii, d, "--dose", "-1"), "--dose")
simple("ct_views_zero", lambda d, g: _sim_ct(g.ct_nii, d, "--views", "0"), "--views")
simple("ct_views_huge", lambda d, g: _sim_ct(g.ct_nii, d, "--views", "1000000000"), "--views")
simple("ct_arc_zero", lambda d, g: _sim_ct(g.ct_nii, d, "--arc", "0"), "--arc")
simple("ct_arc_400", lambda d, g: _sim_ct(g.ct_nii, d, "--arc", "400"), "--arc")
simple("ct_electronic_noise_negative", lambda d, g: _sim_ct(g.ct_nii, d, "--electronic-noise", "-1"), "--electronic-noise")
simple("ct_slices_reversed", lambda d, g: _sim_ct(g.ct_nii, d, "--slices", "3-1"), "--slices")
simple("ct_slices_out_of_range", lambda d, g: _sim_ct(g.ct_nii, d, "--slices", "5-7"), "slices")
simple("ct_device_tpu", lambda d, g: _sim_ct(g.ct_nii, d, "--device", "tpu"), "--device")
simple("ct_out_is_input", lambda d, g: ["simulate", "ct", "--input", g.ct_nii, "--out", g.ct_nii], "--out", "not one of the inputs")
simple(
    "ct_out_inside_input_series",
    lambda d, g: ["simulate", "ct", "--input", g.ct_series, "--out", g.ct_series / "s.h5"],
    "--out",
    "inside the folder",
)
simple(
    "ct_out_missing_folder",
    lambda d, g: ["simulate", "ct", "--input", g.ct_nii, "--out", d / "no" / "s.h5"],
    lambda d, g: d / "no",
    "missing folder",
)

# == CT: sinograms ======================================================================================


def _recon_ct(sino, d: Path, *extra) -> list:
    return ["reconstruct", "ct", sino, "--quiet", "--out", d / "r.nii.gz", *extra]


def _sino_case(name: str, write: Callable[[Path], Path], *expect: str, cmd: Callable | None = None) -> None:
    def make(d: Path, g: Good) -> Case:
        bad = write(d)
        return Case("", tuple(map(str, (cmd or _recon_ct)(bad, d))), str(bad), expect)

    case(name)(make)


_sino_case("sino_not_hdf5", lambda d: _text(d / "s.h5", "sinogram"), "readable HDF5")
_sino_case("sino_missing_dataset", lambda d: _sino(d / "s.h5", drop=("sinogram",)), "sinogram", "an HDF5 dataset 'sinogram'")
_sino_case("sino_dataset_is_group", lambda d: _h5(d / "s.h5", {}, _sino_parts()[1], groups=("sinogram",)), "sinogram")
_sino_case("sino_missing_geometry", lambda d: _sino(d / "s.h5", drop=("geometry",)), "geometry")
_sino_case("sino_geometry_not_json", lambda d: _sino(d / "s.h5", attrs={"geometry": "{beam: parallel"}), "geometry")
_sino_case("sino_geometry_is_list", lambda d: _sino(d / "s.h5", attrs={"geometry": "[1, 2, 3]"}), "geometry")
_sino_case("sino_geometry_unknown_key", lambda d: _sino(d / "s.h5", geometry={"tilt": 3}), "geometry", "unknown keys")
_sino_case("sino_geometry_negative_det", lambda d: _sino(d / "s.h5", geometry={"n_det": -4}), "geometry")
_sino_case("sino_geometry_text_det", lambda d: _sino(d / "s.h5", geometry={"n_det": "many"}), "geometry")
_sino_case("sino_geometry_unknown_beam", lambda d: _sino(d / "s.h5", geometry={"beam": "pencil"}), "geometry", "beam")
_sino_case("sino_geometry_nan_angles", lambda d: _sino(d / "s.h5", geometry={"angles_rad": [float("nan")] * 30}), "angles")
_sino_case("sino_geometry_nan_spacing", lambda d: _sino(d / "s.h5", geometry={"det_spacing_mm": float("nan")}), "geometry")
_sino_case(
    "sino_geometry_huge_image", lambda d: _sino(d / "s.h5", geometry={"image_shape": [1_000_000, 1_000_000]}), "geometry", "fits in memory"
)
_sino_case("sino_affine_not_json", lambda d: _sino(d / "s.h5", attrs={"affine": "eye(4)"}), "affine")
_sino_case("sino_affine_wrong_shape", lambda d: _sino(d / "s.h5", attrs={"affine": "[1, 2, 3]"}), "affine")
_sino_case("sino_slices_not_json", lambda d: _sino(d / "s.h5", attrs={"slices": "0-1"}), "slices")
_sino_case(
    "sino_wrong_projection_count", lambda d: _sino(d / "s.h5", sinogram=np.zeros((2, 25, 46), np.float32)), "sinogram", "projections"
)
_sino_case(
    "sino_nan_values", lambda d: _sino(d / "s.h5", sinogram=np.full(_sino_parts()[0]["sinogram"].shape, np.nan, np.float32)), "finite"
)
_sino_case("sino_text_values", lambda d: _sino(d / "s.h5", sinogram=np.array([b"a", b"b"])), "sinogram")
_sino_case(
    "sino_source_headers_garbage",
    lambda d: _sino(d / "s.h5", source_headers=np.frombuffer(b"{not json", np.uint8)),
    "source_headers",
    "DICOM JSON",
    cmd=lambda sino, d: ["reconstruct", "ct", sino, "--quiet", "--out", d / "series"],
)
_sino_case(
    "sino_source_headers_count",
    lambda d: _sino(d / "s.h5", source_headers=np.frombuffer(b'[{"00100020": {"vr": "LO", "Value": ["P1"]}}]', np.uint8)),
    "source_headers",
    "one header per sinogram slice",
)
_sino_case("sino_pet_for_ct", lambda d: _sino(d / "s.h5", "PET"), "modality", "CT sinogram")
_sino_case("sino_mu_water_negative", lambda d: _sino(d / "s.h5", attrs={"mu_water_per_mm": -1.0}), "mu_water")


@case("sino_input_fifo")
def _(d: Path, g: Good) -> Case:
    bad = _fifo(d / "s.h5")
    return Case("", tuple(map(str, _recon_ct(bad, d))), str(bad), ("named pipe",), isolate=True)


simple("ct_recon_out_is_input", lambda d, g: ["reconstruct", "ct", g.ct_sino, "--out", g.ct_sino], "--out")
simple("ct_recon_out_bad_suffix", lambda d, g: ["reconstruct", "ct", g.ct_sino, "--out", d / "r.png"], "r.png", "output")


@case("ct_recon_out_nonempty_folder")
def _(d: Path, g: Good) -> Case:
    (d / "dcm").mkdir()
    _text(d / "dcm" / "keep.txt", "keep")
    return Case("", tuple(map(str, _recon_ct(g.ct_sino, d)[:-1] + [str(d / "dcm") + "/"])), str(d / "dcm"), ("non-empty folder",))


simple("ct_recon_iters_zero", lambda d, g: _recon_ct(g.ct_sino, d, "--method", "sirt", "--iters", "0"), "--iters")
simple("ct_recon_lam_negative", lambda d, g: _recon_ct(g.ct_sino, d, "--method", "tv", "--lam", "-1"), "--lam")
simple("ct_recon_prior_with_fbp", lambda d, g: _recon_ct(g.ct_sino, d, "--method", "fbp", "--prior", "ct"), "--prior")
simple(
    "ct_recon_mri_prior", lambda d, g: _recon_ct(g.ct_sino, d, "--prior", "brain", "--steps", "1", "--samples", "1"), "prior", "CT prior"
)
simple("ct_recon_iters_with_diffusion", lambda d, g: _recon_ct(g.ct_sino, d, "--prior", "ct", "--iters", "5"), "--iters")
simple("ct_recon_samples_zero", lambda d, g: _recon_ct(g.ct_sino, d, "--prior", "ct", "--samples", "0"), "--samples")

# == diffusion priors ===================================================================================


def _prior_case(
    name: str, folder: Callable[[Path, Good], Path], names: Callable[[Path], Path] | None, *expect: str, task: str = "mri"
) -> None:
    """A diffusion reconstruction (``task``) with the prior folder ``folder(d, g)``; the message must name ``names(prior)``."""

    def make(d: Path, g: Good) -> Case:
        p = folder(d, g)
        small = ["--steps", "1", "--samples", "1", "--quiet"]
        if task == "mri":
            argv = ["reconstruct", "mri", g.fastmri, "--prior", p, *small, "--out", d / "r.nii.gz"]
        elif task == "ct":
            argv = ["reconstruct", "ct", g.ct_sino, "--prior", p, *small, "--out", d / "r.nii.gz"]
        elif task == "pet":
            argv = ["reconstruct", "pet", g.pet_sino, "--method", "diffusion", "--prior", p, *small, "--out", d / "r.nii.gz"]
        else:
            argv = ["denoise", "pet", g.pet_nii, "--unit", "BQML", "--prior", p, "--steps", "1", "--samples", "1", "--out", d / "r.nii.gz"]
        return Case("", tuple(map(str, argv)), str(names(Path(p)) if names else p), expect)

    case(name)(make)


_prior_case("prior_folder_missing", lambda d, g: d / "none", lambda p: p / "prior.json", "missing")
_prior_case("prior_folder_empty", lambda d, g: _prior_folder(d, None, None), lambda p: p / "prior.json", "missing")
_prior_case("prior_without_json", lambda d, g: _prior_folder(d, None, _shipped_weights("ct")), lambda p: p / "prior.json", "missing")
_prior_case("prior_without_weights", lambda d, g: _prior_folder(d, g.prior_json, None), lambda p: p / "prior.safetensors", "missing")
_prior_case("prior_is_a_file", lambda d, g: _text(d / "prior.safetensors", b"\0" * 64), lambda p: p / "prior.json", "missing")
_prior_case("prior_json_garbage", lambda d, g: _prior_folder(d, "{not json", _shipped_weights("ct")), lambda p: p / "prior.json", "JSON")
_prior_case("prior_json_number", lambda d, g: _prior_folder(d, "42", _shipped_weights("ct")), lambda p: p / "prior.json")
_prior_case("prior_json_list", lambda d, g: _prior_folder(d, "[1, 2]", _shipped_weights("ct")), lambda p: p / "prior.json")
_prior_case("prior_json_not_utf8", lambda d, g: _prior_folder(d, b"\xff\xfe{}", _shipped_weights("ct")), lambda p: p / "prior.json")
_prior_case(
    "prior_json_wrong_objective",
    lambda d, g: _prior_folder(d, json.dumps({**json.loads(g.prior_json), "objective": "gan"}), _shipped_weights("ct")),
    lambda p: p / "prior.json",
    "objective",
)
_prior_case(
    "prior_json_network_not_mapping",
    lambda d, g: _prior_folder(d, json.dumps({**json.loads(g.prior_json), "prior": 5}), _shipped_weights("ct")),
    lambda p: p / "prior.json",
    "prior",
)
_prior_case(
    "prior_json_bad_schedule",
    lambda d, g: _prior_folder(d, json.dumps({**json.loads(g.prior_json), "schedule": {"steps": "x"}}), _shipped_weights("ct")),
    lambda p: p / "prior.json",
    "schedule",
)
_prior_case(
    "prior_json_schedule_text",
    lambda d, g: _prior_folder(
        d, json.dumps({**json.loads(g.prior_json), "schedule": {"num_train_timesteps": "x"}}), _shipped_weights("ct")
    ),
    lambda p: p / "prior.json",
    "schedule",
)
_prior_case(
    "prior_safetensors_garbage",
    lambda d, g: _prior_folder(d, g.prior_json, b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage"),
    lambda p: p / "prior.safetensors",
    "safetensors",
)
_prior_case(
    "prior_safetensors_huge_header_length",
    lambda d, g: _prior_folder(d, g.prior_json, (2**62).to_bytes(8, "little") + b"{}"),
    lambda p: p / "prior.safetensors",
    "safetensors",
)
_prior_case(
    "prior_weights_of_another_network",
    lambda d, g: _prior_folder(d, g.prior_json, _shipped_weights("brain")),
    lambda p: p / "prior.safetensors",
    "weights",
)
_prior_case("prior_ct_for_mri", lambda d, g: "ct", lambda p: "prior", "complex")
_prior_case("prior_mri_for_ct", lambda d, g: "brain", lambda p: "prior", "CT prior", task="ct")
_prior_case("prior_mri_for_pet_recon", lambda d, g: "brain", lambda p: "prior", task="pet")
_prior_case("prior_ct_for_pet_denoise", lambda d, g: "ct", lambda p: "prior", task="denoise")

# == PET: simulate ======================================================================================


def _sim_pet(inp, d: Path, *extra) -> list:
    return ["simulate", "pet", "--input", inp, "--quiet", "--out", d / "s.h5", *extra]


def _pet_npz_case(name: str, write: Callable[[Path, Path], Path], *expect: str) -> None:
    def make(d: Path, g: Good) -> Case:
        bad = write(d, d / "UNPICKLED")
        return Case("", tuple(map(str, _sim_pet(bad, d))), str(bad), expect)

    case(name)(make)


def _pairs(**arrays) -> dict:
    act = np.zeros((2, 32, 32), np.float32)
    act[:, 8:24, 8:24] = 1.0
    return {"pet_nac": act, "ct": np.full((2, 32, 32), 0.4, np.float32), **arrays}


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


_pet_npz_case("pet_npz_missing_pet_nac", lambda d, t: _npz(d / "p.npz", ct=_pairs()["ct"]), "pet_nac")
_pet_npz_case("pet_npz_missing_ct", lambda d, t: _npz(d / "p.npz", pet_nac=_pairs()["pet_nac"]), "ct")
_pet_npz_case("pet_npz_pickled_pet_nac", lambda d, t: _pickled_npz(d / "p.npz", t, pet_nac=None, ct=_pairs()["ct"]), "pickled")
_pet_npz_case("pet_npz_pickled_ct", lambda d, t: _pickled_npz(d / "p.npz", t, pet_nac=_pairs()["pet_nac"], ct=None), "pickled")
_pet_npz_case("pet_npz_2d", lambda d, t: _npz(d / "p.npz", pet_nac=np.ones((32, 32), np.float32), ct=np.ones((32, 32), np.float32)), "ct")
_pet_npz_case("pet_npz_ct_slices_mismatch", lambda d, t: _npz(d / "p.npz", **_pairs(ct=np.full((3, 32, 32), 0.4, np.float32))), "ct")
_pet_npz_case("pet_npz_negative_activity", lambda d, t: _npz(d / "p.npz", **_pairs(pet_nac=-_pairs()["pet_nac"] - 1)), "activity >= 0")
_pet_npz_case("pet_npz_nan_ct", lambda d, t: _npz(d / "p.npz", **_pairs(ct=np.full((2, 32, 32), np.nan, np.float32))), "finite")
_pet_npz_case("pet_npz_empty_slice", lambda d, t: _npz(d / "p.npz", **_pairs(pet_nac=np.zeros((2, 32, 32), np.float32))), "activity")
_pet_npz_case("pet_npz_complex", lambda d, t: _npz(d / "p.npz", **_pairs(pet_nac=np.ones((2, 32, 32), np.complex64))), "pet_nac")
_pet_npz_case("pet_npz_text", lambda d, t: _text(d / "p.npz", "pet"), "npz")
_pet_npz_case(
    "pet_npz_forged_header",
    lambda d, t: _npz_members(
        d / "p.npz", {"pet_nac.npy": _forged_npy((100_000, 100_000, 100), "<f8"), "ct.npy": _forged_npy((1, 2, 2), "<f4")}
    ),
    "pet_nac",
    "fits in memory",
)
simple("pet_counts_zero", lambda d, g: _sim_pet(g.pet_npz, d, "--counts", "0"), "--counts")
simple("pet_counts_nan", lambda d, g: _sim_pet(g.pet_npz, d, "--counts", "nan"), "--counts", "finite")
simple("pet_counts_negative", lambda d, g: _sim_pet(g.pet_npz, d, "--counts", "-5"), "--counts")
simple("pet_background_fraction_1", lambda d, g: _sim_pet(g.pet_npz, d, "--background-fraction", "1"), "--background-fraction")
simple("pet_views_zero", lambda d, g: _sim_pet(g.pet_npz, d, "--views", "0"), "--views")
simple("pet_slices_out_of_range", lambda d, g: _sim_pet(g.pet_npz, d, "--slices", "4-6"), "slices")
simple("pet_npz_with_ct_option", lambda d, g: _sim_pet(g.pet_npz, d, "--ct", g.pet_ct_nii), "--ct")
simple("pet_nifti_without_ct", lambda d, g: _sim_pet(g.pet_nii, d, "--unit", "BQML"), "--ct")
simple(
    "pet_out_is_ct",
    lambda d, g: ["simulate", "pet", "--input", g.pet_nii, "--ct", g.pet_ct_nii, "--out", g.pet_ct_nii],
    "--out",
    "not one of the inputs",
)


@case("pet_ct_without_overlap")
def _(d: Path, g: Good) -> Case:
    from medrecon.datasets.image_io import write_nifti

    far = PET_AFFINE.copy()
    far[:3, 3] = [10_000.0, 10_000.0, 10_000.0]
    ct = write_nifti(np.full((2, 32, 32), 40.0, np.float32), d / "far_ct.nii.gz", affine=far)
    return Case("", tuple(map(str, _sim_pet(g.pet_nii, d, "--unit", "BQML", "--ct", ct))), str(ct), ("overlap",))


@case("pet_ct_fifo")
def _(d: Path, g: Good) -> Case:
    ct = _fifo(d / "ct.nii.gz")
    return Case("", tuple(map(str, _sim_pet(g.pet_nii, d, "--unit", "BQML", "--ct", ct))), str(ct), ("named pipe",), isolate=True)


@case("pet_nifti_without_unit")
def _(d: Path, g: Good) -> Case:
    return Case("", tuple(map(str, _sim_pet(g.pet_nii, d, "--ct", g.pet_ct_nii))), str(g.pet_nii), ("descrip",))


# == PET: sinograms =====================================================================================


def _recon_pet(sino, d: Path, *extra) -> list:
    return ["reconstruct", "pet", sino, "--quiet", "--iters", "1", "--subsets", "1", "--out", d / "r.nii.gz", *extra]


_sino_case("pet_sino_ct_modality", lambda d: _sino(d / "s.h5"), "modality", "PET sinogram", cmd=_recon_pet)
_sino_case(
    "pet_sino_missing_multiplicative", lambda d: _sino(d / "s.h5", "PET", drop=("multiplicative",)), "multiplicative", cmd=_recon_pet
)
_sino_case(
    "pet_sino_background_shape",
    lambda d: _sino(d / "s.h5", "PET", background=np.zeros((2, 30, 5), np.float32)),
    "background",
    "shape",
    cmd=_recon_pet,
)
_sino_case(
    "pet_sino_nan_multiplicative",
    lambda d: _sino(d / "s.h5", "PET", multiplicative=np.full(_sino_parts("PET")[0]["sinogram"].shape, np.nan, np.float32)),
    "multiplicative",
    "finite",
    cmd=_recon_pet,
)
_sino_case(
    "pet_sino_negative_counts",
    lambda d: _sino(d / "s.h5", "PET", sinogram=-np.ones(_sino_parts("PET")[0]["sinogram"].shape, np.float32)),
    "prompt counts",
    cmd=_recon_pet,
)
_sino_case("pet_sino_calibration_not_json", lambda d: _sino(d / "s.h5", "PET", attrs={"calibration": "1,1"}), "calibration", cmd=_recon_pet)
_sino_case(
    "pet_sino_calibration_wrong_length",
    lambda d: _sino(d / "s.h5", "PET", attrs={"calibration": "[1.0, 2.0, 3.0]"}),
    "calibration",
    cmd=_recon_pet,
)
_sino_case(
    "pet_sino_calibration_nan", lambda d: _sino(d / "s.h5", "PET", attrs={"calibration": "[NaN, 1.0]"}), "calibration", cmd=_recon_pet
)
_sino_case(
    "pet_sino_guide_wrong_shape",
    lambda d: _sino(d / "s.h5", "PET", guide_hu=np.zeros((2, 5, 5), np.float32)),
    "guide_hu",
    "shape",
    cmd=_recon_pet,
)


@case("pet_dicom_out_for_normalised_unit")
def _(d: Path, g: Good) -> Case:
    sino = _sino(d / "s.h5", "PET", attrs={"unit": "normalised"})
    argv = ["reconstruct", "pet", sino, "--quiet", "--out", str(d / "dcm") + "/"]
    return Case("", tuple(map(str, argv)), str(sino), ("unit",))


simple("pet_recon_subsets_zero", lambda d, g: ["reconstruct", "pet", g.pet_sino, "--subsets", "0", "--out", d / "r.nii.gz"], "--subsets")
simple(
    "pet_recon_subsets_too_many", lambda d, g: ["reconstruct", "pet", g.pet_sino, "--subsets", "31", "--out", d / "r.nii.gz"], "--subsets"
)
simple("pet_recon_fwhm_negative", lambda d, g: ["reconstruct", "pet", g.pet_sino, "--fwhm", "-1", "--out", d / "r.nii.gz"], "--fwhm")
simple("pet_recon_iters_zero", lambda d, g: ["reconstruct", "pet", g.pet_sino, "--iters", "0", "--out", d / "r.nii.gz"], "--iters")
simple("pet_recon_steps_with_osem", lambda d, g: ["reconstruct", "pet", g.pet_sino, "--steps", "3", "--out", d / "r.nii.gz"], "--steps")
simple(
    "pet_recon_beta_with_diffusion",
    lambda d, g: ["reconstruct", "pet", g.pet_sino, "--method", "diffusion", "--prior", "ct", "--beta", "1", "--out", d / "r.nii.gz"],
    "--beta",
)
simple("pet_recon_out_is_input", lambda d, g: ["reconstruct", "pet", g.pet_sino, "--out", g.pet_sino], "--out")
simple(
    "pet_denoise_out_is_guide",
    lambda d, g: ["denoise", "pet", g.pet_nii, "--unit", "BQML", "--guide", g.pet_ct_nii, "--prior", "ct", "--out", g.pet_ct_nii],
    "--out",
    "not one of the inputs",
)


simple(
    "pet_denoise_ct_series_as_pet",
    lambda d, g: ["denoise", "pet", g.ct_series, "--prior", "ct", "--out", d / "r.nii.gz"],
    lambda d, g: g.ct_series,
    "Modality",
    "'PT'",
)


@case("pet_denoise_nan_input")
def _(d: Path, g: Good) -> Case:
    from medrecon.datasets.image_io import write_nifti

    bad = write_nifti(np.full((2, 32, 32), np.nan, np.float32), d / "nan.nii.gz", affine=PET_AFFINE)
    argv = ["denoise", "pet", bad, "--unit", "BQML", "--prior", "ct", "--out", d / "r.nii.gz"]
    return Case("", tuple(map(str, argv)), str(bad), ("finite",))


# == train ==============================================================================================


def _train_case(name: str, config: Callable[[Path, Good], dict | str], *expect: str, extra: tuple = (), names: str | None = None) -> None:
    """``medrecon train --config`` on the YAML ``config(d, g)``; the message must name the YAML (or ``names``)."""

    def make(d: Path, g: Good) -> Case:
        cfg = _yaml(d / "train.yaml", config(d, g))
        argv = ["train", "--config", cfg, "--quiet", *[a(d, g) if callable(a) else a for a in extra]]
        return Case("", tuple(map(str, argv)), names or str(cfg), expect)

    case(name)(make)


_train_case("train_python_tag", lambda d, g: f"data: !!python/object/apply:builtins.open ['{d / 'PWNED'}', 'a']\n", "unreadable")
_train_case("train_seed_list", lambda d, g: _train_config(d, g, train__seed=[1, 2]), "train.seed")
_train_case("train_channels_text", lambda d, g: _train_config(d, g, prior__channels="abc"), "prior.channels")
_train_case("train_channels_negative", lambda d, g: _train_config(d, g, prior__channels=[-8, 8]), "prior.channels")
_train_case("train_unknown_key", lambda d, g: _train_config(d, g, train__stepz=5), "train.stepz", "unknown key")
_train_case("train_unknown_section", lambda d, g: _train_config(d, g, extras={"a": 1}), "document")
_train_case("train_missing_output", lambda d, g: _train_config(d, g, output=None), "document")
_train_case("train_steps_negative", lambda d, g: _train_config(d, g, train__steps=-5), "train.steps")
_train_case("train_steps_text", lambda d, g: _train_config(d, g, train__steps="many"), "train.steps")
_train_case("train_lr_list", lambda d, g: _train_config(d, g, train__lr=[0.1]), "train.lr")
_train_case("train_lr_nan", lambda d, g: _train_config(d, g, train__lr=float("nan")), "train.lr")
_train_case("train_batch_size_float", lambda d, g: _train_config(d, g, train__batch_size=2.5), "train.batch_size")
_train_case("train_crop_dict", lambda d, g: _train_config(d, g, train__crop={"a": 1}), "train.crop")
_train_case("train_section_is_list", lambda d, g: _train_config(d, g, train=[1, 2]), "train")
_train_case("train_data_paths_empty", lambda d, g: _train_config(d, g, data__paths=[]), "data.paths")
_train_case("train_data_paths_text_number", lambda d, g: _train_config(d, g, data__paths=5), "data.paths")
_train_case(
    "train_condition_unknown_simulator",
    lambda d, g: _train_config(d, g, data__condition={"simulate": "nope"}),
    "simulate",
    names="data.condition.simulate",
)
_train_case("train_empty_file", lambda d, g: "", "document")
_train_case(
    "train_output_is_config", lambda d, g: _train_config(d, g, output=str(d / "train.yaml")), "not one of the inputs", names="output"
)
_train_case(
    "train_data_missing_file", lambda d, g: _train_config(d, g, data__paths=[str(d / "none.npz")]), "no such file", names="none.npz"
)


@case("train_output_existing_file")
def _(d: Path, g: Good) -> Case:
    _text(d / "out", "a file")
    cfg = _yaml(d / "train.yaml", _train_config(d, g))
    return Case("", tuple(map(str, ["train", "--config", cfg, "--quiet"])), str(d / "out"), ("an existing file",))


@case("train_data_all_zero")
def _(d: Path, g: Good) -> Case:
    data = _npz(d / "zeros.npz", images=np.zeros((4, 16, 16), np.float32))
    cfg = _yaml(d / "train.yaml", _train_config(d, g, data__paths=[str(data)]))
    return Case("", tuple(map(str, ["train", "--config", cfg, "--quiet"])), "zeros.npz")


@case("train_data_pickled")
def _(d: Path, g: Good) -> Case:
    data = _pickled_npz(d / "p.npz", d / "UNPICKLED", images=None)
    cfg = _yaml(d / "train.yaml", _train_config(d, g, data__paths=[str(data)]))
    return Case("", tuple(map(str, ["train", "--config", cfg, "--quiet"])), str(data), ("pickled",))


@case("train_data_wrong_ndim")
def _(d: Path, g: Good) -> Case:
    data = _npz(d / "flat.npz", images=np.ones((16, 16), np.float32))
    cfg = _yaml(d / "train.yaml", _train_config(d, g, data__paths=[str(data)]))
    return Case("", tuple(map(str, ["train", "--config", cfg, "--quiet"])), str(data), ("images",))


@case("train_data_nan_images")
def _(d: Path, g: Good) -> Case:
    data = _npz(d / "nan.npz", images=np.full((4, 16, 16), np.nan, np.float32))
    cfg = _yaml(d / "train.yaml", _train_config(d, g, data__paths=[str(data)]))
    return Case("", tuple(map(str, ["train", "--config", cfg, "--quiet"])), str(data))


@case("train_data_fifo")
def _(d: Path, g: Good) -> Case:
    data = _fifo(d / "pipe.npz")
    cfg = _yaml(d / "train.yaml", _train_config(d, g, data__paths=[str(data)]))
    return Case("", tuple(map(str, ["train", "--config", cfg, "--quiet"])), str(data), ("named pipe",), isolate=True)


_train_case("train_max_minutes_zero", lambda d, g: _train_config(d, g), extra=("--max-minutes", "0"), names="--max-minutes")
_train_case("train_set_bad_section", lambda d, g: _train_config(d, g), extra=("--set", "model.steps=3"), names="--set")
_train_case("train_device_tpu", lambda d, g: _train_config(d, g), extra=("--device", "tpu"), names="--device")


@case("train_init_from_empty_folder")
def _(d: Path, g: Good) -> Case:
    (d / "empty").mkdir()
    cfg = _yaml(d / "train.yaml", _train_config(d, g))
    argv = ["train", "--config", cfg, "--quiet", "--init-from", d / "empty"]
    return Case("", tuple(map(str, argv)), str(d / "empty" / "prior.json"), ("missing",))


@case("train_init_from_garbage_weights")
def _(d: Path, g: Good) -> Case:
    p = _prior_folder(d, g.prior_json, b"garbage")
    cfg = _yaml(d / "train.yaml", _train_config(d, g))
    argv = ["train", "--config", cfg, "--quiet", "--init-from", p]
    return Case("", tuple(map(str, argv)), str(p / "prior.safetensors"), ("safetensors",))


# -- translate (MR / PET -> synthetic CT) -------------------------------------------------------------
def _translate(inp, d: Path, *extra) -> list:
    return ["translate", "mr2ct", "--input", inp, "--method", "bulk", "--quiet", "--out", d / "sct.nii.gz", *extra]


@case("translate_input_fifo")
def _(d: Path, g: Good) -> Case:
    bad = _fifo(d / "mr.nii.gz")
    return Case("", tuple(map(str, _translate(bad, d))), str(bad), ("named pipe",), isolate=True)


@case("translate_mr_nan")
def _(d: Path, g: Good) -> Case:
    from medrecon.datasets.image_io import write_nifti

    bad = write_nifti(np.full((2, 16, 16), np.nan, np.float32), d / "mr.nii.gz")
    return Case("", tuple(map(str, _translate(bad, d))), str(bad), ("finite",))


@case("translate_mr_blank")
def _(d: Path, g: Good) -> Case:
    from medrecon.datasets.image_io import write_nifti

    bad = write_nifti(np.zeros((2, 16, 16), np.float32), d / "mr.nii.gz")
    return Case("", tuple(map(str, _translate(bad, d))), str(bad), ("signal",))


simple(
    "translate_out_is_input",
    lambda d, g: ["translate", "mr2ct", "--input", g.recon_nii, "--method", "bulk", "--out", g.recon_nii],
    "--out",
    "input",
)
simple(
    "translate_prior_of_ct",
    lambda d, g: ["translate", "mr2ct", "--input", g.recon_nii, "--prior", "ct", "--out", d / "s.nii.gz"],
    "--prior",
    "synthetic-CT",
)
simple("translate_samples_zero", lambda d, g: _translate(g.recon_nii, d, "--set", "samples=0"), "samples")
simple(
    "translate_out_suffix", lambda d, g: ["translate", "mr2ct", "--input", g.recon_nii, "--method", "bulk", "--out", d / "s.png"], "output"
)
simple(
    "translate_pet_as_mr_prior",
    lambda d, g: ["translate", "pet2ct", "--input", g.pet_npz, "--prior", "ct", "--out", d / "s.nii.gz"],
    "--prior",
    "conditioned on PET",
)


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.reliability.corpus --out DIR``: write the corpus and list its cases."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="a new folder for the corpus")
    ap.add_argument("--case", action="append", default=None, help="build only this case (repeatable)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        ap.error(f"--out: expected a new or empty folder, got {out}")
    for c in build_cases(out, args.case):
        print(f"{c.name}\t{'[subprocess] ' if c.isolate else ''}medrecon {' '.join(c.argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
