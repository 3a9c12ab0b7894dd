"""CT acquisition geometries in physical units (mm, radians) and their ASTRA equivalents.

Conventions: a 2-D image is ``(rows, cols)`` = ``(y, x)``, a volume ``(slices, rows, cols)`` =
``(z, y, x)``, centred on the rotation axis. A sinogram is ``(views, detector columns)`` in 2-D and
``(detector rows, views, detector columns)`` in 3-D (ASTRA's layout). Line integrals are in the
units of the image times mm (an image of μ in 1/mm gives dimensionless projections).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

BEAMS = ("parallel", "fan", "parallel3d", "cone")


# the numeric fields of a geometry (True: integers), checked when one is read from JSON
_NUMERIC_FIELDS = {
    "image_shape": True,
    "voxel_size_mm": False,
    "angles_rad": False,
    "n_det": True,
    "det_spacing_mm": False,
    "source_origin_mm": False,
    "origin_det_mm": False,
    "n_det_rows": True,
    "det_row_spacing_mm": False,
}


@dataclass(frozen=True)
class CTGeometry:
    """One CT scan geometry.

    Attributes:
        beam: ``"parallel"`` / ``"fan"`` (2-D, slice by slice) or ``"parallel3d"`` / ``"cone"`` (3-D).
        image_shape: ``(rows, cols)`` for 2-D beams, ``(slices, rows, cols)`` for 3-D.
        voxel_size_mm: spacing per image axis, same length as ``image_shape``; 2-D beams need
            square pixels (ASTRA's 2-D volume grid is isotropic in-plane).
        angles_rad: projection angles.
        n_det: detector columns.
        det_spacing_mm: detector column pitch (for fan / cone: at the detector).
        source_origin_mm: source to rotation axis (fan / cone).
        origin_det_mm: rotation axis to detector (fan / cone).
        n_det_rows: detector rows (3-D beams).
        det_row_spacing_mm: detector row pitch (3-D beams).
    """

    beam: str
    image_shape: tuple[int, ...]
    voxel_size_mm: tuple[float, ...]
    angles_rad: tuple[float, ...]
    n_det: int
    det_spacing_mm: float
    source_origin_mm: float = 0.0
    origin_det_mm: float = 0.0
    n_det_rows: int = 1
    det_row_spacing_mm: float = 1.0
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.beam not in BEAMS:
            raise ValueError(f"beam: expected one of {BEAMS}, got {self.beam!r}")
        nd = 2 if self.beam in ("parallel", "fan") else 3
        if len(self.image_shape) != nd or len(self.voxel_size_mm) != nd:
            raise ValueError(
                f"image_shape / voxel_size_mm: expected {nd} values for beam {self.beam!r}, "
                f"got {tuple(self.image_shape)} / {tuple(self.voxel_size_mm)}"
            )
        if any(int(n) < 1 for n in self.image_shape) or any(float(v) <= 0 for v in self.voxel_size_mm):
            raise ValueError(f"image_shape / voxel_size_mm: expected positive values, got {self.image_shape} / {self.voxel_size_mm}")
        if nd == 2 and not math.isclose(self.voxel_size_mm[0], self.voxel_size_mm[1], rel_tol=1e-6):
            raise ValueError(f"voxel_size_mm: 2-D ASTRA geometries need square pixels, got {self.voxel_size_mm}")
        if len(self.angles_rad) < 1:
            raise ValueError("angles_rad: expected at least one projection angle")
        if self.n_det < 1 or self.det_spacing_mm <= 0:
            raise ValueError(f"n_det / det_spacing_mm: expected positive, got {self.n_det} / {self.det_spacing_mm}")
        if self.beam in ("fan", "cone") and (self.source_origin_mm <= 0 or self.origin_det_mm < 0):
            raise ValueError(
                f"source_origin_mm / origin_det_mm: expected > 0 / >= 0 for a {self.beam} beam, "
                f"got {self.source_origin_mm} / {self.origin_det_mm}"
            )

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        beam: str,
        image_shape: tuple[int, ...],
        voxel_size_mm: tuple[float, ...],
        n_views: int,
        arc_deg: float | None = None,
        start_deg: float = 0.0,
        n_det: int | None = None,
        det_spacing_mm: float | None = None,
        source_origin_mm: float = 0.0,
        origin_det_mm: float = 0.0,
        n_det_rows: int | None = None,
        det_row_spacing_mm: float | None = None,
    ) -> CTGeometry:
        """A circular scan of ``n_views`` equally spaced views over ``arc_deg`` degrees.

        Defaults: a full arc (180° parallel, 360° fan / cone); a detector that covers the image
        diagonal at the voxel pitch (magnified for fan / cone); a limited-angle scan is simply
        ``arc_deg < 180`` (parallel), a sparse-view scan a small ``n_views``.
        """
        if n_views < 1:
            raise ValueError(f"n_views: expected >= 1, got {n_views}")
        full = 180.0 if beam in ("parallel", "parallel3d") else 360.0
        arc = full if arc_deg is None else float(arc_deg)
        if not 0 < arc <= 360:
            raise ValueError(f"arc_deg: expected a value in (0, 360], got {arc_deg}")
        angles = np.deg2rad(start_deg + arc * np.arange(n_views) / n_views)
        mag = 1.0
        if beam in ("fan", "cone"):
            if source_origin_mm <= 0:
                raise ValueError(f"source_origin_mm: expected > 0 for a {beam} beam, got {source_origin_mm}")
            mag = (source_origin_mm + origin_det_mm) / source_origin_mm
        inplane = image_shape[-2:]
        pitch = float(voxel_size_mm[-1])
        if det_spacing_mm is None:
            det_spacing_mm = pitch * mag
        if n_det is None:
            diag_mm = math.hypot(inplane[0] * float(voxel_size_mm[-2]), inplane[1] * pitch)
            n_det = int(math.ceil(diag_mm * mag / det_spacing_mm)) + 2
        if beam in ("parallel3d", "cone"):
            zmm = image_shape[0] * float(voxel_size_mm[0])
            if det_row_spacing_mm is None:
                det_row_spacing_mm = float(voxel_size_mm[0]) * mag
            if n_det_rows is None:
                n_det_rows = int(math.ceil(zmm * mag / det_row_spacing_mm)) + (2 if beam == "cone" else 0)
        return cls(
            beam=beam,
            image_shape=tuple(int(n) for n in image_shape),
            voxel_size_mm=tuple(float(v) for v in voxel_size_mm),
            angles_rad=tuple(float(a) for a in angles),
            n_det=int(n_det),
            det_spacing_mm=float(det_spacing_mm),
            source_origin_mm=float(source_origin_mm),
            origin_det_mm=float(origin_det_mm),
            n_det_rows=int(n_det_rows or 1),
            det_row_spacing_mm=float(det_row_spacing_mm or 1.0),
        )

    # -- properties ---------------------------------------------------------------------------
    @property
    def is_3d(self) -> bool:
        """True for ``parallel3d`` and ``cone``."""
        return self.beam in ("parallel3d", "cone")

    @property
    def n_views(self) -> int:
        """Number of projection angles."""
        return len(self.angles_rad)

    @property
    def sino_shape(self) -> tuple[int, ...]:
        """``(views, det)`` in 2-D, ``(det_rows, views, det)`` in 3-D."""
        if self.is_3d:
            return (self.n_det_rows, self.n_views, self.n_det)
        return (self.n_views, self.n_det)

    @property
    def arc_deg(self) -> float:
        """Angular coverage in degrees (spacing × number of views for equally spaced scans)."""
        a = np.asarray(self.angles_rad)
        step = float(np.median(np.diff(a))) if a.size > 1 else 0.0
        return float(np.rad2deg(abs(step) * a.size))

    # -- serialisation ------------------------------------------------------------------------
    def to_json(self) -> str:
        """JSON text of all fields (stored with sinograms)."""
        d = asdict(self)
        d.pop("extra")
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> CTGeometry:
        """Inverse of :meth:`to_json`; unknown or missing keys, and numbers of the wrong type or not finite, raise ``ValueError``."""
        d = json.loads(text)
        if not isinstance(d, dict):
            raise ValueError(f"geometry: expected a JSON object, got {type(d).__name__}")
        names = {f for f in cls.__dataclass_fields__ if f != "extra"}
        if set(d) - names:
            raise ValueError(f"geometry: unknown keys {sorted(set(d) - names)}")
        required = {"beam", "image_shape", "voxel_size_mm", "angles_rad", "n_det", "det_spacing_mm"}
        if required - set(d):
            raise ValueError(f"geometry: missing keys {sorted(required - set(d))}")
        for key in ("image_shape", "voxel_size_mm", "angles_rad"):
            if not isinstance(d[key], list):
                raise ValueError(f"{key}: expected a list of numbers, got {d[key]!r}")
        for key, integer in _NUMERIC_FIELDS.items():  # a file's numbers: of the right type and finite
            if key not in d:
                continue
            for v in d[key] if isinstance(d[key], list) else [d[key]]:
                if isinstance(v, bool) or not isinstance(v, int if integer else (int, float)) or not math.isfinite(v):
                    raise ValueError(f"{key}: expected finite {'integers' if integer else 'numbers'}, got {v!r}")
        d["image_shape"] = tuple(d["image_shape"])
        d["voxel_size_mm"] = tuple(d["voxel_size_mm"])
        d["angles_rad"] = tuple(d["angles_rad"])
        return cls(**d)

    # -- ASTRA --------------------------------------------------------------------------------
    def astra_vol_geom(self, n_slices: int | None = None) -> dict:
        """ASTRA volume geometry with physical extents (mm), centred on the rotation axis.

        For 2-D beams ``n_slices`` asks for a 3-D stack of ``n_slices`` slices (the CUDA path).
        """
        import astra

        if self.is_3d:
            nz, ny, nx = self.image_shape
            vz, vy, vx = self.voxel_size_mm
        else:
            ny, nx = self.image_shape
            vy, vx = self.voxel_size_mm
            nz, vz = (n_slices or 1), 1.0
        hx, hy, hz = nx * vx / 2, ny * vy / 2, nz * vz / 2
        if self.is_3d or n_slices is not None:
            return astra.create_vol_geom(ny, nx, nz, -hx, hx, -hy, hy, -hz, hz)
        return astra.create_vol_geom(ny, nx, -hx, hx, -hy, hy)

    def astra_proj_geom(self, n_slices: int | None = None) -> dict:
        """ASTRA projection geometry (``parallel``, ``fanflat``, ``parallel3d``, ``cone``).

        With ``n_slices`` a 2-D parallel geometry becomes a ``parallel3d`` one with one detector row
        per slice (1 mm rows matching the 1 mm slices of :meth:`astra_vol_geom`), a fan geometry a
        one-row ``cone`` (only valid for ``n_slices == 1``).
        """
        import astra

        a = np.asarray(self.angles_rad, dtype=np.float64)
        if self.beam == "parallel":
            if n_slices is None:
                return astra.create_proj_geom("parallel", self.det_spacing_mm, self.n_det, a)
            return astra.create_proj_geom("parallel3d", self.det_spacing_mm, 1.0, n_slices, self.n_det, a)
        if self.beam == "fan":
            if n_slices is None:
                return astra.create_proj_geom("fanflat", self.det_spacing_mm, self.n_det, a, self.source_origin_mm, self.origin_det_mm)
            if n_slices != 1:
                raise ValueError("fan beam: a stacked 3-D equivalent exists only for one slice at a time")
            return astra.create_proj_geom("cone", self.det_spacing_mm, 1.0, 1, self.n_det, a, self.source_origin_mm, self.origin_det_mm)
        if self.beam == "parallel3d":
            return astra.create_proj_geom("parallel3d", self.det_spacing_mm, self.det_row_spacing_mm, self.n_det_rows, self.n_det, a)
        return astra.create_proj_geom(
            "cone", self.det_spacing_mm, self.det_row_spacing_mm, self.n_det_rows, self.n_det, a, self.source_origin_mm, self.origin_det_mm
        )
