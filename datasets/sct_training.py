"""Training pairs for synthetic-CT priors: a CT in HU with the MR (or NAC-PET) of the same anatomy as its condition.

Three kinds of ``data.paths`` entries, all of one condition modality:

- a subject folder holding ``ct.nii.gz`` and ``mr.nii.gz`` (SynthRAD layout; ``.nii`` also);
- a CT file or DICOM series folder, paired with the MR file or folder at the same position of
  ``condition.paths``;
- a PET/CT slice-pair ``.npz`` (:func:`~medrecon.datasets.pet_images.read_pet_ct_npz`): the CT is
  the target, the non-attenuation-corrected PET the condition (NAC-PET → CT, as used for PET
  attenuation correction).

Targets are ``HU / 1000`` clipped to the CT range (as for CT priors), axial slices of the stored
volume (its third voxel axis). MR conditions are divided per volume by
:func:`~medrecon.datasets.mr_volume.mr_scale`; PET conditions per slice by
:func:`~medrecon.datasets.pet_training.pet_scale`. With ``neighbours = n`` (2.5-D) the condition of
slice ``k`` is the MR slices ``k − n … k + n`` (clamped at the ends of the volume), and training
slices whose neighbours reach into a held-out range are left out too, so nothing of the held-out
slab is seen in training.

MR and CT must share one grid (shape and affine within 0.01 mm) unless ``resample`` is set: then the
MR is resampled (trilinear) onto the CT's grid — the only resampling rule, stated in the prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..physics.ct.transmission import HU_PER_UNIT
from .ct_training import HU_RANGE
from .ct_volume import CTVolume, read_ct
from .mr_volume import MR_NORMALISATION, contrast_fingerprint, mr_scale, read_mr
from .pet_images import read_pet_ct_npz, resample_slices
from .pet_training import PET_NORMALISATION, pet_scale

AIR_CHECK_PERCENTILE = 0.5  # a CT in HU has air (≈ −1000) in at least this percent of its voxels
BODY_HU = -500.0


@dataclass(frozen=True)
class SCTTrainingPairs:
    """Attributes:
    images: ``(N, H, W)`` float32 CT, ``HU / 1000``.
    conds: ``(N, 2n + 1, H, W)`` float32 normalised condition slices.
    spacing_mm: ``(row, col)`` in-plane pixel size; ``slice_mm``: slice spacing.
    axcodes: anatomical directions of the voxel axes ``(col, row, slice)``, e.g. ``["R", "A", "S"]``.
    condition: ``{"modality", "normalisation", "neighbours", "fingerprint"}`` (fingerprint: MR only).
    holdout: ``[{"path", "axis", "slices"}]``; sources: per entry ``(name, slices kept)``.
    """

    images: np.ndarray
    conds: np.ndarray
    spacing_mm: tuple[float, float]
    slice_mm: float
    axcodes: list[str]
    condition: dict
    holdout: list[dict]
    sources: list[tuple[str, int]]


def _subject_files(folder: Path) -> tuple[Path, Path] | None:
    names = {q.name.lower(): q for q in folder.iterdir() if q.is_file()}
    ct = names.get("ct.nii.gz") or names.get("ct.nii")
    mr = names.get("mr.nii.gz") or names.get("mr.nii")
    return (ct, mr) if ct is not None and mr is not None else None


def check_hu(vol: CTVolume) -> None:
    """Refuse a CT whose values are not Hounsfield units (no air near −1000: e.g. raw stored values without rescale)."""
    low = float(np.percentile(vol.hu, AIR_CHECK_PERCENTILE))
    if low > BODY_HU:
        raise InputFileError(
            vol.source,
            "CT values",
            f"Hounsfield units (air near -1000 HU in at least {AIR_CHECK_PERCENTILE}% of voxels)",
            f"{low:.0f} at that percentile",
        )


def _same_grid(a: np.ndarray, a_aff: np.ndarray, b: np.ndarray, b_aff: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a_aff, b_aff, atol=1e-2)


def _volume_pair(ct_path: Path, mr_path: Path, resample: bool) -> tuple[CTVolume, np.ndarray, list[float]]:
    """CT volume, normalised MR on the CT's grid, MR fingerprint."""
    ct = read_ct(ct_path)
    check_hu(ct)
    mr = read_mr(mr_path)
    values = mr.values
    if not _same_grid(ct.hu, ct.affine, values, mr.affine):
        if not resample:
            raise InputFileError(
                mr_path,
                "geometry",
                f"the CT's grid {ct.hu.shape} and affine (or data.condition.resample: true to resample the MR onto it)",
                f"{values.shape} with another affine" if values.shape == ct.hu.shape else f"{values.shape}",
            )
        values = resample_slices(values, mr.affine, ct.hu.shape, ct.affine, 0.0)
    norm = values / mr_scale(values, mr_path)
    return ct, norm.astype(np.float32), contrast_fingerprint(norm)


