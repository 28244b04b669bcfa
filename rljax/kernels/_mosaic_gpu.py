"""Mosaic GPU Pallas kernels for the fused log-prob + entropy (``BlockSizes.gpu_lowering``).

Mosaic GPU is the GPU lowering that jax 0.10 uses for a plain ``pl.pallas_call`` (Pallas's
Triton backend is deprecated from jax 0.11). Its kernels are written against the hardware:
``plgpu.kernel`` launches warpgroups (128 threads each) per block, ``plgpu.emit_pipeline``
streams the hidden axis through shared memory with TMA copies, and ``plgpu.wgmma`` (Hopper
tensor cores) accumulates a ``[64, vocab]`` fp32 logit tile per warpgroup in registers.
Layouts are inferred (``LoweringSemantics.Warpgroup``), so the tile math is plain jnp.

Four kernels, each on a fully parallel grid ``(N / tokens, V / vocab)`` of logit tiles
``l = h W / T`` (or ``logits / T``), the same split as the Triton path in
:mod:`rljax.kernels._pallas` (whose slab drivers, merges and padding they reuse):

* :func:`stats_call` (forward): per tile the partial row max ``m``, ``s = sum exp(l - m)``,
  ``t = sum exp(l - m)(l - m)`` and the target logit, written as ``[V / vocab, N]`` fp32
  partials that ``_pallas`` merges associatively.
* :func:`dz_call` (backward, one d-logits slab): ``dz = (g_logp (onehot_y - p) - g_H p (l -
  E_p[l])) / T`` per tile, written in the input dtype; the matmul library reduces the slab
  into ``dh`` and ``dW`` (:func:`rljax.kernels._pallas.linear_bwd_gemm`).
* :func:`logits_stats_call` and :func:`dlogits_call`: the same statistics and ``d logits``
  from materialised ``[N, V]`` logits (any float dtype), one TMA-loaded tile per block.

The two fused kernels take 64-row blocks (one warpgroup issues the copies and the wgmma) or
128-row blocks (:func:`_fused_tiles`): two compute warpgroups of 64 rows share each ``W``
chunk, which halves its traffic per row, while a third warpgroup only issues the TMA copies
(``emit_pipeline_warp_specialized``, the layout of Hopper matmuls).

Per-row operands (targets, ``lse``, ``E_p[l]``, cotangents) reach shared memory by one TMA
copy per warpgroup. On CPU the same kernels run in Mosaic GPU's interpret mode
(``InterpretGPUParams``: simulated shared memory, warpgroups, barriers and TMA), which is what
the tests check against the reference; ``jax.export`` for ``cuda`` checks that they lower for
Hopper (layout inference, the Mosaic GPU dialect lowering and the shared-memory budget run in
that step).

Constraints (:func:`check`): ``vocab`` a multiple of 64 up to 256 (the wgmma width; a 64 x 256
fp32 tile is 128 registers a thread). Fused kernels: ``tokens`` 64 or 128, bf16 or fp16
inputs (wgmma operands), ``hidden`` a multiple of 64 (one 128-byte swizzle of bf16), a
two-slot pipeline within an H100/H200 block's shared memory, and a Hopper GPU
(:func:`check_device`). From logits: ``tokens`` a multiple of 64 with ``tokens * vocab <=
16384``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

_NEG_BIG = float(jnp.finfo(jnp.float32).min)
_DTYPES = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
_MIN_JAX = (0, 10)  # written and tested against jax 0.10.2
_MAX_VOCAB_TILE = 256  # wgmma N and the registers of a [64, vocab] fp32 accumulator
# Shared-memory slots of the hidden-chunk pipeline: up to 3 (3 x (64 x 64 + 64 x 256) bf16 =
# 120 KiB at the default tiles), fewer where the tiles are wider, at least 2 when the hidden
# axis has several chunks (one wgmma stays in flight).
_PIPELINE_SLOTS = 3
_SMEM_BYTES = 232_448  # dynamic shared memory of one block on an H100 / H200 (227 KiB)


def _jax_version() -> tuple[int, int]:
  major, minor = jax.__version__.split(".")[:2]
  return int(major), int(minor)


def _slot_bytes(blocks, itemsize) -> int:
  return (blocks.tokens * blocks.hidden + blocks.hidden * blocks.vocab) * itemsize


def _reserved_bytes(blocks, itemsize) -> int:
  """Shared memory besides the pipeline: targets, 4 row statistics, the d-logits tile, slack."""
  return blocks.tokens * 4 * 5 + blocks.tokens * blocks.vocab * itemsize + 4096


def _pipeline_slots(blocks, itemsize, nd: int) -> int:
  free = _SMEM_BYTES - _reserved_bytes(blocks, itemsize)
  return max(min(_PIPELINE_SLOTS, nd, free // _slot_bytes(blocks, itemsize)), min(2, nd))


def check(blocks, dtype, *, fused: bool = True) -> None:
  """A ``ValueError`` naming the field if ``blocks`` or ``dtype`` can't run on Mosaic GPU.

  ``fused``: the fused-linear kernels (wgmma: bf16/fp16, ``hidden``, the pipeline's shared
  memory); otherwise the from-logits kernels (any float dtype, ``hidden`` unused).
  """
  if _jax_version() < _MIN_JAX:
    raise ValueError(
        f"BlockSizes(gpu_lowering='mosaic_gpu') needs jax >= {'.'.join(map(str, _MIN_JAX))} "
        f"(plgpu.kernel's out_type / scratch_types, Mosaic GPU's interpreter), got "
        f"{jax.__version__}; use gpu_lowering='triton'"
    )
  if fused and jnp.dtype(dtype) not in _DTYPES:
    raise ValueError(
        "BlockSizes(gpu_lowering='mosaic_gpu') needs bfloat16 or float16 hidden and weight "
        f"(wgmma operands), got {jnp.dtype(dtype)}; use gpu_lowering='triton' for float32"
    )
  if fused and blocks.tokens not in (64, 128):
    raise ValueError(
        "BlockSizes.tokens must be 64 (one warpgroup) or 128 (two, beside a memory "
        f"warpgroup) for the Mosaic GPU fused kernels, got {blocks.tokens}"
    )
  if blocks.tokens % 64:
    raise ValueError(
        f"BlockSizes.tokens must be a multiple of 64 for Mosaic GPU, got {blocks.tokens}"
    )
  if blocks.vocab % 64 or blocks.vocab > _MAX_VOCAB_TILE:
    raise ValueError(
        "BlockSizes.vocab must be a multiple of 64 and at most 256 for Mosaic GPU, got "
        f"{blocks.vocab}"
    )
  if not fused:  # (the fused kernels give each compute warpgroup a [64, vocab] accumulator)
    if blocks.tokens * blocks.vocab > 64 * _MAX_VOCAB_TILE:
      raise ValueError(
          "BlockSizes.tokens * BlockSizes.vocab must be at most 16384 for the Mosaic GPU "
          "from-logits kernels (one warpgroup's fp32 tile in registers), got "
          f"{blocks.tokens} x {blocks.vocab}"
      )
    return
  if blocks.hidden % 64:
    raise ValueError(
        f"BlockSizes.hidden must be a multiple of 64 for Mosaic GPU, got {blocks.hidden}"
    )
  itemsize = jnp.dtype(dtype).itemsize
  need = 2 * _slot_bytes(blocks, itemsize) + _reserved_bytes(blocks, itemsize)
  if need > _SMEM_BYTES:
    raise ValueError(
        f"BlockSizes tokens={blocks.tokens}, vocab={blocks.vocab}, hidden={blocks.hidden} need "
        f"{need} bytes of shared memory for a two-slot pipeline, more than the {_SMEM_BYTES} of "
        "an H100/H200 block; use a smaller BlockSizes.hidden or vocab"
    )
  if blocks.slab_vocab == 0:
    raise ValueError(
        "BlockSizes.slab_vocab=0 (in-kernel backward reductions) has no Mosaic GPU kernel; "
        "leave it None or give a slab width"
    )


def check_device(device=None, *, fused: bool = True) -> None:
  """A ``ValueError`` unless ``device`` (default: the first) can run these kernels: Mosaic GPU
  needs TMA (sm_90 and later, not sm_80 Ampere), and the fused-linear kernels issue wgmma,
  which is Hopper's alone (sm_100 Blackwell replaced it)."""
  device = device or jax.devices()[0]
  capability = getattr(device, "compute_capability", None)
  try:
    major = int(str(capability).split(".")[0])
  except ValueError:
    major = None
  if major is None or major < 9 or (fused and major != 9):
    need = "a Hopper GPU (sm_90, wgmma)" if fused else "an sm_90 or later GPU (TMA)"
    what = "fused-linear" if fused else "from-logits"
    raise ValueError(
        f"BlockSizes(gpu_lowering='mosaic_gpu') {what} kernels need {need}, got "
        f"{device.device_kind!r} (compute capability {capability}); use gpu_lowering='triton'"
    )


