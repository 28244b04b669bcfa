"""Tests for rljax.kernels: fused log-prob + entropy (reference, chunked XLA, Pallas)."""

import dataclasses
import math
from unittest import mock

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from jax import export
from jax.test_util import check_grads

from rljax.kernels import (
  BlockSizes,
  _mosaic_gpu,
  _pallas,
  default_block_sizes,
  fused_linear_logprobs_and_entropy,
  fused_linear_logprobs_and_entropy_reference,
  logprobs_and_entropy_reference,
  token_logprobs_and_entropy,
)
from rljax.kernels import _logprob_entropy as le

_ACCELERATED = jax.default_backend() in ("gpu", "cuda", "rocm", "tpu")
_TINY = BlockSizes(tokens=16, vocab=128, hidden=16)  # pallas: pow2 (Triton) tiles
_TPU_TINY = BlockSizes(tokens=16, vocab=128, hidden=128)


def _inputs(shape, d, vocab, dtype=jnp.float32, seed=0):
  """Random hidden ``[*shape, D]``, weight ``[D, V]``, targets and loss weights ``[*shape]``."""
  k = jax.random.split(jax.random.key(seed), 5)
  hidden = jax.random.normal(k[0], (*shape, d), jnp.float32).astype(dtype)
  weight = (jax.random.normal(k[1], (d, vocab), jnp.float32) / math.sqrt(d) * 2).astype(dtype)
  targets = jax.random.randint(k[2], shape, 0, vocab)
  a = jax.random.uniform(k[3], shape, minval=-1.0, maxval=1.0)
  b = jax.random.uniform(k[4], shape, minval=-1.0, maxval=1.0)
  return hidden, weight, targets, a, b


def _linear_value_and_grads(fn, hidden, weight, targets, a, b, **kw):
  """Outputs and ``grad`` of ``sum(a * logp) + sum(b * H)`` w.r.t. hidden and weight."""

  def loss(h, w):
    logp, ent = fn(h, w, targets, **kw)
    return jnp.sum(a * logp) + jnp.sum(b * ent), (logp, ent)

  vg = jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True))
  (_, (logp, ent)), (dh, dw) = vg(hidden, weight)
  return logp, ent, dh, dw


def _logits_value_and_grads(fn, logits, targets, a, b, **kw):
  def loss(x):
    logp, ent = fn(x, targets, **kw)
    return jnp.sum(a * logp) + jnp.sum(b * ent), (logp, ent)

  (_, (logp, ent)), dx = jax.jit(jax.value_and_grad(loss, has_aux=True))(logits)
  return logp, ent, dx


def _assert_close(actual, desired, dtype):
  tol = {jnp.float32: 1e-5, jnp.bfloat16: 3e-2, jnp.float16: 1e-2}[dtype]
  for x, y in zip(actual, desired):
    assert x.shape == y.shape, (x.shape, y.shape)
    np.testing.assert_allclose(
        np.asarray(x, np.float32), np.asarray(y, np.float32), atol=tol, rtol=tol
    )


# ----------------------------------------------------------------------------- pallas


