"""Tests for RMSNorm and DyT."""

import chex
import hypothesis
import hypothesis.strategies as st
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from flax import nnx
from jax.test_util import check_grads

from rljax.models import DyT, RMSNorm


class RMSNormTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_value(self):
    norm = RMSNorm(2, eps=1e-6)
    x = jnp.array([[3.0, 4.0], [0.0, 0.0]])
    y = self.variant(norm)(x)
    # mean square of [3, 4] = 12.5
    np.testing.assert_allclose(y[0], np.array([3.0, 4.0]) / np.sqrt(12.5 + 1e-6), rtol=1e-6)
    np.testing.assert_array_equal(y[1], [0.0, 0.0])

  def test_scale_multiplies_and_init_is_ones(self):
    norm = RMSNorm(3)
    np.testing.assert_array_equal(norm.scale.value, np.ones(3))
    norm.scale.value = jnp.array([1.0, 2.0, -1.0])
    y = norm(jnp.ones((1, 3)))
    np.testing.assert_allclose(y, [[1.0, 2.0, -1.0]], rtol=1e-5)

  def test_bf16_output_dtype(self):
    y = RMSNorm(4)(jnp.ones((2, 4), jnp.bfloat16))
    self.assertEqual(y.dtype, jnp.bfloat16)

  def test_gradients(self):
    norm = RMSNorm(3)
    x = jnp.array([[0.3, -1.2, 2.0]])
    check_grads(lambda x: norm(x), (x,), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)

  def test_bad_args(self):
    with self.assertRaisesRegex(ValueError, "eps"):
      RMSNorm(3, eps=0.0)
    with self.assertRaisesRegex(ValueError, "num_features"):
      RMSNorm(0)


class DyTTest(chex.TestCase):

  def test_init_values(self):
    dyt = DyT(4)
    np.testing.assert_allclose(dyt.alpha.value, 0.5)
    self.assertEqual(dyt.alpha.value.shape, ())  # a scalar alpha
    np.testing.assert_array_equal(dyt.weight.value, np.ones(4))
    np.testing.assert_array_equal(dyt.bias.value, np.zeros(4))
    dyt = DyT(4, alpha_init=0.8, use_bias=False)
    np.testing.assert_allclose(dyt.alpha.value, 0.8)
    self.assertIsNone(dyt.bias)

  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_value(self):
    dyt = DyT(3, alpha_init=0.5)
    dyt.weight.value = jnp.array([1.0, 2.0, 3.0])
    dyt.bias.value = jnp.array([0.0, 1.0, -1.0])
    y = self.variant(dyt)(jnp.array([[0.0, 2.0, -4.0]]))
    expected = np.array([0.0, 2 * np.tanh(1.0) + 1.0, 3 * np.tanh(-2.0) - 1.0])
    np.testing.assert_allclose(y[0], expected, rtol=1e-6)

  def test_gradients(self):
    dyt = DyT(3, alpha_init=0.7)
    x = jnp.array([[0.3, -1.2, 2.0]])
    check_grads(lambda x: dyt(x), (x,), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)

    grads = nnx.grad(lambda m: m(x).sum())(dyt)
    # d/dalpha sum tanh(alpha x) = sum x (1 - tanh^2(alpha x))
    expected = np.sum(np.asarray(x) * (1 - np.tanh(0.7 * np.asarray(x)) ** 2))
    np.testing.assert_allclose(grads["alpha"].value, expected, rtol=1e-5)

  def test_bad_alpha(self):
    with self.assertRaisesRegex(ValueError, "alpha_init"):
      DyT(3, alpha_init=0.0)


@hypothesis.settings(max_examples=10, deadline=None)
@hypothesis.given(scale=st.floats(-1e30, 1e30, allow_nan=False))
def test_dyt_bounded_and_finite(scale):
  dyt = DyT(2, rngs=nnx.Rngs(0))
  y = dyt(jnp.array([[scale, -scale]], jnp.float32))
  assert np.all(np.isfinite(y))
  assert np.all(np.abs(y) <= 1.0)  # |weight * tanh| + |bias| at init


if __name__ == "__main__":
  absltest.main()
