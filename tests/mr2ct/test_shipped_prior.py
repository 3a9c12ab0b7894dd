"""The shipped MR → CT prior (mr2ct-head): what its JSON records, end to end on an MR of another grid, and on the held-out slab."""

import numpy as np
import pytest
import torch
from conftest import shared_file
from head_phantom import head, write_nifti

from medrecon.cli.main import main
from medrecon.datasets.ct_volume import read_ct
from medrecon.datasets.mr_volume import mr_scale, read_mr
from medrecon.datasets.sct_training import stack_neighbours
from medrecon.diffusion.prior_folder import load_prior
from medrecon.evaluation.ct_metrics import body_mask
from medrecon.evaluation.sct_metrics import sct_metrics
from medrecon.priors import shipped_prior_dir
from medrecon.tasks.mr2ct.bulk import bulk_density_ct
from medrecon.tasks.mr2ct.config import TranslateConfig
from medrecon.tasks.mr2ct.translate import translate_slices


def test_shipped_prior_records_its_data_slab_and_settings():
    folder = shipped_prior_dir("mr2ct-head")
    d = load_prior(folder)
    info = d.info
    assert info["holdout"] == [{"path": "template_ct_hu_128.nii.gz", "axis": "S", "slices": [28, 43]}]
    assert info["condition"]["modality"] == "MR" and info["condition"]["neighbours"] == 1
    assert info["prediction"] == "v" and info["training_steps"] > 1000 and "template_t1_128" in info["data"]
    assert set(info["recommended"]["mr2ct"]) >= {"sampler", "steps", "samples"}
    assert info["recommended"]["mr2ct"]["mirror"] is True  # measured on its slab; off for priors that do not recommend it
    assert (folder / "prior.safetensors").stat().st_size < 20e6
    assert "BSD 2-Clause" in (folder / "NOTICE.md").read_text()


def test_shipped_prior_translates_an_mr_on_another_grid(tmp_path):
    mr = head(slices=6, size=40)[1] * 800  # 2 x 2 x 3 mm: resampled onto the prior's grid and back
    write_nifti(mr, tmp_path / "t1.nii.gz")
    argv = ["translate", "mr2ct", "--input", tmp_path / "t1.nii.gz", "--prior", "mr2ct-head", "--steps", "2", "--quiet"]
    assert main([str(a) for a in argv + ["--out", tmp_path / "sct.nii.gz"]]) == 0
    out = read_ct(tmp_path / "sct.nii.gz")
    assert out.hu.shape == mr.shape and np.all(np.isfinite(out.hu)) and out.hu.min() >= -1024


@pytest.mark.data
def test_shipped_prior_beats_bulk_density_on_the_held_out_slab():
    ct = read_ct(shared_file("mr2ct/template_ct_hu_128.nii.gz")).hu
    t1 = read_mr(shared_file("mr2ct/template_t1_128.nii.gz")).values
    mr = t1 / mr_scale(t1)
    target = ct[28:44]
    body = body_mask(target)
    cond = torch.from_numpy(stack_neighbours(mr.astype(np.float32), np.ones(128, bool), 1))[28:44]
    hu, _ = translate_slices(cond, load_prior(shipped_prior_dir("mr2ct-head")), TranslateConfig(steps=25))
    ours = sct_metrics(target, hu, body)
    bulk = sct_metrics(target, bulk_density_ct(mr[28:44], (1.70, 1.417), TranslateConfig(method="bulk")), body)
    assert ours["MAE_body_HU"] < 0.8 * bulk["MAE_body_HU"] and ours["Dice_bone"] > bulk["Dice_bone"] + 0.2, (ours, bulk)
