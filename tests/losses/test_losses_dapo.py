"""Tests for overlong_penalty and dynamic_sampling_mask."""

import functools

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.losses import dynamic_sampling_mask, overlong_penalty


class OverlongPenaltyTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_paper_values(self):
    # DAPO: L_max = 20480, L_cache = 4096, so L_exp = 16384.
    fn = self.variant(functools.partial(overlong_penalty, max_len=20480, cache_len=4096))
    lengths = jnp.array([100, 16384, 16385, 18432, 20480, 20481, 30000])
    np.testing.assert_allclose(
        fn(lengths), [0.0, 0.0, -1 / 4096, -0.5, -1.0, -1.0, -1.0], rtol=1e-6
    )

  @chex.variants(with_jit=True, without_jit=True)
  def test_small_values(self):
    fn = self.variant(functools.partial(overlong_penalty, max_len=10, cache_len=4))
    out = fn(jnp.array([0, 6, 7, 8, 10, 11]))
    np.testing.assert_allclose(out, [0.0, 0.0, -0.25, -0.5, -1.0, -1.0], rtol=1e-6)
    assert out.dtype == jnp.float32

  def test_errors(self):
    with pytest.raises(ValueError, match="cache_len"):
      overlong_penalty(jnp.array([1]), max_len=4, cache_len=8)
    with pytest.raises(AssertionError, match="lengths"):
      overlong_penalty(jnp.ones((2, 2)), max_len=4, cache_len=2)


class DynamicSamplingMaskTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_values(self):
    rewards = jnp.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0], [1.0, -1.0, 1.0], [0.5, 0.5, 0.6]])
    keep = self.variant(dynamic_sampling_mask)(rewards)
    np.testing.assert_array_equal(keep, [False, False, True, True])
    assert keep.dtype == jnp.bool_

  def test_rank_error(self):
    with pytest.raises(AssertionError, match="rewards"):
      dynamic_sampling_mask(jnp.ones(3))
