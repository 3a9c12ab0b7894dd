"""OCT image-quality metrics: PSNR / SSIM against the registered average, and CNR, ENL, MSR, EPI.

PSNR and SSIM are :mod:`medrecon.evaluation.metrics`' (volume-wise, peak = the reference's
maximum, as Fang et al. 2012/2013 compute PSNR against the registered average). The others are
short formulas written here, each pinned to a direct computation in the tests, on regions that a
rule chooses from the reference B-scan (:func:`oct_regions`), never by hand:

- CNR (dB) = mean over the foreground ROIs r of 10·log10(|μ_r − μ_b| / √(σ_r² + σ_b²)), b the
  background (Fang et al. 2012, Biomed. Opt. Express 3:927);
- MSR = mean over the foreground ROIs of μ_r / σ_r (mean-to-standard-deviation ratio, same paper);
- ENL = μ_b² / σ_b² of the background (equivalent number of looks): the vitreous is the most
  homogeneous region of a B-scan, which is what ENL assumes;
- EPI = the correlation of the Laplacians of the reference and the image over the retina band
  (the edge preservation index of Sattar et al. 1997, IEEE Trans. Image Process. 6:888): 1 when
  every edge of the reference is kept, near 0 when noise dominates the high frequencies.

Regions (:func:`oct_regions`), from the reference B-scan ``R`` ``(H, W)`` (depth down the rows,
vitreous at the top):

1. ``S`` = ``R`` smoothed by a Gaussian of :data:`SMOOTH_PX` pixels (speckle averaged out);
2. tissue = ``S`` above its Otsu threshold, opened twice (isolated bright specks removed);
3. background (vitreous) = in each column with tissue, the rows above the highest first-tissue
   row within ±W/4 columns, less :data:`MARGIN_PX` — the running minimum keeps the foveal pit,
   where the thin inner retina falls below the threshold, out of the background;
4. foreground = ``S`` above the upper of its three-class Otsu thresholds (the bright layers:
   nerve fibre layer, RPE / photoreceptor complex), opened, eroded by :data:`ERODE_PX` pixels away
   from the layer edges, split into :data:`STRIPS` ROIs by equal column strips; ROIs under
   :data:`MIN_ROI_PX` pixels are dropped;
5. retina band (EPI) = per column, the rows from the first to the last tissue pixel, widened by
   :data:`BAND_PAD_PX` pixels so the layer boundaries lie inside.

A metric whose regions are missing (no background of :data:`MIN_BACKGROUND_PX` pixels, no ROI) is
``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...evaluation.metrics import psnr, ssim

SMOOTH_PX = 4.0
MARGIN_PX = 10
ERODE_PX = 2
STRIPS = 6
MIN_ROI_PX = 100
MIN_BACKGROUND_PX = 200
BAND_PAD_PX = 4


@dataclass
class OCTRegions:
    """Regions of one B-scan ``(H, W)``, all boolean masks of that shape.

    Attributes:
        background: the vitreous above the retina (may be empty).
        rois: foreground ROIs in the bright retinal layers (may be an empty list).
        band: the retina band where the edges are (EPI).
    """

    background: np.ndarray
    rois: list[np.ndarray]
    band: np.ndarray


def oct_regions(reference: np.ndarray) -> OCTRegions:
    """The regions of a B-scan ``(H, W)`` by the rule of the module docstring."""
    from scipy import ndimage as ndi
    from skimage.filters import threshold_multiotsu, threshold_otsu

    r = np.asarray(reference, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"reference: expected (H, W), got shape {r.shape}")
    h, w = r.shape
    s = ndi.gaussian_filter(r, SMOOTH_PX)
    tissue = ndi.binary_opening(s > threshold_otsu(s), iterations=2)
    has = tissue.any(axis=0)
    first = np.where(has, tissue.argmax(axis=0), h)
    last = np.where(has, h - 1 - tissue[::-1].argmax(axis=0), -1)
    top = ndi.minimum_filter1d(first, size=max(w // 2, 1), mode="nearest")
    rows = np.arange(h)[:, None]
    background = (rows < (top - MARGIN_PX)[None, :]) & has[None, :]
    band = (rows >= (first - BAND_PAD_PX)[None, :]) & (rows <= (last + BAND_PAD_PX)[None, :])
    try:
        bright = s > threshold_multiotsu(s, classes=3)[1]
    except ValueError:  # fewer than three grey levels after smoothing: no bright layer to find
        bright = np.zeros_like(tissue)
    bright = ndi.binary_erosion(ndi.binary_opening(bright, iterations=2), iterations=ERODE_PX)
    edges = np.linspace(0, w, STRIPS + 1).round().astype(int)
    rois = []
    for a, b in zip(edges[:-1], edges[1:]):
        roi = np.zeros_like(bright)
        roi[:, a:b] = bright[:, a:b]
        if roi.sum() >= MIN_ROI_PX:
            rois.append(roi)
    if background.sum() < MIN_BACKGROUND_PX:
        background = np.zeros_like(background)
    return OCTRegions(background, rois, band)


def cnr_db(image: np.ndarray, rois: list[np.ndarray], background: np.ndarray) -> float | None:
    """Mean over ``rois`` of 10·log10(|μ_r − μ_b| / √(σ_r² + σ_b²)) in dB; ``None`` without ROIs or background."""
    if not rois or not background.any():
        return None
    x = np.asarray(image, dtype=np.float64)
    mb, vb = x[background].mean(), x[background].var()
    with np.errstate(divide="ignore"):
        return float(np.mean([10 * np.log10(abs(x[m].mean() - mb) / np.sqrt(x[m].var() + vb)) for m in rois]))


def msr(image: np.ndarray, rois: list[np.ndarray]) -> float | None:
    """Mean over ``rois`` of μ_r / σ_r; ``None`` without ROIs."""
    if not rois:
        return None
    x = np.asarray(image, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return float(np.mean([x[m].mean() / x[m].std() for m in rois]))


def enl(image: np.ndarray, region: np.ndarray) -> float | None:
    """μ² / σ² over ``region``; ``None`` when it is empty."""
    if not region.any():
        return None
    v = np.asarray(image, dtype=np.float64)[region]
    with np.errstate(divide="ignore"):
        return float(v.mean() ** 2 / v.var())


def epi(reference: np.ndarray, image: np.ndarray, region: np.ndarray) -> float | None:
    """Sattar's edge preservation index: correlation of the Laplacians of ``reference`` and ``image`` over ``region``."""
    from scipy import ndimage as ndi

    if region.sum() < 2:
        return None
    a = ndi.laplace(np.asarray(reference, dtype=np.float64))[region]
    b = ndi.laplace(np.asarray(image, dtype=np.float64))[region]
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sum(a * b) / denom) if denom > 0 else None


