#!/usr/bin/env bash
# Runs ON the borrowed GPU machine (device tool) from the repository root, with .gpu/ carried
# (see prepare.sh). One call, about 9 minutes: CUDA tests, time-boxed training of the shipped
# brain prior, DDS vs CS with it. Returns at most 8 files in $OUT: log.txt, brain/prior.*, brain/loss.*.
# Not yet run on a GPU (written in a session without one): fix what breaks, keep it one call.
set -uo pipefail
export PYTHONUNBUFFERED=1
LOG=$OUT/log.txt
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >> $LOG 2>&1 || exit 1
CUFFT12=$(find / -xdev -name 'libcufft.so.12*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$PWD/.gpu/astra:/tmp/site/nvidia/cuda_runtime/lib:$(dirname "$CUFFT12"):${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total --format=csv >> $LOG
python3 -c "import astra, torch; print('astra cuda', astra.use_cuda(), 'torch', torch.__version__)" >> $LOG 2>&1
# 1. CUDA paths: SENSE on CUDA, CT projectors CUDA vs CPU (prints the GPU adjoint mismatch)
timeout 150 python3 -m pytest -q -m gpu -s -p no:cacheprovider tests >> $LOG 2>&1
# 2. the shipped prior: MIT stroke volumes (synthetic phase), time-boxed; resumes from brain/ if carried back
sed -e 's#../shared/data/mr_volumes#.gpu/data#' -e 's#steps: 20000#steps: 6000#' configs/mri_brain_ddpm.yaml > /tmp/brain.yaml
timeout 330 python3 -m medrecon train --config /tmp/brain.yaml --device cuda --output /tmp/brain --quiet >> $LOG 2>&1
mkdir -p $OUT/brain && cp /tmp/brain/prior.safetensors /tmp/brain/prior.json /tmp/brain/loss.csv /tmp/brain/loss.png $OUT/brain/ 2>> $LOG
# 3. DDS with that prior vs CS on the real 8-coil head
timeout 120 python3 benchmarks/bench_diffusion_mri.py --prior /tmp/brain --data .gpu/data --device cuda >> $LOG 2>&1