class LogprobEntropyTest(parameterized.TestCase):
  """The Pallas kernels, compiled: runs only where a GPU or TPU exists."""

  INTERPRET = False

  def setUp(self):
    super().setUp()
    if not self.INTERPRET and not _ACCELERATED:
      self.skipTest("compiled Pallas needs a GPU or TPU; see LogprobEntropyInterpretTest")
    # fp32 matmuls at full precision, the reference's and the kernels' (whose fp32 tiles follow
    # this setting too): on GPUs the default is TF32, which alone misses the 1e-5 tolerance.
    self.enter_context(jax.default_matmul_precision("highest"))

  def _plan(self, temperature, blocks, style="grid"):
    backend = jax.default_backend()
    platform = "cpu" if self.INTERPRET else ("tpu" if backend == "tpu" else "gpu")
    if platform == "gpu":
      style = "loop"  # GPU grid programs run concurrently: reductions must loop in-kernel
    if platform == "tpu":
      style, blocks = "grid", _TPU_TINY
    return le._Plan(
        impl="pallas", temperature=temperature, blocks=blocks, interpret=self.INTERPRET,
        style=style, platform=platform,
    )

  def _fused(self, plan):
    def fn(h, w, y):
      lead = h.shape[:-1]
      logp, ent = le._linear(plan, h.reshape(-1, h.shape[-1]), w, y.reshape(-1))
      return logp.reshape(lead), ent.reshape(lead)

    return fn

  @parameterized.named_parameters(
      # N = 18 and D = 24 are not multiples of the 16-tiles; V = 300 not of 128. slab 0: the
      # in-kernel reductions (TPU's backward); > 0: the d-logits slabs + GEMMs (GPU's default).
      ("grid_style", (2, 9), 24, 300, 0.7, "grid", None, 0),
      ("loop_style", (2, 9), 24, 300, 0.7, "loop", None, 0),
      # d hidden's 5 vocabulary tiles in 2 runs of 3 (the second clipped), 8 warps on GPU.
      ("loop_uneven_splits", (2, 9), 24, 600, 0.7, "loop", 2, 0),
      # 3 slabs of 256 columns (2 tiles each) over V = 600 (168 padded columns).
      ("gemm_slabs", (2, 9), 24, 600, 0.7, "loop", None, 256),
      ("gemm_one_slab", (2, 9), 24, 300, 1.3, "grid", None, 4096),
  )
  def test_fused_matches_reference(self, shape, d, vocab, temperature, style, splits, slab):
    hidden, weight, targets, a, b = _inputs(shape, d, vocab)
    blocks = dataclasses.replace(_TINY, slab_vocab=slab)
    if splits is not None:
      blocks = dataclasses.replace(blocks, splits=splits, num_warps=8)
    plan = self._plan(temperature, blocks, style)
    got = _linear_value_and_grads(self._fused(plan), hidden, weight, targets, a, b)
    want = _linear_value_and_grads(
        fused_linear_logprobs_and_entropy_reference, hidden, weight, targets, a, b,
        temperature=temperature,
    )
    _assert_close(got, want, jnp.float32)

  @parameterized.named_parameters(
      # V = 600 in 3 forward slabs of 256 columns: two full ones in the fori_loop, the last
      # 88 real columns (of a 128-column tile) peeled; with the in-kernel and the slab backward.
      ("three_slabs", 600, 256, 0),
      ("three_slabs_gemm_bwd", 600, 256, 256),
      # V = 300, slabs of 128: two full one-tile slabs and a 44-column one.
      ("one_tile_slabs", 300, 128, 0),
      ("slab_wider_than_vocab", 300, 4096, 0),  # one grid
  )
  def test_forward_slabs_match_reference(self, vocab, fwd_slab, slab):
    hidden, weight, targets, a, b = _inputs((2, 9), 24, vocab, seed=3)
    blocks = dataclasses.replace(_TINY, fwd_slab_vocab=fwd_slab, slab_vocab=slab)
    plan = self._plan(0.7, blocks, "loop")
    got = _linear_value_and_grads(self._fused(plan), hidden, weight, targets, a, b)
    want = _linear_value_and_grads(
        fused_linear_logprobs_and_entropy_reference, hidden, weight, targets, a, b,
        temperature=0.7,
    )
    _assert_close(got, want, jnp.float32)

  def test_fused_bf16(self):
    hidden, weight, targets, a, b = _inputs((20,), 32, 200, jnp.bfloat16, seed=1)
    plan = self._plan(1.0, _TINY)
    got = _linear_value_and_grads(self._fused(plan), hidden, weight, targets, a, b)
    want = _linear_value_and_grads(
        fused_linear_logprobs_and_entropy_reference, hidden, weight, targets, a, b
    )
    self.assertEqual(got[0].dtype, jnp.float32)
    self.assertEqual(got[2].dtype, jnp.bfloat16)
    _assert_close(got, want, jnp.bfloat16)

  def test_fused_large_odd_vocab(self):
    # V = 50,257 (GPT-2) with tiny N and D. Interpret mode: 13 tiles of 4096 (a 1105-column
    # tail); compiled: 393 tiles of 128 (an 81-column tail), register-sized for Triton.
    hidden, weight, targets, a, b = _inputs((3,), 16, 50_257, seed=2)
    plan = self._plan(1.0, BlockSizes(tokens=16, vocab=4096 if self.INTERPRET else 128, hidden=16))
    got = _linear_value_and_grads(self._fused(plan), hidden, weight, targets, a, b)
    want = _linear_value_and_grads(
        fused_linear_logprobs_and_entropy_reference, hidden, weight, targets, a, b
    )
    _assert_close(got, want, jnp.float32)

  def test_public_api_default_blocks(self):
    # impl="pallas" with the backend's default BlockSizes (GPU 64 x 256 x 64, TPU 256 x 512 x
    # 256, interpret 16 x 128 x 32); N = 74, D and V = 1000 are multiples of none. Compiled:
    # D = 904 (Qwen2.5-0.5B's 896 + 8): 15 hidden chunks, which an unrolled Triton kernel could
    # not hold in shared memory.
    d = 96 if self.INTERPRET else 904
    hidden, weight, targets, a, b = _inputs((2, 37), d, 1000, seed=4)
    got = _linear_value_and_grads(
        fused_linear_logprobs_and_entropy, hidden, weight, targets, a, b, temperature=0.9,
        impl="pallas",
    )
    want = _linear_value_and_grads(
        fused_linear_logprobs_and_entropy_reference, hidden, weight, targets, a, b,
        temperature=0.9,
    )
    _assert_close(got, want, jnp.float32)

  def test_from_logits_with_masked_vocab(self):
    k = jax.random.split(jax.random.key(3), 4)
    logits = 3.0 * jax.random.normal(k[0], (2, 5, 200))
    logits = logits.at[..., 10:60].set(-jnp.inf)  # masked vocabulary entries
    targets = jax.random.randint(k[1], (2, 5), 60, 200)
    a, b = jax.random.normal(k[2], (2, 5)), jax.random.normal(k[3], (2, 5))
    plan = self._plan(1.3, _TINY)

    def fn(x, y):
      logp, ent = le._from_logits(plan, x.reshape(-1, x.shape[-1]), y.reshape(-1))
      return logp.reshape(y.shape), ent.reshape(y.shape)

    got = _logits_value_and_grads(fn, logits, targets, a, b)
    want = _logits_value_and_grads(
        logprobs_and_entropy_reference, logits, targets, a, b, temperature=1.3
    )
    for x in got:
      self.assertTrue(bool(jnp.all(jnp.isfinite(x))))
    _assert_close(got, want, jnp.float32)


