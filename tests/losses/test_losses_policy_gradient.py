"""Tests for clipped_surrogate, clip_fractions and clip_fraction."""

import functools

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu

from rljax.losses import clip_fraction, clip_fractions, clipped_surrogate

_SETTINGS = hypothesis.settings(max_examples=30, deadline=None)
# Ratios 0.5, 1, 1.5, 2 against an old log-prob of 0.
_LOGP = jnp.log(jnp.array([[0.5, 1.0, 1.5, 2.0]]))
_OLD = jnp.zeros((1, 4))


def _grad_logp(fn, logp, old, adv):
  return jax.jit(jax.grad(lambda lp: jnp.sum(fn(lp, old, adv))))(logp)


class ClippedSurrogateTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_ratio_one_is_policy_gradient(self):
    logp = jnp.array([[-1.0, -2.0, -0.5], [-3.0, -0.1, -7.0]])
    adv = jnp.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    loss = self.variant(clipped_surrogate)(logp, logp, adv)
    np.testing.assert_array_equal(loss, -adv)

  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_values_both_signs(self):
    surrogate = self.variant(clipped_surrogate)
    # A = +1: max(-r, -clip(r, 0.8, 1.2)) = [-0.5, -1, -1.2, -1.2].
    np.testing.assert_allclose(
        surrogate(_LOGP, _OLD, jnp.ones((1,))), [[-0.5, -1.0, -1.2, -1.2]], rtol=1e-6
    )
    # A = -1: max(r, clip(r)) = [0.8, 1, 1.5, 2]: r < 0.8 clipped, r > 1.2 NOT clipped.
    np.testing.assert_allclose(
        surrogate(_LOGP, _OLD, -jnp.ones((1,))), [[0.8, 1.0, 1.5, 2.0]], rtol=1e-6
    )

  @chex.variants(with_jit=True, without_jit=True)
  def test_clip_higher_and_dual_clip(self):
    # DAPO clip-higher: the upper bound is 1.28.
    dapo = self.variant(functools.partial(clipped_surrogate, eps_low=0.2, eps_high=0.28))
    np.testing.assert_allclose(
        dapo(_LOGP, _OLD, jnp.ones((1, 4))), [[-0.5, -1.0, -1.28, -1.28]], rtol=1e-6
    )
    # Dual clip c = 1.8 caps the A < 0 loss at -c A = 1.8; positive A is untouched.
    dual = self.variant(functools.partial(clipped_surrogate, dual_clip=1.8))
    np.testing.assert_allclose(
        dual(_LOGP, _OLD, -2 * jnp.ones((1, 4))), [[1.6, 2.0, 3.0, 3.6]], rtol=1e-6
    )
    np.testing.assert_allclose(
        dual(_LOGP, _OLD, jnp.ones((1, 4))), [[-0.5, -1.0, -1.2, -1.2]], rtol=1e-6
    )

  def test_negative_advantage_gradient_is_not_the_peer_bug(self):
    # For A < 0: r > 1 + eps keeps its gradient (|A| r), r < 1 - eps has none.
    grads = _grad_logp(clipped_surrogate, _LOGP, _OLD, -jnp.ones((1, 4)))
    np.testing.assert_allclose(grads, [[0.0, 1.0, 1.5, 2.0]], rtol=1e-6)
    grads = _grad_logp(clipped_surrogate, _LOGP, _OLD, jnp.ones((1, 4)))
    np.testing.assert_allclose(grads, [[-0.5, -1.0, 0.0, 0.0]], rtol=1e-6)

  def test_per_sequence_advantages_broadcast(self):
    logp = jnp.array([[-1.0, -2.0], [-0.5, -0.1]])
    adv_B = jnp.array([2.0, -1.0])
    np.testing.assert_array_equal(
        clipped_surrogate(logp, logp - 0.3, adv_B),
        clipped_surrogate(logp, logp - 0.3, jnp.broadcast_to(adv_B[:, None], (2, 2))),
    )

  def test_vmap(self):
    logp = jnp.zeros((3, 2, 4))
    adv = jnp.arange(24.0).reshape(3, 2, 4)
    np.testing.assert_array_equal(jax.vmap(clipped_surrogate)(logp, logp, adv), -adv)

  def test_extreme_log_ratios_and_bf16_are_finite(self):
    logp = jnp.array([[1e4, -1e4, 30.0, -30.0]])
    for adv in (jnp.ones((1,)), -jnp.ones((1,))):
      for dual in (None, 3.0):
        fn = functools.partial(clipped_surrogate, dual_clip=dual)
        assert np.all(np.isfinite(fn(logp, _OLD, adv)))
        assert np.all(np.isfinite(_grad_logp(fn, logp, _OLD, adv)))
    bf16 = clipped_surrogate(
        _LOGP.astype(jnp.bfloat16), _OLD.astype(jnp.bfloat16), jnp.ones((1,), jnp.bfloat16)
    )
    assert bf16.dtype == jnp.float32
    np.testing.assert_allclose(bf16, [[-0.5, -1.0, -1.2, -1.2]], rtol=1e-2)
    grads = _grad_logp(
        clipped_surrogate, logp.astype(jnp.bfloat16), _OLD.astype(jnp.bfloat16), -jnp.ones((1,))
    )
    assert grads.dtype == jnp.bfloat16 and np.all(np.isfinite(grads.astype(np.float32)))

  def test_check_grads(self):
    # Away from the clip boundaries (r in {0.9, 1.1} inside, {0.5, 1.5} outside).
    logp = jnp.log(jnp.array([[0.5, 0.9, 1.1, 1.5]]))
    adv = jnp.array([[1.0, -1.0, 2.0, -0.5]])
    f = lambda lp: clipped_surrogate(lp, _OLD, adv, dual_clip=3.0)
    jtu.check_grads(f, (logp,), order=1, modes=["rev"], eps=1e-3)

  def test_errors_name_the_argument(self):
    with pytest.raises(ValueError, match="`dual_clip` must be > 1"):
      clipped_surrogate(_LOGP, _OLD, jnp.ones((1,)), dual_clip=0.5)
    with pytest.raises(ValueError, match="`eps_low` must be < 1"):
      clipped_surrogate(_LOGP, _OLD, jnp.ones((1,)), eps_low=1.0)
    with pytest.raises(AssertionError, match="old_logp"):
      clipped_surrogate(_LOGP, jnp.zeros((1, 3)), jnp.ones((1,)))
    with pytest.raises(AssertionError, match="advantages"):
      clipped_surrogate(_LOGP, _OLD, jnp.ones((2,)))
    with pytest.raises(AssertionError, match="logp"):
      clipped_surrogate(jnp.zeros(4), jnp.zeros(4), jnp.ones(4))
    with pytest.raises(AssertionError, match="floating"):
      clipped_surrogate(_LOGP, _OLD, jnp.ones((1,), jnp.int32))


class ClipFractionTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_values(self):
    adv = jnp.array([-1.0])
    parts = self.variant(functools.partial(clip_fractions, dual_clip=1.8))(_LOGP, _OLD, adv)
    np.testing.assert_array_equal(parts.low, [[True, False, False, False]])
    np.testing.assert_array_equal(parts.high, [[False, False, False, False]])
    np.testing.assert_array_equal(parts.dual, [[False, False, False, True]])
    parts = self.variant(clip_fractions)(_LOGP, _OLD, jnp.array([1.0]))
    np.testing.assert_array_equal(parts.high, [[False, False, True, True]])
    np.testing.assert_array_equal(parts.dual, [[False, False, False, False]])
    # Positive A clips r = 1.5 and r = 2; the mask drops r = 2: 1 of 3 valid tokens.
    mask = jnp.array([[True, True, True, False]])
    frac = self.variant(clip_fraction)(_LOGP, _OLD, jnp.array([1.0]), mask)
    np.testing.assert_allclose(frac, 1 / 3, rtol=1e-6)
    frac = self.variant(clip_fraction)(_LOGP, _OLD, jnp.array([1.0]), jnp.zeros((1, 4), bool))
    np.testing.assert_array_equal(frac, 0.0)


_finite = dict(allow_nan=False, allow_infinity=False, width=32, allow_subnormal=False)


@_SETTINGS
@hypothesis.given(
    logp=st.lists(st.floats(-50, 0, **_finite), min_size=6, max_size=6),
    adv=st.lists(st.floats(-10, 10, **_finite), min_size=6, max_size=6),
    eps_high=st.floats(0.0, 0.5),
)
def test_ratio_one_gives_minus_advantage(logp, adv, eps_high):
  logp_BT = jnp.array(logp).reshape(2, 3)
  adv_BT = jnp.array(adv).reshape(2, 3)
  loss = clipped_surrogate(logp_BT, logp_BT, adv_BT, eps_high=eps_high, dual_clip=3.0)
  np.testing.assert_array_equal(loss, -adv_BT)


@_SETTINGS
@hypothesis.given(
    log_ratio=st.floats(-3, 3, **_finite),
    adv=st.floats(-5, 5, **_finite).filter(lambda a: abs(a) > 1e-3),
    eps_low=st.floats(0.05, 0.5),
    eps_high=st.floats(0.05, 0.5),
    dual_clip=st.one_of(st.none(), st.floats(1.6, 4.0)),
)
def test_gradient_is_zero_exactly_where_a_clip_binds(log_ratio, adv, eps_low, eps_high, dual_clip):
  r = float(np.exp(np.float32(log_ratio)))
  bounds = [1 - eps_low, 1 + eps_high] + ([dual_clip] if dual_clip else [])
  hypothesis.assume(all(abs(r - b) > 1e-3 for b in bounds))
  logp = jnp.full((1, 1), log_ratio, jnp.float32)
  old, adv_B = jnp.zeros((1, 1)), jnp.full((1,), adv, jnp.float32)
  fn = functools.partial(
      clipped_surrogate, eps_low=eps_low, eps_high=eps_high, dual_clip=dual_clip
  )
  grad = float(jax.grad(lambda lp: jnp.sum(fn(lp, old, adv_B)))(logp)[0, 0])
  parts = clip_fractions(
      logp, old, adv_B, eps_low=eps_low, eps_high=eps_high, dual_clip=dual_clip
  )
  binds = bool(parts.low[0, 0] | parts.high[0, 0] | parts.dual[0, 0])
  if binds:
    assert grad == 0.0
  else:
    np.testing.assert_allclose(grad, -adv * r, rtol=1e-5)


@_SETTINGS
@hypothesis.given(
    log_ratio=st.floats(-1e4, 1e4, **_finite),
    adv=st.floats(-10, 10, **_finite),
    dual_clip=st.one_of(st.none(), st.just(3.0)),
    bf16=st.booleans(),
)
def test_finite_for_extreme_ratios(log_ratio, adv, dual_clip, bf16):
  dtype = jnp.bfloat16 if bf16 else jnp.float32
  logp = jnp.full((1, 2), log_ratio, dtype)
  old, adv_B = jnp.zeros((1, 2), dtype), jnp.full((1,), adv, dtype)
  fn = lambda lp: jnp.sum(clipped_surrogate(lp, old, adv_B, dual_clip=dual_clip))
  value, grad = jax.value_and_grad(fn)(logp)
  assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad, np.float32)))