def _plgpu():
  """``jax.experimental.pallas.mosaic_gpu``, imported on first use: it loads the Mosaic GPU
  MLIR bindings (0.2 s here), which ``import rljax`` should not pay for (as ``_pallas`` does
  with Triton)."""
  from jax.experimental.pallas import mosaic_gpu as plgpu

  return plgpu


def interpret_params():
  """Mosaic GPU's CPU interpreter (jax 0.10 exports it only from its private module)."""
  from jax._src.pallas.mosaic_gpu.interpret.params import InterpretGPUParams

  return InterpretGPUParams()


def force_interpret_params(params):
  """Context in which every Mosaic GPU kernel runs with these ``InterpretGPUParams`` (e.g.
  ``detect_races=True``), overriding the ``interpret`` argument."""
  from jax._src.pallas.mosaic_gpu.interpret.params import force_gpu_interpret_mode

  return force_gpu_interpret_mode(params)


def _smem_transforms(cols: int, dtype):
  """Tiling + swizzle of a ``[rows, cols]`` shared-memory tile, as wgmma and TMA want it."""
  plgpu = _plgpu()
  itemsize = jnp.dtype(dtype).itemsize
  swizzle = plgpu.find_swizzle(cols * itemsize * 8)
  return (plgpu.TilingTransform((8, swizzle // itemsize)), plgpu.SwizzleTransform(swizzle))


def _compute_wgs(blocks) -> int:
  """Compute warpgroups of a fused-kernel block: ``tokens / 64`` (1, or 2 beside a memory
  warpgroup that streams the pipeline: the warp-specialized layout of Hopper matmuls)."""
  return blocks.tokens // 64


def _hidden_pipeline_specs(blocks, dtype, in_flight):
  plgpu = _plgpu()
  tm, tv, bd = blocks.tokens, blocks.vocab, blocks.hidden
  return [
      plgpu.BlockSpec((tm, bd), lambda k: (0, k), delay_release=in_flight,
                      transforms=_smem_transforms(bd, dtype)),
      plgpu.BlockSpec((bd, tv), lambda k: (k, 0), delay_release=in_flight,
                      transforms=_smem_transforms(tv, dtype)),
  ]


def _fused_tiles(h_gmem, w_gmem, i, j, *, blocks, inv_temp, prologue, epilogue):
  """The logit tiles ``l = h[rows] W[:, cols] / T`` of block ``(i, j)``, by wgmma over the
  hidden chunks, which ``emit_pipeline`` streams through shared memory by TMA.

  Per compute warpgroup ``wg`` (its 64 rows ``rows``): ``prologue(rows, wg)`` first (to issue
  TMA copies of per-row operands), then ``epilogue(l [64, tv] fp32, rows, wg)``. With
  ``tokens = 128`` two compute warpgroups share each ``W`` chunk and a third, the memory
  warpgroup, only issues the copies (``emit_pipeline_warp_specialized``).
  """
  plgpu = _plgpu()
  tv, bd = blocks.vocab, blocks.hidden
  nd = h_gmem.shape[1] // bd
  # Keep one wgmma in flight (wait for all but the last) while later chunks land; its
  # operands' slot is then released a step late (delay_release), which needs >= 2 slots.
  in_flight = 1 if nd > 1 else 0
  slots = _pipeline_slots(blocks, jnp.dtype(h_gmem.dtype).itemsize, nd)
  specs = _hidden_pipeline_specs(blocks, h_gmem.dtype, in_flight)
  block = (h_gmem.at[pl.ds(i * blocks.tokens, blocks.tokens), :], w_gmem.at[:, pl.ds(j * tv, tv)])
  acc = plgpu.ACC((64, tv), jnp.float32)

  if _compute_wgs(blocks) == 1:
    rows = pl.ds(i * 64, 64)
    prologue(rows, 0)

    def matmul(acc_ref):
      def step(_, h_smem, w_smem):
        plgpu.wgmma(acc_ref, h_smem, w_smem)
        plgpu.wgmma_wait(in_flight)

      plgpu.emit_pipeline(step, grid=(nd,), in_specs=specs, max_concurrent_steps=slots)(*block)
      return acc_ref[...]

    epilogue(pl.run_scoped(matmul, acc) * inv_temp, rows, 0)
    return

  def step(_, h_smem, w_smem, acc_ref):
    wg = lax.axis_index("wg")
    plgpu.wgmma(acc_ref, h_smem.at[pl.ds(wg * 64, 64)], w_smem)
    plgpu.wgmma_wait(in_flight)
    return acc_ref

  def compute(pipeline):  # runs on each compute warpgroup
    wg = lax.axis_index("wg")
    rows = pl.ds(i * blocks.tokens + wg * 64, 64)
    prologue(rows, wg)

    def scope(acc_ref):
      pipeline(acc_ref)
      epilogue(acc_ref[...] * inv_temp, rows, wg)

    pl.run_scoped(scope, acc)

  plgpu.emit_pipeline_warp_specialized(
      step, grid=(nd,), in_specs=specs, max_concurrent_steps=max(slots, in_flight + 1),
      memory_registers=40, wg_axis="wg", num_compute_wgs=2, compute_context=compute,
  )(*block)


def _rows(x, shape):
  """Broadcast a per-row ``[tm]`` vector over a ``[tm, tv]`` tile."""
  return lax.broadcast_in_dim(x, shape, (0,))


def _kernel(body, out_type, scratch, grid, interpret, compute_wgs=1):
  plgpu = _plgpu()
  threads = {} if compute_wgs == 1 else {"num_threads": compute_wgs + 1, "thread_name": "wg"}
  return plgpu.kernel(
      body,
      out_type=out_type,
      grid=grid,
      grid_names=("tokens", "vocab"),
      scratch_types=scratch,
      **threads,
      compiler_params=plgpu.CompilerParams(
          lowering_semantics=plgpu.LoweringSemantics.Warpgroup
      ),
      interpret=interpret_params() if interpret else False,
  )


def _tile_stats(l, hit):
  """Partial ``(m, s, t, l_y)`` rows of a masked ``[tm, tv]`` fp32 tile (as ``_pallas``);
  ``hit`` marks each row's target column."""
  m = jnp.maximum(jnp.max(l, axis=1), _NEG_BIG)
  d = l - _rows(m, l.shape)
  e = jnp.exp(d)
  s, t = jnp.sum(e, axis=1), jnp.sum(jnp.where(e > 0, e * d, 0.0), axis=1)
  return m, s, t, jnp.sum(jnp.where(hit, l, 0.0), axis=1)


def _store_stats(l, cols, y_smem, out_smem, outs, j, rows):
  """Write a masked tile's partial ``(m, s, t, l_y)`` rows to row ``j`` of the four
  ``[V / tv, N_p]`` outputs ``outs`` (through ``out_smem``); the targets have landed."""
  plgpu = _plgpu()
  hit = cols == _rows(y_smem[...], l.shape)
  for k, part in enumerate(_tile_stats(l, hit)):
    out_smem[k] = part
  plgpu.commit_smem()
  for k, out in enumerate(outs):
    plgpu.copy_smem_to_gmem(out_smem.at[k], out.at[j, rows])
  plgpu.wait_smem_to_gmem(0)


def _tile_dz(l, cols, y_smem, r_smem, inv_temp):
  """``dz = (g_logp (onehot_y - p) - g_H p (l - E_p[l])) / T`` of a tile; ``r_smem`` holds
  the rows' ``(lse, E_p[l], g_logp, g_H)``, ``y_smem`` their targets (both landed)."""
  lse_r, mean_r, gl_r, ge_r = (_rows(r_smem[k], l.shape) for k in range(4))
  p = jnp.exp(l - lse_r)
  centered = jnp.where(p > 0, l - mean_r, 0.0)  # no 0 * -inf where p = 0
  onehot = jnp.where(cols == _rows(y_smem[...], l.shape), 1.0, 0.0)
  return (gl_r * (onehot - p) - ge_r * p * centered) * inv_temp


def _store_tile(x, smem, dst):
  """Write a register tile to ``dst`` in global memory through ``smem``."""
  plgpu = _plgpu()
  smem[...] = x.astype(smem.dtype)
  plgpu.commit_smem()
  plgpu.copy_smem_to_gmem(smem, dst)
  plgpu.wait_smem_to_gmem(0)


def stats_call(h, w, y, *, vocab, blocks, temperature, interpret):
  """Per-tile partial ``(m, s, t, l_y)``, each ``[V_w / tv, N_p]``, of ``h @ w``.

  ``h [N_p, D_p]`` and ``w [D_p, V_w]`` are padded to whole tiles, ``y [N_p, 1]`` holds the
  targets (local to ``w``'s columns); only the first ``vocab`` columns are real.
  """
  plgpu = _plgpu()
  tv, nw = blocks.vocab, _compute_wgs(blocks)
  n_p = h.shape[0]
  nj = w.shape[1] // tv
  outs_shape = [jax.ShapeDtypeStruct((nj, n_p), jnp.float32)] * 4

  def body(h_gmem, w_gmem, y_gmem, m_gmem, s_gmem, t_gmem, ly_gmem, y_smem, out_smem, bars):
    j = lax.axis_index("vocab")

    def prologue(rows, wg):  # the targets land during the matmul
      plgpu.copy_gmem_to_smem(y_gmem.at[rows], y_smem.at[wg], bars.at[wg])

    def epilogue(l, rows, wg):
      cols = j * tv + lax.broadcasted_iota(jnp.int32, l.shape, 1)
      l = jnp.where(cols < vocab, l, -jnp.inf)  # padded columns add nothing
      plgpu.barrier_wait(bars.at[wg])
      _store_stats(l, cols, y_smem.at[wg], out_smem.at[wg], (m_gmem, s_gmem, t_gmem, ly_gmem),
                   j, rows)

    _fused_tiles(h_gmem, w_gmem, lax.axis_index("tokens"), j, blocks=blocks,
                 inv_temp=1.0 / temperature, prologue=prologue, epilogue=epilogue)

  scratch = [plgpu.SMEM((nw, 64), jnp.int32), plgpu.SMEM((nw, 4, 64), jnp.float32),
             plgpu.Barrier(num_barriers=nw)]
  call = _kernel(body, outs_shape, scratch, (n_p // blocks.tokens, nj), interpret, nw)
  return tuple(call(h, w, y[:, 0]))


def dz_call(h, w_c, y, lse, mean_l, g_logp, g_ent, *, blocks, temperature, interpret):
  """``dz [N_p, cols]`` of one slab ``w_c [D_p, cols]`` (targets local to the slab).

  Per-row operands come as ``[N_p, 1]`` columns. No column mask: padded vocabulary columns
  of ``w_c`` are zero, so their finite ``dz`` meets zero rows of ``W^T`` in ``dh`` and is
  sliced off ``dW`` (as in the Triton slab kernel).
  """
  plgpu = _plgpu()
  tv, nw = blocks.vocab, _compute_wgs(blocks)
  n_p = h.shape[0]
  cols_total = w_c.shape[1]
  inv_temp = 1.0 / temperature
  stats = jnp.concatenate([lse, mean_l, g_logp, g_ent], axis=1).T  # [4, N_p] fp32

  def body(h_gmem, w_gmem, y_gmem, r_gmem, dz_gmem, y_smem, r_smem, dz_smem, bars):
    j = lax.axis_index("vocab")

    def prologue(rows, wg):
      plgpu.copy_gmem_to_smem(y_gmem.at[rows], y_smem.at[wg], bars.at[2 * wg])
      plgpu.copy_gmem_to_smem(r_gmem.at[:, rows], r_smem.at[wg], bars.at[2 * wg + 1])

    def epilogue(l, rows, wg):
      cols = j * tv + lax.broadcasted_iota(jnp.int32, l.shape, 1)
      plgpu.barrier_wait(bars.at[2 * wg])
      plgpu.barrier_wait(bars.at[2 * wg + 1])
      dz = _tile_dz(l, cols, y_smem.at[wg], r_smem.at[wg], inv_temp)
      _store_tile(dz, dz_smem.at[wg], dz_gmem.at[rows, pl.ds(j * tv, tv)])

    _fused_tiles(h_gmem, w_gmem, lax.axis_index("tokens"), j, blocks=blocks, inv_temp=inv_temp,
                 prologue=prologue, epilogue=epilogue)

  scratch = [
      plgpu.SMEM((nw, 64), jnp.int32),
      plgpu.SMEM((nw, 4, 64), jnp.float32),
      plgpu.SMEM((nw, 64, tv), w_c.dtype, transforms=_smem_transforms(tv, w_c.dtype)),
      plgpu.Barrier(num_barriers=2 * nw),
  ]
  out = jax.ShapeDtypeStruct((n_p, cols_total), w_c.dtype)
  call = _kernel(body, out, scratch, (n_p // blocks.tokens, cols_total // tv), interpret, nw)
  return call(h, w_c, y[:, 0], stats)


def logits_stats_call(x, y, *, vocab, blocks, temperature, interpret):
  """Per-tile partial ``(m, s, t, l_y)``, each ``[V_p / tv, N_p]``, of padded ``x [N_p, V_p]``
  logits whose first ``vocab`` columns are real; ``y [N_p, 1]`` the targets."""
  plgpu = _plgpu()
  tm, tv = blocks.tokens, blocks.vocab
  n_p, v_p = x.shape
  nj = v_p // tv
  inv_temp = 1.0 / temperature

  def body(x_gmem, y_gmem, m_gmem, s_gmem, t_gmem, ly_gmem, x_smem, y_smem, out_smem, bars):
    i, j = lax.axis_index("tokens"), lax.axis_index("vocab")
    rows = pl.ds(i * tm, tm)
    plgpu.copy_gmem_to_smem(x_gmem.at[rows, pl.ds(j * tv, tv)], x_smem, bars.at[0])
    plgpu.copy_gmem_to_smem(y_gmem.at[rows], y_smem, bars.at[1])
    plgpu.barrier_wait(bars.at[0])
    l = x_smem[...].astype(jnp.float32) * inv_temp
    cols = j * tv + lax.broadcasted_iota(jnp.int32, l.shape, 1)
    l = jnp.where(cols < vocab, l, -jnp.inf)
    plgpu.barrier_wait(bars.at[1])
    _store_stats(l, cols, y_smem, out_smem, (m_gmem, s_gmem, t_gmem, ly_gmem), j, rows)

  part = jax.ShapeDtypeStruct((nj, n_p), jnp.float32)
  scratch = [
      plgpu.SMEM((tm, tv), x.dtype, transforms=_smem_transforms(tv, x.dtype)),
      plgpu.SMEM((tm,), jnp.int32),
      plgpu.SMEM((4, tm), jnp.float32),
      plgpu.Barrier(num_barriers=2),
  ]
  call = _kernel(body, [part] * 4, scratch, (n_p // tm, nj), interpret)
  return tuple(call(x, y[:, 0]))


def dlogits_call(x, y, lse, mean_l, g_logp, g_ent, *, vocab, blocks, temperature, interpret):
  """``d logits [N_p, V_p]`` (``x``'s dtype) of padded logits; per-row operands ``[N_p, 1]``.

  Padded columns are masked to ``-inf`` (so ``p = 0`` there and their ``dz`` is 0), as are
  real ``-inf`` logits, whose ``0 * -inf`` the ``where`` before the product avoids.
  """
  plgpu = _plgpu()
  tm, tv = blocks.tokens, blocks.vocab
  n_p, v_p = x.shape
  inv_temp = 1.0 / temperature
  stats = jnp.concatenate([lse, mean_l, g_logp, g_ent], axis=1).T  # [4, N_p] fp32

  def body(x_gmem, y_gmem, r_gmem, dx_gmem, x_smem, y_smem, r_smem, dx_smem, bars):
    i, j = lax.axis_index("tokens"), lax.axis_index("vocab")
    rows, cols_sl = pl.ds(i * tm, tm), pl.ds(j * tv, tv)
    plgpu.copy_gmem_to_smem(x_gmem.at[rows, cols_sl], x_smem, bars.at[0])
    plgpu.copy_gmem_to_smem(y_gmem.at[rows], y_smem, bars.at[1])
    plgpu.copy_gmem_to_smem(r_gmem.at[:, rows], r_smem, bars.at[2])
    plgpu.barrier_wait(bars.at[0])
    l = x_smem[...].astype(jnp.float32) * inv_temp
    cols = j * tv + lax.broadcasted_iota(jnp.int32, l.shape, 1)
    l = jnp.where(cols < vocab, l, -jnp.inf)
    plgpu.barrier_wait(bars.at[1])
    plgpu.barrier_wait(bars.at[2])
    _store_tile(_tile_dz(l, cols, y_smem, r_smem, inv_temp), dx_smem, dx_gmem.at[rows, cols_sl])

  scratch = [
      plgpu.SMEM((tm, tv), x.dtype, transforms=_smem_transforms(tv, x.dtype)),
      plgpu.SMEM((tm,), jnp.int32),
      plgpu.SMEM((4, tm), jnp.float32),
      plgpu.SMEM((tm, tv), x.dtype, transforms=_smem_transforms(tv, x.dtype)),
      plgpu.Barrier(num_barriers=3),
  ]
  call = _kernel(body, jax.ShapeDtypeStruct((n_p, v_p), x.dtype), scratch,
                 (n_p // tm, v_p // tv), interpret)
  return call(x, y[:, 0], stats)