class LogprobEntropyInterpretTest(LogprobEntropyTest):
  """The same kernels in Pallas interpret mode: runs everywhere, CI included."""

  INTERPRET = True


class PallasLoweringTest(parameterized.TestCase):
  """The kernels lower for GPU (Triton, Mosaic GPU) and TPU (Mosaic) from this CPU machine."""

  @parameterized.parameters(
      # fwd, dh and dW kernels; GPU's default backward: fwd and the d-logits slab kernel.
      ("cuda", "loop", BlockSizes(tokens=64, vocab=128, hidden=64, slab_vocab=0), 3),
      ("cuda", "loop", BlockSizes(tokens=64, vocab=128, hidden=64), 2),
      ("tpu", "grid", BlockSizes(tokens=128, vocab=512, hidden=128), 3),
      ("tpu", "grid", BlockSizes(tokens=128, vocab=512, hidden=128, slab_vocab=512), 2),
      # forward in vocabulary slabs: the peeled last slab, the loop body's slab, the dz slab.
      ("cuda", "loop", BlockSizes(tokens=64, vocab=128, hidden=64, fwd_slab_vocab=256), 3),
      # Mosaic GPU (MosaicGpuTest): export runs its layout inference and dialect lowering for
      # sm_90; the forward's stats and the d-logits slab kernel, then with forward slabs.
      ("cuda", "loop", BlockSizes(tokens=64, vocab=256, hidden=64, gpu_lowering="mosaic_gpu"), 2),
      ("cuda", "loop", BlockSizes(tokens=64, vocab=256, hidden=64, gpu_lowering="mosaic_gpu",
                                  fwd_slab_vocab=256), 3),
  )
  def test_lowers(self, platform, style, blocks, kernels):
    plan = le._Plan(
        impl="pallas", temperature=0.7, blocks=blocks, interpret=False, style=style,
        platform="gpu" if platform == "cuda" else platform,
    )

    def loss(h, w, y):
      logp, ent = le._linear(plan, h, w, y)
      return jnp.sum(logp) + 0.01 * jnp.sum(ent)

    n, d, vocab = 100, 896, 1000  # Qwen2.5-0.5B width; N and V not multiples of the tiles
    args = (
        jax.ShapeDtypeStruct((n, d), jnp.bfloat16),
        jax.ShapeDtypeStruct((d, vocab), jnp.bfloat16),
        jax.ShapeDtypeStruct((n,), jnp.int32),
    )
    checks = [
        export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton"),
        export.DisabledSafetyCheck.custom_call("tpu_custom_call"),
    ]
    exported = export.export(
        jax.jit(jax.value_and_grad(loss, (0, 1))), platforms=[platform], disabled_checks=checks
    )(*args)
    target = "__gpu$xla.gpu.triton" if platform == "cuda" else "tpu_custom_call"
    if blocks.gpu_lowering == "mosaic_gpu":
      target = "@mosaic_gpu_v2("
    self.assertEqual(exported.mlir_module().count(target), kernels)


