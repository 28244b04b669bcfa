"""Tests for aggregate."""

import functools

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu

from rljax.losses import aggregate

_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")
_LOSS = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [100.0, 100.0, 100.0]])
_MASK = jnp.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]], bool)  # n_i = 2, 1, 0


class AggregateTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_values(self):
    agg = lambda mode, **kw: self.variant(functools.partial(aggregate, mode=mode, **kw))
    # token-mean: (1 + 2 + 4) / 3.
    np.testing.assert_allclose(agg("token-mean")(_LOSS, _MASK), 7 / 3, rtol=1e-6)
    # seq-mean-token-mean: mean((1 + 2) / 2, 4 / 1); the empty third row is excluded.
    np.testing.assert_allclose(agg("seq-mean-token-mean")(_LOSS, _MASK), 2.75, rtol=1e-6)
    # seq-mean-token-sum: mean(3, 4).
    np.testing.assert_allclose(agg("seq-mean-token-sum")(_LOSS, _MASK), 3.5, rtol=1e-6)
    # seq-mean-token-sum-norm (Dr. GRPO): 7 / (B * T) = 7 / 9, or 7 / (B * max_len).
    np.testing.assert_allclose(agg("seq-mean-token-sum-norm")(_LOSS, _MASK), 7 / 9, rtol=1e-6)
    norm = agg("seq-mean-token-sum-norm", max_len=7)(_LOSS, _MASK)
    np.testing.assert_allclose(norm, 7 / 21, rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_all_masked_gives_zero(self):
    loss = jnp.array([[jnp.nan, jnp.inf], [1.0, -jnp.inf]])
    mask = jnp.zeros((2, 2), bool)
    all_modes = lambda loss, mask: jnp.stack([aggregate(loss, mask, mode) for mode in _MODES])
    np.testing.assert_array_equal(self.variant(all_modes)(loss, mask), np.zeros(4))

  def test_all_masked_grads_are_zero(self):
    mask = jnp.zeros((2, 2), bool)
    jacobian = jax.jit(jax.jacrev(lambda x: jnp.stack([aggregate(x, mask, m) for m in _MODES])))
    np.testing.assert_array_equal(jacobian(jnp.ones((2, 2))), np.zeros((4, 2, 2)))

  def test_masked_nan_and_inf_do_not_leak(self):
    poisoned = _LOSS.at[0, 2].set(jnp.nan).at[2, 0].set(jnp.inf)
    for mode in _MODES:
      np.testing.assert_array_equal(aggregate(poisoned, _MASK, mode), aggregate(_LOSS, _MASK, mode))

  def test_check_grads(self):
    for mode in _MODES:
      f = lambda x, mode=mode: aggregate(x, _MASK, mode)
      jtu.check_grads(f, (_LOSS / 10,), order=1, modes=["rev"], eps=1e-2)

  def test_float_weights(self):
    weights = jnp.array([[0.5, 1.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    # (0.5 * 1 + 2 + 0.5 * 4) / 2.
    np.testing.assert_allclose(aggregate(_LOSS, weights, "token-mean"), 2.25, rtol=1e-6)

  def test_bf16_loss(self):
    out = aggregate(_LOSS.astype(jnp.bfloat16), _MASK, "token-mean")
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, 7 / 3, rtol=1e-6)

  def test_errors_name_the_argument(self):
    with pytest.raises(ValueError, match=r"`mode` must be one of 'token-mean', 'seq-mean-tok"):
      aggregate(_LOSS, _MASK, "mean")
    with pytest.raises(ValueError, match="`max_len` must be > 0"):
      aggregate(_LOSS, _MASK, "seq-mean-token-sum-norm", max_len=0)
    with pytest.raises(AssertionError, match="mask"):
      aggregate(_LOSS, _MASK[:, :2], "token-mean")
    with pytest.raises(AssertionError, match="loss"):
      aggregate(_LOSS[0], _MASK[0], "token-mean")


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(
    value=st.floats(-100, 100, width=32, allow_subnormal=False),
    mask=st.lists(st.booleans(), min_size=8, max_size=8).filter(any),
    mode=st.sampled_from(_MODES[:3]),
)
def test_constant_loss_means_to_the_constant(value, mask, mode):
  loss = jnp.full((2, 4), value, jnp.float32)
  out = aggregate(loss, jnp.array(mask).reshape(2, 4), mode)
  if mode == "seq-mean-token-sum":
    # mean over non-empty rows of value * n_i.
    n_i = np.array(mask).reshape(2, 4).sum(1)
    expected = value * n_i[n_i > 0].mean()
  else:
    expected = value
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