def bscan_metrics(reference: np.ndarray, image: np.ndarray, regions: OCTRegions | None = None) -> dict[str, float | None]:
    """CNR (dB), ENL, MSR and EPI of ``image`` ``(H, W)``, regions from ``reference`` unless given."""
    reg = oct_regions(reference) if regions is None else regions
    return {
        "CNR_dB": cnr_db(image, reg.rois, reg.background),
        "ENL": enl(image, reg.background),
        "MSR": msr(image, reg.rois),
        "EPI": epi(reference, image, reg.band),
    }


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def oct_metrics(target: np.ndarray, recon: np.ndarray) -> dict[str, float | None]:
    """PSNR / SSIM against ``target`` and the mean over B-scans of CNR, ENL, MSR, EPI of ``recon``.

    Args:
        target: the registered average, ``(N, H, W)`` (or ``(H, W)``); its B-scans give the regions.
        recon: the denoised (or noisy) B-scans, same shape.

    Returns:
        ``PSNR`` (dB), ``SSIM``, ``CNR_dB``, ``ENL``, ``MSR``, ``EPI``; ``None`` where no B-scan had the regions.
    """
    t, x = np.asarray(target), np.asarray(recon)
    if t.ndim == 2:
        t, x = t[None], x[None] if x.ndim == 2 else x
    if t.shape != x.shape:
        raise ValueError(f"target shape {t.shape} and recon shape {x.shape} differ")
    per = [bscan_metrics(tb, xb) for tb, xb in zip(t, x)]
    out: dict[str, float | None] = {"PSNR": psnr(t, x), "SSIM": ssim(t, x)}
    out.update({k: _mean([p[k] for p in per]) for k in ("CNR_dB", "ENL", "MSR", "EPI")})
    return out