class MosaicGpuTest(parameterized.TestCase):
  """``BlockSizes(gpu_lowering="mosaic_gpu")``: the wgmma kernels of ``_mosaic_gpu``, compiled
  on a GPU, elsewhere in Mosaic GPU's interpreter (simulated shared memory, TMA copies,
  barriers and wgmma), through the public API."""

  def setUp(self):
    super().setUp()
    if jax.default_backend() == "tpu":
      self.skipTest("gpu_lowering applies to GPU and CPU interpret mode; TPU runs Mosaic TPU")
    if jax.default_backend() == "gpu":
      try:
        _mosaic_gpu.check_device()
      except ValueError as e:
        self.skipTest(str(e))  # not a Hopper GPU

  @parameterized.named_parameters(
      # N = 74 (2 row blocks of 64, 54 padded rows), D = 96 (2 hidden chunks, 32 padded),
      # V = 600: the forward in 3 slabs of 256 columns (two in the fori_loop, the 88-column
      # last one peeled) and the backward's d logits in 3 slabs of 256.
      ("slabs_bf16", (2, 37), 96, 600, jnp.bfloat16, 0.7, 256, 256, 64, 128),
      # One forward grid and the automatic d-logits slab (one, 512 columns), 256-wide tiles.
      ("one_grid_fp16", (70,), 64, 300, jnp.float16, 1.0, None, None, 64, 256),
      # 128-row blocks: two compute warpgroups (64 rows each) and a memory warpgroup
      # (warp-specialized pipeline); N = 150 in 2 blocks, the second 22 rows real.
      ("two_warpgroups_bf16", (150,), 96, 300, jnp.bfloat16, 0.8, None, 256, 128, 128),
  )
  def test_matches_reference(self, shape, d, vocab, dtype, temperature, fwd_slab, slab, tokens,
                             tv):
    hidden, weight, targets, a, b = _inputs(shape, d, vocab, dtype, seed=5)
    blocks = BlockSizes(tokens=tokens, vocab=tv, hidden=64, gpu_lowering="mosaic_gpu",
                        fwd_slab_vocab=fwd_slab, slab_vocab=slab)
    got = _linear_value_and_grads(
        fused_linear_logprobs_and_entropy, hidden, weight, targets, a, b,
        temperature=temperature, impl="pallas", block_sizes=blocks,
    )
    want = _linear_value_and_grads(
        fused_linear_logprobs_and_entropy_reference, hidden, weight, targets, a, b,
        temperature=temperature,
    )
    self.assertEqual(got[2].dtype, dtype)
    _assert_close(got, want, dtype)

  @parameterized.parameters(jnp.float32, jnp.bfloat16)
  def test_from_logits_with_masked_vocab(self, dtype):
    # N = 74 (2 row blocks), V = 300 (3 tiles of 128, 84 padded columns), 50 -inf logits.
    k = jax.random.split(jax.random.key(3), 4)
    logits = (3.0 * jax.random.normal(k[0], (2, 37, 300))).astype(dtype)
    logits = logits.at[..., 10:60].set(-jnp.inf)
    targets = jax.random.randint(k[1], (2, 37), 60, 300)
    a, b = jax.random.normal(k[2], (2, 37)), jax.random.normal(k[3], (2, 37))
    blocks = BlockSizes(tokens=64, vocab=128, gpu_lowering="mosaic_gpu")
    got = _logits_value_and_grads(token_logprobs_and_entropy, logits, targets, a, b,
                                  temperature=1.3, impl="pallas", block_sizes=blocks)
    want = _logits_value_and_grads(logprobs_and_entropy_reference, logits, targets, a, b,
                                   temperature=1.3)
    for x in got:
      self.assertTrue(bool(jnp.all(jnp.isfinite(x))))
    self.assertEqual(got[2].dtype, dtype)
    _assert_close(got, want, dtype)

  def test_from_logits_lowers_for_hopper(self):
    blocks = BlockSizes(tokens=64, vocab=256, gpu_lowering="mosaic_gpu")
    plan = le._Plan(impl="pallas", temperature=0.7, blocks=blocks, platform="gpu", style="loop")

    def loss(x, y):
      logp, ent = le._from_logits(plan, x, y)
      return jnp.sum(logp) + 0.01 * jnp.sum(ent)

    args = (jax.ShapeDtypeStruct((100, 1000), jnp.float32), jax.ShapeDtypeStruct((100,), jnp.int32))
    exported = export.export(jax.jit(jax.grad(loss)), platforms=["cuda"])(*args)
    self.assertEqual(exported.mlir_module().count("@mosaic_gpu_v2("), 2)

  @parameterized.parameters(64, 128)
  def test_no_races_in_the_interpreter(self, tokens):
    # The interpreter's happens-before race detector (vector clocks over the block's threads,
    # i.e. warpgroups, and the TMA engine) on each kernel alone: 2 x 2 blocks, 3 pipelined
    # hidden chunks in the fused ones (with 128-row blocks: two compute warpgroups and the
    # memory one). It flags a read of a TMA destination before its barrier wait in a bare
    # kernel, but inside these kernels the pipeline's own waits can mask a missing one, and
    # wgmma runs synchronously there: a clean run is necessary, not sufficient.
    if jax.default_backend() != "cpu":
      self.skipTest("interpreter only")
    from jax._src.pallas.mosaic_gpu.interpret import interpret_pallas_call as gpu_interpret

    blocks = BlockSizes(tokens=tokens, vocab=128, hidden=64, gpu_lowering="mosaic_gpu")
    n = 2 * tokens
    hidden, weight, targets, _, _ = _inputs((n,), 192, 256, jnp.bfloat16, seed=6)
    y = targets[:, None].astype(jnp.int32)
    logits = jnp.dot(hidden, weight, preferred_element_type=jnp.float32)  # [n, 256]
    rows = [jnp.full((n, 1), 3.0), jnp.zeros((n, 1)), jnp.ones((n, 1)), jnp.ones((n, 1))]
    params = dataclasses.replace(_mosaic_gpu.interpret_params(), detect_races=True,
                                 num_tma_threads_per_device=2)
    calls = {
        "stats": lambda: _mosaic_gpu.stats_call(hidden, weight, y, vocab=250, blocks=blocks,
                                                temperature=1.0, interpret=True),
        "dz": lambda: _mosaic_gpu.dz_call(hidden, weight, y, *rows, blocks=blocks,
                                          temperature=1.0, interpret=True),
        "logits_stats": lambda: _mosaic_gpu.logits_stats_call(
            logits, y, vocab=250, blocks=blocks, temperature=1.0, interpret=True),
        "dlogits": lambda: _mosaic_gpu.dlogits_call(
            logits, y, *rows, vocab=250, blocks=blocks, temperature=1.0, interpret=True),
    }
    if tokens == 128:  # the from-logits kernels have no warp-specialized form
      calls = {k: v for k, v in calls.items() if k in ("stats", "dz")}
    for name, call in calls.items():
      with _mosaic_gpu.force_interpret_params(params):
        jax.block_until_ready(call())
      self.assertFalse(gpu_interpret.get_races().races_found, name)

  def test_errors_name_the_field(self):
    ok = dict(tokens=64, vocab=128, hidden=64, gpu_lowering="mosaic_gpu")
    y = jnp.zeros((4,), jnp.int32)
    bf16 = (jnp.zeros((4, 64), jnp.bfloat16), jnp.zeros((64, 256), jnp.bfloat16))
    cases = [
        ({}, (jnp.zeros((4, 64)), jnp.zeros((64, 256))), "bfloat16 or float16"),
        ({"tokens": 32}, bf16, "BlockSizes.tokens must be 64 .* or 128"),
        ({"tokens": 192, "vocab": 64}, bf16, "BlockSizes.tokens must be 64 .* or 128"),
        ({"vocab": 512}, bf16, "BlockSizes.vocab must be a multiple of 64 and at most 256"),
        ({"hidden": 32}, bf16, "BlockSizes.hidden must be a multiple of 64"),
        ({"slab_vocab": 0}, bf16, "slab_vocab=0"),
        ({"vocab": 256, "hidden": 256}, bf16, "need 365824 bytes of shared memory"),
    ]
    for change, (h, w), message in cases:
      blocks = BlockSizes(**{**ok, **change})
      with self.assertRaisesRegex(ValueError, message):
        jax.eval_shape(
            lambda h, w, y, blocks=blocks: jax.grad(
                lambda h: jnp.sum(fused_linear_logprobs_and_entropy(
                    h, w, y, impl="pallas", block_sizes=blocks)[0]))(h),
            h, w, y,
        )
    with self.assertRaisesRegex(ValueError, "BlockSizes.gpu_lowering must be one of"):
      BlockSizes(gpu_lowering="cuda")
    with mock.patch.object(_mosaic_gpu, "_jax_version", return_value=(0, 9)):
      with self.assertRaisesRegex(ValueError, "needs jax >= 0.10"):
        _mosaic_gpu.check(BlockSizes(**ok), jnp.bfloat16)
    ampere = type("Device", (), {"device_kind": "NVIDIA A100-SXM4-80GB",
                                 "compute_capability": "8.0"})()
    with self.assertRaisesRegex(ValueError, r"need a Hopper GPU .* \(compute capability 8.0\)"):
      _mosaic_gpu.check_device(ampere)
    with self.assertRaisesRegex(ValueError, "from-logits kernels need an sm_90 or later GPU"):
      _mosaic_gpu.check_device(ampere, fused=False)
    blackwell = type("Device", (), {"device_kind": "NVIDIA B200", "compute_capability": "10.0"})()
    _mosaic_gpu.check_device(blackwell, fused=False)  # TMA, no wgmma needed
    with self.assertRaisesRegex(ValueError, "need a Hopper GPU"):
      _mosaic_gpu.check_device(blackwell)
    # From logits (no wgmma): any float dtype, any hidden, tokens any multiple of 64, but at
    # most 16384 elements a tile (one warpgroup's registers).
    jax.eval_shape(lambda x: token_logprobs_and_entropy(
        x, y, impl="pallas", block_sizes=BlockSizes(**{**ok, "hidden": 16})), jnp.zeros((4, 256)))
    jax.eval_shape(lambda x: token_logprobs_and_entropy(
        x, y, impl="pallas", block_sizes=BlockSizes(**{**ok, "tokens": 192, "vocab": 64})),
        jnp.zeros((4, 256)))
    for change, message in (({"tokens": 32}, "BlockSizes.tokens must be a multiple of 64"),
                            ({"tokens": 128, "vocab": 256}, "must be at most 16384")):
      blocks = BlockSizes(**{**ok, **change})
      with self.assertRaisesRegex(ValueError, message):
        jax.eval_shape(lambda x, blocks=blocks: token_logprobs_and_entropy(
            x, y, impl="pallas", block_sizes=blocks), jnp.zeros((4, 256)))


