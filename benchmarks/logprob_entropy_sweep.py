"""Block-size sweep of the fused log-prob + entropy kernels, with a correctness check per config.

For each configuration
(``impl:tokens,vocab[,hidden[,num_warps[,splits[,slab_vocab[,fwd_slab_vocab]]]]]``, the fields
of ``BlockSizes``; empty = default; impl ``xla``, ``pallas`` or ``mosaic``, the last being
``pallas`` with ``gpu_lowering="mosaic_gpu"``) in one process:

* check: forward and ``jax.grad`` of ``sum(a * logp) + sum(b * H)`` against the reference at
  two shapes (N = 74, D = 904, V = 1000, T = 0.9; N = 300, D = 128, V = 50,257): in fp32 under
  ``jax.default_matmul_precision("highest")`` with tolerance 1e-5, or for ``mosaic`` (bf16/fp16
  kernels only) on bf16 inputs with the tests' bf16 tolerance 3e-2;
* time: forward only and forward + backward (``sum(logp) + 0.01 sum(H)`` w.r.t. hidden and
  weight) at the benchmark shapes, median of ``--runs`` after ``--warmup``, and XLA's compiled
  temporary memory of the forward + backward.

Rows print as they finish, so a time limit loses only the configurations not reached.

  python benchmarks/logprob_entropy_sweep.py pallas:64,256,64 pallas:64,256,64,4,,0 xla:2048,4096
  python benchmarks/logprob_entropy_sweep.py mosaic:64,256,64 mosaic:64,128,64
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

from _machine import describe

_FIELDS = "tokens,vocab[,hidden[,num_warps[,splits[,slab_vocab[,fwd_slab_vocab]]]]]"


def _parse():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("configs", nargs="+", help=f"impl:{_FIELDS}")
  p.add_argument("--n", type=int, default=8192, help="tokens of the timing shape")
  p.add_argument("--d", type=int, default=896, help="hidden size of the timing shape")
  p.add_argument("--v", type=int, default=151_936, help="vocabulary of the timing shape")
  p.add_argument("--dtype", default="bfloat16", help="dtype of the timing shape")
  p.add_argument("--runs", type=int, default=5, help="timed runs (median reported)")
  p.add_argument("--warmup", type=int, default=2, help="untimed runs after compilation")
  p.add_argument("--no-check", action="store_true", help="skip the correctness checks")
  return p.parse_args()


def _config(text: str):
  from rljax.kernels import BlockSizes

  try:
    impl, sizes = text.split(":")
    vals = [int(x) if x not in ("", "auto") else None for x in sizes.split(",")]
  except ValueError:
    sys.exit(f"config {text!r}: expected impl:{_FIELDS}")
  names = ("tokens", "vocab", "hidden", "num_warps", "splits", "slab_vocab", "fwd_slab_vocab")
  if impl not in ("xla", "pallas", "mosaic") or not 2 <= len(vals) <= len(names):
    sys.exit(f"config {text!r}: impl must be xla, pallas or mosaic with 2 to {len(names)} sizes")
  sizes = {k: v for k, v in zip(names, vals) if v is not None}
  if impl == "mosaic":
    return "pallas", BlockSizes(**sizes, gpu_lowering="mosaic_gpu")
  return impl, BlockSizes(**sizes)


def _outputs_and_grads(fn, h, w, y, a, b, temp, **kw):
  """``logp``, ``H`` and the gradients of ``sum(a logp) + sum(b H)`` as float64 arrays."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  def loss(h, w):
    logp, ent = fn(h, w, y, temperature=temp, **kw)
    return jnp.sum(a * logp) + jnp.sum(b * ent), (logp, ent)

  (_, aux), grads = jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True))(h, w)
  return [np.asarray(x, np.float64) for x in (*aux, *grads)]


