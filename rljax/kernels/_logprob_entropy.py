"""Fused token log-prob + entropy over a large vocabulary: reference, chunked XLA, Pallas.

Every RL step needs, per response token, ``log p(y)`` and the full-vocabulary entropy ``H``.
Computing both from materialised logits costs ``[N, V]`` floats (5 GB in fp32 at N = 8192,
V = 151,936). The ``xla`` and ``pallas`` implementations stream over vocabulary tiles of
``l = h W / temperature`` keeping per row the running max ``m``, ``s = sum exp(l - m)`` and
the shifted sum ``t = sum exp(l - m) (l - m)``:

  lse = m + log s,   H = log s - t / s,   logp_y = l_y - lse.

The backward pass (``jax.custom_vjp``) saves only the per-row ``lse`` and ``E_p[l] = lse - H``
and recomputes the logit tiles; with ``p = exp(l - lse)``

  dl = g_logp (onehot_y - p) - g_H p (l - E_p[l]),   dz = dl / temperature,
  dh = dz W^T,   dW = h^T dz.

Layout of this file: :func:`logprobs_and_entropy_reference` (plain jnp, the oracle),
:class:`BlockSizes`, the chunked XLA implementation, the ``custom_vjp`` wrappers and the two
public entry points. The Pallas kernels live in :mod:`rljax.kernels._pallas`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import jax
import jax.numpy as jnp
from jax import lax

from rljax.kernels import _pallas

Impl = Literal["auto", "reference", "xla", "pallas"]
_IMPLS = ("auto", "reference", "xla", "pallas")
_GPU_LOWERINGS = ("triton", "mosaic_gpu")


# ----------------------------------------------------------------------------- reference


def logprobs_and_entropy_reference(
    logits: jax.Array, targets: jax.Array, *, temperature: float = 1.0
) -> tuple[jax.Array, jax.Array]:
  r"""Token log-prob and entropy from materialised logits, in plain jnp (the oracle).

  l = logits / temperature,  log p = log_softmax(l),
  logp_y = log p[y],  H = -sum_v p_v log p_v  (terms with p_v = 0, e.g. ``-inf`` logits, add 0).

  Args:
    logits: ``[..., V]`` logits, any float dtype (computed in fp32).
    targets: ``[...]`` integer token ids in ``[0, V)``.
    temperature: positive sampling temperature.

  Returns:
    ``(logp [...], entropy [...])`` in fp32, differentiable in ``logits`` by autodiff.
  """
  l = logits.astype(jnp.float32) / temperature  # [..., V]
  logp_all = jax.nn.log_softmax(l, axis=-1)
  p = jnp.exp(logp_all)
  safe_logp = jnp.where(p > 0, logp_all, 0.0)  # double-where: no 0 * -inf in value or grad
  entropy = -jnp.sum(p * safe_logp, axis=-1)
  logp = jnp.take_along_axis(logp_all, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
  return logp, entropy


def fused_linear_logprobs_and_entropy_reference(
    hidden: jax.Array, weight: jax.Array, targets: jax.Array, *, temperature: float = 1.0
) -> tuple[jax.Array, jax.Array]:
  """:func:`logprobs_and_entropy_reference` of ``hidden @ weight`` (materialises ``[..., V]``).

  Args:
    hidden: ``[..., D]`` final hidden states.
    weight: ``[D, V]`` unembedding (Flax kernel layout).
    targets: ``[...]`` integer token ids.
    temperature: positive sampling temperature.

  Returns:
    ``(logp [...], entropy [...])`` in fp32.
  """
  logits = jnp.einsum(
      "...d,dv->...v", hidden, weight, preferred_element_type=jnp.float32
  )  # [..., V]
  return logprobs_and_entropy_reference(logits, targets, temperature=temperature)


# ----------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True, kw_only=True)
class BlockSizes:
  """Tile sizes of the chunked implementations.

  ``xla`` uses ``tokens`` x ``vocab`` logit tiles (the hidden axis is not tiled). ``pallas``
  also tiles the hidden axis by ``hidden``; on GPU (Triton) all three must be powers of two
  (>= 16), on TPU ``tokens`` a multiple of 8 and ``vocab``/``hidden`` multiples of 128, on
  Mosaic GPU (``gpu_lowering="mosaic_gpu"``) ``vocab`` a multiple of 64 up to 256, fused
  ``tokens`` 64 or 128 (two compute warpgroups) and ``hidden`` a multiple of 64, from logits
  ``tokens`` a multiple of 64 with ``tokens * vocab <= 16384``.
  Memory of the chunked paths is O(N D + D V + tokens * vocab).
  """

  tokens: int = 2048  # rows of hidden per tile
  vocab: int = 2048  # vocabulary columns per tile
  hidden: int = 128  # hidden-size chunk of the in-kernel matmul (pallas only)
  # GPU (Triton) only: warps per program; None = 4 (8 took 108 ms against 86 ms at the default
  # tiles on an H200; benchmarks/results/logprob_entropy_h200.md).
  num_warps: int | None = None
  # GPU only: programs that share the vocabulary reduction of d hidden (each sums a contiguous
  # run of vocabulary tiles into its own [N, D] fp32 partial; the partials are added after).
  # None = enough for about 512 programs, so that N / tokens row blocks fill the GPU.
  splits: int | None = None
  # pallas only: vocabulary columns per d-logits slab of the GEMM backward (a Pallas kernel
  # writes d logits [N, slab_vocab], the matmul library reduces them into d hidden and d weight).
  # None = automatic (GPU: about 2^26 elements / N columns; TPU and interpret mode: 0);
  # 0 = the in-kernel reductions (and ``splits``).
  slab_vocab: int | None = None
  # pallas only: vocabulary columns per slab of the forward grid, whose per-tile statistics
  # ([V / vocab, N] x 4 fp32) are merged slab by slab into running ones. None = automatic
  # (one grid while those statistics stay under 256 MiB, e.g. 148 MiB at N = 8192 and
  # V = 151,936 with 128-column tiles; slabs beyond); 0 = always one grid.
  fwd_slab_vocab: int | None = None
  # pallas on GPU: "triton" (Pallas's Triton backend, the benchmarked default) or "mosaic_gpu"
  # (rljax.kernels._mosaic_gpu: wgmma kernels for Hopper on the fused-linear path, bf16/fp16
  # only; TMA-tiled ones from logits; the tile rules are in the docstring above). In CPU
  # interpret mode "mosaic_gpu" runs those kernels in Mosaic GPU's interpreter; TPU ignores it.
  gpu_lowering: str = "triton"

  def __post_init__(self):
    if self.gpu_lowering not in _GPU_LOWERINGS:
      raise ValueError(
          f"BlockSizes.gpu_lowering must be one of {_GPU_LOWERINGS}, got {self.gpu_lowering!r}"
      )
    optional = ("num_warps", "splits", "slab_vocab", "fwd_slab_vocab")
    for name in ("tokens", "vocab", "hidden", *optional):
      value = getattr(self, name)
      if value is None and name in optional:
        continue
      if name in ("slab_vocab", "fwd_slab_vocab") and value == 0 and not isinstance(value, bool):
        continue
      if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"BlockSizes.{name} must be a positive int, got {value!r}")


def default_block_sizes(impl: str, backend: str | None = None, dtype=None) -> BlockSizes:
  """Block sizes tuned per implementation, backend and (GPU Pallas) input dtype.

  ``dtype`` matters only for Pallas on GPU, where fp32 operands want smaller tiles than bf16.
  """
  backend = backend or jax.default_backend()
  gpu = backend in ("gpu", "cuda", "rocm")
  if impl == "xla":
    if gpu:
      # H200 sweep (bf16, D = 896, N = 8192; benchmarks/logprob_entropy_sweep.py): [8192 x
      # 2048] tiles (64 MiB fp32) keep cuBLAS busy, 22 ms against 59 ms for the CPU tiles.
      return BlockSizes(tokens=8192, vocab=2048)
    # Tuned on 2 CPU cores at D = 896 (benchmarks/logprob_entropy.py): [512 x 2048] fp32
    # tiles (4 MiB) keep the elementwise passes in cache and the matmuls near the floor.
    return BlockSizes(tokens=512, vocab=2048)
  if backend == "tpu":
    return BlockSizes(tokens=256, vocab=512, hidden=256)
  if gpu:
    # H100 sweep (bf16, D = 896, N = 8192), each configuration checked against the reference
    # first, with the d-logits-slab backward (slab_vocab=None): 64 x 256 x 64 with 4 warps took
    # 20.4 ms (101.4 ms with the in-kernel reductions, slab_vocab=0), 128 x 128 x 64 with 8
    # warps 21.8 ms, 64 x 512 x 64 with 8 warps 22.7 ms, 32 x 256 x 64 28.5 ms, 128 x 256 x 64
    # 76.8 ms; slabs of 16,384 columns 20.5 ms (benchmarks/results/logprob_entropy_h100.md).
    if dtype is not None and jnp.dtype(dtype).itemsize >= 4:
      # fp32 sweep on an H200 (N = 2048, D = 896, V = 151,936): 32 x 128 x 64 took 15.3 ms,
      # 32 x 128 x 32 15.6 ms, 32 x 64 x 64 17.8 ms, 16 x 128 x 64 20.7 ms, 64 x 256 x 64 (the
      # bf16 tiles) 38.4 ms: fp32 tiles of twice the bytes spill at the bf16 sizes.
      return BlockSizes(tokens=32, vocab=128, hidden=64)
    return BlockSizes(tokens=64, vocab=256, hidden=64)
  return BlockSizes(tokens=16, vocab=128, hidden=32)  # interpret mode: few, small tiles


# ----------------------------------------------------------------------------- chunked XLA

_NEG_BIG = float(jnp.finfo(jnp.float32).min)  # finite init of the running max


def _tile_update(stats, l):
  """Merge one ``[n, v]`` fp32 logit tile into the running ``(m, s, t)`` per row."""
  m, s, t = stats  # [n] each
  m_new = jnp.maximum(m, jnp.max(l, axis=-1))  # finite: m starts at the fp32 minimum
  d = l - m_new[:, None]  # [n, v], -inf for masked logits
  e = jnp.exp(d)
  scale = jnp.exp(m - m_new)
  shift = m - m_new
  s_new = s * scale + jnp.sum(e, axis=-1)
  t_new = scale * (t + s * shift) + jnp.sum(jnp.where(e > 0, e * d, 0.0), axis=-1)
  return m_new, s_new, t_new


def _finalize(m, s, t, l_y):
  """``(logp, H, lse, E_p[l])`` from the streamed statistics."""
  log_s = jnp.log(s)
  lse = m + log_s
  entropy = jnp.maximum(log_s - t / s, 0.0)
  return l_y - lse, entropy, lse, lse - entropy


def _tile_dz(l, lse, mean_l, g_logp, g_ent, inv_temp):
  """``d loss / d z`` of a tile without the one-hot term: ``-p (g_logp + g_H (l - E_p[l])) / T``."""
  p = jnp.exp(l - lse[:, None])  # [n, v]
  centered = jnp.where(p > 0, l - mean_l[:, None], 0.0)
  return -p * (g_logp[:, None] + g_ent[:, None] * centered) * inv_temp


def _vocab_tiles(vocab: int, tile: int):
  """``(num_full_tiles, tile, tail)`` with ``tail = vocab - num_full_tiles * tile``."""
  tile = min(tile, vocab)
  return vocab // tile, tile, vocab % tile


def _token_chunks(n: int, tokens: int) -> tuple[int, int]:
  """``(chunk, num_chunks)``: the fewest chunks of at most ``tokens`` rows, balanced so that
  padding stays under 8 rows per chunk (N = 8200 with 8192-row tiles: 2 x 4104, not 2 x 8192)."""
  num = -(-n // min(tokens, n))
  if num == 1:
    return n, 1
  per = -(-n // num)  # balanced rows per chunk
  chunk = min(-(-per // 8) * 8, tokens)  # rounded up to 8, never above the tile
  return chunk, -(-n // chunk)


def _pad_rows(x, rows):
  pad = rows - x.shape[0]
  if pad == 0:
    return x
  return jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))


def _xla_linear_fwd(hidden, weight, targets, temperature, blocks):
  """Streamed ``(logp, H, lse, E_p[l])`` of ``hidden @ weight``; hidden ``[N, D]``."""
  n, d = hidden.shape
  vocab = weight.shape[1]
  inv_temp = 1.0 / temperature
  tn, n_chunks = _token_chunks(n, blocks.tokens)
  hidden_p = _pad_rows(hidden, n_chunks * tn).reshape(n_chunks, tn, d)
  num_full, tv, tail = _vocab_tiles(vocab, blocks.vocab)

  def logits_tile(h_c, w_t):
    return jnp.dot(h_c, w_t, preferred_element_type=jnp.float32) * inv_temp

  def chunk(h_c):  # [tn, D] -> stats [tn] x 3
    stats = (jnp.full((tn,), _NEG_BIG), jnp.zeros((tn,)), jnp.zeros((tn,)))

    def body(j, stats):
      w_t = lax.dynamic_slice_in_dim(weight, j * tv, tv, axis=1)  # [D, tv]
      return _tile_update(stats, logits_tile(h_c, w_t))

    stats = lax.fori_loop(0, num_full, body, stats)
    if tail:
      stats = _tile_update(stats, logits_tile(h_c, weight[:, num_full * tv :]))
    return stats

  m, s, t = (x.reshape(-1)[:n] for x in lax.map(chunk, hidden_p))
  # Target logit: l_y = h . W[:, y] / T, an [N, D] gather instead of a one-hot over V.
  w_y = jnp.take(weight, targets, axis=1).T  # [N, D]
  l_y = jnp.einsum("nd,nd->n", hidden, w_y, preferred_element_type=jnp.float32) * inv_temp
  return _finalize(m, s, t, l_y)


def _xla_linear_bwd(hidden, weight, targets, lse, mean_l, g_logp, g_ent, temperature, blocks):
  """``(d hidden, d weight)`` recomputing logit tiles; all per-row inputs ``[N]``."""
  n, d = hidden.shape
  vocab = weight.shape[1]
  inv_temp = 1.0 / temperature
  tn, n_chunks = _token_chunks(n, blocks.tokens)
  n_pad = n_chunks * tn
  # Padded rows carry zero cotangents, so they contribute exactly nothing.
  hidden_p = _pad_rows(hidden, n_pad)
  rows = [_pad_rows(x, n_pad) for x in (lse, mean_l, g_logp, g_ent)]
  num_full, tv, tail = _vocab_tiles(vocab, blocks.vocab)
  dtype = weight.dtype

  def vocab_tile(w_t, dh):  # w_t [D, v] -> (dW_t [D, v] fp32, dh [N_pad, D] fp32)
    v = w_t.shape[1]

    def token_chunk(i, carry):
      dw_t, dh = carry
      h_c = lax.dynamic_slice_in_dim(hidden_p, i * tn, tn, axis=0)  # [tn, D]
      lse_c, mean_c, gl_c, ge_c = (lax.dynamic_slice_in_dim(x, i * tn, tn) for x in rows)
      l = jnp.dot(h_c, w_t, preferred_element_type=jnp.float32) * inv_temp  # [tn, v]
      dz = _tile_dz(l, lse_c, mean_c, gl_c, ge_c, inv_temp).astype(dtype)
      dh_c = lax.dynamic_slice_in_dim(dh, i * tn, tn, axis=0)
      dh_c = dh_c + jnp.dot(dz, w_t.T, preferred_element_type=jnp.float32)
      dh = lax.dynamic_update_slice_in_dim(dh, dh_c, i * tn, axis=0)
      dw_t = dw_t + jnp.dot(h_c.T, dz, preferred_element_type=jnp.float32)
      return dw_t, dh

    return lax.fori_loop(0, n_chunks, token_chunk, (jnp.zeros((d, v), jnp.float32), dh))

  def body(j, carry):
    dw, dh = carry
    w_t = lax.dynamic_slice_in_dim(weight, j * tv, tv, axis=1)
    dw_t, dh = vocab_tile(w_t, dh)
    return lax.dynamic_update_slice_in_dim(dw, dw_t.astype(dw.dtype), j * tv, axis=1), dh

  carry = (jnp.zeros((d, vocab), jnp.float32), jnp.zeros((n_pad, d), jnp.float32))
  dw, dh = lax.fori_loop(0, num_full, body, carry)
  if tail:
    dw_t, dh = vocab_tile(weight[:, num_full * tv :], dh)
    dw = dw.at[:, num_full * tv :].set(dw_t)
  # One-hot term g_logp * onehot_y / T: an [N, D] gather and scatter-add, no [N, V].
  coef = (g_logp * inv_temp)[:, None]  # [N, 1]
  w_y = jnp.take(weight, targets, axis=1).T.astype(jnp.float32)  # [N, D]
  dh = dh[:n] + coef * w_y
  dw = dw.at[:, targets].add((coef * hidden.astype(jnp.float32)).T)
  return dh.astype(hidden.dtype), dw.astype(weight.dtype)


def _xla_logits_fwd(logits, targets, temperature, blocks):
  """Streamed ``(logp, H, lse, E_p[l])`` from ``[N, V]`` logits, tiled over the vocabulary."""
  n, vocab = logits.shape
  inv_temp = 1.0 / temperature
  num_full, tv, tail = _vocab_tiles(vocab, blocks.vocab)
  stats = (jnp.full((n,), _NEG_BIG), jnp.zeros((n,)), jnp.zeros((n,)))

  def tile(x):
    return x.astype(jnp.float32) * inv_temp

  def body(j, stats):
    return _tile_update(stats, tile(lax.dynamic_slice_in_dim(logits, j * tv, tv, axis=1)))

  stats = lax.fori_loop(0, num_full, body, stats)
  if tail:
    stats = _tile_update(stats, tile(logits[:, num_full * tv :]))
  l_y = tile(jnp.take_along_axis(logits, targets[:, None], axis=1)[:, 0])
  return _finalize(*stats, l_y)


def _xla_logits_bwd(logits, targets, lse, mean_l, g_logp, g_ent, temperature, blocks):
  """``d logits`` tile by tile (the gradient itself is ``[N, V]``; no other ``[N, V]`` temp)."""
  n, vocab = logits.shape
  inv_temp = 1.0 / temperature
  num_full, tv, tail = _vocab_tiles(vocab, blocks.vocab)

  def tile_grad(x):
    l = x.astype(jnp.float32) * inv_temp
    return _tile_dz(l, lse, mean_l, g_logp, g_ent, inv_temp).astype(logits.dtype)

  def body(j, dlogits):
    x = lax.dynamic_slice_in_dim(logits, j * tv, tv, axis=1)
    return lax.dynamic_update_slice_in_dim(dlogits, tile_grad(x), j * tv, axis=1)

  dlogits = lax.fori_loop(0, num_full, body, jnp.zeros_like(logits))
  if tail:
    dlogits = dlogits.at[:, num_full * tv :].set(tile_grad(logits[:, num_full * tv :]))
  rows = jnp.arange(n)
  return dlogits.at[rows, targets].add((g_logp * inv_temp).astype(logits.dtype))


# ----------------------------------------------------------------------------- custom_vjp


@dataclasses.dataclass(frozen=True)
class _Plan:
  """Static choices of one call (hashable: a ``custom_vjp`` non-differentiable argument)."""

  impl: str  # "xla" or "pallas"
  temperature: float
  blocks: BlockSizes
  interpret: bool = False
  style: str = "grid"  # pallas reductions: "grid" (TPU, interpret) or "loop" (GPU)
  platform: str = "cpu"


def _linear_fwd_stats(plan, hidden, weight, targets):
  if plan.impl == "xla":
    return _xla_linear_fwd(hidden, weight, targets, plan.temperature, plan.blocks)
  return _pallas.linear_fwd(
      hidden, weight, targets, temperature=plan.temperature, blocks=plan.blocks,
      interpret=plan.interpret, platform=plan.platform, style=plan.style,
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _linear(plan, hidden, weight, targets):
  logp, entropy, _, _ = _linear_fwd_stats(plan, hidden, weight, targets)
  return logp, entropy


def _linear_vjp_fwd(plan, hidden, weight, targets):
  logp, entropy, lse, mean_l = _linear_fwd_stats(plan, hidden, weight, targets)
  return (logp, entropy), (hidden, weight, targets, lse, mean_l)


def _linear_vjp_bwd(plan, residuals, cotangents):
  hidden, weight, targets, lse, mean_l = residuals
  g_logp, g_ent = (g.astype(jnp.float32) for g in cotangents)
  if plan.impl == "xla":
    dh, dw = _xla_linear_bwd(
        hidden, weight, targets, lse, mean_l, g_logp, g_ent, plan.temperature, plan.blocks
    )
  elif cols := _pallas.slab_columns(plan.blocks, hidden.shape[0], weight.shape[1], plan.platform):
    dh, dw = _pallas.linear_bwd_gemm(
        hidden, weight, targets, lse, mean_l, g_logp, g_ent, temperature=plan.temperature,
        blocks=plan.blocks, interpret=plan.interpret, style=plan.style, platform=plan.platform,
        cols=cols,
    )
  else:
    dh, dw = _pallas.linear_bwd(
        hidden, weight, targets, lse, mean_l, g_logp, g_ent, temperature=plan.temperature,
        blocks=plan.blocks, interpret=plan.interpret, style=plan.style, platform=plan.platform,
    )
  return dh, dw, None


_linear.defvjp(_linear_vjp_fwd, _linear_vjp_bwd)


def _logits_fwd_stats(plan, logits, targets):
  if plan.impl == "xla":
    return _xla_logits_fwd(logits, targets, plan.temperature, plan.blocks)
  return _pallas.logits_fwd(
      logits, targets, temperature=plan.temperature, blocks=plan.blocks,
      interpret=plan.interpret, platform=plan.platform,
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _from_logits(plan, logits, targets):
  logp, entropy, _, _ = _logits_fwd_stats(plan, logits, targets)
  return logp, entropy


def _from_logits_vjp_fwd(plan, logits, targets):
  logp, entropy, lse, mean_l = _logits_fwd_stats(plan, logits, targets)
  return (logp, entropy), (logits, targets, lse, mean_l)


def _from_logits_vjp_bwd(plan, residuals, cotangents):
  logits, targets, lse, mean_l = residuals
  g_logp, g_ent = (g.astype(jnp.float32) for g in cotangents)
  if plan.impl == "xla":
    dlogits = _xla_logits_bwd(
        logits, targets, lse, mean_l, g_logp, g_ent, plan.temperature, plan.blocks
    )
  else:
    dlogits = _pallas.logits_bwd(
        logits, targets, lse, mean_l, g_logp, g_ent, temperature=plan.temperature,
        blocks=plan.blocks, interpret=plan.interpret, platform=plan.platform,
    )
  return dlogits, None


_from_logits.defvjp(_from_logits_vjp_fwd, _from_logits_vjp_bwd)


# ----------------------------------------------------------------------------- public API


def _check_common(targets, temperature, impl, batch_shape, batch_name):
  if impl not in _IMPLS:
    raise ValueError(f"impl must be one of {_IMPLS}, got {impl!r}")
  if isinstance(temperature, jax.Array) or not temperature > 0:
    raise ValueError(f"temperature must be a positive Python float, got {temperature!r}")
  if not jnp.issubdtype(targets.dtype, jnp.integer):
    raise ValueError(f"targets must have an integer dtype, got {targets.dtype}")
  if tuple(targets.shape) != tuple(batch_shape):
    raise ValueError(
        f"targets shape {targets.shape} must equal the leading dims {tuple(batch_shape)} of "
        f"{batch_name}"
    )


def _plan(impl, temperature, block_sizes, dtype=None) -> _Plan:
  backend = jax.default_backend()
  accelerated = backend in ("gpu", "cuda", "rocm", "tpu")
  if impl == "auto":
    impl = "pallas" if accelerated else "xla"
  if block_sizes is None:
    block_sizes = default_block_sizes(impl, backend, dtype)
  if not isinstance(block_sizes, BlockSizes):
    raise ValueError(f"block_sizes must be a BlockSizes or None, got {type(block_sizes)}")
  platform = backend if accelerated else "cpu"
  if platform in ("cuda", "rocm"):
    platform = "gpu"
  return _Plan(
      impl=impl, temperature=float(temperature), blocks=block_sizes,
      interpret=not accelerated, style="loop" if platform == "gpu" else "grid",
      platform=platform,
  )


def token_logprobs_and_entropy(
    logits: jax.Array,
    targets: jax.Array,
    *,
    temperature: float = 1.0,
    impl: Impl = "auto",
    block_sizes: BlockSizes | None = None,
) -> tuple[jax.Array, jax.Array]:
  r"""Per-token log-prob of the target and full-vocabulary entropy from logits.

  l = logits / temperature,  logp_y = l_y - logsumexp(l),  H = logsumexp(l) - E_p[l].
  Streams over vocabulary tiles (running max / sum / shifted sum, see the module docstring);
  ``-inf`` logits (masked vocabulary entries) get probability 0 and add nothing.

  Args:
    logits: ``[..., V]`` logits (fp32 or bf16; accumulated in fp32). Each row needs at least
      one finite entry.
    targets: ``[...]`` integer token ids in ``[0, V)``.
    temperature: positive sampling temperature (a Python float).
    impl: ``"reference"``, ``"xla"``, ``"pallas"`` or ``"auto"`` (pallas on GPU/TPU, xla
      on CPU).
    block_sizes: tile sizes (``hidden`` unused); ``None`` picks :func:`default_block_sizes`.

  Returns:
    ``(logp [...], entropy [...])`` in fp32, both differentiable in ``logits``.

  See PAPERS.md, "Fused log-prob + entropy over a large vocabulary".
  """
  if logits.ndim < 1:
    raise ValueError(f"logits must have rank >= 1 ([..., V]), got shape {logits.shape}")
  if not jnp.issubdtype(logits.dtype, jnp.floating):
    raise ValueError(f"logits must have a float dtype, got {logits.dtype}")
  _check_common(targets, temperature, impl, logits.shape[:-1], "logits")
  if impl == "reference":
    return logprobs_and_entropy_reference(logits, targets, temperature=temperature)
  plan = _plan(impl, temperature, block_sizes, logits.dtype)
  batch_shape, vocab = logits.shape[:-1], logits.shape[-1]
  logits_NV = logits.reshape(-1, vocab)
  targets_N = targets.reshape(-1).astype(jnp.int32)
  logp, entropy = _from_logits(plan, logits_NV, targets_N)
  return logp.reshape(batch_shape), entropy.reshape(batch_shape)


def fused_linear_logprobs_and_entropy(
    hidden: jax.Array,
    weight: jax.Array,
    targets: jax.Array,
    *,
    temperature: float = 1.0,
    impl: Impl = "auto",
    block_sizes: BlockSizes | None = None,
) -> tuple[jax.Array, jax.Array]:
  r"""Log-prob and entropy of ``hidden @ weight`` without materialising ``[N, V]`` logits.

  l = h W / temperature,  logp_y = l_y - logsumexp(l),  H = logsumexp(l) - E_p[l].
  Forward streams over ``BlockSizes.tokens x BlockSizes.vocab`` logit tiles; the backward
  (``jax.custom_vjp``) keeps only ``lse`` and ``E_p[l]`` per row and recomputes the tiles:
  ``dz = (g_logp (onehot_y - p) - g_H p (l - E_p[l])) / T``, ``dh = dz W^T``, ``dW = h^T dz``.
  Memory O(N D + D V + tokens * vocab); the GPU Pallas backward adds one ``[N, slab_vocab]``
  d-logits slab (automatic: about 2^26 elements, 128 MiB in bf16) and the forward's per-tile
  row statistics (``16 N V / vocab`` bytes, run in vocabulary slabs beyond 256 MiB:
  ``BlockSizes.fwd_slab_vocab``). V need not be a multiple of the tile.

  Args:
    hidden: ``[..., D]`` final hidden states (fp32 or bf16; matmuls accumulate in fp32).
    weight: ``[D, V]`` unembedding in Flax kernel layout, same dtype as ``hidden``.
    targets: ``[...]`` integer token ids in ``[0, V)``.
    temperature: positive sampling temperature (a Python float).
    impl: ``"reference"``, ``"xla"``, ``"pallas"`` or ``"auto"`` (pallas on GPU/TPU, xla
      on CPU).
    block_sizes: tile sizes; ``None`` picks :func:`default_block_sizes` for the backend.

  Returns:
    ``(logp [...], entropy [...])`` in fp32, differentiable in ``hidden`` and ``weight``.

  See PAPERS.md, "Fused log-prob + entropy over a large vocabulary" (Cut Cross-Entropy,
  Wijmans et al., 2024, for the fused-linear idea).
  """
  if hidden.ndim < 1:
    raise ValueError(f"hidden must have rank >= 1 ([..., D]), got shape {hidden.shape}")
  if weight.ndim != 2:
    raise ValueError(f"weight must have shape [D, V], got shape {weight.shape}")
  if hidden.shape[-1] != weight.shape[0]:
    raise ValueError(
        f"hidden's last dim {hidden.shape[-1]} (D) must equal weight.shape[0] "
        f"{weight.shape[0]}; weight is [D, V] (Flax kernel layout), got {weight.shape}"
    )
  for name, x in (("hidden", hidden), ("weight", weight)):
    if not jnp.issubdtype(x.dtype, jnp.floating):
      raise ValueError(f"{name} must have a float dtype, got {x.dtype}")
  if hidden.dtype != weight.dtype:
    raise ValueError(f"hidden dtype {hidden.dtype} must equal weight dtype {weight.dtype}")
  _check_common(targets, temperature, impl, hidden.shape[:-1], "hidden")
  if impl == "reference":
    return fused_linear_logprobs_and_entropy_reference(
        hidden, weight, targets, temperature=temperature
    )
  plan = _plan(impl, temperature, block_sizes, hidden.dtype)
  batch_shape, d = hidden.shape[:-1], hidden.shape[-1]
  hidden_ND = hidden.reshape(-1, d)
  targets_N = targets.reshape(-1).astype(jnp.int32)
  logp, entropy = _linear(plan, hidden_ND, weight, targets_N)
  return logp.reshape(batch_shape), entropy.reshape(batch_shape)