# ----------------------------------------------------------------------------- chunked XLA


class XlaLogprobEntropyTest(parameterized.TestCase):
  """The chunked XLA path (the CPU default) against the reference."""

  def setUp(self):
    super().setUp()
    self.enter_context(jax.default_matmul_precision("highest"))  # GPU: no TF32 reference

  @parameterized.named_parameters(
      ("odd_everything", (3, 7), 24, 300, 0.7, BlockSizes(tokens=8, vocab=128)),
      ("gpt2_vocab", (6,), 8, 50_257, 1.0, BlockSizes(tokens=4, vocab=2048)),
      ("qwen_like_odd", (2, 2), 8, 151_643, 1.5, BlockSizes(tokens=4, vocab=8192)),
  )
  def test_fused_matches_reference(self, shape, d, vocab, temperature, blocks):
    hidden, weight, targets, a, b = _inputs(shape, d, vocab)
    got = _linear_value_and_grads(
        fused_linear_logprobs_and_entropy, hidden, weight, targets, a, b,
        temperature=temperature, impl="xla", block_sizes=blocks,
    )
    want = _linear_value_and_grads(
        fused_linear_logprobs_and_entropy, hidden, weight, targets, a, b,
        temperature=temperature, impl="reference",
    )
    _assert_close(got, want, jnp.float32)

  def test_fused_bf16(self):
    hidden, weight, targets, a, b = _inputs((20,), 32, 300, jnp.bfloat16, seed=1)
    got = _linear_value_and_grads(
        fused_linear_logprobs_and_entropy, hidden, weight, targets, a, b, impl="xla",
        block_sizes=BlockSizes(tokens=8, vocab=128),
    )
    want = _linear_value_and_grads(
        fused_linear_logprobs_and_entropy_reference, hidden, weight, targets, a, b
    )
    self.assertEqual([x.dtype for x in got], [jnp.float32] * 2 + [jnp.bfloat16] * 2)
    _assert_close(got, want, jnp.bfloat16)

  def test_auto_is_xla_on_cpu(self):
    plan = le._plan("auto", 1.0, None)
    self.assertEqual(plan.impl, "pallas" if _ACCELERATED else "xla")

  def test_from_logits_masked_vocab_and_bf16(self):
    k = jax.random.split(jax.random.key(4), 4)
    logits = 3.0 * jax.random.normal(k[0], (2, 3, 5000))
    logits = logits.at[..., 100:3000].set(-jnp.inf)
    targets = jax.random.randint(k[1], (2, 3), 3000, 5000)
    a, b = jax.random.normal(k[2], (2, 3)), jax.random.normal(k[3], (2, 3))
    for dtype in (jnp.float32, jnp.bfloat16):
      x = logits.astype(dtype)
      got = _logits_value_and_grads(
          token_logprobs_and_entropy, x, targets, a, b, temperature=0.8, impl="xla"
      )
      want = _logits_value_and_grads(
          token_logprobs_and_entropy, x, targets, a, b, temperature=0.8, impl="reference"
      )
      for y in got:
        self.assertTrue(bool(jnp.all(jnp.isfinite(y))))
      self.assertEqual(got[2].dtype, dtype)
      _assert_close(got, want, dtype)

  def test_check_grads(self):
    hidden, weight, targets, a, b = _inputs((5,), 6, 40, seed=5)
    blocks = BlockSizes(tokens=4, vocab=16)

    def f(h, w):
      logp, ent = fused_linear_logprobs_and_entropy(
          h, w, targets, temperature=0.9, impl="xla", block_sizes=blocks
      )
      return jnp.sum(a * logp) + jnp.sum(b * ent)

    check_grads(jax.jit(f), (hidden, weight), order=1, modes=("rev",), atol=2e-2, rtol=2e-2)

  def test_temp_memory_far_below_materialised_logits(self):
    n, d, vocab = 512, 64, 32_768
    hidden, weight, targets, _, _ = _inputs((n,), d, vocab)

    def temp_bytes(impl, blocks=None):
      def loss(h, w):
        logp, ent = fused_linear_logprobs_and_entropy(
            h, w, targets, impl=impl, block_sizes=blocks
        )
        return jnp.sum(logp) + 0.01 * jnp.sum(ent)

      compiled = jax.jit(jax.grad(loss, (0, 1))).lower(hidden, weight).compile()
      return compiled.memory_analysis().temp_size_in_bytes

    logits_bytes = n * vocab * 4  # 64 MiB
    ours = temp_bytes("xla", BlockSizes(tokens=512, vocab=1024))
    naive = temp_bytes("reference")
    self.assertGreater(naive, logits_bytes)
    # CPU: tiles are 2 MiB and dW's fp32 accumulator [D, V] is 8 MiB. XLA's GPU scheduler keeps
    # more tiles alive (35 MiB on an H200, jax 0.11.2), still well under one logits copy.
    self.assertLess(ours, logits_bytes // 4 if not _ACCELERATED else logits_bytes * 3 // 4)


# ----------------------------------------------------------------------------- properties


_xla_token_fn = jax.jit(lambda x, y: token_logprobs_and_entropy(x, y, impl="xla"))


class PropertiesTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_worked_two_tokens(self):
    # p = [1/4, 3/4]: H = -(1/4 log 1/4 + 3/4 log 3/4), logp(y = 1) = log 3/4.
    logits = jnp.array([[0.0, math.log(3.0)], [0.0, 0.0]])
    targets = jnp.array([1, 0])
    fn = self.variant(lambda x, y: token_logprobs_and_entropy(x, y, impl="xla"))
    logp, ent = fn(logits, targets)
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    np.testing.assert_allclose(logp, [math.log(0.75), math.log(0.5)], atol=1e-6)
    np.testing.assert_allclose(ent, [h, math.log(2.0)], atol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_uniform_is_log_v_and_one_hot_is_zero(self):
    vocab = 50_257
    uniform = jnp.full((1, vocab), 2.5)
    peaked = jnp.zeros((1, vocab)).at[0, 7].set(60.0)
    logits = jnp.concatenate([uniform, peaked])
    targets = jnp.array([3, 7])
    fn = self.variant(lambda x, y: token_logprobs_and_entropy(x, y, impl="xla"))
    logp, ent = fn(logits, targets)
    np.testing.assert_allclose(ent, [math.log(vocab), 0.0], atol=1e-4)
    np.testing.assert_allclose(logp, [-math.log(vocab), 0.0], atol=1e-4)

  @hypothesis.settings(max_examples=10, deadline=None)
  @hypothesis.given(
      scale=st.floats(0.0, 100.0), shift=st.floats(-1e4, 1e4), seed=st.integers(0, 2**16)
  )
  def test_entropy_bounds_and_finite(self, scale, shift, seed):
    vocab = 1000
    logits = scale * jax.random.normal(jax.random.key(seed), (4, vocab)) + shift
    targets = jnp.arange(4)
    logp, ent = _xla_token_fn(logits, targets)
    self.assertTrue(bool(jnp.all(jnp.isfinite(logp)) & jnp.all(jnp.isfinite(ent))))
    self.assertTrue(bool(jnp.all(ent >= 0.0)))
    self.assertTrue(bool(jnp.all(ent <= math.log(vocab) + 1e-4)))
    self.assertTrue(bool(jnp.all(logp <= 0.0)))
    ref_logp, ref_ent = logprobs_and_entropy_reference(logits, targets)
    np.testing.assert_allclose(ent, ref_ent, atol=2e-3, rtol=1e-4)
    np.testing.assert_allclose(logp, ref_logp, atol=2e-3, rtol=1e-4)


# ----------------------------------------------------------------------------- API errors


class ApiErrorsTest(parameterized.TestCase):

  def test_shape_errors_name_the_argument(self):
    h = jnp.zeros((2, 3, 8))
    w = jnp.zeros((8, 10))
    y = jnp.zeros((2, 3), jnp.int32)
    with self.assertRaisesRegex(ValueError, "weight.shape"):
      fused_linear_logprobs_and_entropy(h, jnp.zeros((10, 8)), y)
    with self.assertRaisesRegex(ValueError, "targets shape"):
      fused_linear_logprobs_and_entropy(h, w, jnp.zeros((2,), jnp.int32))
    with self.assertRaisesRegex(ValueError, "targets must have an integer dtype"):
      fused_linear_logprobs_and_entropy(h, w, jnp.zeros((2, 3)))
    with self.assertRaisesRegex(ValueError, "weight must have shape"):
      fused_linear_logprobs_and_entropy(h, jnp.zeros((8,)), y)
    with self.assertRaisesRegex(ValueError, "impl must be one of"):
      token_logprobs_and_entropy(jnp.zeros((2, 3, 10)), y, impl="cuda")
    with self.assertRaisesRegex(ValueError, "temperature"):
      token_logprobs_and_entropy(jnp.zeros((2, 3, 10)), y, temperature=0.0)
    with self.assertRaisesRegex(ValueError, "hidden dtype"):
      fused_linear_logprobs_and_entropy(h.astype(jnp.bfloat16), w, y)

  def test_block_sizes_validated(self):
    with self.assertRaisesRegex(ValueError, "BlockSizes.vocab"):
      BlockSizes(vocab=0)
    with self.assertRaisesRegex(ValueError, "BlockSizes.tokens"):
      BlockSizes(tokens=2.5)
    with self.assertRaisesRegex(ValueError, "BlockSizes.num_warps"):
      BlockSizes(num_warps=0)
    with self.assertRaisesRegex(ValueError, "BlockSizes.splits"):
      BlockSizes(splits=True)
    self.assertIsNone(BlockSizes(splits=None).splits)  # None = automatic
    self.assertEqual(BlockSizes(slab_vocab=0).slab_vocab, 0)  # 0 = in-kernel reductions
    self.assertEqual(BlockSizes(fwd_slab_vocab=0).fwd_slab_vocab, 0)  # 0 = one forward grid
    for bad in (-1, False, 2.0):
      with self.assertRaisesRegex(ValueError, "BlockSizes.slab_vocab"):
        BlockSizes(slab_vocab=bad)
      with self.assertRaisesRegex(ValueError, "BlockSizes.fwd_slab_vocab"):
        BlockSizes(fwd_slab_vocab=bad)
    with self.assertRaises(dataclasses.FrozenInstanceError):
      BlockSizes().vocab = 3  # frozen

  def test_xla_token_chunks_are_balanced(self):
    # (rows per chunk, chunks): never above the tile, padding under 8 rows per chunk.
    self.assertEqual(le._token_chunks(8200, 8192), (4104, 2))
    self.assertEqual(le._token_chunks(8192, 8192), (8192, 1))
    self.assertEqual(le._token_chunks(100, 8192), (100, 1))
    self.assertEqual(le._token_chunks(2049, 512), (416, 5))
    for n in range(1, 300, 7):
      for tokens in (1, 3, 16, 64, 512):
        chunk, num = le._token_chunks(n, tokens)
        self.assertLessEqual(chunk, max(tokens, 1) if num > 1 else n)
        self.assertGreaterEqual(chunk * num, n)
        self.assertLess(chunk * num - n, 8 * num)

  def test_gpu_pallas_defaults_depend_on_dtype(self):
    bf16 = default_block_sizes("pallas", "gpu", jnp.bfloat16)
    fp32 = default_block_sizes("pallas", "gpu", jnp.float32)
    self.assertEqual((bf16.tokens, bf16.vocab, bf16.hidden), (64, 256, 64))
    self.assertEqual((fp32.tokens, fp32.vocab, fp32.hidden), (32, 128, 64))
    self.assertEqual(default_block_sizes("pallas", "gpu"), bf16)  # no dtype: the bf16 tiles
    for impl, backend in (("xla", "gpu"), ("pallas", "tpu"), ("xla", "cpu")):
      self.assertEqual(default_block_sizes(impl, backend, jnp.float32),
                       default_block_sizes(impl, backend, jnp.bfloat16))

  def test_slab_columns(self):
    gpu = BlockSizes(tokens=64, vocab=256, hidden=64)
    # Automatic on GPU: 2^26 / 8192 = 8192 columns; 151,936 / 8192 -> 19 balanced slabs of
    # 7997 columns, rounded up to whole 256-column tiles.
    self.assertEqual(_pallas.slab_columns(gpu, 8192, 151_936, "gpu"), 8192)
    self.assertEqual(_pallas.slab_columns(gpu, 2048, 151_936, "gpu"), 30_464)  # 5 slabs
    self.assertEqual(_pallas.slab_columns(gpu, 8, 1000, "gpu"), 1024)  # one slab, whole tiles
    # N = 2^20 rows: never below one vocabulary tile.
    self.assertEqual(_pallas.slab_columns(gpu, 1 << 20, 151_936, "gpu"), 256)
    self.assertEqual(_pallas.slab_columns(gpu, 8192, 151_936, "tpu"), 0)  # TPU: in-kernel
    self.assertEqual(_pallas.slab_columns(gpu, 8192, 151_936, "cpu"), 0)
    explicit = dataclasses.replace(gpu, slab_vocab=1000)
    self.assertEqual(_pallas.slab_columns(explicit, 8192, 151_936, "tpu"), 1024)
    self.assertEqual(_pallas.slab_columns(dataclasses.replace(gpu, slab_vocab=0), 8, 10, "gpu"), 0)
    for n, vocab, slab in ((100, 300, 128), (8192, 151_936, 5000), (3, 50_257, 999)):
      cols = _pallas.slab_columns(dataclasses.replace(gpu, slab_vocab=slab), n, vocab, "gpu")
      self.assertEqual(cols % 256, 0)
      self.assertLess(-(-vocab // cols) * cols - vocab, 256 * -(-vocab // cols))  # < a tile each

  def test_fwd_slab_columns(self):
    gpu = BlockSizes(tokens=64, vocab=128, hidden=64)
    # Automatic: one grid while 16 N V / 128 bytes of per-tile statistics stay under 256 MiB:
    # 148 MiB at N = 8192 (the benchmarked shape; 74 MiB with its 256-column bf16 tiles) ...
    self.assertEqual(_pallas.fwd_slab_columns(gpu, 8192, 151_936), 0)
    # ... 2^28 / (16 * 65,536) = 256 tiles per slab at N = 65,536: 5 balanced slabs.
    self.assertEqual(_pallas.fwd_slab_columns(gpu, 65_536, 151_936), 30_464)
    self.assertEqual(_pallas.fwd_slab_columns(gpu, 1 << 25, 151_936), 128)  # at least a tile
    self.assertEqual(_pallas.fwd_slab_columns(dataclasses.replace(gpu, fwd_slab_vocab=0),
                                              1 << 25, 151_936), 0)
    explicit = dataclasses.replace(gpu, fwd_slab_vocab=1000)
    self.assertEqual(_pallas.fwd_slab_columns(explicit, 8, 151_936), 1024)
    self.assertEqual(_pallas.fwd_slab_columns(explicit, 8, 600), 640)  # cols >= V: one grid

  def test_triton_block_sizes_must_be_powers_of_two(self):
    plan = le._Plan(
        impl="pallas", temperature=1.0, blocks=BlockSizes(tokens=48, vocab=128, hidden=64),
        platform="gpu", style="loop",
    )
    with self.assertRaisesRegex(ValueError, "BlockSizes.tokens must be a power of two"):
      jax.eval_shape(
          lambda h, w, y: le._linear(plan, h, w, y),
          jnp.zeros((4, 64)), jnp.zeros((64, 256)), jnp.zeros((4,), jnp.int32),
      )


if __name__ == "__main__":
  absltest.main()