def stack_neighbours(cond: np.ndarray, keep: np.ndarray, n: int) -> np.ndarray:
    """``(S, H, W)`` → ``(kept, 2n + 1, H, W)``: slices ``k − n … k + n`` (clamped) for each kept ``k``."""
    ks = np.flatnonzero(keep)
    idx = np.clip(ks[:, None] + np.arange(-n, n + 1)[None, :], 0, cond.shape[0] - 1)
    return cond[idx]


@dataclass
class _Entries:
    """What every reader of synthetic-CT training data shares: per entry the CT (``HU / 1000``), the
    normalised condition ``(S, H, W)`` and the slices kept, plus the common geometry."""

    cts: list = field(default_factory=list)  # (name, ct (S, H, W), cond (S, H, W), keep (S,))
    kinds: set = field(default_factory=set)
    fingerprints: list = field(default_factory=list)
    held: list = field(default_factory=list)
    spacing: tuple[float, float] | None = None
    axcodes: list[str] | None = None
    slice_mm: float = 0.0

    def condition(self, neighbours: int, **extra) -> dict:
        modality = next(iter(self.kinds))
        return {
            "modality": modality,
            "normalisation": MR_NORMALISATION if modality == "MR" else PET_NORMALISATION,
            "neighbours": int(neighbours),
            **extra,
            **({"fingerprint": np.round(np.mean(self.fingerprints, axis=0), 4).tolist()} if self.fingerprints else {}),
        }


