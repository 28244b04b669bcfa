#!/usr/bin/env bash
# The device checks of rljax.kernels, in one call: versions, the compiled Pallas tests, a sweep
# of block sizes and backward designs (benchmarks/logprob_entropy_sweep.py, each configuration
# checked against the reference before it is timed), the fused log-prob + entropy benchmark
# (bf16 at N = 8192 and 32768, then fp32 at the CPU shapes) and the rest of the kernel tests. Each step
# has its own time limit so that one hang cannot eat the rest.
#
#   bash benchmarks/gpu_check.sh mosaic                 # Mosaic GPU only: ~6 min (a guess; <= 10)
#   bash benchmarks/gpu_check.sh tests sweep bench big  # Triton: about 5.5 minutes (H100)
#   bash benchmarks/gpu_check.sh                        # all steps: ~14 min (8 without mosaic)
#
# Steps: machine mosaic tests sweep bench big bench32 rest ("machine" always runs). "mosaic"
# compiles and tests BlockSizes(gpu_lowering="mosaic_gpu") (never yet run on a GPU: its time is
# a guess), sweeps its tiles and times it beside Triton at N = 8192. Logs and tables go
# to $OUT (or /tmp/gpu_check). Runs from the repository root against whatever jax the machine
# has (no install needed: rljax is put on PYTHONPATH).
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 JAX_PLATFORMS=cuda
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=${PYTHON:-python3}
STEPS=" ${*:-mosaic tests sweep bench big bench32 rest} "
want() { [[ "$STEPS" == *" $1 "* ]]; }
step() { echo; echo "=== $* ($(date -u +%T))"; }
bench() { timeout "$1" "$PY" benchmarks/logprob_entropy.py "${@:2}"; echo "(exit $?)"; }

{
  step "machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  "$PY" -c "import jax, jaxlib, flax, chex, optax; print('jax', jax.__version__, 'jaxlib',
jaxlib.__version__, 'flax', flax.__version__, jax.devices())"

  if want mosaic; then
    step "Mosaic GPU kernels (gpu_lowering=mosaic_gpu): compiled tests, sweep, benchmark"
    timeout 150 "$PY" -m pytest -q -p no:cacheprovider -o addopts="-ra" \
      tests/kernels/logprob_entropy_test.py -k "MosaicGpuTest"
    echo "(exit $?)"
    (cd benchmarks && timeout 260 "$PY" logprob_entropy_sweep.py --runs 3 --warmup 1 \
      mosaic:64,256,64 mosaic:128,256,64 mosaic:64,128,64 mosaic:128,128,64 mosaic:64,256,128 \
      pallas:64,256,64) | tee "$OUT/sweep_mosaic_bf16_8192.md"
    echo "(exit ${PIPESTATUS[0]})"
    bench 150 --n 8192 --dtype bfloat16 --runs 10 --warmup 3 --impls naive,pallas,pallas-mosaic \
      | tee "$OUT/bench_mosaic_bf16_8192.md"
  fi

  if want tests; then
    step "compiled Pallas tests"
    timeout 120 "$PY" -m pytest -q -p no:cacheprovider -o addopts="-ra" \
      tests/kernels/logprob_entropy_test.py -k "LogprobEntropyTest and not Xla and not Interpret"
    echo "(exit $?)"
  fi

  if want sweep; then
    # Config = impl:tokens,vocab,hidden,num_warps,splits,slab_vocab,fwd_slab_vocab (empty =
    # default; slab_vocab 0 = the in-kernel-reduction backward, the GPU default before the
    # slabs; fwd_slab_vocab 16384 forces the forward's vocabulary slabs, automatic only past
    # 256 MiB of per-tile statistics, i.e. N > ~28k tokens with these tiles).
    step "sweep, bf16 N=8192: each config checked against the reference, then timed"
    (cd benchmarks && timeout 260 "$PY" logprob_entropy_sweep.py --runs 3 --warmup 1 \
      pallas:64,256,64 pallas:64,256,64,4,,0 pallas:64,256,64,4,,16384 \
      pallas:64,256,64,4,,,16384 pallas:128,256,64 \
      pallas:128,128,64,8 xla:8192,2048) | tee "$OUT/sweep_bf16_8192.md"
    echo "(exit ${PIPESTATUS[0]})"
  fi

  # The benchmarks' rows are named so that their time limits hold (the default list also has
  # xla-matmuls, the chunked path without its softmax math: one more process per benchmark).
  if want bench; then
    step "benchmark bf16 N=8192 (Qwen2.5-0.5B unembedding)"
    bench 150 --n 8192 --dtype bfloat16 --runs 10 --warmup 3 --impls naive,xla,pallas,pallas-mosaic \
      | tee "$OUT/bench_bf16_8192.md"
  fi

  if want big; then
    # N = 32768: past the 256 MiB of per-tile statistics, so the forward runs in vocabulary
    # slabs by default (naive needs ~4x its N = 8192 memory and may not fit: reported if so).
    step "benchmark bf16 N=32768 (forward vocabulary slabs on by default)"
    bench 200 --n 32768 --dtype bfloat16 --runs 5 --warmup 2 \
      --impls naive,xla,pallas,pallas-mosaic | tee "$OUT/bench_bf16_32768.md"
  fi

  if want bench32; then
    step "benchmark fp32 N=2048 (the CPU table's shapes)"
    bench 100 --n 2048 --dtype float32 --runs 5 --warmup 2 --impls naive,xla,pallas \
      | tee "$OUT/bench_fp32_2048.md"
  fi

  if want rest; then
    step "the rest of the kernel tests on GPU (xla impl, properties, lowering, errors)"
    timeout 90 "$PY" -m pytest -q -p no:cacheprovider -o addopts="-ra" \
      tests/kernels/logprob_entropy_test.py \
      -k "not Interpret and not Mosaic and (Xla or not LogprobEntropyTest)"
    echo "(exit $?)"
  fi
  step "done"
} 2>&1 | tee "$OUT/log"
