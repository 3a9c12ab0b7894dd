"""The YAML sections of ``medrecon train``.

A training YAML has the sections ``data`` (:class:`DataConfig`), ``prior`` (optional,
:class:`PriorArchConfig`), ``train`` (:class:`TrainConfig`) and ``output`` (the prior's folder).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ..config import Settings


class ConditionConfig(Settings):
    """Section ``data.condition``: where a conditional prior's condition images come from (one of two).

    Attributes:
        paths: files paired one-to-one with ``data.paths`` (same slices, same size): e.g. the MR
            image of each CT slice for MR→CT, the FBP image of each limited-angle scan.
        simulate: the name of a pair simulator a task registers
            (:func:`medrecon.tasks.registry.register_pair_simulator`): the condition is made on
            the fly from each training image (before cropping, so crops of image and condition
            match), with a fresh random scan per draw.
        options: keyword arguments of that simulator.
        pool: simulated pairs kept and re-simulated ``refresh`` per step, round robin (``0``:
            simulate every drawn image; a pool makes CPU training affordable when one simulation
            costs more than a step; :class:`~medrecon.diffusion.pairs.TrainingPairs`).
        refresh: pool entries re-simulated per step.
        guide: the other image stored with each training image: for ``intensity: pet`` the CT
            slice of each PET/CT pair (a guided PET prior); for ``intensity: sct`` the MR of each
            subject folder (``mr.nii.gz``) or the NAC-PET of each PET/CT ``.npz``.
        neighbours: ``intensity: sct`` only: 2.5-D conditioning, the MR slices ``k − n … k + n``
            as the condition of slice ``k``.
        resample: ``intensity: sct`` only: resample an MR onto its CT's grid when the two differ
            (otherwise refused).
    """

    paths: list[str] | None = None
    simulate: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    pool: int = Field(0, ge=0)
    refresh: int = Field(1, ge=1)
    guide: bool = False
    neighbours: int = Field(0, ge=0, le=4)
    resample: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> ConditionConfig:
        sources = [
            name
            for name, given in (("paths", self.paths is not None), ("simulate", self.simulate is not None), ("guide", self.guide))
            if given
        ]
        if len(sources) != 1:
            raise ValueError(
                "expected exactly one of 'paths' (paired files), 'simulate' (a registered simulator) and 'guide: true', "
                f"got {' and '.join(sources) or 'none'}"
            )
        if self.paths is not None and not self.paths:
            raise ValueError("paths: expected at least one file")
        if (self.options or self.pool) and self.simulate is None:
            raise ValueError("simulate: expected a simulator with options or pool, got none")
        if self.pool and self.refresh > self.pool:
            raise ValueError(f"refresh: expected at most pool ({self.pool}), got {self.refresh}")
        return self


class HoldoutConfig(Settings):
    """One entry of ``data.holdout``: slices of one training file kept out of training (for evaluation)."""

    path: str
    slices: tuple[int, int]

    @model_validator(mode="after")
    def _ordered(self) -> HoldoutConfig:
        if not 0 <= self.slices[0] <= self.slices[1]:
            raise ValueError(f"slices: expected [first, last] with 0 <= first <= last, got {list(self.slices)}")
        return self


class DataConfig(Settings):
    """Section ``data``: training files and how to read them.

    Attributes:
        paths: ``.npz`` (``images``), NIfTI or fastMRI / SKM-TEA ``.h5`` files.
        synthetic_phase: give magnitude images a smooth random phase (complex prior).
        min_fraction: drop near-empty slices (mean below this fraction of the brightest slice's).
        seed: RNG seed of the synthetic phase.
        pad_to_common: zero-pad files of different in-plane sizes to the largest (patch training).
        condition: condition images of a conditional prior (``None``: an unconditional prior).
        intensity: ``percentile`` (each image divided by its 99th percentile of magnitude; MRI),
            ``hu`` (CT in Hounsfield units from DICOM series / NIfTI, on the fixed scale HU / 1000;
            :mod:`medrecon.datasets.ct_training`), ``pet`` (PET/CT slice-pair ``.npz``, or PET
            volumes with their CT in ``condition.paths``; activity over 20 × its slice mean, the CT
            as the guide; :mod:`medrecon.datasets.pet_training`)
            or ``oct`` (noisy OCT B-scans from TIFF / PNG / folders / NIfTI on a fixed scale;
            :mod:`medrecon.datasets.oct_training`).
        transform: ``intensity: oct`` only: ``linear`` (the default; B-scans stored log-compressed,
            as display images are) or ``log`` (linear-amplitude B-scans).
        holdout: slice ranges of training files left out (``intensity: hu`` / ``sct``), recorded in the prior.
    """

    paths: list[str] = Field(min_length=1)
    synthetic_phase: bool = False
    min_fraction: float = Field(0.05, ge=0, lt=1)
    seed: int = 0
    pad_to_common: bool = False
    condition: ConditionConfig | None = None
    intensity: Literal["percentile", "hu", "pet", "oct", "sct"] = "percentile"
    transform: Literal["linear", "log"] | None = None
    holdout: list[HoldoutConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _pairs_match(self) -> DataConfig:
        if self.holdout and self.intensity not in ("hu", "sct"):
            raise ValueError(f"intensity: expected 'hu' or 'sct' (CT volumes) with a holdout, got {self.intensity!r}")
        if self.intensity == "hu" and self.synthetic_phase:
            raise ValueError("synthetic_phase: expected false with intensity 'hu' (CT has no phase), got true")
        if self.intensity == "hu" and self.condition is not None and self.condition.paths is not None:
            raise ValueError(
                "condition.paths: expected none with intensity 'hu' (CT conditions are simulated: condition.simulate), got a list"
            )
        c = self.condition
        if c is not None and c.guide and self.intensity not in ("pet", "sct"):
            raise ValueError(
                f"intensity: expected 'pet' (the stored CT) or 'sct' (the stored MR or PET) with condition.guide, got {self.intensity!r}"
            )
        if self.intensity == "pet" and c is not None and c.simulate is not None:
            raise ValueError(
                "condition.simulate: expected none with intensity 'pet' (the condition is the CT: condition.guide or condition.paths), got a simulator"
            )
        if self.intensity == "pet" and c is not None and c.paths is not None and any(p.lower().endswith(".npz") for p in self.paths):
            raise ValueError(
                "condition.paths: expected none with .npz pairs (they store their CT; condition.paths is for PET volumes), got a list"
            )
        if self.intensity == "sct" and (c is None or c.simulate is not None):
            raise ValueError(
                "condition: expected paths (the MR of each CT) or guide: true (subject folders, PET/CT .npz) with intensity 'sct', got "
                + ("none" if c is None else "a simulator")
            )
        if c is not None and (c.neighbours or c.resample) and self.intensity != "sct":
            raise ValueError(f"intensity: expected 'sct' with condition.neighbours or resample, got {self.intensity!r}")
        if self.intensity == "sct" and self.synthetic_phase:
            raise ValueError("synthetic_phase: expected false with intensity 'sct' (CT has no phase), got true")
        if self.transform is not None and self.intensity != "oct":
            raise ValueError(f"intensity: expected 'oct' with a transform, got {self.intensity!r}")
        if self.intensity == "oct" and self.synthetic_phase:
            raise ValueError("synthetic_phase: expected false with intensity 'oct' (noisy B-scans have no phase), got true")
        if self.intensity == "oct" and c is not None:
            raise ValueError("condition: expected none with intensity 'oct' (noisy B-scans), got a condition")
        if self.intensity == "pet" and self.synthetic_phase:
            raise ValueError("synthetic_phase: expected false with intensity 'pet' (activity has no phase), got true")
        if c is not None and c.paths is not None and len(c.paths) != len(self.paths):
            raise ValueError(f"condition.paths: expected one file per data path ({len(self.paths)}), got {len(c.paths)}")
        return self


class PriorArchConfig(Settings):
    """Section ``prior``: the MONAI ``DiffusionModelUNet`` size (see ``UNetPrior``).

    ``spatial_dims: 3`` trains a 3-D prior on random 3-D patches (``train.crop``) of whole volumes
    (each data file is one volume, zero-padded, centred, to the largest size among them).
    """

    channels: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [32, 64, 64], min_length=1)
    attention_levels: list[bool] = Field(default_factory=lambda: [False, False, True], min_length=1)
    num_res_blocks: int = Field(1, ge=1)
    num_head_channels: int = Field(32, ge=1)
    norm_num_groups: int = Field(16, ge=1)
    fp16_weights: bool = False
    spatial_dims: int = Field(2, ge=2, le=3)

    def as_args(self) -> dict:
        """Keyword arguments of ``UNetPrior`` (channel counts are set from the data)."""
        return dict(
            channels=tuple(self.channels),
            attention_levels=tuple(self.attention_levels),
            num_res_blocks=self.num_res_blocks,
            num_head_channels=self.num_head_channels,
            norm_num_groups=self.norm_num_groups,
            spatial_dims=self.spatial_dims,
        )


class TrainConfig(Settings):
    """Training settings (YAML section ``train``).

    Attributes:
        objective: ``ddpm`` (VP; ε or v per ``prediction``), ``score`` (VE denoising score matching) or
            ``regression`` (the image from the condition under an L1 loss; conditional priors only).
        steps: optimiser steps in total (a resumed run continues up to this number).
        batch_size: images per step.
        crop: side of the random square training patches (``0``: whole images).
        crop_focus: ``uniform`` patches, or ``edges``: half of the patch centres drawn in proportion
            to the image's gradient magnitude (outlines, tables, bone edges; see
            :mod:`medrecon.diffusion.pairs`).
        lr: AdamW learning rate; weight_decay: AdamW weight decay.
        ema_decay: EMA factor per step (after a warm-up of ``(1 + n) / (10 + n)``).
        grad_clip: max global gradient norm.
        seed: seed of the data / noise RNG.
        checkpoint_every: steps between checkpoints.
        sigma_min / sigma_max: VE noise range (score objective).
        num_train_timesteps: VP steps (ddpm objective).
        timestep_range: ``ddpm`` only: train on the timesteps ``lo … hi`` (inclusive) alone instead of
            all ``0 … T − 1``; for a prior used at a known band of noise levels only (OCT denoising
            calls the network at a few times the speckle σ). Recorded in ``prior.json``; samplers
            refuse chains that leave the band.
        prediction: what a ``ddpm`` network predicts: ``epsilon`` (the noise, Ho et al. 2020) or
            ``v`` (``√ᾱ ε − √(1−ᾱ) x₀``, Salimans & Ho 2022: its x̂₀ stays accurate at high noise,
            where a translation prior must draw the image from the condition alone; ``medrecon train``
            makes ``v`` the default for ``intensity: sct``).
        loss: ``ddpm`` / ``score`` only: ``l2`` (the mean squared error of the network's target, whose
            minimiser is the posterior mean) or ``l1`` (its absolute error, as Palette, Saharia et al.
            2022, train image-to-image diffusion; for ``v`` the minimiser is the posterior median of
            x₀ at each noise level, the estimate MAE rewards). ``regression`` is always L1.
        cond_dropout: fraction of a conditional prior's training items whose condition is zeroed,
            so that the same network also serves as the unconditional prior (condition all zero;
            Ho & Salimans 2022) and the two can be compared on identical scans.
    """

    objective: Literal["ddpm", "score", "regression"] = "ddpm"
    steps: int = Field(1000, ge=1)
    batch_size: int = Field(8, ge=1)
    crop: int = Field(64, ge=0)
    crop_focus: Literal["uniform", "edges"] = "uniform"
    lr: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    ema_decay: float = Field(0.999, gt=0, lt=1)
    grad_clip: float = Field(1.0, gt=0)
    seed: int = 0
    checkpoint_every: int = Field(500, ge=1)
    sigma_min: float = Field(0.01, gt=0)
    sigma_max: float = Field(20.0, gt=0)
    num_train_timesteps: int = Field(1000, ge=2)
    prediction: Literal["epsilon", "v"] = "epsilon"
    timestep_range: tuple[int, int] | None = None
    loss: Literal["l2", "l1"] = "l2"

    @model_validator(mode="after")
    def _prediction_of_ddpm(self) -> TrainConfig:
        if self.prediction != "epsilon" and self.objective != "ddpm":
            raise ValueError(
                f"prediction: expected 'epsilon' for objective {self.objective!r} ('v' is for 'ddpm' only), got {self.prediction!r}"
            )
        if self.timestep_range is not None:
            if self.objective != "ddpm":
                raise ValueError(
                    f"timestep_range: expected none for objective {self.objective!r} (only for 'ddpm'), got {self.timestep_range!r}"
                )
            timestep_band(self.timestep_range, self.num_train_timesteps)
        if self.loss != "l2" and self.objective == "regression":
            raise ValueError(
                f"loss: expected 'l2' (the default) with objective 'regression', which always trains under L1, got {self.loss!r}"
            )
        return self

    cond_dropout: float = Field(0.0, ge=0, lt=1)


def timestep_band(band, num_train_timesteps: int) -> tuple[int, int]:
    """``band`` as ``(lo, hi)`` ints, checked to be two timesteps ``0 <= lo < hi < num_train_timesteps``.

    The one rule for ``TrainConfig.timestep_range`` and the band a loaded prior records.

    Raises:
        ValueError: anything else.
    """
    if not (isinstance(band, (list, tuple)) and len(band) == 2 and all(isinstance(v, int) for v in band)):
        raise ValueError(f"timestep_range: expected two integer timesteps, got {band!r}")
    lo, hi = int(band[0]), int(band[1])
    if not 0 <= lo < hi < num_train_timesteps:
        raise ValueError(f"timestep_range: expected 0 <= lo < hi < num_train_timesteps ({num_train_timesteps}), got {[lo, hi]}")
    return lo, hi
