"""Tests for group_advantages, gae and whiten."""

import functools

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.losses import gae, group_advantages, whiten

_SETTINGS = hypothesis.settings(max_examples=25, deadline=None)


class GroupAdvantagesTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_grpo_hand_values(self):
    # mean 0.5, centred +-0.5, sample var = 4 * 0.25 / 3 = 1/3: A = +-0.5 * sqrt(3).
    rewards = jnp.array([[1.0, 0.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    adv = self.variant(functools.partial(group_advantages, eps=0.0))(rewards)
    a = 0.5 * np.sqrt(3.0)
    np.testing.assert_allclose(adv, [[a, -a, -a, a], [0, 0, 0, 0]], rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_dr_grpo_and_rloo_hand_values(self):
    rewards = jnp.array([[1.0, 0.0, 0.0, 0.0]])
    dr = self.variant(functools.partial(group_advantages, scale="none"))(rewards)
    np.testing.assert_allclose(dr, [[0.75, -0.25, -0.25, -0.25]], rtol=1e-6)
    rloo = self.variant(
        functools.partial(group_advantages, scale="none", baseline="leave_one_out")
    )(rewards)
    # R_0 - mean(0, 0, 0) = 1; R_1 - mean(1, 0, 0) = -1/3.
    np.testing.assert_allclose(rloo, [[1.0, -1 / 3, -1 / 3, -1 / 3]], rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_identical_rewards_give_exact_zero_and_finite_grads(self):
    rewards = jnp.array([[0.1, 0.1, 0.1], [-3.7, -3.7, -3.7], [1e6, 1e6, 1e6]])
    weights = jnp.arange(3.0)[None, :]

    def all_modes(r):
      advs = [
          group_advantages(r, scale=scale, baseline=baseline)
          for scale in ("std", "none")
          for baseline in ("mean", "leave_one_out")
      ]
      return jnp.stack(advs), jnp.sum(jnp.stack(advs) * weights[None])

    advs, _ = self.variant(all_modes)(rewards)
    np.testing.assert_array_equal(advs, np.zeros((4, 3, 3)))
    grads = jax.jit(jax.grad(lambda r: all_modes(r)[1]))(rewards)
    assert np.all(np.isfinite(grads))

  def test_vmap_over_batches_of_groups(self):
    rewards = jnp.array([[[1.0, 0.0]], [[0.0, 3.0]]])  # [N, P, G]
    adv = jax.vmap(functools.partial(group_advantages, scale="none"))(rewards)
    np.testing.assert_allclose(adv, [[[0.5, -0.5]], [[-1.5, 1.5]]])

  def test_bf16_rewards(self):
    adv = group_advantages(jnp.array([[1.0, 0.0, 0.0, 1.0]], jnp.bfloat16))
    assert adv.dtype == jnp.float32
    np.testing.assert_allclose(adv, [[0.866, -0.866, -0.866, 0.866]], rtol=1e-3)

  def test_errors_name_the_argument(self):
    with pytest.raises(ValueError, match=r"`scale` must be one of 'std', 'none'"):
      group_advantages(jnp.zeros((1, 2)), scale="max")
    with pytest.raises(ValueError, match=r"`baseline` must be one of 'mean', 'leave_one_out'"):
      group_advantages(jnp.zeros((1, 2)), baseline="loo")
    with pytest.raises(ValueError, match="G >= 2"):
      group_advantages(jnp.zeros((3, 1)))
    with pytest.raises(AssertionError, match="rewards"):
      group_advantages(jnp.zeros(4))


_rewards = st.lists(st.floats(-10, 10, width=32, allow_subnormal=False), min_size=4, max_size=4)


@_SETTINGS
@hypothesis.given(
    rewards=_rewards,
    shift=st.floats(-100, 100),
    scale=st.floats(0.1, 10),
    baseline=st.sampled_from(["mean", "leave_one_out"]),
)
def test_grpo_invariant_to_shift_and_positive_scale(rewards, shift, scale, baseline):
  r = np.array([rewards], np.float32)
  hypothesis.assume(np.std(r) > 0.1)
  fn = functools.partial(group_advantages, baseline=baseline, eps=1e-6)
  base = fn(jnp.asarray(r))
  moved = fn(jnp.asarray(r * scale + shift, jnp.float32))
  np.testing.assert_allclose(moved, base, atol=2e-3 * (1 + abs(shift) / scale))
  assert abs(float(jnp.sum(base))) < 1e-4 * float(jnp.max(jnp.abs(base)) + 1)


@_SETTINGS
@hypothesis.given(rewards=_rewards, baseline=st.sampled_from(["mean", "leave_one_out"]))
def test_unscaled_advantages_sum_to_zero(rewards, baseline):
  adv = group_advantages(jnp.array([rewards]), scale="none", baseline=baseline)
  assert abs(float(jnp.sum(adv))) <= 1e-5 * (1 + float(jnp.max(jnp.abs(adv))))
  assert np.all(np.isfinite(adv))


def _gae_reference(rewards, values, mask, gamma, lam):
  """A plain-Python GAE over the valid tokens of each row."""
  adv = np.zeros_like(rewards)
  for b in range(rewards.shape[0]):
    idx = [t for t in range(rewards.shape[1]) if mask[b, t]]
    next_v, next_a = 0.0, 0.0
    for t in reversed(idx):
      delta = rewards[b, t] + gamma * next_v - values[b, t]
      next_a = delta + gamma * lam * next_a
      next_v = values[b, t]
      adv[b, t] = next_a
  return adv, np.where(mask, adv + values, 0)


class GAETest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_values(self):
    # delta = [0.1, 0.1, 0.3]; A_2 = 0.3, A_1 = 0.1 + 0.5 * 0.3, A_0 = 0.1 + 0.5 * 0.25.
    # Row 2 is row 1 with a masked tool-output token in the middle and padding at the end.
    rewards = jnp.array([[0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 7.0, 0.0, 1.0, 5.0]])
    values = jnp.array([[0.5, 0.6, 0.7, 0.0, 0.0], [0.5, 9.0, 0.6, 0.7, 9.0]])
    mask = jnp.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 0]], bool)
    adv, ret = self.variant(functools.partial(gae, gamma=1.0, lam=0.5))(rewards, values, mask)
    np.testing.assert_allclose(adv, [[0.225, 0.25, 0.3, 0, 0], [0.225, 0, 0.25, 0.3, 0]], rtol=1e-6)
    np.testing.assert_allclose(ret, [[0.725, 0.85, 1.0, 0, 0], [0.725, 0, 0.85, 1.0, 0]], rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_lambda_one_is_discounted_return_minus_value(self):
    rewards = jnp.array([[0.0, 0.0, 1.0]])
    values = jnp.array([[0.2, 0.1, 0.0]])
    adv, ret = self.variant(functools.partial(gae, gamma=0.9, lam=1.0))(
        rewards, values, jnp.ones((1, 3))
    )
    np.testing.assert_allclose(ret, [[0.81, 0.9, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(adv, [[0.61, 0.8, 1.0]], rtol=1e-6)

  def test_matches_python_reference(self):
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(3, 7)).astype(np.float32)
    values = rng.normal(size=(3, 7)).astype(np.float32)
    mask = rng.random((3, 7)) < 0.7
    mask[2] = False  # an all-masked row
    adv, ret = gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(mask), lam=0.95)
    ref_adv, ref_ret = _gae_reference(rewards, values, mask, 1.0, 0.95)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ret, ref_ret, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(adv[2], np.zeros(7))

  def test_shape_errors(self):
    with pytest.raises(AssertionError, match="values"):
      gae(jnp.zeros((2, 3)), jnp.zeros((2, 4)), jnp.ones((2, 3)))
    with pytest.raises(AssertionError, match="mask"):
      gae(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.ones((3, 2)))


class WhitenTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_values(self):
    # Valid [1, 2, 3]: mean 2, unbiased var 1.
    x = jnp.array([[1.0, 2.0], [3.0, 100.0]])
    mask = jnp.array([[True, True], [True, False]])
    out = self.variant(functools.partial(whiten, eps=0.0))(x, mask)
    np.testing.assert_allclose(out, [[-1.0, 0.0], [1.0, 0.0]], atol=1e-6)
    kept = self.variant(functools.partial(whiten, eps=0.0, shift_mean=False))(x, mask)
    np.testing.assert_allclose(kept, [[1.0, 2.0], [3.0, 0.0]], atol=1e-6)

  def test_all_masked_and_single_token(self):
    x = jnp.array([[jnp.nan, 2.0]])
    np.testing.assert_array_equal(whiten(x, jnp.zeros((1, 2), bool)), np.zeros((1, 2)))
    grads = jax.jit(jax.grad(lambda x: jnp.sum(whiten(x, jnp.array([[False, True]])))))(x)
    np.testing.assert_array_equal(np.isfinite(grads), [[True, True]])