def _read_entries(paths, cond_paths, holdout, margin: int, resample: bool, volumes_only: bool = False) -> _Entries:
    """Read every entry, check geometry and held-out ranges (``margin`` more slices left out on each side)."""
    import nibabel as nib

    holdout = {str(k): v for k, v in (holdout or {}).items()}
    unknown = set(holdout) - {str(p) for p in paths}
    if unknown:
        raise InputFileError(sorted(unknown)[0], "data.holdout", f"one of data.paths {[str(p) for p in paths]}", "a path not in data.paths")
    if cond_paths is not None and len(cond_paths) != len(paths):
        raise InputFileError(cond_paths[0], "data.condition.paths", f"one MR per CT ({len(paths)})", f"{len(cond_paths)}")
    e = _Entries()
    for i, p in enumerate(map(Path, paths)):
        if p.suffix.lower() == ".npz":
            e.kinds.add("PET")
            if margin or volumes_only:
                what = "0 neighbours and a 2-D prior"
                raise InputFileError(p, "data.condition", f"{what} for PET/CT slice pairs (slices are not a volume)", "a volume setting")
            im = read_pet_ct_npz(p)
            hu, cond, affine = im.guide_hu, (im.activity / pet_scale(im.activity)[:, None, None]).astype(np.float32), im.affine
        else:
            pair = _subject_files(p) if p.is_dir() and cond_paths is None else None
            if pair is None and cond_paths is None:
                raise InputFileError(
                    p,
                    "data.paths",
                    "a subject folder with ct.nii.gz and mr.nii.gz, a PET/CT .npz, or data.condition.paths",
                    "none of these",
                )
            e.kinds.add("MR")
            ct, cond, fp = _volume_pair(*(pair or (p, Path(cond_paths[i]))), resample)
            hu, affine = ct.hu, ct.affine
            e.fingerprints.append(fp)
        col, row, sl = (float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
        codes = list(nib.aff2axcodes(affine))
        if e.spacing is None:
            e.spacing, e.axcodes, e.slice_mm = (row, col), codes, sl
        elif codes != e.axcodes or abs(row - e.spacing[0]) > 0.02 * e.spacing[0] or abs(col - e.spacing[1]) > 0.02 * e.spacing[1]:
            raise InputFileError(
                p,
                "geometry",
                f"{e.spacing[0]:.3g} x {e.spacing[1]:.3g} mm pixels in {''.join(e.axcodes)} orientation like the first entry (resample first)",
                f"{row:.3g} x {col:.3g} mm in {''.join(codes)}",
            )
        keep = np.ones(hu.shape[0], bool)
        if str(p) in holdout:
            a, b = (int(v) for v in holdout[str(p)])
            if not 0 <= a <= b < hu.shape[0]:
                raise InputFileError(p, "data.holdout", f"a slice range inside 0..{hu.shape[0] - 1}", f"[{a}, {b}]")
            keep[max(a - margin, 0) : b + margin + 1] = False
            e.held.append({"path": p.name, "axis": codes[2], "slices": [a, b]})
        e.cts.append((p.name, np.clip(hu, *HU_RANGE) / HU_PER_UNIT, cond, keep))
    if len(e.kinds) > 1:
        raise InputFileError(paths[0], "data.paths", "one condition modality (all MR or all PET/CT .npz)", "both")
    return e


def load_sct_training_pairs(
    paths: list[str | Path],
    cond_paths: list[str | Path] | None = None,
    holdout: dict[str, tuple[int, int]] | None = None,
    neighbours: int = 0,
    resample: bool = False,
    min_fraction: float = 0.05,
) -> SCTTrainingPairs:
    """Read CT / condition pairs and keep the axial slices outside the held-out ranges.

    Args:
        paths: subject folders, CT files / series folders (with ``cond_paths``) or PET/CT ``.npz``.
        cond_paths: the MR of each CT in ``paths`` (``None`` for subject folders and ``.npz``).
        holdout: ``{path: (first, last)}`` inclusive slice ranges of ``paths`` entries left out.
        neighbours: 2.5-D condition half-width ``n`` (MR only: slices of a volume).
        resample: resample MR onto the CT's grid when they differ (else refuse).
        min_fraction: drop slices whose body (CT above −500 HU) covers less than this fraction of
            the largest body area among all slices.

    Raises:
        InputFileError: a file that cannot be read or paired, a CT not in HU, MR and CT on
            different grids without ``resample``, in-plane pixel sizes or orientations that differ
            between entries, a held-out range outside its volume, no slices left.
    """
    e = _read_entries(paths, cond_paths, holdout, neighbours, resample)
    h, w = max(v.shape[1] for _, v, _, _ in e.cts), max(v.shape[2] for _, v, _, _ in e.cts)
    images = np.concatenate([_pad(v[k], h, w, HU_RANGE[0] / HU_PER_UNIT) for _, v, _, k in e.cts])
    stacked = np.concatenate(
        [
            _pad(stack_neighbours(c, k, neighbours).reshape(-1, *c.shape[1:]), h, w, 0.0).reshape(int(k.sum()), 2 * neighbours + 1, h, w)
            for _, _, c, k in e.cts
        ]
    )
    body = (images > BODY_HU / HU_PER_UNIT).reshape(images.shape[0], -1).sum(1)
    good = body >= min_fraction * body.max() if body.size and body.max() > 0 else np.zeros(body.shape, bool)
    if not good.any():
        raise InputFileError(paths[0], "slices", "at least one training slice with anatomy outside the held-out ranges", "none")
    return SCTTrainingPairs(
        images[good].astype(np.float32),
        stacked[good].astype(np.float32),
        e.spacing,
        e.slice_mm,
        e.axcodes,
        e.condition(neighbours),
        e.held,
        [(name, int(k.sum())) for name, _, _, k in e.cts],
    )


def load_sct_training_blocks(
    paths: list[str | Path],
    cond_paths: list[str | Path] | None = None,
    holdout: dict[str, tuple[int, int]] | None = None,
    depth: int = 32,
    resample: bool = False,
) -> SCTTrainingPairs:
    """3-D training blocks for a patch prior: runs of ``depth`` contiguous slices outside the held-out ranges.

    Every run of kept slices at least ``depth`` long gives blocks starting every ``depth // 2``
    slices (and one ending at the run's end), so a random patch never crosses a held-out slab or
    the padding between volumes. ``images`` are ``(N, depth, H, W)``, ``conds`` ``(N, 1, depth, H, W)``.

    Raises:
        InputFileError: as :func:`load_sct_training_pairs`; PET/CT slice pairs; no run of ``depth`` slices.
    """
    e = _read_entries(paths, cond_paths, holdout, 0, resample, volumes_only=True)
    h, w = max(v.shape[1] for _, v, _, _ in e.cts), max(v.shape[2] for _, v, _, _ in e.cts)
    blocks, conds = [], []
    for _, v, c, keep in e.cts:
        edges = np.flatnonzero(np.diff(np.r_[0, keep.astype(int), 0]))
        for a, b in zip(edges[::2], edges[1::2]):  # runs [a, b) of kept slices
            if b - a < depth:
                continue
            starts = sorted({*range(a, b - depth + 1, max(depth // 2, 1)), b - depth})
            for s0 in starts:
                blocks.append(_pad(v[s0 : s0 + depth], h, w, HU_RANGE[0] / HU_PER_UNIT))
                conds.append(_pad(c[s0 : s0 + depth], h, w, 0.0)[None])
    if not blocks:
        raise InputFileError(paths[0], "slices", f"a run of at least {depth} slices outside the held-out ranges (train.crop)", "none")
    return SCTTrainingPairs(
        np.stack(blocks).astype(np.float32),
        np.stack(conds).astype(np.float32),
        e.spacing,
        e.slice_mm,
        e.axcodes,
        e.condition(0, patch=int(depth)),
        e.held,
        [(name, int(k.sum())) for name, _, _, k in e.cts],
    )


def _pad(v: np.ndarray, h: int, w: int, fill: float) -> np.ndarray:
    dh, dw = h - v.shape[1], w - v.shape[2]
    return np.pad(v, ((0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)), constant_values=fill)
