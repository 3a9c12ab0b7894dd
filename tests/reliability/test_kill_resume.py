"""A training killed with SIGKILL mid-run resumes to the same weights as a run never killed."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from safetensors.numpy import load_file


def _blobs_config(d, output, steps: int):
    yy, xx = np.mgrid[:16, :16]
    imgs = np.stack([np.exp(-((yy - 4 - k) ** 2 + (xx - 8) ** 2) / 10.0) for k in range(8)]).astype(np.complex64)
    np.savez(d / "blobs.npz", images=imgs)
    cfg = d / f"{output.name}.yaml"
    cfg.write_text(
        f"data:\n  paths: [{d / 'blobs.npz'}]\n"
        "prior:\n  channels: [8, 8]\n  attention_levels: [false, false]\n  num_head_channels: 8\n  norm_num_groups: 4\n"
        f"train:\n  steps: {steps}\n  batch_size: 2\n  crop: 8\n  checkpoint_every: 3\n"
        f"output: {output}\n"
    )
    return cfg


def _train(cfg) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "medrecon", "train", "--config", str(cfg), "--quiet"], env=env, stderr=subprocess.PIPE)


def test_a_killed_training_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    steps = 30
    clean = _train(_blobs_config(tmp_path, tmp_path / "clean", steps))
    assert clean.wait(timeout=600) == 0, clean.stderr.read().decode()
    out = tmp_path / "killed"
    cfg = _blobs_config(tmp_path, out, steps)
    proc = _train(cfg)
    deadline = time.time() + 600
    while proc.poll() is None and time.time() < deadline:  # kill once a checkpoint past the first exists
        ck = out / "checkpoint.json"
        if ck.exists() and json.loads(ck.read_text() or "{}").get("step", 0) >= 6:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads((out / "checkpoint.json").read_text())["step"]
    assert killed_at < steps and not (out / "prior.safetensors").exists()
    resumed = _train(cfg)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read().decode()
    a, b = load_file(tmp_path / "clean" / "prior.safetensors"), load_file(out / "prior.safetensors")
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert json.loads((out / "prior.json").read_text())["training_steps"] == steps
    assert not [p.name for p in out.iterdir() if ".partial" in p.name]
