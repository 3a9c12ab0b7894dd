#!/usr/bin/env bash
# Prepare a borrowed-GPU session (run HERE, on the CPU machine, in the repository root).
# Fills the git-ignored folder .gpu/ (the device tool carries at most 64 MiB with the tree) with:
#   .gpu/whl/      wheels the GPU image lacks (Python 3.12): monai, sigpy, PyWavelets, nibabel, pydicom,
#                  astra-toolbox + the CUDA 12 runtime it links
#   .gpu/astra/    the cuFFT 11 -> 12 shim for ASTRA (../shared/tools/astra-cuda12-on-cuda13)
#   .gpu/data/     MIT-licensed MR volumes for the shipped prior and the real 8-coil head (MRI_DATA=0
#                  leaves them out), and the SIAT benchmark images as 10-bit integers, xz-compressed
#                  (siat_q10.npy.xz, 21 MB; run.sh expands it): the complex64 file (93 MB) does not fit
#                  the carry limit; quantisation noise is 49 dB below the signal, ~24 dB below the
#                  images' own noise floor
#   .gpu/siat_prior/  (SIAT_PRIOR=1) the git-ignored SIAT benchmark prior, to continue its training
# Then, with the device tool:  run(command="bash benchmarks/gpu/run.sh", carry=[".gpu"], timeout_s=...)
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx "/.gpu/" .git/info/exclude 2>/dev/null || echo "/.gpu/" >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/whl .gpu/data
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d .gpu/whl \
  monai==1.6.1 sigpy==0.1.27 PyWavelets nibabel==5.4.2 pydicom==3.0.2 astra-toolbox==2.5.0 nvidia-cuda-runtime-cu12==12.9.79
../shared/tools/astra-cuda12-on-cuda13/build.sh .gpu/astra
D=../shared/data
[ "${MRI_DATA:-1}" = 1 ] && cp $D/mr_volumes/stroke_T1.nii.gz $D/mr_volumes/stroke_T2.nii.gz $D/mr_volumes/stroke_FLAIR.nii.gz \
   $D/mr_volumes/seg3D_MR.nii.gz $D/mri/head_8coil_kspace.npz .gpu/data/
# Carry budget (64 MiB): wheels 29 MB, SIAT images 21 MB, a prior 13 MB, the tracked tree 13.4 MB of which
# 12.7 MB is the shipped prior. Continuing the SIAT prior (SIAT_PRIOR=1, MRI_DATA=0) fits only with the
# shipped prior moved out of the working tree for that call (git stash is not needed: mv it to /tmp and
# back). SIAT=0 leaves the SIAT images out.
[ "${SIAT:-1}" = 1 ] && python3 - <<'PY'
import lzma
import numpy as np
x = np.load("../shared/data/mri/siat_brain_complex_train.npz")["images"]
x = x / np.abs(x).reshape(len(x), -1).max(axis=1)[:, None, None]  # per-image scale (training renormalises)
with lzma.open(".gpu/data/siat_q10.npy.xz", "wb", preset=9) as f:
    np.save(f, np.round(np.stack([x.real, x.imag], 1) * 511).astype(np.int16))
PY
[ "${SIAT_PRIOR:-0}" = 1 ] && mkdir -p .gpu/siat_prior && cp benchmarks/results/siat_prior/prior.json benchmarks/results/siat_prior/prior.safetensors .gpu/siat_prior/
TREE=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
GPU=$(du -sb .gpu | cut -f1)
echo ".gpu $GPU bytes + tracked tree $TREE bytes = $((GPU + TREE)) of $((64 * 1024 * 1024)) allowed"
[ $((GPU + TREE)) -lt $((64 * 1024 * 1024)) ] || echo "TOO BIG for one device call: rerun with SIAT=0, or carry less"
