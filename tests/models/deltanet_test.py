"""Tests for the DeltaNet / Gated DeltaNet mixers: cache decoding, padding, causality, init."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized
from flax import nnx

from rljax.models._deltanet import DeltaNet, GatedDeltaNet

_TOL = dict(rtol=1e-5, atol=1e-5)
_D, _H, _DH = 8, 2, 4


def _make(cls, **kw):
  return cls(_D, _H, _DH, chunk_size=kw.pop("chunk_size", 4), rngs=nnx.Rngs(0), **kw)


def _jitted(module):
  """A jitted ``(x, mask, cache) -> (y, cache)`` of ``module`` (one compile per shape)."""
  graphdef, state = nnx.split(module)

  @jax.jit
  def fn(state, x, mask, cache):
    return nnx.merge(graphdef, state)(x, mask_BT=mask, cache=cache)

  return lambda x, mask=None, cache=None: fn(state, x, mask, cache)


def _x(seed, b=2, t=7):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(b, t, _D)), jnp.float32)


class DeltaNetTest(parameterized.TestCase):

  @parameterized.parameters(DeltaNet, GatedDeltaNet)
  def test_decode_with_cache_matches_full_forward(self, cls):
    mixer = _make(cls)
    fwd = _jitted(mixer)
    x = _x(0)
    y_full, cache_none = fwd(x)
    self.assertIsNone(cache_none)
    cache = mixer.init_cache(2)
    y_pre, cache = fwd(x[:, :3], None, cache)  # prefill, then one token at a time
    ys = [y_pre]
    for t in range(3, x.shape[1]):
      y_t, cache = fwd(x[:, t : t + 1], None, cache)
      ys.append(y_t)
    np.testing.assert_allclose(jnp.concatenate(ys, axis=1), y_full, **_TOL)
    chex.assert_trees_all_equal_shapes_and_dtypes(cache, mixer.init_cache(2))

  def test_recurrent_mode_matches_chunk_mode(self):
    # DeltaNet here; GatedDeltaNet's two modes are compared (values and gradients) below.
    x = _x(1, t=9)
    y_chunk, _ = _jitted(_make(DeltaNet))(x)
    y_rec, _ = _jitted(_make(DeltaNet, mode="recurrent"))(x)
    np.testing.assert_allclose(y_chunk, y_rec, **_TOL)

  def test_chunk_and_recurrent_parameter_gradients_match(self):
    x = _x(2, t=9)

    def grads(mode):
      graphdef, state = nnx.split(_make(GatedDeltaNet, mode=mode))
      loss = lambda st: jnp.sum(jnp.sin(nnx.merge(graphdef, st)(x)[0]))
      return jax.jit(jax.value_and_grad(loss))(state)

    (y_chunk, g_chunk), (y_rec, g_rec) = grads("chunk"), grads("recurrent")
    np.testing.assert_allclose(y_chunk, y_rec, **_TOL)
    chex.assert_trees_all_close(g_chunk, g_rec, **_TOL)
    self.assertTrue(all(np.any(leaf != 0) for leaf in jax.tree.leaves(g_chunk)))

  @parameterized.parameters(DeltaNet, GatedDeltaNet)
  def test_left_padding_is_a_no_op(self, cls):
    mixer = _make(cls)
    fwd = _jitted(mixer)
    x = _x(3, t=6)
    junk = 5.0 * _x(4, t=3)
    # Row 0: 3 padded (junk) tokens then the 6 real ones; row 1 unpadded with 3 junk tokens cut.
    xp = jnp.concatenate([junk, x], axis=1)
    mask = jnp.concatenate([jnp.zeros((2, 3)), jnp.ones((2, 6))], axis=1).at[1, :3].set(1.0)
    y_pad, c_pad = fwd(xp, mask, mixer.init_cache(2))
    y_ref, c_ref = fwd(x, None, mixer.init_cache(2))
    np.testing.assert_allclose(y_pad[0, 3:], y_ref[0], **_TOL)
    # The cache after a padded prefill continues like the unpadded one.
    np.testing.assert_allclose(c_pad["state"][0], c_ref["state"][0], **_TOL)
    np.testing.assert_allclose(c_pad["conv"][0], c_ref["conv"][0], **_TOL)
    self.assertFalse(np.allclose(c_pad["state"][1], c_ref["state"][1], **_TOL))

  def test_causality(self):
    # GatedDeltaNet; DeltaNet shares the code path (g = None).
    graphdef, state = nnx.split(_make(GatedDeltaNet, chunk_size=3))
    x = _x(5, b=1, t=7)
    jac = jax.jit(jax.jacrev(lambda x: nnx.merge(graphdef, state)(x)[0]))(x)
    jac = np.asarray(jac).reshape(7, _D, 7, _D)
    for t in range(7):
      np.testing.assert_array_equal(jac[t, :, t + 1 :], 0.0)
      self.assertTrue(np.any(jac[t, :, : t + 1] != 0.0))

  def test_gated_init_matches_fla(self):
    mixer = GatedDeltaNet(_D, 16, _DH, rngs=nnx.Rngs(1))
    a = np.exp(np.asarray(mixer.A_log[...]))
    self.assertTrue(np.all((a > 0) & (a <= 16)))
    dt = np.log1p(np.exp(np.asarray(mixer.dt_bias[...])))  # softplus(dt_bias) = dt
    self.assertTrue(np.all((dt >= 1e-4 - 1e-7) & (dt <= 0.1 + 1e-6)))
    bound = 1 / math.sqrt(4)
    for w in (mixer.q_conv, mixer.k_conv, mixer.v_conv):
      self.assertEqual(w[...].shape, (4, 16 * _DH))
      self.assertTrue(np.all(np.abs(np.asarray(w[...])) <= bound))
    np.testing.assert_array_equal(mixer.o_norm_scale[...], np.ones(_DH))

  def test_gate_is_a_decay_and_beta_in_unit_interval(self):
    mixer = _make(GatedDeltaNet)
    x = _x(6)
    g = -jnp.exp(mixer.A_log[...])[None, None, :] * jax.nn.softplus(
        mixer.a_proj(x) + mixer.dt_bias[...][None, None, :]
    )
    self.assertTrue(np.all(np.asarray(g) <= 0.0))
    beta = jax.nn.sigmoid(mixer.b_proj(x))
    self.assertTrue(np.all((np.asarray(beta) >= 0) & (np.asarray(beta) <= 1)))

  def test_no_output_gate_and_bf16(self):
    mixer = GatedDeltaNet(
        _D, _H, _DH, use_output_gate=False, dtype=jnp.bfloat16, rngs=nnx.Rngs(0)
    )
    self.assertFalse(hasattr(mixer, "g_proj"))
    cache = mixer.init_cache(2)
    self.assertEqual(cache["conv"].dtype, jnp.bfloat16)
    self.assertEqual(cache["state"].dtype, jnp.float32)
    y, cache = _jitted(mixer)(_x(7, t=3), None, cache)
    self.assertEqual(y.dtype, jnp.bfloat16)
    self.assertEqual(cache["state"].dtype, jnp.float32)
    self.assertTrue(np.all(np.isfinite(np.asarray(y, np.float32))))

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "mode"):
      _make(DeltaNet, mode="parallel")
    with self.assertRaisesRegex(ValueError, "head_dim"):
      DeltaNet(_D, _H, 0, rngs=nnx.Rngs(0))
    with self.assertRaisesRegex(ValueError, "d_model"):
      _make(DeltaNet)(jnp.zeros((1, 2, _D + 1)))
