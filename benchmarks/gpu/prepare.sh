#!/usr/bin/env bash
# Prepare a borrowed-GPU session (run HERE, on the CPU machine, in the repository root).
# Fills the git-ignored folder .gpu/ (< 64 MiB, the device tool's limit) with:
#   .gpu/whl/      wheels the GPU image lacks (Python 3.12): monai, sigpy, PyWavelets, nibabel, pydicom, astra-toolbox + CUDA 12 runtime
#   .gpu/astra/    the cuFFT 11 -> 12 shim for ASTRA (../shared/tools/astra-cuda12-on-cuda13)
#   .gpu/data/     MIT-licensed MR volumes for the shipped prior and the real 8-coil head (for the DDS benchmark)
# Then, with the device tool:  run(command="bash benchmarks/gpu/run.sh", carry=[".gpu"], timeout_s=590)
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
cp $D/mr_volumes/stroke_T1.nii.gz $D/mr_volumes/stroke_T2.nii.gz $D/mr_volumes/stroke_FLAIR.nii.gz $D/mri/head_8coil_kspace.npz .gpu/data/
du -sh .gpu
