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
    ("medrecon.diffusion.posterior:PosteriorSettings", {"sampler": "dds", "dc": "hard"}, "dc", "'cg' with sampler 'dds'"),
    ("medrecon.tasks.mr2ct.config:TranslateConfig", {"coupling": 1, "batch": 1}, "batch", ">= 2 with coupling > 0"),
    ("medrecon.tasks.ct.config:CTDiffusionConfig", {"sampler": "ddim", "dc": "likelihood"}, "dc", "for CT"),
    ("medrecon.tasks.pet.config:PETDiffusionConfig", {"dc": "cg"}, "dc", "or 'none' for PET"),
    ("medrecon.tasks.pet.config:PETDenoiseConfig", {"dc": "grad"}, "dc", "image-domain denoising"),
    ("medrecon.tasks.mri.config:DiffusionConfig", {"sampler": "ddim", "dc": "likelihood"}, "dc", "'hard' or 'none'"),
    ("medrecon.tasks.oct.config:OCTDiffusionConfig", {"dc": "grad"}, "dc", "for OCT"),
    ("medrecon.tasks.oct.config:OCTDiffusionConfig", {"dc": "none", "coupling": 1.0}, "coupling", "0 without the likelihood step"),
    ("medrecon.diffusion.train_config:TrainConfig", {"objective": "regression", "loss": "l1"}, "loss", "'l2' (the default)"),
    ("medrecon.diffusion.train_config:TrainConfig", {"objective": "score", "prediction": "v"}, "prediction", "'epsilon' for objective"),
    (
        "medrecon.diffusion.train_config:DataConfig",
        {"paths": ["a"], "condition": {"paths": ["b"], "guide": True}},
        "condition",
        "exactly one of",
    ),
    (
        "medrecon.diffusion.train_config:DataConfig",
        {"paths": ["a"], "condition": {"guide": True, "pool": 2}},
        "condition.simulate",
        "a simulator",
    ),
    (
        "medrecon.diffusion.train_config:DataConfig",
        {"paths": ["a"], "holdout": [{"path": "a", "slices": [0, 1]}]},
        "intensity",
        "with a holdout",
    ),
    (
        "medrecon.diffusion.train_config:DataConfig",
        {"paths": ["a"], "intensity": "hu", "synthetic_phase": True},
        "synthetic_phase",
        "false",
    ),
    (
        "medrecon.diffusion.train_config:DataConfig",
        {"paths": ["a"], "intensity": "hu", "condition": {"paths": ["b"]}},
        "condition.paths",
        "none",
    ),
    ("medrecon.diffusion.train_config:DataConfig", {"paths": ["a"], "condition": {"guide": True}}, "intensity", "with condition.guide"),
    (
        "medrecon.diffusion.train_config:DataConfig",
        {"paths": ["a"], "intensity": "pet", "condition": {"simulate": "x"}},
        "condition.simulate",
        "none",
    ),
    (
        "medrecon.diffusion.train_config:DataConfig",
        {"paths": ["a.npz"], "intensity": "pet", "condition": {"paths": ["b"]}},
        "condition.paths",
        ".npz",
    ),
    ("medrecon.diffusion.train_config:DataConfig", {"paths": ["a"], "intensity": "sct"}, "condition", "guide: true"),
    ("medrecon.diffusion.train_config:DataConfig", {"paths": ["a"], "condition": {"paths": ["b"], "neighbours": 1}}, "intensity", "'sct'"),
    (
        "medrecon.diffusion.train_config:DataConfig",
        {"paths": ["a"], "intensity": "sct", "synthetic_phase": True, "condition": {"guide": True}},
        "synthetic_phase",
        "false",
    ),
    ("medrecon.diffusion.train_config:DataConfig", {"paths": ["a"], "transform": "log"}, "intensity", "'oct' with a transform"),
    (
        "medrecon.diffusion.train_config:DataConfig",
        {"paths": ["a"], "intensity": "oct", "synthetic_phase": True},
        "synthetic_phase",
        "false",
    ),
    (
        "medrecon.diffusion.train_config:DataConfig",
        {"paths": ["a"], "intensity": "oct", "condition": {"paths": ["b"]}},
        "condition",
        "none",
    ),
    (
        "medrecon.diffusion.train_config:DataConfig",
        {"paths": ["a"], "intensity": "pet", "synthetic_phase": True},
        "synthetic_phase",
        "false",
    ),
]


@pytest.mark.parametrize(("target", "values", "key", "expected"), MODEL_CHECKS)
def test_checks_across_fields_name_their_field(target, values, key, expected):
    """Every check across fields reads as one line "--set <field>: expected X, got Y": it names the
    field it is about (not the section), says what was expected once, and what it got."""
    import importlib

    module, name = target.split(":")
    cls = getattr(importlib.import_module(module), name)
    with pytest.raises(ArgumentError) as err:
        build_settings(cls, set_values=values)
    line = str(err.value)
    head, _, rest = line.partition(": expected ")
    assert head == f"--set {key}", line
    assert expected in rest.rpartition(", got ")[0], line
    assert rest.count("expected") == 0 and ", got " in rest and "these settings together" not in rest, line
