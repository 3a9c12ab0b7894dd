"""YAML sections of ``medrecon train`` that are not the optimiser settings (those are TrainConfig)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DataConfig:
    """Section ``data``: training files and how to read them.

    Attributes:
        paths: ``.npz`` (``images``), NIfTI or fastMRI / SKM-TEA ``.h5`` files.
        synthetic_phase: give magnitude images a smooth random phase (complex prior).
        min_fraction: drop near-empty slices (mean below this fraction of the brightest slice's).
        seed: RNG seed of the synthetic phase.
        pad_to_common: zero-pad files of different in-plane sizes to the largest (patch training).
    """

    paths: list = field(default_factory=list)
    synthetic_phase: bool = False
    min_fraction: float = 0.05
    seed: int = 0
    pad_to_common: bool = False

    def __post_init__(self) -> None:
        if not self.paths or not all(isinstance(p, str) for p in self.paths):
            raise ValueError(f"data.paths: expected a non-empty list of file paths, got {self.paths!r}")


@dataclass(frozen=True)
class PriorArchConfig:
    """Section ``prior``: the MONAI ``DiffusionModelUNet`` size (see ``UNetPrior``).

    ``spatial_dims: 3`` trains a 3-D prior on random 3-D patches (``train.crop``) of whole volumes
    (each data file is one volume, zero-padded, centred, to the largest size among them).
    """

    channels: list = field(default_factory=lambda: [32, 64, 64])
    attention_levels: list = field(default_factory=lambda: [False, False, True])
    num_res_blocks: int = 1
    num_head_channels: int = 32
    norm_num_groups: int = 16
    fp16_weights: bool = False
    spatial_dims: int = 2

    def __post_init__(self) -> None:
        if self.spatial_dims not in (2, 3):
            raise ValueError(f"prior.spatial_dims: expected 2 or 3, got {self.spatial_dims!r}")

    def as_args(self) -> dict:
        """Keyword arguments of ``UNetPrior`` (channel counts are set from the data)."""
        return dict(channels=tuple(self.channels), attention_levels=tuple(self.attention_levels), num_res_blocks=self.num_res_blocks,
                    num_head_channels=self.num_head_channels, norm_num_groups=self.norm_num_groups, spatial_dims=self.spatial_dims)
