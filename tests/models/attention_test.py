"""Tests for RoPE, grouped-query attention and the KV cache."""

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from flax import nnx
from jax.test_util import check_grads

from rljax.models import (
    Attention,
    RopeScaling,
    apply_rope,
    dot_product_attention,
    rope_inverse_frequencies,
)


def _attention(qk_norm=False, qkv_bias=False):
  return Attention(
      16, num_heads=4, num_kv_heads=2, head_dim=8, qk_norm=qk_norm, qkv_bias=qkv_bias,
      out_bias=qkv_bias, rngs=nnx.Rngs(0),
  )


class RopeTest(chex.TestCase):

  def test_inverse_frequencies_hand_values(self):
    np.testing.assert_allclose(rope_inverse_frequencies(4, theta=100.0), [1.0, 0.1], rtol=1e-6)
    linear = RopeScaling(kind="linear", factor=4.0)
    np.testing.assert_allclose(
        rope_inverse_frequencies(4, theta=100.0, scaling=linear), [0.25, 0.025], rtol=1e-6
    )

  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_value(self):
    # Dh = 2: one frequency (1.0); rotate [x1, x2] by angle = position.
    x = jnp.array([[[[1.0, 0.0]], [[0.0, 2.0]]]])  # [1, 2, 1, 2]
    pos = jnp.array([[0, 1]])
    inv = rope_inverse_frequencies(2, theta=1.0)
    y = self.variant(lambda x, pos: apply_rope(x, pos, inv))(x, pos)
    c, s = np.cos(1.0), np.sin(1.0)
    np.testing.assert_allclose(y[0, 0, 0], [1.0, 0.0], atol=1e-7)
    # [x1 c - x2 s, x2 c + x1 s]
    np.testing.assert_allclose(y[0, 1, 0], [-2 * s, 2 * c], rtol=1e-6)

  def test_rejects_odd_head_dim(self):
    with self.assertRaisesRegex(ValueError, "even"):
      rope_inverse_frequencies(3, theta=10.0)

  def test_bad_scaling(self):
    with self.assertRaisesRegex(ValueError, "kind"):
      RopeScaling(kind="yarn")


@hypothesis.settings(max_examples=8, deadline=None)
@hypothesis.given(m=st.integers(0, 50), n=st.integers(0, 50), shift=st.integers(0, 100))
def test_rope_scores_depend_on_relative_position(m, n, shift):
  inv = rope_inverse_frequencies(8, theta=10_000.0)
  rng = np.random.default_rng(0)
  q = jnp.asarray(rng.normal(size=(1, 1, 1, 8)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(1, 1, 1, 8)), jnp.float32)

  def score(a, b):
    return jnp.sum(apply_rope(q, jnp.array([[a]]), inv) * apply_rope(k, jnp.array([[b]]), inv))

  np.testing.assert_allclose(score(m, n), score(m + shift, n + shift), rtol=1e-4, atol=1e-4)


def _gqa_inputs(seed):
  """q [2, 3, 4, 8], k / v [2, 5, 2, 8] (two kv heads) and a random mask [2, 3, 5]."""
  rng = np.random.default_rng(seed)
  q = jnp.asarray(rng.normal(size=(2, 3, 4, 8)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(2, 5, 2, 8)), jnp.float32)
  v = jnp.asarray(rng.normal(size=(2, 5, 2, 8)), jnp.float32)
  return q, k, v, jnp.asarray(rng.random((2, 3, 5)) > 0.3)


class DotProductAttentionTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_values(self):
    q = jnp.zeros((1, 2, 1, 2))  # zero scores: uniform over allowed keys
    k = jnp.zeros((1, 2, 1, 2))
    v = jnp.array([[[[1.0, 2.0]], [[3.0, 6.0]]]])
    allowed = jnp.array([[[True, False], [True, True]]])
    o = self.variant(dot_product_attention)(q, k, v, allowed)
    np.testing.assert_allclose(o[0, 0, 0], [1.0, 2.0])
    np.testing.assert_allclose(o[0, 1, 0], [2.0, 4.0])

  def test_fully_masked_row_is_zero_and_finite(self):
    q = jnp.ones((1, 1, 2, 2))
    k = jnp.ones((1, 3, 1, 2))
    v = jnp.ones((1, 3, 1, 2))
    o = dot_product_attention(q, k, v, jnp.zeros((1, 1, 3), jnp.bool_))
    np.testing.assert_array_equal(o, np.zeros((1, 1, 2, 2)))

  def test_gradients(self):
    rng = np.random.default_rng(2)
    shapes = [(1, 2, 2, 2), (1, 3, 1, 2), (1, 3, 1, 2)]
    q, k, v = (jnp.asarray(rng.normal(size=s), jnp.float32) for s in shapes)
    allowed = jnp.array([[[True, True, False], [True, False, True]]])
    check_grads(
        lambda q, k, v: dot_product_attention(q, k, v, allowed), (q, k, v), order=1,
        modes=["rev"], atol=1e-2, rtol=1e-2,
    )

  def test_gqa_equals_mha_with_repeated_kv(self):
    q, k, v, allowed = _gqa_inputs(1)
    gqa = dot_product_attention(q, k, v, allowed)
    mha = dot_product_attention(q, jnp.repeat(k, 2, axis=2), jnp.repeat(v, 2, axis=2), allowed)
    np.testing.assert_allclose(gqa, mha, rtol=1e-5, atol=1e-6)

  def test_cache_layout_equals_the_projection_layout(self):
    q, k, v, allowed = _gqa_inputs(2)
    want = dot_product_attention(q, k, v, allowed)
    k_cache, v_cache = jnp.transpose(k, (0, 2, 1, 3)), jnp.transpose(v, (0, 2, 3, 1))
    got = dot_product_attention(q, k_cache, v_cache, allowed, kv_layout="cache")
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    with self.assertRaises(AssertionError):  # values in the keys' layout
      dot_product_attention(q, k_cache, jnp.transpose(v, (0, 2, 1, 3)), allowed,
                            kv_layout="cache")
    with self.assertRaisesRegex(ValueError, "kv_layout"):
      dot_product_attention(q, k, v, allowed, kv_layout="BKSD")


