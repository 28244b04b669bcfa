"""Pallas kernels for fused log-prob + entropy: GPU (Triton), TPU (Mosaic), CPU (interpret).

Five kernels, all over ``[tokens x vocab]`` logit tiles ``l = h W / T`` (the hidden axis is
chunked by ``BlockSizes.hidden`` inside the kernel: a static unrolled loop in ``"grid"`` style,
which Mosaic needs, and a ``fori_loop`` in ``"loop"`` style, which keeps Triton's shared memory
to one chunk's operands):

* ``_stats_kernel`` (forward, grid ``(N/tn, V/tv)``, fully parallel): per tile the partial
  row max ``m``, ``s = sum exp(l - m)``, ``t = sum exp(l - m)(l - m)`` and the target logit if
  the target falls in the tile. The ``V/tv`` partials are merged associatively in jnp
  (``O(N V / tv)`` floats), so no grid axis accumulates and the kernel is race-free on GPU.
  Where those partials would pass 256 MiB (:func:`fwd_slab_columns`), the grid runs once per
  vocabulary slab and each slab's merge folds into running per-row statistics.
* ``_dh_kernel`` (``dh = dz W^T``, reduction over vocabulary tiles) and ``_dw_kernel``
  (``dW = h^T dz``, reduction over token tiles) recompute the logit tile and ``dz``. The
  reduction runs either over the last grid axis into a resident output block (``style="grid"``:
  TPU, whose grid runs sequentially, and interpret mode) or as an in-kernel loop
  (``style="loop"``: GPU/Triton, whose grid programs run concurrently). In the loop style the
  vocabulary reduction of ``dh`` is split over ``BlockSizes.splits`` programs per row block
  (``[splits, N, D]`` fp32 partials, summed in jnp), so that ``N / tokens`` row blocks still
  give the GPU ~512 programs: 118 -> 99 ms on an H200 at N = 8192, V = 151,936.
* ``_dz_slab_kernel`` (the GPU default backward, :func:`linear_bwd_gemm`): for each slab of
  ``slab_columns`` vocabulary columns a fully parallel kernel recomputes the logit tiles and
  writes ``dz [N, slab]``; the two reductions go to the matmul library (cuBLAS), whose
  accumulators live in registers. On an H100 (bf16, N = 8192, V = 151,936) the backward went
  from 96 ms (``_dh_kernel`` + ``_dw_kernel``) to 15 ms, fwd+bwd 101 -> 20 ms
  (benchmarks/results/logprob_entropy_h100.md).
* ``_dlogits_kernel``: ``d logits`` tile by tile for :func:`token_logprobs_and_entropy`.

Inputs are zero-padded to whole tiles in the wrapper (Triton loads must be in bounds and of
power-of-two size); padded vocabulary columns are masked to ``-inf`` before any reduction, so
they add nothing to ``s`` (no zero logits leak into the lse) and ``0 * -inf`` never happens
(``where`` before the product). Padded rows carry zero cotangents.

The GPU path passes ``triton.CompilerParams`` explicitly: jax 0.10 lowers a plain
``pl.pallas_call`` on GPU to Mosaic GPU by default (``jax_pallas_use_mosaic_gpu``), which needs
a different kernel style: ``BlockSizes(gpu_lowering="mosaic_gpu")`` swaps the forward, the
d-logits slab and the two from-logits kernels for those of :mod:`rljax.kernels._mosaic_gpu`
(wgmma, TMA pipelines) and keeps the drivers here (padding, slabs, merges, GEMM reductions).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from rljax.kernels import _mosaic_gpu

_NEG_BIG = float(jnp.finfo(jnp.float32).min)


_GPU_TARGET_PROGRAMS = 512  # d hidden: vocabulary splits give about this many programs


def _num_warps(blocks) -> int:
  return 4 if blocks.num_warps is None else blocks.num_warps


def _compiler_params(platform: str, semantics: tuple[str, ...], num_warps: int = 4):
  if platform == "gpu":
    from jax.experimental.pallas import triton as pltriton

    return pltriton.CompilerParams(num_warps=num_warps, num_stages=2)
  if platform == "tpu":
    from jax.experimental.pallas import tpu as pltpu

    return pltpu.CompilerParams(dimension_semantics=semantics)
  return None


def _round_up(x: int, m: int) -> int:
  return -(-x // m) * m


def _pad2(x, rows, cols):
  pr, pc = rows - x.shape[0], cols - x.shape[1]
  if pr == 0 and pc == 0:
    return x
  return jnp.pad(x, [(0, pr), (0, pc)])


def uses_mosaic_gpu(blocks, platform: str) -> bool:
  """Whether the Pallas kernels run on Mosaic GPU (compiled on GPU, interpreted on CPU)."""
  return blocks.gpu_lowering == "mosaic_gpu" and platform in ("gpu", "cpu")


def _check_blocks(blocks, platform, dtype, fused=True):
  if uses_mosaic_gpu(blocks, platform):
    _mosaic_gpu.check(blocks, dtype, fused=fused)
    if platform == "gpu" and jax.default_backend() in ("gpu", "cuda"):
      _mosaic_gpu.check_device(fused=fused)  # not when exporting for cuda from elsewhere
    return
  if platform == "gpu":
    for name in ("tokens", "vocab", "hidden"):
      v = getattr(blocks, name)
      if v < 16 or v & (v - 1):
        raise ValueError(
            f"BlockSizes.{name} must be a power of two >= 16 for the Triton GPU kernel, got {v}"
        )
  if platform == "tpu":
    if blocks.tokens % 8:
      raise ValueError(f"BlockSizes.tokens must be a multiple of 8 on TPU, got {blocks.tokens}")
    for name in ("vocab", "hidden"):
      if getattr(blocks, name) % 128:
        raise ValueError(
            f"BlockSizes.{name} must be a multiple of 128 on TPU, got {getattr(blocks, name)}"
        )


# ----------------------------------------------------------------------------- tile math


def _dot(a, b, contract):
  """fp32-accumulating 2-D matmul.

  The precision of fp32 operands follows ``jax.default_matmul_precision``, like ``jnp.dot``:
  on GPU the default is TF32 and ``"highest"`` gives IEEE fp32 dots (several times slower).
  """
  return lax.dot_general(a, b, (contract, ((), ())), preferred_element_type=jnp.float32)


def _hidden_chunks(nd, bd, unroll, body, init):
  """``body(offset, carry)`` over the ``nd`` hidden chunks of width ``bd``.

  ``unroll``: a static Python loop (Mosaic/TPU wants static lane offsets). Otherwise a
  ``fori_loop`` with dynamic, ``bd``-aligned offsets: Triton keeps the operands of every
  unrolled dot in shared memory at once (D = 896 needs > 1 MiB, far past the 227 KiB of an
  H100/H200), whereas a loop needs one chunk's (two with pipelining).
  """
  if unroll:
    carry = init
    for k in range(nd):
      carry = body(k * bd, carry)
    return carry
  return lax.fori_loop(0, nd, lambda k, c: body(pl.multiple_of(k * bd, bd), c), init)


def _logits_tile(h_ref, w_ref, rows, cols, shape, *, nd, bd, inv_temp, unroll):
  """``[tn, tv]`` fp32 logits ``h[rows] @ w[:, cols] / T``, hidden axis in ``nd`` chunks."""

  def body(off, acc):
    h = h_ref[rows, pl.ds(off, bd)]
    w = w_ref[pl.ds(off, bd), cols]
    return acc + _dot(h, w, ((1,), (0,)))

  acc = _hidden_chunks(nd, bd, unroll, body, jnp.zeros(shape, jnp.float32))
  return acc * inv_temp


def _mask_cols(l, col0, vocab):
  cols = col0 + lax.broadcasted_iota(jnp.int32, l.shape, 1)
  return jnp.where(cols < vocab, l, -jnp.inf), cols


def _tile_stats(l, cols, y):
  """Partial ``(m, s, t, l_y)`` of a masked ``[tn, tv]`` tile, each ``[tn, 1]``."""
  m = jnp.maximum(jnp.max(l, axis=1, keepdims=True), _NEG_BIG)
  d = l - m
  e = jnp.exp(d)
  s = jnp.sum(e, axis=1, keepdims=True)
  t = jnp.sum(jnp.where(e > 0, e * d, 0.0), axis=1, keepdims=True)
  l_y = jnp.sum(jnp.where(cols == y, l, 0.0), axis=1, keepdims=True)
  return m, s, t, l_y


def _tile_dz(l, cols, y, lse, mean_l, g_logp, g_ent, inv_temp):
  """``dz = (g_logp (onehot_y - p) - g_H p (l - E_p[l])) / T`` of a masked tile."""
  p = jnp.exp(l - lse)
  centered = jnp.where(p > 0, l - mean_l, 0.0)
  onehot = jnp.where(cols == y, 1.0, 0.0)
  return (g_logp * (onehot - p) - g_ent * p * centered) * inv_temp


def _reduce(m_J, s_J, t_J, ly_J):
  """Reduce ``[J, N]`` partial statistics to the ``(m, s, t, l_y)`` of their union, ``[N]``
  each (associative; the running max ``m`` is finite, so empty parts add exact zeros)."""
  m = jnp.max(m_J, axis=0)
  scale = jnp.exp(m_J - m[None])
  s = jnp.sum(s_J * scale, axis=0)
  t = jnp.sum(scale * (t_J + s_J * (m_J - m[None])), axis=0)
  return m, s, t, jnp.sum(ly_J, axis=0)


def _merge(m_J, s_J, t_J, ly_J):
  """Merge ``[J, N]`` partial statistics into ``(logp, H, lse, E_p[l])`` of shape ``[N]``."""
  return _finalize(*_reduce(m_J, s_J, t_J, ly_J))


def _finalize(m, s, t, l_y):
  """``(logp, H, lse, E_p[l])`` from a row's reduced statistics."""
  log_s = jnp.log(s)
  lse = m + log_s
  entropy = jnp.maximum(log_s - t / s, 0.0)
  return l_y - lse, entropy, lse, lse - entropy


