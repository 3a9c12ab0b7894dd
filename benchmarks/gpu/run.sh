#!/usr/bin/env bash
# Runs ON the borrowed GPU machine (device tool) from the repository root, with .gpu/ carried
# (fill it here first: bash benchmarks/gpu/prepare.sh). One call of about 6-8 minutes (TRAIN_MIN + ~3):
#   1. CT on the GPU: benchmarks/bench_ct_gpu.py (alone on the GPU, for clean timings)
#   2. priors trained side by side, time-boxed (TRAIN_MIN minutes each): the shipped brain prior
#      (configs/mri_brain_ddpm.yaml; warm-started from medrecon/priors/brain when present) and the
#      SIAT benchmark prior (configs/mri_siat_ddpm.yaml), with TRAIN_3D=1 also the 3-D example prior
#      (configs/mri_brain_3d_ddpm.yaml, 32³ patches) — meanwhile the gpu-marked tests
#   3. DDS on the real 8-coil head with both priors; DDS speed on 320² x 15 coils
# Comes back in $OUT: log.txt (everything, written as it goes), results.tar (tables, loss curves,
# test output), siat/, brain/ (and brain3d/) prior.safetensors + prior.json.
set -uo pipefail
export PYTHONUNBUFFERED=1
TRAIN_MIN=${TRAIN_MIN:-3.5}
CT_BENCH=${CT_BENCH:-1}     # 0: skip step 1
TRAIN_SIAT=${TRAIN_SIAT:-1} # 0: no SIAT training; the SIAT prior is carried in benchmarks/results/siat_prior
TRAIN_BRAIN=${TRAIN_BRAIN:-1} # 0: no brain training (and no brain DDS / speed bench)
DDS=${DDS:-1}               # 0: skip step 3 (evaluate the priors on the CPU afterwards)
TRAIN_3D=${TRAIN_3D:-0}     # 1: also train the 3-D example prior (configs/mri_brain_3d_ddpm.yaml; needs MRI_DATA)
# the SIAT training continues from .gpu/siat_prior when prepare.sh put it there (SIAT_PRIOR=1)
T0=$(date +%s)
R=/tmp/res
mkdir -p $R $OUT/siat $OUT/brain $OUT/brain3d
LOG=$OUT/log.txt
say() { echo "== [$(( $(date +%s) - T0 )) s] $*" | tee -a $LOG; }
trap 'say "end"; tar -C $R -cf $OUT/results.tar .' EXIT

python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl >> $LOG 2>&1 || { say "wheel install failed"; exit 1; }
export PYTHONPATH=/tmp/site
if ! python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >> $LOG 2>&1; then
  say "pip install -e failed; importing from a copy laid out as the package"
  mkdir -p /tmp/pkg && cp -r medrecon /tmp/pkg/ && cp -r physics /tmp/pkg/medrecon/physics && cp -r datasets /tmp/pkg/medrecon/datasets
  export PYTHONPATH=/tmp/pkg:/tmp/site
fi
# ASTRA's wheel links CUDA 12 (libcudart.so.12, libcufft.so.11): the real cudart 12 from its wheel, the
# cuFFT shim, and only CUDA 13's libcufft.so.12 beside it (a whole CUDA lib folder on LD_LIBRARY_PATH
# would shadow torch's own CUDA libraries)
CUFFT12=$(find / -xdev -name 'libcufft.so.12*' 2>/dev/null | head -1)
mkdir -p /tmp/cufft12 && ln -sf "$CUFFT12" /tmp/cufft12/libcufft.so.12
export LD_LIBRARY_PATH="$PWD/.gpu/astra:/tmp/site/nvidia/cuda_runtime/lib:/tmp/cufft12:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> $LOG 2>&1
python3 -c "import astra, torch, monai; print('astra', astra.__version__, 'cuda', astra.use_cuda(), '| torch', torch.__version__, '| monai', monai.__version__)" >> $LOG 2>&1
[ -f .gpu/data/siat_q10.npy.xz ] && python3 - >> $LOG 2>&1 <<'PY'
import lzma, os
import numpy as np
os.makedirs("/tmp/siat", exist_ok=True)
with lzma.open(".gpu/data/siat_q10.npy.xz") as f:
    a = np.load(f).astype(np.float32) / 511
np.savez("/tmp/siat/siat_brain_complex_train.npz", images=(a[:, 0] + 1j * a[:, 1]).astype(np.complex64))
print("SIAT expanded", a.shape)
PY
say "setup done"

# 1. CT on the GPU (alone)
if [ "$CT_BENCH" = 1 ]; then
  timeout 150 python3 benchmarks/bench_ct_gpu.py --repeats 5 >> $LOG 2>&1 || say "bench_ct_gpu failed (rc $?)"
  cp benchmarks/results/ct_gpu.md $R/ 2>/dev/null
  say "CT bench done"
