from medrecon.cli.main import main


def test_demo_runs_offline_and_writes_figure(tmp_path, capsys):
    assert main(["demo", "--out-dir", str(tmp_path / "demo"), "--steps", "10", "--samples", "2"]) == 0
    out = capsys.readouterr().out
    png = tmp_path / "demo" / "comparison.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = {" ".join(line.split()[:2]): [float(v) for v in line.split()[2:]] for line in out.splitlines() if line[:2] in ("4x", "8x")}
    brain = {" ".join(line.split()[:3]): [float(v) for v in line.split()[3:]] for line in out.splitlines() if line.startswith("brain 4x")}
    assert set(rows) == {f"{a}x {m}" for a in (4, 8) for m in ("zf", "sense", "cs")}
    # golden values at the default seed (PSNR dB, measured 2026-11-26): SENSE and CS beat zero filling
    assert rows["4x sense"][0] > rows["4x zf"][0] + 4
    assert rows["4x cs"][0] > rows["4x zf"][0] + 3
    assert rows["8x sense"][0] > rows["8x zf"][0] + 1
    assert abs(rows["4x zf"][0] - 27.73) < 0.05
    # the diffusion part: the shipped brain prior on the shipped brain slice, mean and std map
    assert set(brain) == {"brain 4x zf", "brain 4x cs", "brain 4x dds"}
    assert brain["brain 4x dds"][0] > brain["brain 4x zf"][0] + 4  # 10 steps x 2 samples: 32.7 vs 26.0 dB (2026-11-26)
    assert "training slices" in out


def test_demo_without_diffusion(tmp_path, capsys):
    assert main(["demo", "--out-dir", str(tmp_path / "d"), "--no-diffusion"]) == 0
    assert "brain" not in capsys.readouterr().out
    assert main(["demo", "--out-dir", str(tmp_path / "d"), "--steps", "0"]) == 2
