"""Benchmark: delta rule, chunkwise WY/UT form vs the recurrent ``lax.scan`` (forward + backward).

Times ``jax.grad`` of ``sum(o * w) + sum(S_T)`` w.r.t. q, k, v, beta (and g, initial state) for
:func:`rljax.models._delta_rule.delta_rule_recurrent` (token-by-token scan, the reference) and
:func:`rljax.models._delta_rule.delta_rule_chunkwise` (chunk 64) at T = 2048, 4 heads of 64,
for DeltaNet (``g = None``) and Gated DeltaNet. Wall time = median of ``--runs`` after compiling
and ``--warmup`` untimed runs; also checks that both forms give the same outputs and gradients.
Prints one markdown table with the machine.

  python benchmarks/delta_rule.py                     # B = 1, T = 2048, H = 4, D = 64
  python benchmarks/delta_rule.py --batch 2 --runs 7
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from _machine import describe

from rljax.models._delta_rule import delta_rule_chunkwise, delta_rule_recurrent


def _parse():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--batch", type=int, default=1, help="B")
  p.add_argument("--t", type=int, default=2048, help="T, sequence length")
  p.add_argument("--heads", type=int, default=4, help="H")
  p.add_argument("--head-dim", type=int, default=64, help="Dk = Dv")
  p.add_argument("--chunk", type=int, default=64, help="chunk size of the chunkwise form")
  p.add_argument("--runs", type=int, default=5, help="timed runs (median reported)")
  p.add_argument("--warmup", type=int, default=1, help="untimed runs after compilation")
  return p.parse_args()


def _inputs(b, t, h, d, seed=0):
  rng = np.random.default_rng(seed)
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  k = rng.normal(size=(b, t, h, d))
  k /= np.linalg.norm(k, axis=-1, keepdims=True)
  return dict(
      q=f32(rng.normal(size=(b, t, h, d))),
      k=f32(k),
      v=f32(rng.normal(size=(b, t, h, d))),
      beta=f32(1 / (1 + np.exp(-rng.normal(size=(b, t, h))))),
      g=f32(-np.log1p(np.exp(rng.normal(size=(b, t, h)) - 3.0))),
      s0=f32(0.1 * rng.normal(size=(b, h, d, d))),
      w=f32(rng.normal(size=(b, t, h, d))),
  )


def _grad_fn(form, gated):
  def loss(q, k, v, beta, g, s0, w):
    o, s = form(q, k, v, beta, g if gated else None, s0)
    return jnp.sum(o * w) + jnp.sum(s)

  return jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3, 4, 5) if gated else (0, 1, 2, 3, 5)))


def _time(fn, args, runs, warmup):
  t0 = time.perf_counter()
  out = jax.block_until_ready(fn(*args))
  compile_s = time.perf_counter() - t0
  for _ in range(warmup):
    jax.block_until_ready(fn(*args))
  times = []
  for _ in range(runs):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return out, statistics.median(times), compile_s


def main():
  a = _parse()
  x = _inputs(a.batch, a.t, a.heads, a.head_dim)
  args = (x["q"], x["k"], x["v"], x["beta"], x["g"], x["s0"], x["w"])
  chunk = functools.partial(delta_rule_chunkwise, chunk_size=a.chunk)
  rows = []
  for gated in (False, True):
    g_rec, t_rec, c_rec = _time(_grad_fn(delta_rule_recurrent, gated), args, a.runs, a.warmup)
    g_chk, t_chk, c_chk = _time(_grad_fn(chunk, gated), args, a.runs, a.warmup)
    err = max(
        float(jnp.max(jnp.abs(u - r)) / (jnp.max(jnp.abs(r)) + 1e-30))
        for u, r in zip(g_chk, g_rec)
    )
    name = "Gated DeltaNet" if gated else "DeltaNet"
    rows.append((name, t_rec, t_chk, t_rec / t_chk, err, c_rec, c_chk))

  print(f"\nDelta rule forward + backward, B={a.batch}, T={a.t}, H={a.heads}, Dk=Dv={a.head_dim}, "
        f"chunk={a.chunk}, fp32; median of {a.runs} runs after {a.warmup} warm-up")
  print(f"Machine: {describe()}\n")
  print("| rule | recurrent (ms) | chunkwise (ms) | speed-up | max rel. grad diff "
        "| compile rec / chunk (s) |")
  print("|---|---:|---:|---:|---:|---:|")
  for name, t_rec, t_chk, ratio, err, c_rec, c_chk in rows:
    print(f"| {name} | {1e3 * t_rec:.1f} | {1e3 * t_chk:.1f} | {ratio:.1f}x | {err:.1e} "
          f"| {c_rec:.1f} / {c_chk:.1f} |")


if __name__ == "__main__":
  main()
