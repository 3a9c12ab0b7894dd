from medrecon.cli.main import main


def test_demo_runs_offline_and_writes_figure(tmp_path, capsys):
    assert main(["demo", "--out-dir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    png = tmp_path / "demo" / "comparison.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = {" ".join(line.split()[:2]): [float(v) for v in line.split()[2:]] for line in out.splitlines() if line[:2] in ("4x", "8x")}
    assert set(rows) == {f"{a}x {m}" for a in (4, 8) for m in ("zf", "sense", "cs")}
    # golden values at the default seed (PSNR dB, measured 2026-11-26): SENSE and CS beat zero filling
    assert rows["4x sense"][0] > rows["4x zf"][0] + 4
    assert rows["4x cs"][0] > rows["4x zf"][0] + 3
    assert rows["8x sense"][0] > rows["8x zf"][0] + 1
    assert abs(rows["4x zf"][0] - 27.73) < 0.05
