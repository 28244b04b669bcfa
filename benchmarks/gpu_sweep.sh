#!/usr/bin/env bash
# Block-size sweep of rljax.kernels on a GPU, each configuration checked for correctness against
# the reference (fp32, 1e-5) before it is timed (bf16, N = 8192, Qwen2.5-0.5B unembedding).
# Also runs the compiled Pallas tests and the fp32 benchmark at N = 2048 (TF32 tiles by default).
#
#   bash benchmarks/gpu_sweep.sh            # writes logs and tables to $OUT (or /tmp/gpu_sweep)
#
# Takes about 7 minutes on one H100/H200.
set -u
OUT=${OUT:-/tmp/gpu_sweep}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 JAX_PLATFORMS=cuda
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=${PYTHON:-python3}
step() { echo; echo "=== $* ($(date -u +%T))"; }
{
  step "machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c "import jax; print('jax', jax.__version__, jax.devices())"

  step "compiled Pallas tests"
  timeout 120 "$PY" -m pytest -q -p no:cacheprovider -o addopts="-ra" \
    tests/kernels/logprob_entropy_test.py -k "LogprobEntropyTest and not Xla and not Interpret"
  echo "(exit $?)"

  step "sweep bf16 N=8192 (config = impl:tokens,vocab[,hidden[,num_warps[,splits]]])"
  (cd benchmarks && timeout 330 "$PY" logprob_entropy_sweep.py --runs 3 --warmup 1 \
    pallas:64,128,64,4,1 pallas:64,128,64 pallas:64,256,64 pallas:64,256,64,4 \
    pallas:128,128,64 pallas:32,256,64 pallas:64,128,128 \
    xla:512,2048 xla:2048,4096 xla:8192,2048 xla:4096,8192)
  echo "(exit $?)"

  step "benchmark fp32 N=2048 (the CPU table's shapes)"
  timeout 90 "$PY" benchmarks/logprob_entropy.py --n 2048 --dtype float32 --runs 5 --warmup 2 \
    --impls naive,pallas
  echo "(exit $?)"
  step "done"
} 2>&1 | tee "$OUT/log"