def _check(impl, blocks) -> str:
  import jax
  import jax.numpy as jnp
  import numpy as np

  from rljax.kernels import (
    fused_linear_logprobs_and_entropy,
    fused_linear_logprobs_and_entropy_reference,
  )

  worst = 0.0
  # Mosaic GPU's kernels take bf16/fp16 only: checked in bf16 at the tests' bf16 tolerance.
  dtype, tol = jnp.float32, 1e-5
  if blocks.gpu_lowering == "mosaic_gpu":
    dtype, tol = jnp.bfloat16, 3e-2
  with jax.default_matmul_precision("highest"):
    for n, d, v, temp, seed in ((74, 904, 1000, 0.9, 4), (300, 128, 50_257, 1.0, 2)):
      k = jax.random.split(jax.random.key(seed), 5)
      h = jax.random.normal(k[0], (n, d), jnp.float32).astype(dtype)
      w = (jax.random.normal(k[1], (d, v), jnp.float32) / math.sqrt(d) * 2).astype(dtype)
      y = jax.random.randint(k[2], (n,), 0, v)
      a = jax.random.uniform(k[3], (n,), minval=-1.0, maxval=1.0)
      b = jax.random.uniform(k[4], (n,), minval=-1.0, maxval=1.0)

      got = _outputs_and_grads(fused_linear_logprobs_and_entropy, h, w, y, a, b, temp,
                               impl=impl, block_sizes=blocks)
      want = _outputs_and_grads(fused_linear_logprobs_and_entropy_reference, h, w, y, a, b, temp)
      for g, r in zip(got, want):
        if not np.all(np.isfinite(g)):
          return "FAIL (non-finite)"
        # assert_allclose(atol=tol, rtol=tol) <=> |g - r| <= tol (1 + |r|)
        worst = max(worst, float(np.max(np.abs(g - r) / (tol * (1.0 + np.abs(r))))))
  where = f"{jnp.dtype(dtype).name}, tol {tol:g}"
  if worst <= 1.0:
    return f"ok ({worst:.2f} of tol; {where})"
  return f"FAIL ({worst:.1f}x tol; {where})"


def _time(fn, args, runs, warmup):
  import jax

  compiled = jax.jit(fn).lower(*args).compile()
  for _ in range(warmup):
    jax.block_until_ready(compiled(*args))
  times = []
  for _ in range(runs):
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    times.append(time.perf_counter() - t0)
  return statistics.median(times), compiled.memory_analysis().temp_size_in_bytes


def main():
  args = _parse()
  import jax
  import jax.numpy as jnp
  from logprob_entropy import _pseudo_uniform

  from rljax.kernels import fused_linear_logprobs_and_entropy

  configs = [(c, *_config(c)) for c in args.configs]
  dtype = jnp.dtype(args.dtype)
  n, d, v = args.n, args.d, args.v
  hidden = jax.jit(_pseudo_uniform, static_argnums=(0, 1, 2))((n, d), 1.0, dtype)
  weight = jax.jit(_pseudo_uniform, static_argnums=(0, 1, 2))((d, v), d**-0.5, dtype)
  targets = jax.random.randint(jax.random.key(0), (n,), 0, v)
  floor, _ = _time(lambda h, w: jnp.dot(h, w, preferred_element_type=jnp.float32),
                   (hidden, weight), args.runs, args.warmup)
  print(f"Machine: {describe()}")
  print(f"Timing shape: N={n}, D={d}, V={v}, {args.dtype}; hidden @ weight floor "
        f"{floor * 1e3:.2f} ms; median of {args.runs} runs after {args.warmup} warm-up.\n")
  print("| config | check vs reference | fwd (ms) | fwd+bwd (ms) | x floor | temp (MiB) |")
  print("|---|---|---|---|---|---|", flush=True)
  for text, impl, blocks in configs:
    def loss(h, w, impl=impl, blocks=blocks):
      logp, ent = fused_linear_logprobs_and_entropy(h, w, targets, impl=impl,
                                                    block_sizes=blocks)
      return jnp.sum(logp) + 0.01 * jnp.sum(ent)

    try:
      check = "-" if args.no_check else _check(impl, blocks)
      fwd, _ = _time(loss, (hidden, weight), args.runs, args.warmup)
      both, temp = _time(jax.grad(loss, (0, 1)), (hidden, weight), args.runs, args.warmup)
    except Exception as e:  # a failing config is a row, not the end of the sweep
      msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:160].replace("|", "/")
      print(f"| {text} | failed: {msg} | - | - | - | - |", flush=True)
      continue
    print(f"| {text} | {check} | {fwd * 1e3:.1f} | {both * 1e3:.1f} | {both / floor:.1f}x | "
          f"{temp / 2**20:.0f} |", flush=True)


if __name__ == "__main__":
  main()
