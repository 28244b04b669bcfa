#!/usr/bin/env bash
# The device checks of rljax.kernels, in one call: versions, the compiled Pallas tests, the
# fused log-prob + entropy benchmark (bf16 at N = 8192 and fp32 at the CPU shapes) and a sweep
# of block sizes (benchmarks/logprob_entropy_sweep.py, each configuration checked against the
# reference before it is timed). Each step has its own time limit so that one hang cannot eat
# the rest.
#
#   bash benchmarks/gpu_check.sh            # writes logs and tables to $OUT (or /tmp/gpu_check)
#
# Runs from the repository root against whatever jax the machine has (no install needed:
# rljax is put on PYTHONPATH). Takes about 7 minutes on one H100/H200.
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 JAX_PLATFORMS=cuda
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=${PYTHON:-python3}
step() { echo; echo "=== $* ($(date -u +%T))"; }
bench() { timeout "$1" "$PY" benchmarks/logprob_entropy.py "${@:2}"; echo "(exit $?)"; }

{
  step "machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  "$PY" -c "import jax, jaxlib, flax, chex, optax; print('jax', jax.__version__, 'jaxlib',
jaxlib.__version__, 'flax', flax.__version__, jax.devices())"

  step "compiled Pallas tests"
  timeout 100 "$PY" -m pytest -q -p no:cacheprovider -o addopts="-ra" \
    tests/kernels/logprob_entropy_test.py -k "LogprobEntropyTest and not Xla and not Interpret"
  echo "(exit $?)"

  step "benchmark bf16 N=8192 (Qwen2.5-0.5B unembedding)"
  bench 150 --n 8192 --dtype bfloat16 --runs 10 --warmup 3 | tee "$OUT/bench_bf16_8192.md"

  step "block sweep, bf16 N=8192: each config checked against the reference, then timed"
  (cd benchmarks && timeout 200 "$PY" logprob_entropy_sweep.py --runs 3 --warmup 1 \
    pallas:64,256,64 pallas:64,128,64 pallas:64,128,128 pallas:128,128,64 \
    xla:8192,2048 xla:4096,8192) | tee "$OUT/sweep_bf16_8192.md"
  echo "(exit ${PIPESTATUS[0]})"

  step "benchmark fp32 N=2048 (the CPU table's shapes)"
  bench 100 --n 2048 --dtype float32 --runs 5 --warmup 2 | tee "$OUT/bench_fp32_2048.md"

  step "the rest of the kernel tests on GPU (xla impl, properties, lowering, errors)"
  timeout 90 "$PY" -m pytest -q -p no:cacheprovider -o addopts="-ra" \
    tests/kernels/logprob_entropy_test.py -k "not Interpret"
  echo "(exit $?)"
  step "done"
} 2>&1 | tee "$OUT/log"