# ----------------------------------------------------------------------------- kernels


def _stats_kernel(*refs, vocab, tv, nd, bd, inv_temp, from_logits, unroll=True):
  if from_logits:
    x_ref, y_ref, m_ref, s_ref, t_ref, ly_ref = refs
    l = x_ref[...].astype(jnp.float32) * inv_temp
  else:
    h_ref, w_ref, y_ref, m_ref, s_ref, t_ref, ly_ref = refs
    shape = (h_ref.shape[0], w_ref.shape[1])
    l = _logits_tile(h_ref, w_ref, slice(None), slice(None), shape, nd=nd, bd=bd,
                     inv_temp=inv_temp, unroll=unroll)
  l, cols = _mask_cols(l, pl.program_id(1) * tv, vocab)
  m, s, t, l_y = _tile_stats(l, cols, y_ref[...])
  m_ref[...] = m
  s_ref[...] = s
  t_ref[...] = t
  ly_ref[...] = l_y


def _dlogits_kernel(x_ref, y_ref, lse_ref, mean_ref, gl_ref, ge_ref, dx_ref, *, vocab, tv,
                    inv_temp):
  l = x_ref[...].astype(jnp.float32) * inv_temp
  l, cols = _mask_cols(l, pl.program_id(1) * tv, vocab)
  dz = _tile_dz(l, cols, y_ref[...], lse_ref[...], mean_ref[...], gl_ref[...], ge_ref[...],
                inv_temp)
  dx_ref[...] = dz.astype(dx_ref.dtype)


