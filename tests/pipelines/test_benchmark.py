"""``medrecon benchmark``: a grid of cells made by the package's own commands, reused on a rerun."""

import csv

import pytest
from conftest import assert_refused
from mri_files import multicoil_volume, write_fastmri

from medrecon.cli.main import main

GRID = """benchmark:
  data: full
  masks: [equispaced_fraction]
  accelerations: [4]
  seeds: [0, 1]
  nfe: 8
  methods:
{methods}
"""


def _config(tmp_path, methods: str, name: str = "bench.yaml"):
    path = tmp_path / name
    path.write_text(GRID.format(methods=methods))
    return path


@pytest.fixture()
def full(tmp_path):
    (tmp_path / "full").mkdir()
    for i in range(2):
        write_fastmri(tmp_path / "full" / f"v{i}.h5", multicoil_volume(slices=2, coils=4, h=48, w=48, seed=i), recon_size=(32, 32))
    return tmp_path / "full"


def test_benchmark_grid_writes_table_csv_figures_and_reuses_cells(tmp_path, full, capsys):
    two = "    - {name: zf, method: zf}\n    - {name: sense, method: sense, settings: {iters: 10}}"
    out = tmp_path / "results"
    assert main(["benchmark", "--config", str(_config(tmp_path, two)), "--out", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 2 * 2 * 2  # methods × seeds × volumes
    assert {r["method"] for r in rows} == {"zf", "sense"} and all(float(r["seconds_per_slice"]) >= 0 for r in rows)
    table = (out / "results.md").read_text()
    assert "| sense | equispaced_fraction | 4× |" in table and "| 4 |" in table
    zf = [float(r["PSNR"]) for r in rows if r["method"] == "zf"]
    sense = [float(r["PSNR"]) for r in rows if r["method"] == "sense"]
    assert min(sense) > max(zf)  # the grid measures what it says
    assert {p.name for p in (out / "figures").iterdir()} == {
        "psnr_by_method.png",
        "ssim_by_method.png",
        "examples_equispaced_fraction_4x.png",
    }
    cells = {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    assert len(cells) == 4
    # a rerun with one method more computes only the new method's cells
    three = two + "\n    - {name: cs, method: cs, settings: {iters: 5}}"
    assert main(["benchmark", "--config", str(_config(tmp_path, three)), "--out", str(out), "--quiet"]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    assert len(after) == 6 and all(after[k] == v for k, v in cells.items())
    assert len(list(csv.DictReader((out / "results.csv").open()))) == 12


def test_benchmark_config_errors_name_the_field(tmp_path, full, capsys):
    bad_budget = _config(tmp_path, "    - {name: d, method: diffusion, prior: brain, settings: {steps: 3, samples: 2}}", "b1.yaml")
    assert_refused(["benchmark", "--config", bad_budget, "--out", tmp_path / "r"], capsys, "steps × samples = nfe (8)", tmp_path)
    bad_setting = _config(tmp_path, "    - {name: cs, method: cs, settings: {lam: -1}}", "b2.yaml")
    assert_refused(["benchmark", "--config", bad_setting, "--out", tmp_path / "r"], capsys, "benchmark.methods[0].settings.lam", tmp_path)
    bad_name = _config(tmp_path, "    - {name: 'a/b', method: zf}", "b3.yaml")
    assert_refused(["benchmark", "--config", bad_name, "--out", tmp_path / "r"], capsys, "benchmark.methods.0.name", tmp_path)


def test_other_data_get_new_cells(tmp_path, full):
    one = "    - {name: zf, method: zf}"
    out = tmp_path / "results"
    cfg = _config(tmp_path, one)
    cfg.write_text(cfg.read_text().replace("  seeds: [0, 1]", "  seeds: [0]\n  volumes: 1"))
    assert main(["benchmark", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert len(list(csv.DictReader((out / "results.csv").open()))) == 1
    cfg.write_text(cfg.read_text().replace("volumes: 1", "volumes: 2"))
    assert main(["benchmark", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert len(list(csv.DictReader((out / "results.csv").open()))) == 2
