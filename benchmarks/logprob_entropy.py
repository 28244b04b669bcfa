"""Benchmark: fused log-prob + entropy, naive jnp vs chunked XLA vs Pallas (fwd + bwd).

Measures ``jax.grad`` of ``sum(logp) + 0.01 * sum(entropy)`` w.r.t. hidden and weight at
Qwen2.5-0.5B unembedding shapes (D = 896, V = 151,936; N = 2048 tokens on CPU, 8192 on
GPU/TPU) for

* ``naive``: materialised ``[N, V]`` logits, ``log_softmax`` + entropy (what peers do),
* ``xla``: :func:`rljax.kernels.fused_linear_logprobs_and_entropy` with ``impl="xla"``,
* ``xla-matmuls``: the same loops with the per-tile softmax math taken out (the forward keeps a
  row max of each logit tile, the backward's d logits is the recomputed tile minus the row's
  lse): the four matmuls of a memory-bounded forward + backward (the forward's logits, the
  recomputed logits, ``dz W^T``, ``h^T dz``) and the data movement around them, the time floor
  of this design (its gradients are not the loss's),
* ``pallas``: the same with ``impl="pallas"`` (GPU/TPU only; CPU has interpret mode only,
  far too slow at these shapes),
* ``pallas-mosaic``: ``impl="pallas"`` with ``BlockSizes(gpu_lowering="mosaic_gpu")``, the
  Mosaic GPU (wgmma) kernels (GPU only, bf16/fp16 only),

and the bare ``hidden @ weight`` matmul as the physical floor. Each implementation runs in a
fresh subprocess (wall time = median of ``--runs`` after ``--warmup``; XLA's compiled
``temp_size_in_bytes``; peak RSS of the process on CPU, ``memory_stats()`` peak on GPU/TPU).
Prints one markdown table with the machine.

  python benchmarks/logprob_entropy.py                 # CPU defaults
  python benchmarks/logprob_entropy.py --n 8192        # GPU/TPU
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from _machine import describe


def _parse():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--n", type=int, default=None, help="tokens (default 2048 CPU, 8192 GPU/TPU)")
  p.add_argument("--d", type=int, default=896, help="hidden size (Qwen2.5-0.5B: 896)")
  p.add_argument("--v", type=int, default=151_936, help="vocabulary (Qwen2.5: 151,936)")
  p.add_argument("--dtype", default=None, help="float32 (CPU default) or bfloat16 (GPU/TPU)")
  p.add_argument("--impls", default="naive,xla-matmuls,xla,pallas,pallas-mosaic",
                 help="comma-separated rows (pallas-mosaic: gpu_lowering='mosaic_gpu', GPU only; "
                 "xla-matmuls: xla without its per-tile softmax math, a timing floor)")
  p.add_argument("--runs", type=int, default=3, help="timed runs (median reported)")
  p.add_argument("--warmup", type=int, default=1, help="untimed runs after compilation")
  p.add_argument("--block-tokens", type=int, default=None, help="BlockSizes.tokens")
  p.add_argument("--block-vocab", type=int, default=None, help="BlockSizes.vocab")
  p.add_argument("--block-hidden", type=int, default=None, help="BlockSizes.hidden (pallas)")
  p.add_argument("--slab-vocab", type=int, default=None,
                 help="BlockSizes.slab_vocab (pallas backward; 0 = in-kernel reductions)")
  p.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: one impl
  return p.parse_args()


def _pseudo_uniform(shape, std, dtype):
  """Deterministic pseudo-random values with mean 0 and standard deviation ``std``."""
  import jax.numpy as jnp
  from jax import lax

  i = lax.broadcasted_iota(jnp.float32, shape, 0)
  j = lax.broadcasted_iota(jnp.float32, shape, 1)
  x = jnp.sin(i * 12.9898 + j * 78.233) * 43758.5453
  return ((2.0 * (x - jnp.floor(x)) - 1.0) * (std * 3.0**0.5)).astype(dtype)


def _child(args) -> dict:
  """Run one implementation in this (fresh) process and return its measurements."""
  import jax
  import jax.numpy as jnp

  from rljax.kernels import default_block_sizes, fused_linear_logprobs_and_entropy

  backend = jax.default_backend()
  dtype = jnp.dtype(args.dtype)
  n, d, v = args.n, args.d, args.v
  # Inputs from a fused elementwise hash of the indices: each is created in its own buffer with
  # no RNG temporaries (jax.random's threefry would put ~4 [D, V] buffers into the peak RSS).
  hidden = jax.jit(_pseudo_uniform, static_argnums=(0, 1, 2))((n, d), 1.0, dtype)
  weight = jax.jit(_pseudo_uniform, static_argnums=(0, 1, 2))((d, v), d**-0.5, dtype)
  targets = jax.random.randint(jax.random.key(0), (n,), 0, v)
  jax.block_until_ready((hidden, weight, targets))
  rss_inputs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  impl = args.child
  lib_impl = {"naive": "reference", "pallas-mosaic": "pallas", "xla-matmuls": "xla"}.get(impl, impl)
  if impl == "xla-matmuls":  # this process only: xla's loops without the per-tile softmax math
    from rljax.kernels import _logprob_entropy

    # Forward: a row max per tile (and a tile count, so that lse stays finite); backward: the
    # recomputed tile minus the row's lse, which keeps the forward loop alive in the gradient.
    _logprob_entropy._tile_update = lambda stats, l: (
        jnp.maximum(stats[0], jnp.max(l, axis=-1)), stats[1] + 1.0, stats[2])
    _logprob_entropy._tile_dz = lambda l, lse, *rows: l - lse[:, None]
  blocks = None
  if impl in ("xla", "xla-matmuls", "pallas", "pallas-mosaic"):
    base = default_block_sizes(lib_impl, backend, args.dtype)
    if impl == "pallas-mosaic":
      base = dataclasses.replace(base, gpu_lowering="mosaic_gpu")
    blocks = dataclasses.replace(
        base,
        tokens=args.block_tokens or base.tokens,
        vocab=args.block_vocab or base.vocab,
        hidden=args.block_hidden or base.hidden,
        slab_vocab=base.slab_vocab if args.slab_vocab is None else args.slab_vocab,
    )

  if impl == "matmul":
    fn = jax.jit(lambda h, w: jnp.dot(h, w, preferred_element_type=jnp.float32))
  else:

    def loss(h, w):
      logp, ent = fused_linear_logprobs_and_entropy(
          h, w, targets, impl=lib_impl, block_sizes=blocks
      )
      return jnp.sum(logp) + 0.01 * jnp.sum(ent)

    fn = jax.jit(jax.grad(loss, (0, 1)))
  slab = fwd_slab = None
  if lib_impl == "pallas":  # the slab widths the library will pick for this call (0: no slabs)
    from rljax.kernels import _logprob_entropy, _pallas

    plan = _logprob_entropy._plan(lib_impl, 1.0, blocks, dtype)
    slab = _pallas.slab_columns(blocks, args.n, args.v, plan.platform)
    fwd_slab = _pallas.fwd_slab_columns(blocks, args.n, args.v)
  t0 = time.perf_counter()
  compiled = fn.lower(hidden, weight).compile()
  compile_s = time.perf_counter() - t0
  temp = compiled.memory_analysis().temp_size_in_bytes
  for _ in range(args.warmup):
    jax.block_until_ready(compiled(hidden, weight))
  times = []
  for _ in range(args.runs):
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(hidden, weight))
    times.append(time.perf_counter() - t0)
  if backend == "cpu":
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    peak_kind = "peak RSS"
  else:
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use", float("nan"))
    peak_kind = "device peak"
  return dict(
      impl=impl, rss_inputs=rss_inputs, time_s=statistics.median(times), times=times, temp=temp,
      peak=peak,
      peak_kind=peak_kind, compile_s=compile_s, blocks=None if blocks is None else vars(blocks),
      slab=slab, fwd_slab=fwd_slab, machine=describe(), backend=backend,
  )


def _ms(seconds: float) -> str:
  ms = seconds * 1e3
  return f"{ms:.0f}" if ms >= 100 else f"{ms:.2f}"


def _run_child(args, impl) -> dict:
  cmd = [sys.executable, os.path.abspath(__file__), "--child", impl]
  for flag in ("n", "d", "v", "dtype", "runs", "warmup", "block_tokens", "block_vocab",
               "block_hidden", "slab_vocab"):
    value = getattr(args, flag)
    if value is not None:
      cmd += [f"--{flag.replace('_', '-')}", str(value)]
  out = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if out.returncode != 0:
    print(out.stderr[-4000:], file=sys.stderr)
    lines = [x for x in out.stderr.strip().splitlines() if x.strip()]
    return {"impl": impl, "error": (lines[-1] if lines else f"exit {out.returncode}")[:200]}
  return json.loads(out.stdout.strip().splitlines()[-1])


def main():
  args = _parse()
  if args.child is None or args.n is None or args.dtype is None:
    import jax  # only to pick defaults for the backend

    accelerated = jax.default_backend() != "cpu"
    args.n = args.n or (8192 if accelerated else 2048)
    args.dtype = args.dtype or ("bfloat16" if accelerated else "float32")
  if args.child is not None:
    print(json.dumps(_child(args)))
    return
  import jax

  impls = [x for x in args.impls.split(",") if x]
  for name in ("pallas", "pallas-mosaic"):
    if name in impls and jax.default_backend() == "cpu":
      impls.remove(name)
      print(f"{name}: skipped on CPU (interpret mode only; run on GPU/TPU)\n", file=sys.stderr)
  from rljax.kernels import _mosaic_gpu

  if "pallas-mosaic" in impls and (
      jax.default_backend() == "tpu" or jax.numpy.dtype(args.dtype) not in _mosaic_gpu._DTYPES
  ):  # gpu_lowering is a GPU choice (the same as pallas on TPU); its kernels take bf16/fp16
    impls.remove("pallas-mosaic")
    print(f"pallas-mosaic: skipped ({jax.default_backend()}, {args.dtype})\n", file=sys.stderr)
  results = {}
  for impl in ["matmul", *impls]:
    print(f"running {impl} ...", file=sys.stderr, flush=True)
    results[impl] = _run_child(args, impl)
  if "error" in results["matmul"]:
    sys.exit(f"the matmul floor failed: {results['matmul']['error']}")
  if "error" in results.get("naive", {}):
    del results["naive"]  # the table is relative to naive only where naive ran
    impls.remove("naive")
    print("naive: failed (see above); no 'vs naive' columns", file=sys.stderr)
  floor = results["matmul"]["time_s"]
  naive = results.get("naive")
  mib = 2**20
  peak_kind = results["matmul"]["peak_kind"]
  lines = [
      f"Machine: {results['matmul']['machine']}",
      f"Shapes: N={args.n}, D={args.d}, V={args.v}, {args.dtype}; fwd+bwd of "
      f"sum(logp) + 0.01 sum(H) w.r.t. hidden and weight; median of {args.runs} runs after "
      f"{args.warmup} warm-up, each implementation in a fresh process.",
      "",
      f"| impl | blocks (tokens x vocab) | time (ms) | x naive | x matmul floor | "
      f"compiled temp (MiB) | temp vs naive | {peak_kind} (MiB) | {peak_kind} vs naive |",
      "|---|---|---|---|---|---|---|---|---|",
  ]
  for impl in ["matmul", *impls]:
    r = results[impl]
    if "error" in r:
      lines.append(f"| {impl} | failed: {r['error'].replace('|', '/')} |" + " - |" * 7)
      continue
    blocks = "-" if r["blocks"] is None else f"{r['blocks']['tokens']} x {r['blocks']['vocab']}"
    if impl.startswith("pallas"):
      blocks += f" (hidden {r['blocks']['hidden']}"
      if r.get("fwd_slab"):
        blocks += f", fwd slabs of {r['fwd_slab']}"
      blocks += f", bwd slabs of {r['slab']})" if r.get("slab") else ", in-kernel bwd)"
    rel = {
        key: "-" if naive is None else f"{r[key] / naive[key]:.1%}" for key in ("temp", "peak")
    }
    x_naive = "-" if naive is None else f"{r['time_s'] / naive['time_s']:.2f}x"
    name = "hidden @ weight (floor)" if impl == "matmul" else impl
    lines.append(
        f"| {name} | {blocks} | {_ms(r['time_s'])} | {x_naive} | "
        f"{r['time_s'] / floor:.2f}x | {r['temp'] / mib:.0f} | {rel['temp']} | "
        f"{r['peak'] / mib:.0f} | {rel['peak']} |"
    )
  if results["matmul"]["backend"] == "cpu":
    lines.append(
        f"\nPeak RSS includes the jax runtime and the inputs: "
        f"{results['matmul']['rss_inputs'] / mib:.0f} MiB after creating hidden and weight."
    )
  print("\n".join(lines))


if __name__ == "__main__":
  main()