def _dh_kernel(h_ref, w_ref, y_ref, lse_ref, mean_ref, gl_ref, ge_ref, dh_ref, *, vocab, tv, nd,
               bd, num_tiles, splits, inv_temp, style):
  """``dh[i] = sum_j dz[i, j] W[:, j]^T``: reduce over vocabulary tiles ``j``.

  ``"loop"`` style: program ``(i, s)`` sums the ``s``-th of ``splits`` contiguous runs of
  ``ceil(num_tiles / splits)`` vocabulary tiles (the last one clipped) into its own partial
  ``dh`` block.
  """
  rows = slice(None)
  unroll = style == "grid"
  row_stats = [r[...] for r in (y_ref, lse_ref, mean_ref, gl_ref, ge_ref)]

  def step(j, col0_local):
    cols_sl = pl.ds(col0_local, tv)
    l = _logits_tile(h_ref, w_ref, rows, cols_sl, (dh_ref.shape[0], tv), nd=nd, bd=bd,
                     inv_temp=inv_temp, unroll=unroll)
    l, cols = _mask_cols(l, j * tv, vocab)
    dz = _tile_dz(l, cols, *row_stats, inv_temp).astype(w_ref.dtype)

    def update(off, carry):
      w = w_ref[pl.ds(off, bd), cols_sl]  # [bd, tv]
      dh_ref[:, pl.ds(off, bd)] += _dot(dz, w, ((1,), (1,)))
      return carry

    _hidden_chunks(nd, bd, unroll, update, 0)

  if style == "grid":
    j = pl.program_id(1)

    @pl.when(j == 0)
    def _():
      dh_ref[...] = jnp.zeros(dh_ref.shape, dh_ref.dtype)

    step(j, 0)
  else:
    for k in range(nd):
      dh_ref[:, pl.ds(k * bd, bd)] = jnp.zeros((dh_ref.shape[0], bd), dh_ref.dtype)

    s = pl.program_id(1)
    per_split = -(-num_tiles // splits)

    @pl.loop(0, per_split)
    def _(k):
      j = s * per_split + k
      if per_split * splits == num_tiles:
        step(j, pl.multiple_of(j * tv, tv))
      else:

        @pl.when(j < num_tiles)
        def _():
          step(j, pl.multiple_of(j * tv, tv))


def _dw_kernel(h_ref, w_ref, y_ref, lse_ref, mean_ref, gl_ref, ge_ref, dw_ref, *, vocab, tv, tn,
               nd, bd, num_tiles, inv_temp, style):
  """``dW[:, j] = sum_i h[i]^T dz[i, j]``: reduce over token tiles ``i``."""
  j = pl.program_id(0)
  cols_sl = slice(None)
  unroll = style == "grid"

  def step(rows):
    l = _logits_tile(h_ref, w_ref, rows, cols_sl, (tn, tv), nd=nd, bd=bd, inv_temp=inv_temp,
                     unroll=unroll)
    l, cols = _mask_cols(l, j * tv, vocab)
    row_stats = [r[rows, :] for r in (y_ref, lse_ref, mean_ref, gl_ref, ge_ref)]
    dz = _tile_dz(l, cols, *row_stats, inv_temp).astype(h_ref.dtype)

    def update(off, carry):
      h = h_ref[rows, pl.ds(off, bd)]  # [tn, bd]
      dw_ref[pl.ds(off, bd), :] += _dot(h, dz, ((0,), (0,)))
      return carry

    _hidden_chunks(nd, bd, unroll, update, 0)

  if style == "grid":
    i = pl.program_id(1)

    @pl.when(i == 0)
    def _():
      dw_ref[...] = jnp.zeros(dw_ref.shape, dw_ref.dtype)

    step(slice(None))
  else:
    for k in range(nd):
      dw_ref[pl.ds(k * bd, bd), :] = jnp.zeros((bd, dw_ref.shape[1]), dw_ref.dtype)

    @pl.loop(0, num_tiles)
    def _(i):
      step(pl.ds(pl.multiple_of(i * tn, tn), tn))


# ----------------------------------------------------------------------------- wrappers


def _layout(n, d, vocab, blocks):
  tn, tv, bd = blocks.tokens, blocks.vocab, blocks.hidden
  return tn, tv, bd, _round_up(n, tn), _round_up(d, bd), _round_up(vocab, tv)


def _col(x, rows):
  """``[N]`` -> zero-padded ``[rows, 1]`` (per-row operands are 2-D for Mosaic layouts)."""
  return jnp.pad(x, (0, rows - x.shape[0]))[:, None]


_FWD_PARTIAL_BYTES = 1 << 28  # automatic forward slabs keep the per-tile statistics <= 256 MiB


def fwd_slab_columns(blocks, n: int, vocab: int) -> int:
  """Vocabulary columns per slab of :func:`linear_fwd`; 0 = one grid over the whole vocabulary.

  The forward grid writes four fp32 statistics per row and vocabulary tile, ``16 N V / vocab``
  bytes (74 MiB at N = 8192, V = 151,936 with 256-column tiles, 148 MiB with 128), merged
  afterwards. Slabs bound that to ``16 N cols / vocab``, merging each slab into running per-row
  statistics.
  ``blocks.fwd_slab_vocab`` if set; otherwise 0 while the statistics of one grid stay under
  256 MiB (every shape benchmarked so far), else the fewest balanced slabs that do.
  """
  tv, n_p = blocks.vocab, _round_up(n, blocks.tokens)
  cols = blocks.fwd_slab_vocab
  if cols is None:
    tiles = _FWD_PARTIAL_BYTES // (16 * n_p)
    if tiles >= -(-vocab // tv):
      return 0
    cols = max(tiles, 1) * tv
  return _balanced_slab(cols, vocab, tv) if cols else 0


def _stats_call(h, w, y, *, vocab, blocks, temperature, interpret, platform, style):
  """Per-tile partial ``(m, s, t, l_y)``, each ``[V_w / tv, N_p]``, of ``h @ w`` whose first
  ``vocab`` columns are real (the rest masked)."""
  tn, tv, bd = blocks.tokens, blocks.vocab, blocks.hidden
  n_p, d_p = h.shape
  ni, nj = n_p // tn, w.shape[1] // tv
  kernel = functools.partial(_stats_kernel, vocab=vocab, tv=tv, nd=d_p // bd, bd=bd,
                             inv_temp=1.0 / temperature, from_logits=False,
                             unroll=style == "grid")
  part = jax.ShapeDtypeStruct((nj, n_p, 1), jnp.float32)
  part_spec = pl.BlockSpec((None, tn, 1), lambda i, j: (j, i, 0))
  parts = pl.pallas_call(
      kernel,
      grid=(ni, nj),
      in_specs=[
          pl.BlockSpec((tn, d_p), lambda i, j: (i, 0)),
          pl.BlockSpec((d_p, tv), lambda i, j: (0, j)),
          pl.BlockSpec((tn, 1), lambda i, j: (i, 0)),
      ],
      out_specs=[part_spec] * 4,
      out_shape=[part] * 4,
      compiler_params=_compiler_params(platform, ("parallel", "parallel"),
                                       _num_warps(blocks)),
      interpret=interpret,
      name="logprob_entropy_fwd",
  )(h, w, y)
  return tuple(x[..., 0] for x in parts)


def linear_fwd(hidden, weight, targets, *, temperature, blocks, interpret, platform,
               style="grid"):
  """``(logp, H, lse, E_p[l])``, each ``[N]`` fp32, of ``hidden [N, D] @ weight [D, V]``.

  One fully parallel grid over ``(N / tokens, V / vocab)`` tiles, or, when
  :func:`fwd_slab_columns` asks for it, one such grid per vocabulary slab with the slab's
  statistics merged into running ones (the last, partial slab first, then a ``fori_loop``
  over the full ones).
  """
  _check_blocks(blocks, platform, hidden.dtype)
  n, d = hidden.shape
  vocab = weight.shape[1]
  tn, tv, bd = blocks.tokens, blocks.vocab, blocks.hidden
  n_p, d_p = _round_up(n, tn), _round_up(d, bd)
  h = _pad2(hidden, n_p, d_p)
  y = _col(targets.astype(jnp.int32), n_p)
  if uses_mosaic_gpu(blocks, platform):
    call = functools.partial(_mosaic_gpu.stats_call, blocks=blocks, temperature=temperature,
                             interpret=interpret)
  else:
    call = functools.partial(_stats_call, blocks=blocks, temperature=temperature,
                             interpret=interpret, platform=platform, style=style)
  cols = fwd_slab_columns(blocks, n, vocab)
  if cols == 0 or cols >= vocab:
    w = _pad2(weight, d_p, _round_up(vocab, tv))
    return tuple(x[:n] for x in _merge(*call(h, w, y, vocab=vocab)))
  last = (-(-vocab // cols) - 1) * cols  # first column of the last (partial) slab
  w = _pad2(weight, d_p, last + _round_up(vocab - last, tv))
  acc = _reduce(*call(h, w[:, last:], y - last, vocab=vocab - last))

  def slab(c, acc):
    w_c = lax.dynamic_slice_in_dim(w, c * cols, cols, axis=1)  # [D_p, cols], all real
    part = _reduce(*call(h, w_c, y - c * cols, vocab=cols))
    return _reduce(*(jnp.stack([a, b]) for a, b in zip(acc, part, strict=True)))

  return tuple(x[:n] for x in _finalize(*lax.fori_loop(0, last // cols, slab, acc)))


def linear_bwd(hidden, weight, targets, lse, mean_l, g_logp, g_ent, *, temperature, blocks,
               interpret, style, platform):
  """``(d hidden [N, D], d weight [D, V])`` recomputing the logit tiles."""
  _check_blocks(blocks, platform, hidden.dtype)
  n, d = hidden.shape
  vocab = weight.shape[1]
  tn, tv, bd, n_p, d_p, v_p = _layout(n, d, vocab, blocks)
  h = _pad2(hidden, n_p, d_p)
  w = _pad2(weight, d_p, v_p)
  row_ops = [_col(targets.astype(jnp.int32), n_p)] + [_col(x, n_p) for x in
                                                      (lse, mean_l, g_logp, g_ent)]
  ni, nj = n_p // tn, v_p // tv
  common = dict(vocab=vocab, tv=tv, nd=d_p // bd, bd=bd, inv_temp=1.0 / temperature, style=style)

  if style == "grid":
    splits = 1
    dh_grid, dh_specs = (ni, nj), [
        pl.BlockSpec((tn, d_p), lambda i, j: (i, 0)),
        pl.BlockSpec((d_p, tv), lambda i, j: (0, j)),
    ] + [pl.BlockSpec((tn, 1), lambda i, j: (i, 0))] * 5
    dh_out = pl.BlockSpec((None, tn, d_p), lambda i, j: (0, i, 0))
    dw_grid, dw_specs = (nj, ni), [
        pl.BlockSpec((tn, d_p), lambda j, i: (i, 0)),
        pl.BlockSpec((d_p, tv), lambda j, i: (0, j)),
    ] + [pl.BlockSpec((tn, 1), lambda j, i: (i, 0))] * 5
    dw_out = pl.BlockSpec((d_p, tv), lambda j, i: (0, j))
    dh_semantics = dw_semantics = ("parallel", "arbitrary")
  else:  # "loop": the reduced axis is a loop inside the kernel, over a whole-array block
    splits = blocks.splits or -(-_GPU_TARGET_PROGRAMS // ni)
    splits = max(1, min(splits, nj))
    dh_grid, dh_specs = (ni, splits), [
        pl.BlockSpec((tn, d_p), lambda i, s: (i, 0)),
        pl.BlockSpec((d_p, v_p), lambda i, s: (0, 0)),
    ] + [pl.BlockSpec((tn, 1), lambda i, s: (i, 0))] * 5
    dh_out = pl.BlockSpec((None, tn, d_p), lambda i, s: (s, i, 0))
    dw_grid, dw_specs = (nj,), [
        pl.BlockSpec((n_p, d_p), lambda j: (0, 0)),
        pl.BlockSpec((d_p, tv), lambda j: (0, j)),
    ] + [pl.BlockSpec((n_p, 1), lambda j: (0, 0))] * 5
    dw_out = pl.BlockSpec((d_p, tv), lambda j: (0, j))
    dh_semantics, dw_semantics = ("parallel", "parallel"), ("parallel",)

  warps = _num_warps(blocks)
  dh = pl.pallas_call(
      functools.partial(_dh_kernel, num_tiles=nj, splits=splits, **common),
      grid=dh_grid,
      in_specs=dh_specs,
      out_specs=dh_out,
      out_shape=jax.ShapeDtypeStruct((splits, n_p, d_p), jnp.float32),
      compiler_params=_compiler_params(platform, dh_semantics, warps),
      interpret=interpret,
      name="logprob_entropy_bwd_dh",
  )(h, w, *row_ops)
  dh = dh[0] if splits == 1 else jnp.sum(dh, axis=0)
  dw = pl.pallas_call(
      functools.partial(_dw_kernel, num_tiles=ni, tn=tn, **common),
      grid=dw_grid,
      in_specs=dw_specs,
      out_specs=dw_out,
      out_shape=jax.ShapeDtypeStruct((d_p, v_p), jnp.float32),
      compiler_params=_compiler_params(platform, dw_semantics, warps),
      interpret=interpret,
      name="logprob_entropy_bwd_dw",
  )(h, w, *row_ops)
  return dh[:n, :d].astype(hidden.dtype), dw[:d, :vocab].astype(weight.dtype)


_SLAB_ELEMENTS = 1 << 26  # automatic d-logits slab of the GEMM backward: 64 Mi elements


def slab_columns(blocks, n: int, vocab: int, platform: str) -> int:
  """Vocabulary columns per d-logits slab of :func:`linear_bwd_gemm`; 0 = in-kernel reductions.

  ``blocks.slab_vocab`` if set; otherwise on GPU (and for Mosaic GPU kernels in interpret
  mode, which have no other backward) about ``2^26 / N`` columns (128 MiB of bf16 d logits per
  slab), balanced over the fewest slabs that cover V and rounded up to whole vocabulary tiles;
  elsewhere 0 (TPU and interpret mode keep the resident-block reductions).
  """
  cols = blocks.slab_vocab
  if cols is None:
    if platform != "gpu" and not uses_mosaic_gpu(blocks, platform):
      return 0
    cols = max(_SLAB_ELEMENTS // _round_up(n, blocks.tokens), blocks.vocab)
  if cols == 0:
    return 0
  return _balanced_slab(cols, vocab, blocks.vocab)


def _balanced_slab(cols: int, vocab: int, tv: int) -> int:
  """The fewest slabs of at most ``cols`` columns that cover ``vocab``, balanced and rounded
  up to whole ``tv``-column tiles (never wider than the padded vocabulary)."""
  num = -(-vocab // cols)
  return min(_round_up(-(-vocab // num), tv), _round_up(vocab, tv))


def _dz_slab_kernel(h_ref, w_ref, y_ref, lse_ref, mean_ref, gl_ref, ge_ref, dz_ref, *, tv, nd,
                    bd, inv_temp, unroll):
  """One ``[tn, tv]`` tile of a d-logits slab: recompute ``l = h W / T``, write ``dz``.

  Columns are local to the slab and so are the targets (``y - slab offset``). No column mask:
  padded vocabulary columns of W are zero, so their finite ``dz`` meets zero rows of ``W^T``
  in ``dh`` and is sliced off ``dW``.
  """
  shape = dz_ref.shape
  l = _logits_tile(h_ref, w_ref, slice(None), slice(None), shape, nd=nd, bd=bd,
                   inv_temp=inv_temp, unroll=unroll)
  cols = pl.program_id(1) * tv + lax.broadcasted_iota(jnp.int32, shape, 1)
  dz = _tile_dz(l, cols, y_ref[...], lse_ref[...], mean_ref[...], gl_ref[...], ge_ref[...],
                inv_temp)
  dz_ref[...] = dz.astype(dz_ref.dtype)


def linear_bwd_gemm(hidden, weight, targets, lse, mean_l, g_logp, g_ent, *, temperature, blocks,
                    interpret, platform, cols, style="grid"):
  """``(d hidden, d weight)`` from d-logits slabs: Pallas computes, GEMMs reduce.

  For each slab of ``cols`` vocabulary columns (:func:`slab_columns`, a multiple of
  ``blocks.vocab``) a fully parallel Pallas kernel recomputes the
  logit tiles and writes ``dz [N, cols]`` (input dtype, fp32 math inside); the two reductions
  ``dh += dz W_c^T`` and ``dW_c = h^T dz`` go to the backend's matmul library (cuBLAS on GPU),
  which keeps its accumulators in registers, unlike a Pallas program whose ``[tokens, D]`` or
  ``[D, vocab]`` fp32 accumulator at D = 896 must live in global memory. The same split as
  Liger Kernel's fused linear cross-entropy (a Triton kernel for the logit gradient, vendor
  matmuls for the input and weight gradients). Memory: ``N x cols`` for the slab (no fp32
  ``[N, V]`` anywhere), ``[N, D]`` fp32 for ``dh`` and the ``[D, V]`` gradient itself. With
  ``gpu_lowering="mosaic_gpu"`` the slab comes from :func:`rljax.kernels._mosaic_gpu.dz_call`.
  """
  _check_blocks(blocks, platform, hidden.dtype)
  n, d = hidden.shape
  vocab = weight.shape[1]
  tn, tv, bd = blocks.tokens, blocks.vocab, blocks.hidden
  n_p, d_p = _round_up(n, tn), _round_up(d, bd)
  num_slabs = -(-vocab // cols)
  v_p = num_slabs * cols
  h = _pad2(hidden, n_p, d_p)
  w = _pad2(weight, d_p, v_p)
  y = _col(targets.astype(jnp.int32), n_p)
  row_ops = [_col(x, n_p) for x in (lse, mean_l, g_logp, g_ent)]
  if uses_mosaic_gpu(blocks, platform):
    dz_call = functools.partial(_mosaic_gpu.dz_call, blocks=blocks, temperature=temperature,
                                interpret=interpret)
  else:
    row_spec = pl.BlockSpec((tn, 1), lambda i, j: (i, 0))
    dz_call = pl.pallas_call(
        functools.partial(_dz_slab_kernel, tv=tv, nd=d_p // bd, bd=bd, inv_temp=1.0 / temperature,
                          unroll=style == "grid"),
        grid=(n_p // tn, cols // tv),
        in_specs=[
            pl.BlockSpec((tn, d_p), lambda i, j: (i, 0)),
            pl.BlockSpec((d_p, tv), lambda i, j: (0, j)),
        ] + [row_spec] * 5,
        out_specs=pl.BlockSpec((tn, tv), lambda i, j: (i, j)),
        out_shape=jax.ShapeDtypeStruct((n_p, cols), weight.dtype),
        compiler_params=_compiler_params(platform, ("parallel", "parallel"), _num_warps(blocks)),
        interpret=interpret,
        name="logprob_entropy_bwd_dz",
    )

  def slab(c, carry):
    dh, dw = carry
    w_c = lax.dynamic_slice_in_dim(w, c * cols, cols, axis=1)  # [D_p, cols]
    dz = dz_call(h, w_c, y - c * cols, *row_ops)  # [N_p, cols]
    dh = dh + lax.dot_general(dz, w_c, (((1,), (1,)), ((), ())),
                              preferred_element_type=jnp.float32)
    dw_c = lax.dot_general(h, dz, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)
    return dh, lax.dynamic_update_slice_in_dim(dw, dw_c.astype(dw.dtype), c * cols, axis=1)

  init = (jnp.zeros((n_p, d_p), jnp.float32), jnp.zeros((d_p, v_p), weight.dtype))
  dh, dw = lax.fori_loop(0, num_slabs, slab, init)
  return dh[:n, :d].astype(hidden.dtype), dw[:d, :vocab]


def logits_fwd(logits, targets, *, temperature, blocks, interpret, platform):
  """``(logp, H, lse, E_p[l])``, each ``[N]`` fp32, from ``[N, V]`` logits."""
  _check_blocks(blocks, platform, logits.dtype, fused=False)
  n, vocab = logits.shape
  tn, tv = blocks.tokens, blocks.vocab
  n_p, v_p = _round_up(n, tn), _round_up(vocab, tv)
  x = _pad2(logits, n_p, v_p)
  y = _col(targets.astype(jnp.int32), n_p)
  if uses_mosaic_gpu(blocks, platform):
    parts = _mosaic_gpu.logits_stats_call(x, y, vocab=vocab, blocks=blocks,
                                          temperature=temperature, interpret=interpret)
    return _merge(*(a[:, :n] for a in parts))
  ni, nj = n_p // tn, v_p // tv
  kernel = functools.partial(_stats_kernel, vocab=vocab, tv=tv, nd=0, bd=0,
                             inv_temp=1.0 / temperature, from_logits=True)
  part = jax.ShapeDtypeStruct((nj, n_p, 1), jnp.float32)
  part_spec = pl.BlockSpec((None, tn, 1), lambda i, j: (j, i, 0))
  m, s, t, ly = pl.pallas_call(
      kernel,
      grid=(ni, nj),
      in_specs=[
          pl.BlockSpec((tn, tv), lambda i, j: (i, j)),
          pl.BlockSpec((tn, 1), lambda i, j: (i, 0)),
      ],
      out_specs=[part_spec] * 4,
      out_shape=[part] * 4,
      compiler_params=_compiler_params(platform, ("parallel", "parallel"),
                                       _num_warps(blocks)),
      interpret=interpret,
      name="logprob_entropy_logits_fwd",
  )(x, y)
  return _merge(*(a[:, :n, 0] for a in (m, s, t, ly)))


def logits_bwd(logits, targets, lse, mean_l, g_logp, g_ent, *, temperature, blocks, interpret,
               platform):
  """``d logits [N, V]`` tile by tile."""
  _check_blocks(blocks, platform, logits.dtype, fused=False)
  n, vocab = logits.shape
  tn, tv = blocks.tokens, blocks.vocab
  n_p, v_p = _round_up(n, tn), _round_up(vocab, tv)
  x = _pad2(logits, n_p, v_p)
  row_ops = [_col(targets.astype(jnp.int32), n_p)] + [_col(a, n_p) for a in
                                                      (lse, mean_l, g_logp, g_ent)]
  if uses_mosaic_gpu(blocks, platform):
    dx = _mosaic_gpu.dlogits_call(x, *row_ops, vocab=vocab, blocks=blocks,
                                  temperature=temperature, interpret=interpret)
    return dx[:n, :vocab]
  ni, nj = n_p // tn, v_p // tv
  dx = pl.pallas_call(
      functools.partial(_dlogits_kernel, vocab=vocab, tv=tv, inv_temp=1.0 / temperature),
      grid=(ni, nj),
      in_specs=[pl.BlockSpec((tn, tv), lambda i, j: (i, j))]
      + [pl.BlockSpec((tn, 1), lambda i, j: (i, 0))] * 5,
      out_specs=pl.BlockSpec((tn, tv), lambda i, j: (i, j)),
      out_shape=jax.ShapeDtypeStruct((n_p, v_p), logits.dtype),
      compiler_params=_compiler_params(platform, ("parallel", "parallel"),
                                       _num_warps(blocks)),
      interpret=interpret,
      name="logprob_entropy_logits_bwd",
  )(x, *row_ops)
  return dx[:n, :vocab]
