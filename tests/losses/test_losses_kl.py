"""Tests for kl_penalty."""

import functools

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu

from rljax.losses import kl_penalty

# d = ref_logp - logp = [1, -1, 0].
_LOGP = jnp.array([[0.0, 0.0, -2.0]])
_REF = jnp.array([[1.0, -1.0, -2.0]])
_E = np.e


class KLPenaltyTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_values(self):
    kl = lambda kind: self.variant(functools.partial(kl_penalty, kind=kind))(_LOGP, _REF)
    np.testing.assert_allclose(kl("k1"), [[-1.0, 1.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(kl("k2"), [[0.5, 0.5, 0.0]], rtol=1e-6)
    # exp(d) - d - 1: e - 2, 1/e, 0.
    np.testing.assert_allclose(kl("k3"), [[_E - 2, 1 / _E, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(kl("k3+"), [[_E - 2, 1 / _E, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(self.variant(kl_penalty)(_LOGP, _REF), kl("k3"))  # default

  def test_gradients_by_kind(self):
    grad = lambda kind: jax.jit(jax.grad(lambda lp: jnp.sum(kl_penalty(lp, _REF, kind))))(_LOGP)
    np.testing.assert_allclose(grad("k1"), [[1.0, 1.0, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(grad("k2"), [[-1.0, 1.0, 0.0]], rtol=1e-6)  # -d
    np.testing.assert_allclose(grad("k3"), [[1 - _E, 1 - 1 / _E, 0.0]], rtol=1e-6)  # 1 - e^d
    np.testing.assert_allclose(grad("k3+"), grad("k2"), rtol=1e-6)  # k3 value, k2 gradient

  def test_small_differences_are_accurate(self):
    d = np.array([1e-7, -1e-5, 1e-3, 2e-3], np.float64)
    out = kl_penalty(jnp.zeros((1, 4)), jnp.asarray(d[None], jnp.float32))
    np.testing.assert_allclose(out[0], np.expm1(d) - d, rtol=1e-3)

  def test_check_grads(self):
    for kind in ("k1", "k2", "k3"):
      f = lambda lp, kind=kind: kl_penalty(lp, _REF, kind)
      jtu.check_grads(f, (jnp.array([[0.3, -0.2, -1.0]]),), order=1, modes=["rev"], eps=1e-3)

  def test_bf16(self):
    out = kl_penalty(_LOGP.astype(jnp.bfloat16), _REF.astype(jnp.bfloat16))
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, [[_E - 2, 1 / _E, 0.0]], rtol=1e-6)

  def test_errors_name_the_argument(self):
    with pytest.raises(ValueError, match=r"`kind` must be one of 'k1', 'k2', 'k3', 'k3\+'"):
      kl_penalty(_LOGP, _REF, "k4")
    with pytest.raises(AssertionError, match="ref_logp"):
      kl_penalty(_LOGP, _REF[:, :2])


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(
    logp=st.floats(-1e4, 1e4),
    delta=st.one_of(st.floats(-1e4, 1e4), st.floats(-1e-4, 1e-4)),
    kind=st.sampled_from(["k1", "k2", "k3", "k3+"]),
    bf16=st.booleans(),
)
def test_k3_non_negative_and_everything_finite(logp, delta, kind, bf16):
  dtype = jnp.bfloat16 if bf16 else jnp.float32
  lp = jnp.full((1, 2), logp, dtype)
  ref = jnp.full((1, 2), np.float32(logp) + np.float32(delta), dtype)
  value, grad = jax.value_and_grad(lambda x: jnp.sum(kl_penalty(x, ref, kind)))(lp)
  assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad, np.float32)))
  if kind in ("k2", "k3", "k3+"):
    assert float(value) >= 0.0
