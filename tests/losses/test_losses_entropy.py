"""Tests for token_entropy, top_entropy_mask and entropy_advantage."""

import fractions
import functools
import math

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu

from rljax.losses import entropy_advantage, token_entropy, top_entropy_mask

_NEG_INF = -jnp.inf


class TokenEntropyTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_values(self):
    logits = jnp.array(
        [
            [[0.0, 0.0, 0.0, 0.0], [0.0, np.log(3.0), _NEG_INF, _NEG_INF]],
            [[5.0, 5.0, _NEG_INF, _NEG_INF], [7.0, _NEG_INF, _NEG_INF, _NEG_INF]],
        ]
    )
    h = self.variant(token_entropy)(logits)
    # uniform over 4: log 4; p = (1/4, 3/4): -(1/4 log 1/4 + 3/4 log 3/4); two equal: log 2.
    h_quarter = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))  # 0.5623351
    np.testing.assert_allclose(h, [[np.log(4), h_quarter], [np.log(2), 0.0]], rtol=1e-6, atol=1e-7)
    assert h.dtype == jnp.float32

  @chex.variants(with_jit=True, without_jit=True)
  def test_temperature(self):
    # logits / 2 = (0, log 3 / 2): p = (1, sqrt 3) / (1 + sqrt 3).
    p = np.array([1.0, np.sqrt(3.0)]) / (1 + np.sqrt(3.0))
    h = self.variant(functools.partial(token_entropy, temperature=2.0))(
        jnp.array([0.0, np.log(3.0)])
    )
    np.testing.assert_allclose(h, -np.sum(p * np.log(p)), rtol=1e-6)

  def test_masked_vocab_and_all_masked_rows_have_finite_grads(self):
    logits = jnp.array([[0.0, 1.0, _NEG_INF], [_NEG_INF, _NEG_INF, _NEG_INF], [1e4, -1e4, 0.0]])
    h, grads = jax.jit(jax.value_and_grad(lambda x: jnp.sum(token_entropy(x))))(logits)
    assert np.isfinite(float(h))
    assert np.all(np.isfinite(grads))
    np.testing.assert_array_equal(grads[0, 2], 0.0)
    np.testing.assert_array_equal(grads[1], np.zeros(3))

  def test_bf16_logits_compute_in_fp32(self):
    logits = jnp.array([[0.0, 0.0, 0.0, 0.0]], jnp.bfloat16)
    h = token_entropy(logits)
    assert h.dtype == jnp.float32
    np.testing.assert_allclose(h, [np.log(4)], rtol=1e-6)

  def test_check_grads(self):
    logits = jnp.array([[0.3, -1.2, 2.0, 0.1], [1.0, 0.5, -0.5, 0.0]])
    jtu.check_grads(token_entropy, (logits,), order=1, modes=["rev"], eps=1e-2, atol=1e-2)

  def test_errors(self):
    with pytest.raises(ValueError, match="`temperature` must be > 0"):
      token_entropy(jnp.zeros((2, 3)), temperature=0.0)
    with pytest.raises(AssertionError, match="logits"):
      token_entropy(jnp.zeros((2, 3), jnp.int32))


class TopEntropyMaskTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_values_pooled_over_the_batch(self):
    entropy = jnp.array([[0.1, 0.9, 0.5], [0.7, 0.3, 5.0]])
    mask = jnp.array([[1, 1, 1], [1, 1, 0]], bool)  # 5.0 is masked: never kept
    keep = lambda rho: self.variant(functools.partial(top_entropy_mask, rho=rho))(entropy, mask)
    # n_valid = 5: rho 0.2 -> 1 token, 0.4 -> 2, 0.5 -> ceil(2.5) = 3.
    np.testing.assert_array_equal(keep(0.2), [[0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(keep(0.4), [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(keep(0.5), [[0, 1, 1], [1, 0, 0]])
    np.testing.assert_array_equal(keep(1.0), mask)

  @chex.variants(with_jit=True, without_jit=True)
  def test_exact_counts_with_ties_and_float_traps(self):
    entropy = jnp.ones((2, 5))  # all tied: the earliest positions win
    mask = jnp.ones((2, 5), bool)
    # 0.2 * 10 and 0.3 * 10 are 2.0000000000000004 / 3.0000000000000004 in floating point.
    keep = self.variant(functools.partial(top_entropy_mask, rho=0.2))(entropy, mask)
    np.testing.assert_array_equal(keep, [[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]])
    keep = self.variant(functools.partial(top_entropy_mask, rho=0.3))(entropy, mask)
    assert int(keep.sum()) == 3

  def test_vmap_pools_per_slice(self):
    entropy = jnp.array([[[0.1, 0.9], [0.5, 0.7]], [[0.3, 0.2], [0.8, 0.1]]])  # [N, B, T]
    keep = jax.vmap(functools.partial(top_entropy_mask, rho=0.5))(entropy, jnp.ones((2, 2, 2)))
    np.testing.assert_array_equal(keep, [[[0, 1], [0, 1]], [[1, 0], [1, 0]]])

  def test_all_masked_and_float_mask(self):
    entropy = jnp.array([[0.5, 0.2], [0.9, 0.1]])
    np.testing.assert_array_equal(
        top_entropy_mask(entropy, jnp.zeros((2, 2), bool)), np.zeros((2, 2), bool)
    )
    keep = top_entropy_mask(entropy, jnp.array([[1.0, 1.0], [0.0, 1.0]]), rho=0.5)
    np.testing.assert_array_equal(keep, [[True, True], [False, False]])  # ceil(1.5) = 2

  def test_errors_name_rho(self):
    for bad in (0.0, -0.1, 1.5):
      with pytest.raises(ValueError, match=r"`rho` must be in \(0, 1\]"):
        top_entropy_mask(jnp.ones((1, 2)), jnp.ones((1, 2), bool), rho=bad)
    with pytest.raises(TypeError, match="`rho` must be a Python float"):
      top_entropy_mask(jnp.ones((1, 2)), jnp.ones((1, 2), bool), rho=jnp.array(0.2))
    with pytest.raises(AssertionError, match="mask"):
      top_entropy_mask(jnp.ones((1, 2)), jnp.ones((2, 1), bool))


@hypothesis.settings(max_examples=30, deadline=None)
@hypothesis.given(
    entropy=st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.5]), min_size=15, max_size=15),
    mask=st.lists(st.booleans(), min_size=15, max_size=15),
    twentieths=st.integers(1, 20),
)
def test_top_entropy_mask_keeps_the_right_count_and_the_top(entropy, mask, twentieths):
  rho = twentieths / 20
  entropy_BT = np.array(entropy, np.float32).reshape(3, 5)
  mask_BT = np.array(mask).reshape(3, 5)
  keep = np.asarray(top_entropy_mask(jnp.asarray(entropy_BT), jnp.asarray(mask_BT), rho=rho))
  n_valid = int(mask_BT.sum())
  assert fractions.Fraction(rho).limit_denominator(10_000) == fractions.Fraction(twentieths, 20)
  assert keep.sum() == math.ceil(twentieths * n_valid / 20)  # exact integer arithmetic
  assert not np.any(keep & ~mask_BT)
  dropped = mask_BT & ~keep
  if keep.any() and dropped.any():
    assert entropy_BT[keep].min() >= entropy_BT[dropped].max()


class EntropyAdvantageTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_values(self):
    adv = jnp.array([[1.0, -1.0, 0.0, -1.0]])
    h = jnp.array([[0.5, 0.5, 3.0, 10.0]])
    out = self.variant(entropy_advantage)(adv, h)
    # psi = min(0.4 H, |A| / 2) = [0.2, 0.2, 0, 0.5].
    np.testing.assert_allclose(out, [[1.2, -0.8, 0.0, -0.5]], rtol=1e-6)
    per_seq = self.variant(functools.partial(entropy_advantage, alpha=0.1, kappa=4.0))(
        jnp.array([2.0]), h
    )
    np.testing.assert_allclose(per_seq, [[2.05, 2.05, 2.3, 2.5]], rtol=1e-6)

  def test_entropy_is_detached(self):
    adv = jnp.array([[1.0, -1.0]])
    grad = jax.grad(lambda h: jnp.sum(entropy_advantage(adv, h)))(jnp.array([[0.1, 0.1]]))
    np.testing.assert_array_equal(grad, np.zeros((1, 2)))

  def test_errors(self):
    with pytest.raises(ValueError, match="`kappa` must be > 0"):
      entropy_advantage(jnp.ones((1, 2)), jnp.ones((1, 2)), kappa=0.0)
    with pytest.raises(AssertionError, match="advantages"):
      entropy_advantage(jnp.ones((2,)), jnp.ones((1, 2)))


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(
    adv=st.floats(-10, 10, width=32, allow_subnormal=False),
    h=st.floats(0, 20, width=32, allow_subnormal=False),
    kappa=st.floats(1.0, 5.0),
)
def test_entropy_advantage_never_flips_a_sign(adv, h, kappa):
  out = float(entropy_advantage(jnp.full((1, 1), adv), jnp.full((1, 1), h), kappa=kappa)[0, 0])
  if adv == 0:
    assert out == 0.0
  elif adv < 0:
    assert adv <= out <= 0.0
  else:
    assert out >= adv