class AttentionTest(chex.TestCase):

  def test_causality_gradient_is_exactly_zero(self):
    attn = _attention(qk_norm=True, qkv_bias=True)
    x = jax.random.normal(jax.random.key(0), (1, 6, 16))
    pos = jnp.arange(6)[None]
    t = 2

    def out_t(x):
      return attn(x, positions_BT=pos)[0][0, t].sum()

    g = jax.jit(jax.grad(out_t))(x)
    np.testing.assert_array_equal(g[0, t + 1 :], 0.0)
    self.assertTrue(np.all(np.abs(g[0, : t + 1]).sum(-1) > 0))

  def test_padding_invariance(self):
    attn = _attention()
    x = jax.random.normal(jax.random.key(1), (1, 4, 16))
    pad = jax.random.normal(jax.random.key(2), (1, 2, 16))
    xp = jnp.concatenate([pad, x], axis=1)
    mask = jnp.array([[0, 0, 1, 1, 1, 1]])
    # One compiled call for both rows: row 0 unpadded (padded out at the end: causal, so the
    # trailing padding cannot influence it), row 1 left-padded.
    x2 = jnp.concatenate([jnp.concatenate([x, pad], axis=1), xp], axis=0)
    mask2 = jnp.concatenate([jnp.array([[1, 1, 1, 1, 0, 0]]), mask], axis=0)
    pos2 = jnp.array([[0, 1, 2, 3, 4, 5], [0, 0, 0, 1, 2, 3]])
    graphdef, state = nnx.split(attn)
    out = jax.jit(lambda s, x, p, m: nnx.merge(graphdef, s)(x, positions_BT=p, mask_BT=m)[0])(
        state, x2, pos2, mask2
    )
    full, padded = out[:1, :4], out[1:, 2:]
    np.testing.assert_allclose(padded, full, rtol=1e-5, atol=1e-6)

  def test_cached_decode_equals_full_forward(self):
    attn = _attention(qk_norm=True)
    graphdef, state = nnx.split(attn)
    x = jax.random.normal(jax.random.key(3), (2, 5, 16))
    mask = jnp.array([[1, 1, 1, 1, 1], [0, 1, 1, 1, 1]])
    pos = jnp.maximum(jnp.cumsum(mask, axis=1) - 1, 0)
    full, none = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x, positions_BT=pos, mask_BT=mask))(
        state, x
    )
    self.assertIsNone(none)

    @jax.jit
    def step(state, x, pos, mask, cache):
      return nnx.merge(graphdef, state)(x, positions_BT=pos, mask_BT=mask, cache=cache)

    cache = attn.init_cache(2, 7)
    y, cache = step(state, x[:, :2], pos[:, :2], mask[:, :2], cache)
    outs = [y]
    for i in range(2, 5):
      y, cache = step(state, x[:, i : i + 1], pos[:, i : i + 1], mask[:, i : i + 1], cache)
      outs.append(y)
    self.assertEqual(int(cache.index), 5)
    np.testing.assert_array_equal(cache.mask[:, :5], mask.astype(bool))
    np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, rtol=1e-5, atol=1e-5)
    # The layout a decode step reads in place: keys [B, K, L, Dh], values [B, K, Dh, L]; the
    # slots past the index are untouched.
    k, dh = attn.num_kv_heads, attn.head_dim
    self.assertEqual(cache.k.shape, (2, k, 7, dh))
    self.assertEqual(cache.v.shape, (2, k, dh, 7))
    v_proj = nnx.merge(graphdef, state).v_proj(x).reshape(2, 5, k, dh)
    np.testing.assert_allclose(cache.v[:, :, :, :5], jnp.transpose(v_proj, (0, 2, 3, 1)),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(cache.k[:, :, 5:], 0.0)
    np.testing.assert_array_equal(cache.v[:, :, :, 5:], 0.0)


if __name__ == "__main__":
  absltest.main()
