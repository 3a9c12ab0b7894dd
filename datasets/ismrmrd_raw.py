"""ISMRMRD raw data (``.h5`` with ``/dataset/data`` and ``/dataset/xml``): Cartesian, multi-coil, 2-D multi-slice.

Acquisitions are read with the ``ismrmrd`` package; the header's encoding section with medrecon's
own validated parser (:func:`~medrecon.datasets.fastmri.parse_ismrmrd_header`, which names the
element that is missing or invalid). Each imaging acquisition (noise, navigator, phase-correction,
dummy, feedback and phase-stabilisation lines are skipped; lines flagged calibration *and* imaging
are imaging lines; calibration-only lines, which may come from a separate reference scan of
another contrast, fill only the phase-encode lines no imaging acquisition measured, where they
give the coil-map calibration its centre) goes to slice ``idx.slice`` at phase-encode line
``idx.kspace_encode_step_1``, its readout placed so that ``center_sample`` lands on the centre of
the encoded matrix (reversed readouts flipped). Repeated lines (averages) are averaged; only
contrast, repetition, phase and set 0 are read (the others are counted in ``attrs``).

One slice is ``(coils, readout, phase)`` like fastMRI's ``kspace``, so masks run along the last
axis and the reference crop is the header's ``reconSpace`` matrix ``(x, y)``. 3-D encodings
(``kspace_encode_step_2``) are refused with one line.

The acquisition headers' ``position`` / ``read_dir`` / ``phase_dir`` (patient coordinates, LPS)
and the XML's subject, study and frame-of-reference fields make :meth:`ISMRMRDFile.dicom_reference`:
the reconstruction grid's affine and a header of identifiers, so a reconstruction can be written
as an MR DICOM series in its patient's study.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import InputFileError, MissingDependencyError
from .kspace_source import KSpaceSource, SliceGeometry

SKIPPED_FLAGS = (
    "ACQ_IS_NOISE_MEASUREMENT",
    "ACQ_IS_NAVIGATION_DATA",
    "ACQ_IS_PHASECORR_DATA",
    "ACQ_IS_DUMMYSCAN_DATA",
    "ACQ_IS_HPFEEDBACK_DATA",
    "ACQ_IS_RTFEEDBACK_DATA",
    "ACQ_IS_PHASE_STABILIZATION",
    "ACQ_IS_PHASE_STABILIZATION_REFERENCE",
    "ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA",
)
OTHER_INDICES = ("contrast", "repetition", "phase", "set")
# ISMRMRD XML (section, element) -> DICOM keyword; dates YYYY-MM-DD and times HH:MM:SS become DA / TM
IDENTITY = {
    ("subjectInformation", "patientName"): "PatientName",
    ("subjectInformation", "patientID"): "PatientID",
    ("subjectInformation", "patientBirthdate"): "PatientBirthDate",
    ("subjectInformation", "patientGender"): "PatientSex",
    ("studyInformation", "studyInstanceUID"): "StudyInstanceUID",
    ("studyInformation", "studyDate"): "StudyDate",
    ("studyInformation", "studyTime"): "StudyTime",
    ("studyInformation", "studyID"): "StudyID",
    ("studyInformation", "accessionNumber"): "AccessionNumber",
    ("studyInformation", "referringPhysicianName"): "ReferringPhysicianName",
    ("studyInformation", "studyDescription"): "StudyDescription",
    ("measurementInformation", "frameOfReferenceUID"): "FrameOfReferenceUID",
    ("measurementInformation", "seriesDescription"): "SeriesDescription",
    ("acquisitionSystemInformation", "systemVendor"): "Manufacturer",
    ("acquisitionSystemInformation", "systemModel"): "ManufacturerModelName",
    ("acquisitionSystemInformation", "systemFieldStrength_T"): "MagneticFieldStrength",
}


def identity_from_xml(xml: bytes | str) -> dict[str, str]:
    """The DICOM identifiers an ISMRMRD header records (absent ones left out)."""
    ns = "{http://www.ismrm.org/ISMRMRD}"
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return {}
    out = {}
    for (section, element), keyword in IDENTITY.items():
        node = root.find(f"{ns}{section}/{ns}{element}")
        if node is None or not (node.text or "").strip():
            continue
        text = node.text.strip()
        if keyword.endswith("Date"):
            text = text.replace("-", "")
        elif keyword.endswith("Time"):
            text = text.replace(":", "")
        out[keyword] = text
    return out


def is_ismrmrd(f) -> bool:
    """Whether an open HDF5 file has ISMRMRD's layout (``/dataset/data`` and ``/dataset/xml``)."""
    return "dataset" in f and "kspace" not in f and "data" in f["dataset"] and "xml" in f["dataset"]


