"""Tests for clipped_value_loss."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu

from rljax.losses import clipped_value_loss


class ClippedValueLossTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_values(self):
    # eps = 0.2, V_old = 0.5, so the clipped value is 0.5 + clip(V - 0.5, -0.2, 0.2).
    values = jnp.array([[1.0, 2.0, 0.0, 0.9]])
    old = jnp.full((1, 4), 0.5)
    returns = jnp.array([[0.8, 0.0, 1.0, 1.0]])
    loss = self.variant(functools.partial(clipped_value_loss, eps=0.2))(values, old, returns)
    # 0.5 max((V - R)^2, (Vc - R)^2): (0.04, 0.01), (4, 0.49), (1, 0.49), (0.01, 0.09).
    np.testing.assert_allclose(loss, [[0.02, 2.0, 0.5, 0.045]], rtol=1e-5)

  def test_gradient_zero_where_clip_binds(self):
    old, returns = jnp.full((1, 2), 0.5), jnp.ones((1, 2))
    grads = jax.grad(lambda v: jnp.sum(clipped_value_loss(v, old, returns, eps=0.2)))(
        jnp.array([[0.9, 0.0]])
    )
    np.testing.assert_allclose(grads, [[0.0, -1.0]], atol=1e-6)

  def test_check_grads(self):
    old, returns = jnp.array([[0.5, -0.3]]), jnp.array([[1.0, 2.0]])
    f = lambda v: clipped_value_loss(v, old, returns, eps=0.2)
    jtu.check_grads(f, (jnp.array([[0.1, 0.4]]),), order=1, modes=["rev"], eps=1e-3)

  def test_errors(self):
    with pytest.raises(ValueError, match="`eps` must be > 0"):
      clipped_value_loss(jnp.zeros((1, 2)), jnp.zeros((1, 2)), jnp.zeros((1, 2)), eps=0.0)
    with pytest.raises(AssertionError, match="returns"):
      clipped_value_loss(jnp.zeros((1, 2)), jnp.zeros((1, 2)), jnp.zeros((2, 1)), eps=0.2)
