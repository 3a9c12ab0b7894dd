"""Typed settings: numbers as YAML writes them, unknown keys and wrong types named, one merge order."""

import pytest

from medrecon.config import build_settings, load_config, parse_set_options
from medrecon.diffusion.training import TrainConfig
from medrecon.errors import ArgumentError, InputFileError
from medrecon.tasks.ct.config import CTReconConfig
from medrecon.tasks.mri.config import DiffusionConfig, MaskSpec, recommended_settings


def test_yaml_numbers_and_errors(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("train:\n  lr: 2e-4\n  steps: 10\n")  # YAML 1.1 reads 2e-4 as a string
    cfg = load_config(f, TrainConfig, "train")
    assert cfg.lr == pytest.approx(2e-4) and isinstance(cfg.lr, float)
    f.write_text("train:\n  steps: ten\n")
    with pytest.raises(InputFileError, match=r"t.yaml: train.steps: expected a valid integer.*got 'ten'"):
        load_config(f, TrainConfig, "train")
    f.write_text("train:\n  objective: flow\n")
    with pytest.raises(InputFileError, match=r"train.objective: expected 'ddpm', 'score' or 'regression', got 'flow'"):
        load_config(f, TrainConfig, "train")
    f.write_text("train:\n  objective: regression\n  prediction: v\n")  # a check across fields names its field, not the section
    with pytest.raises(InputFileError, match=r"t.yaml: train.prediction: expected 'epsilon' for objective 'regression' .*, got 'v'$"):
        load_config(f, TrainConfig, "train")
    f.write_text("train:\n  objective: regression\n  loss: l1\n")  # no ", got ": the field's value is what was received
    with pytest.raises(InputFileError, match=r"train.loss: expected loss 'l1': objective 'regression' is always .*, got 'l1'$"):
        load_config(f, TrainConfig, "train")
    f.write_text("train: [1, 2]\n")
    with pytest.raises(InputFileError, match="train: expected a mapping of settings, got list"):
        load_config(f, TrainConfig, "train")
    f.write_text("train: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(InputFileError, match="unreadable"):
        load_config(f, TrainConfig, "train")


def test_merge_order_and_set_options(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("diffusion:\n  steps: 30\n  samples: 2\n")
    from medrecon.config import yaml_section

    rec = {"steps": 10, "start": 0.02, "unknown_to_this_class": 1}
    cfg = build_settings(
        DiffusionConfig,
        recommended=rec,
        file_values=yaml_section(f, "diffusion"),
        file=f,
        section="diffusion",
        set_values=parse_set_options(["samples=3", "init=sense"]),
        flags={"seed": 7, "eta": None},
    )
    assert (cfg.steps, cfg.samples, cfg.start, cfg.init, cfg.seed, cfg.eta) == (30, 3, 0.02, "sense", 7, 0.85)
    with pytest.raises(ArgumentError, match=r"--set dc: expected 'cg', 'grad', 'hard', 'none' or 'likelihood', got 'exact'"):
        build_settings(DiffusionConfig, set_values=parse_set_options(["dc=exact"]))
    with pytest.raises(ArgumentError, match="--set: expected key=value"):
        parse_set_options(["steps"])
    with pytest.raises(ArgumentError, match="dc must be 'cg'"):
        build_settings(DiffusionConfig, flags={"sampler": "dds", "dc": "grad"})


def test_one_default_per_parameter():
    assert CTReconConfig().iterations == 0 and CTReconConfig(method="tv").iterations == 500
    assert DiffusionConfig().cs_lam == 3e-4 and MaskSpec().acceleration == 4.0
    with pytest.raises(ArgumentError, match="mask: center_fraction 0.5"):
        MaskSpec(center_fraction=0.5).make(64, 64)


def test_prior_recommendation_by_nearest_acceleration():
    from medrecon.diffusion.prior_folder import load_prior
    from medrecon.priors import shipped_prior_dir

    info = load_prior(shipped_prior_dir("brain")).info
    assert recommended_settings(info, 8.0)["start"] == 0.1 and recommended_settings(info, 7.9)["start"] == 0.1
    assert recommended_settings(info, 4.0)["start"] == 0.02 and recommended_settings(info, 5.0)["start"] == 0.02
    assert recommended_settings(info, None) == {} and recommended_settings({}, 8.0) == {}