fi

# 2. priors, side by side, time-boxed; the gpu tests meanwhile
sed -e 's#../shared/data/mr_volumes#.gpu/data#' configs/mri_brain_ddpm.yaml > /tmp/brain.yaml
sed -e 's#../shared/data/mri/siat_brain_complex_train.npz#/tmp/siat/siat_brain_complex_train.npz#' configs/mri_siat_ddpm.yaml > /tmp/siat.yaml
WARM=()
[ -f medrecon/priors/brain/prior.safetensors ] && WARM=(--init-from medrecon/priors/brain)
LIMIT=$(python3 -c "print(int(60 * $TRAIN_MIN + 150))")
SIAT=benchmarks/results/siat_prior
P1=
if [ "$TRAIN_SIAT" = 1 ]; then
  SIAT=/tmp/siat
  SWARM=()
  [ -f .gpu/siat_prior/prior.json ] && SWARM=(--init-from .gpu/siat_prior)
  timeout $LIMIT python3 -m medrecon train --config /tmp/siat.yaml --device cuda --output /tmp/siat --max-minutes $TRAIN_MIN "${SWARM[@]}" > $R/train_siat.txt 2>&1 &
  P1=$!
fi
P2=
if [ "$TRAIN_BRAIN" = 1 ]; then
  timeout $LIMIT python3 -m medrecon train --config /tmp/brain.yaml --device cuda --output /tmp/brain --max-minutes $TRAIN_MIN "${WARM[@]}" > $R/train_brain.txt 2>&1 &
  P2=$!
fi
P4=
if [ "$TRAIN_3D" = 1 ]; then
  sed -e 's#../shared/data/mr_volumes#.gpu/data#' configs/mri_brain_3d_ddpm.yaml > /tmp/brain3d.yaml
  timeout $LIMIT python3 -m medrecon train --config /tmp/brain3d.yaml --device cuda --output /tmp/brain3d --max-minutes $TRAIN_MIN > $R/train_brain3d.txt 2>&1 &
  P4=$!
fi
timeout 200 python3 -m pytest -v -m gpu -s -p no:cacheprovider --continue-on-collection-errors tests > $R/gpu_tests.txt 2>&1
say "gpu tests rc $?"; tail -n 40 $R/gpu_tests.txt >> $LOG
[ -n "$P1" ] && { wait $P1; say "siat training rc $?"; tail -c 600 $R/train_siat.txt | tr '\r' '\n' | tail -n 4 >> $LOG; }
[ -n "$P2" ] && { wait $P2; say "brain training rc $?"; tail -c 600 $R/train_brain.txt | tr '\r' '\n' | tail -n 4 >> $LOG; }
[ -n "$P4" ] && { wait $P4; say "3-D training rc $?"; tail -c 600 $R/train_brain3d.txt | tr '\r' '\n' | tail -n 4 >> $LOG; }
for p in siat brain brain3d; do
  cp /tmp/$p/prior.safetensors /tmp/$p/prior.json $OUT/$p/ 2>> $LOG
  cp /tmp/$p/loss.csv $R/loss_$p.csv 2>/dev/null; cp /tmp/$p/loss.png $R/loss_$p.png 2>/dev/null
done

# 3. DDS on the real head (both priors at once: quality; the SIAT run's times are not alone on the GPU),
#    then the speed benchmark alone
[ "$DDS" = 1 ] || exit 0
P3=
if [ -f $SIAT/prior.json ]; then
  timeout 240 python3 benchmarks/bench_diffusion_mri.py --prior $SIAT --data .gpu/data --device cuda --samples 1,4 --no-cs \
    --warm 4:0.02,8:0.1 --steps-sweep 10,20,50,100,1000 --out $R/dds_siat.md > $R/dds_siat.txt 2>&1 &
  P3=$!
fi
timeout 240 python3 benchmarks/bench_diffusion_mri.py --prior /tmp/brain --data .gpu/data --device cuda --samples 1,4 --no-cs \
  --warm 4:0.02,8:0.1 --steps-sweep 10,20,50,100,1000 --out $R/dds_brain.md > $R/dds_brain.txt 2>&1
say "brain DDS rc $?"; cat $R/dds_brain.md >> $LOG 2>/dev/null || tail -n 20 $R/dds_brain.txt >> $LOG
[ -n "$P3" ] && { wait $P3; say "siat DDS rc $?"; cat $R/dds_siat.md >> $LOG 2>/dev/null || tail -n 20 $R/dds_siat.txt >> $LOG; }
timeout 120 python3 benchmarks/bench_diffusion_speed.py --prior /tmp/brain --device cuda --batches 1,8 --slices 8 >> $LOG 2>&1 || say "speed bench failed"
cp benchmarks/results/diffusion_speed_cuda.md $R/ 2>/dev/null