def _module():
    try:
        import ismrmrd
    except ImportError:
        raise MissingDependencyError("ismrmrd", "ismrmrd", "ISMRMRD raw files") from None
    return ismrmrd


class ISMRMRDFile(KSpaceSource):
    """An ISMRMRD raw file; acquisitions are indexed when opened and read slice by slice.

    Raises:
        InputFileError: no imaging acquisitions, a header without a usable encoding, a 3-D
            encoding, acquisitions whose coil count or line index do not fit the header's matrix.
    """

    def __init__(self, path: str | Path) -> None:
        from .fastmri import parse_ismrmrd_header

        ismrmrd = _module()
        p = Path(path)
        try:
            dset = ismrmrd.Dataset(str(p), "/dataset", create_if_needed=False)
        except Exception as err:  # the package raises bare exceptions for unreadable files
            raise InputFileError(p, "file", "an ISMRMRD dataset '/dataset'", f"unreadable ({type(err).__name__})") from None
        try:
            xml = dset.read_xml_header()
            self.encoding = parse_ismrmrd_header(p, xml)
            self.identity = identity_from_xml(xml)
            self._placement: dict[int, tuple[np.ndarray, ...]] = {}
            ex, ey, ez = self.encoding.encoded_size
            if ez > 1:
                raise InputFileError(p, "ismrmrd_header", "a 2-D encoding (encodedSpace z = 1; multi-slice)", f"a 3-D encoding (z = {ez})")
            skip = [getattr(ismrmrd, name) for name in SKIPPED_FLAGS]
            self._lines: dict[int, list[int]] = {}
            counts = {"skipped": 0, **{k: 0 for k in OTHER_INDICES}}
            coils = None
            for i in range(dset.number_of_acquisitions()):
                acq = dset.read_acquisition(i)
                if any(acq.is_flag_set(flag) for flag in skip):
                    counts["skipped"] += 1
                    continue
                if any(getattr(acq.idx, k) != 0 for k in OTHER_INDICES):
                    for k in OTHER_INDICES:
                        counts[k] += int(getattr(acq.idx, k) != 0)
                    continue
                if coils is None:
                    coils = int(acq.active_channels)
                self._check(p, i, acq, coils, ex, ey)
                calibration_only = acq.is_flag_set(ismrmrd.ACQ_IS_PARALLEL_CALIBRATION) and not acq.is_flag_set(
                    ismrmrd.ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING
                )
                self._lines.setdefault(int(acq.idx.slice), []).append((i, calibration_only))
                self._placement.setdefault(
                    int(acq.idx.slice), tuple(np.asarray(v, dtype=np.float64) for v in (acq.position, acq.read_dir, acq.phase_dir))
                )
        finally:
            dset.close()
        if not self._lines:
            raise InputFileError(p, "acquisitions", "imaging acquisitions of contrast, repetition, phase and set 0", "none")
        self._slices = sorted(self._lines)
        fov, rs = self.encoding.recon_fov_mm, self.encoding.recon_size
        voxel = (fov[0] / rs[0], fov[1] / rs[1], fov[2] / max(rs[2], 1))
        attrs = {
            "ismrmrd_skipped_acquisitions": counts["skipped"],
            **{f"ismrmrd_ignored_{k}": v for k, v in counts.items() if k in OTHER_INDICES},
        }
        super().__init__(p, "ismrmrd", len(self._slices), (coils, ex, ey), SliceGeometry(voxel, (rs[0], rs[1])), attrs)

    def dicom_reference(self):
        """``(affine, header)`` of the reconstruction grid (RAS, voxel ``(col, row, slice)``) and the identifiers, or
        ``None`` when the acquisitions carry no orientation or the slices are not evenly spaced along one normal."""
        from .dicom_series import LPS_TO_RAS

        pos = np.stack([self._placement[s][0] for s in self._slices])
        read, phase = self._placement[self._slices[0]][1:]
        if not (abs(np.linalg.norm(read) - 1) < 1e-3 and abs(np.linalg.norm(phase) - 1) < 1e-3 and abs(read @ phase) < 1e-3):
            return None
        normal = np.cross(read, phase)
        if len(pos) > 1:
            steps = np.diff(pos, axis=0)
            step = steps[0]
            if not np.allclose(steps, step, atol=1e-2) or np.linalg.norm(np.cross(step, normal)) > 1e-2 * max(np.linalg.norm(step), 1e-6):
                return None
        else:
            step = normal * self.geometry.voxel_size_mm[2]
        rows, cols = self.geometry.recon_size
        dx, dy = self.geometry.voxel_size_mm[:2]
        lps = np.eye(4)
        lps[:3, 0], lps[:3, 1], lps[:3, 2] = phase * dy, read * dx, step  # columns run along phase, rows along the readout
        lps[:3, 3] = pos[0] - read * dx * (rows // 2) - phase * dy * (cols // 2)
        import pydicom

        header = pydicom.Dataset()
        for keyword, value in self.identity.items():
            setattr(header, keyword, value)
        return LPS_TO_RAS @ lps, header

    @staticmethod
    def _check(p: Path, i: int, acq, coils: int, ex: int, ey: int) -> None:
        where = f"acquisition {i}"
        if int(acq.active_channels) != coils or coils < 1:
            raise InputFileError(p, where, f"{coils} coils like the first imaging acquisition", f"{int(acq.active_channels)}")
        ky, n, c = int(acq.idx.kspace_encode_step_1), int(acq.number_of_samples), int(acq.center_sample)
        if not 0 <= ky < ey:
            raise InputFileError(p, where, f"kspace_encode_step_1 in 0..{ey - 1} (encodedSpace y)", str(ky))
        x0 = ex // 2 - c
        if n < 1 or x0 < 0 or x0 + n > ex:
            raise InputFileError(
                p, where, f"a readout of at most {ex} samples (encodedSpace x) around its centre", f"{n} samples, centre {c}"
            )

    def _read_kspace(self, index: int) -> np.ndarray:
        ismrmrd = _module()
        c, ex, ey = self.shape
        k = np.zeros((c, ex, ey), np.complex64)
        hits = np.zeros((ex, ey), np.int32)
        dset = ismrmrd.Dataset(str(self.path), "/dataset", create_if_needed=False)
        lines = sorted(self._lines[self._slices[index]], key=lambda line: line[1])  # imaging lines first
        measured: set[int] = set()
        try:
            for i, calibration_only in lines:
                acq = dset.read_acquisition(i)
                ky = int(acq.idx.kspace_encode_step_1)
                if calibration_only and ky in measured:
                    continue  # an imaging line is there: never mix in a reference scan
                if not calibration_only:
                    measured.add(ky)
                data = np.asarray(acq.data, dtype=np.complex64)
                if acq.is_flag_set(ismrmrd.ACQ_IS_REVERSE):
                    data = data[:, ::-1]
                x0 = ex // 2 - int(acq.center_sample)
                k[:, x0 : x0 + data.shape[1], ky] += data
                hits[x0 : x0 + data.shape[1], ky] += 1
        finally:
            dset.close()
        return k / np.maximum(hits, 1)[None]
