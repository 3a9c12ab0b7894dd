"""Typed settings: numbers as YAML writes them, unknown keys and wrong types named, one merge order."""

import pytest

from medrecon.config import build_settings, load_config, parse_set_options
from medrecon.diffusion.posterior import PosteriorSettings
from medrecon.diffusion.train_config import DataConfig
from medrecon.diffusion.training import TrainConfig
from medrecon.errors import ArgumentError, InputFileError
from medrecon.tasks.ct.config import CTDiffusionConfig, CTReconConfig
from medrecon.tasks.mr2ct.config import TranslateConfig
from medrecon.tasks.mri.config import DiffusionConfig, MaskSpec, recommended_settings
from medrecon.tasks.oct.config import OCTDiffusionConfig
from medrecon.tasks.pet.config import PETDenoiseConfig, PETDiffusionConfig


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
    f.write_text("train:\n  objective: regression\n  loss: l1\n")
    with pytest.raises(InputFileError, match=r"train.loss: expected 'l2' \(the default\) with objective 'regression', .*, got 'l1'$"):
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
    with pytest.raises(ArgumentError, match=r"--dc: expected 'cg' with sampler 'dds' .*, got 'grad'"):
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


MODEL_CHECKS = [  # (settings class, values, the key and a piece of "expected" the one-line error must show)
    (PosteriorSettings, {"sampler": "dds", "dc": "hard"}, "dc", "'cg' with sampler 'dds'"),
    (TranslateConfig, {"coupling": 1, "batch": 1}, "batch", ">= 2 with coupling > 0"),
    (CTDiffusionConfig, {"sampler": "ddim", "dc": "likelihood"}, "dc", "for CT"),
    (PETDiffusionConfig, {"dc": "cg"}, "dc", "or 'none' for PET"),
    (PETDenoiseConfig, {"dc": "grad"}, "dc", "image-domain denoising"),
    (DiffusionConfig, {"sampler": "ddim", "dc": "likelihood"}, "dc", "'hard' or 'none'"),
    (OCTDiffusionConfig, {"dc": "grad"}, "dc", "for OCT"),
    (OCTDiffusionConfig, {"dc": "none", "coupling": 1.0}, "coupling", "0 without the likelihood step"),
    (TrainConfig, {"objective": "regression", "loss": "l1"}, "loss", "'l2' (the default)"),
    (TrainConfig, {"objective": "score", "prediction": "v"}, "prediction", "'epsilon' for objective"),
    (DataConfig, {"condition": {"paths": ["b"], "guide": True}}, "condition", "exactly one of"),
    (DataConfig, {"condition": {"guide": True, "pool": 2}}, "condition.simulate", "a simulator"),
    (DataConfig, {"holdout": [{"path": "a", "slices": [0, 1]}]}, "intensity", "with a holdout"),
    (DataConfig, {"intensity": "hu", "synthetic_phase": True}, "synthetic_phase", "false"),
    (DataConfig, {"intensity": "hu", "condition": {"paths": ["b"]}}, "condition.paths", "none"),
    (DataConfig, {"condition": {"guide": True}}, "intensity", "with condition.guide"),
    (DataConfig, {"intensity": "pet", "condition": {"simulate": "x"}}, "condition.simulate", "none"),
    (DataConfig, {"paths": ["a.npz"], "intensity": "pet", "condition": {"paths": ["b"]}}, "condition.paths", ".npz"),
    (DataConfig, {"intensity": "sct"}, "condition", "guide: true"),
    (DataConfig, {"condition": {"paths": ["b"], "neighbours": 1}}, "intensity", "'sct'"),
    (DataConfig, {"intensity": "sct", "synthetic_phase": True, "condition": {"guide": True}}, "synthetic_phase", "false"),
    (DataConfig, {"transform": "log"}, "intensity", "'oct' with a transform"),
    (DataConfig, {"intensity": "oct", "synthetic_phase": True}, "synthetic_phase", "false"),
    (DataConfig, {"intensity": "oct", "condition": {"paths": ["b"]}}, "condition", "none"),
    (DataConfig, {"intensity": "pet", "synthetic_phase": True}, "synthetic_phase", "false"),
]


@pytest.mark.parametrize(("cls", "values", "key", "expected"), MODEL_CHECKS)
def test_checks_across_fields_name_their_field(cls, values, key, expected):
    """Every check across fields reads as one line "--set <field>: expected X, got Y": it names the
    field it is about (not the section), says what was expected once, and what it got."""
    if cls is DataConfig:
        values = {"paths": ["a"], **values}
    with pytest.raises(ArgumentError) as err:
        build_settings(cls, set_values=values)
    line = str(err.value)
    head, _, rest = line.partition(": expected ")
    assert head == f"--set {key}", line
    assert expected in rest.rpartition(", got ")[0], line
    assert rest.count("expected") == 0 and ", got " in rest and "these settings together" not in rest, line
