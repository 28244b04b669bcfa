"""Tests for the Deep Delta Learning residual (arXiv 2601.00417)."""

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized
from flax import nnx
from jax.test_util import check_grads

from rljax.models._deep_delta import DeepDelta, delta_residual


def _rand(seed, shape, scale=1.0):
  return jnp.asarray(scale * np.random.default_rng(seed).normal(size=shape), jnp.float32)


class DeltaResidualTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters(
      # x = [1, 2], f = [3, 4] -> k = [0.6, 0.8], k.x = 2.2.
      (1.0, 2.0, [0.88, 1.84]),  # x + 1 * k * (2 - 2.2)
      (2.0, 0.0, [-1.64, -1.52]),  # reflection x - 2 k k^T x (norm kept: 5 = 5)
      (0.0, 7.0, [1.0, 2.0]),  # identity
  )
  def test_hand_worked(self, beta, v, want):
    x = jnp.array([[[1.0, 2.0]]])
    f = jnp.array([[[3.0, 4.0]]])
    out = self.variant(delta_residual)(x, f, jnp.full((1, 1), beta), jnp.full((1, 1), v))
    np.testing.assert_allclose(out[0, 0], want, rtol=1e-6, atol=1e-6)

  def test_beta_one_projects_onto_v(self):
    x, f = _rand(0, (2, 3, 8)), _rand(1, (2, 3, 8))
    v = _rand(2, (2, 3))
    out = delta_residual(x, f, jnp.ones((2, 3)), v)
    k = f / jnp.linalg.norm(f, axis=-1, keepdims=True)
    np.testing.assert_allclose(jnp.sum(k * out, -1), v, rtol=1e-5, atol=1e-5)

  def test_zero_sublayer_output_is_finite_identity(self):
    x = _rand(3, (1, 2, 4))
    f = jnp.zeros((1, 2, 4))
    out, grad = jax.value_and_grad(
        lambda f: jnp.sum(delta_residual(x, f, jnp.ones((1, 2)), jnp.ones((1, 2))))
    )(f)
    np.testing.assert_array_equal(
        delta_residual(x, f, jnp.ones((1, 2)), jnp.ones((1, 2))), x
    )
    self.assertTrue(np.isfinite(out) and np.all(np.isfinite(grad)))

  def test_gradients(self):
    args = (_rand(4, (1, 2, 3)), _rand(5, (1, 2, 3)), jnp.array([[0.5, 1.5]]), _rand(6, (1, 2)))
    check_grads(delta_residual, args, order=1, modes=("rev",), eps=1e-2, atol=1e-2, rtol=1e-2)


class DeepDeltaTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_init_beta_is_one(self):
    layer = DeepDelta(8, rngs=nnx.Rngs(0))
    x = _rand(7, (2, 3, 8), scale=5.0)
    beta = self.variant(lambda x: layer.beta(x))(x)
    np.testing.assert_array_equal(beta, np.ones((2, 3)))
    np.testing.assert_array_equal(layer.v(x), np.full((2, 3), 2.0))

  @parameterized.parameters("constant", "linear")
  def test_beta_zero_is_identity(self, value):
    layer = DeepDelta(8, value=value, rngs=nnx.Rngs(0))
    layer.beta_proj.bias[...] = jnp.full((1,), -1e4)  # 2 sigmoid(-1e4) == 0 in fp32
    x, f = _rand(8, (2, 3, 8)), _rand(9, (2, 3, 8))
    np.testing.assert_array_equal(layer.beta(x), np.zeros((2, 3)))
    np.testing.assert_array_equal(layer(x, f), x)

  def test_matches_formula(self):
    layer = DeepDelta(6, value="linear", norm="none", rngs=nnx.Rngs(1))
    layer.beta_proj.kernel[...] = _rand(10, (6, 1))
    x, f = _rand(11, (2, 4, 6)), _rand(12, (2, 4, 6))
    out = layer(x, f)
    b_proj = layer.beta_proj
    beta = 2 * jax.nn.sigmoid(x @ b_proj.kernel[...] + b_proj.bias[...].reshape(1, 1, 1))
    v = x @ layer.v_proj.kernel[...] + layer.v_proj.bias[...].reshape(1, 1, 1)
    k = f / jnp.linalg.norm(f, axis=-1, keepdims=True)
    want = x + beta * k * (v - jnp.sum(k * x, -1, keepdims=True))
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)

  def test_bf16_keeps_dtype_and_bad_args(self):
    layer = DeepDelta(4, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    x = _rand(13, (1, 2, 4)).astype(jnp.bfloat16)
    self.assertEqual(layer(x, x).dtype, jnp.bfloat16)
    with self.assertRaisesRegex(ValueError, "value"):
      DeepDelta(4, value="mlp", rngs=nnx.Rngs(0))
    with self.assertRaisesRegex(ValueError, "beta_init"):
      DeepDelta(4, beta_init=3.0, rngs=nnx.Rngs(0))


@hypothesis.settings(max_examples=10, deadline=None)
@hypothesis.given(
    seed=st.integers(0, 2**16), w_scale=st.floats(0.0, 1e3), bias=st.floats(-1e4, 1e4)
)
def test_beta_in_range_and_output_finite(seed, w_scale, bias):
  layer = DeepDelta(4, value="linear", rngs=nnx.Rngs(0))
  layer.beta_proj.kernel[...] = _rand(seed, (4, 1), scale=w_scale)
  layer.beta_proj.bias[...] = jnp.full((1,), bias, jnp.float32)
  x, f = _rand(seed + 1, (1, 3, 4), scale=10.0), _rand(seed + 2, (1, 3, 4))
  beta = np.asarray(layer.beta(x))
  assert np.all((beta >= 0.0) & (beta <= 2.0))
  assert np.all(np.isfinite(np.asarray(layer(x, f))))
