"""Tests for dpo_loss and the DPO reward helpers."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu

from rljax.losses import dpo_implicit_rewards, dpo_loss, dpo_reward_accuracy, dpo_reward_margin

# h = (chosen - ref_chosen) - (rejected - ref_rejected) = (-1 + 2) - (-3 + 2) = 2 for pair 0;
# pair 1 is the reverse preference, h = -2.
_CHOSEN = jnp.array([-1.0, -3.0])
_REJECTED = jnp.array([-3.0, -1.0])
_REF = jnp.array([-2.0, -2.0])
_ARGS = (_CHOSEN, _REJECTED, _REF, _REF)
_SOFTPLUS_M1 = np.log1p(np.exp(-1.0))  # -log sigmoid(1) = 0.3132617
_SOFTPLUS_P1 = np.log1p(np.exp(1.0))  # -log sigmoid(-1) = 1.3132617


class DPOLossTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_sigmoid_and_conservative(self):
    loss = self.variant(functools.partial(dpo_loss, beta=0.5))(*_ARGS)  # beta h = +-1
    np.testing.assert_allclose(loss, [_SOFTPLUS_M1, _SOFTPLUS_P1], rtol=1e-6)
    cdpo = self.variant(functools.partial(dpo_loss, beta=0.5, label_smoothing=0.1))(*_ARGS)
    np.testing.assert_allclose(
        cdpo[0], 0.9 * _SOFTPLUS_M1 + 0.1 * _SOFTPLUS_P1, rtol=1e-6
    )  # 0.4132617

  @chex.variants(with_jit=True, without_jit=True)
  def test_robust_hinge_ipo(self):
    robust = functools.partial(dpo_loss, beta=0.5, kind="robust", label_smoothing=0.1)
    # (0.9 * 0.3132617 - 0.1 * 1.3132617) / 0.8 = 0.1882617.
    np.testing.assert_allclose(self.variant(robust)(*_ARGS)[0], 0.1882617, rtol=1e-5)
    hinge = self.variant(functools.partial(dpo_loss, beta=0.25, kind="hinge"))(*_ARGS)
    np.testing.assert_allclose(hinge, [0.5, 1.5], rtol=1e-6)  # relu(1 -+ 0.5)
    ipo = self.variant(functools.partial(dpo_loss, beta=0.5, kind="ipo"))(*_ARGS)
    np.testing.assert_allclose(ipo, [1.0, 9.0], rtol=1e-6)  # (h - 1)^2

  @chex.variants(with_jit=True, without_jit=True)
  def test_reward_helpers(self):
    chosen, rejected = self.variant(functools.partial(dpo_implicit_rewards, beta=0.5))(*_ARGS)
    np.testing.assert_allclose(chosen, [0.5, -0.5])
    np.testing.assert_allclose(rejected, [-0.5, 0.5])
    margin = self.variant(functools.partial(dpo_reward_margin, beta=0.5))(*_ARGS)
    np.testing.assert_allclose(margin, [1.0, -1.0])
    np.testing.assert_array_equal(self.variant(dpo_reward_accuracy)(*_ARGS), [1.0, 0.0])

  def test_equal_policy_and_reference_gives_log2(self):
    np.testing.assert_allclose(dpo_loss(_REF, _REF, _REF, _REF), [np.log(2)] * 2, rtol=1e-6)

  def test_check_grads_and_direction(self):
    for kind in ("sigmoid", "robust", "hinge", "ipo"):
      ls = 0.1 if kind == "robust" else 0.0
      f = lambda c, r, kind=kind, ls=ls: dpo_loss(
          c, r, _REF, _REF, beta=0.3, kind=kind, label_smoothing=ls
      )
      jtu.check_grads(f, (_CHOSEN, _REJECTED), order=1, modes=["rev"], eps=1e-3)
      grad_chosen = jax.grad(lambda c, f=f: jnp.sum(f(c, _REJECTED)))(_CHOSEN)
      assert float(grad_chosen[1]) < 0  # raising the chosen log-prob lowers the loss

  def test_bf16_and_extremes_are_finite(self):
    big = jnp.array([1e4, -1e4])
    out = dpo_loss(big, -big, _REF, _REF)
    assert out.dtype == jnp.float32 and np.all(np.isfinite(out))
    grads = jax.grad(lambda c: jnp.sum(dpo_loss(c, -big, _REF, _REF)))(big)
    assert np.all(np.isfinite(grads))
    out = dpo_loss(*(x.astype(jnp.bfloat16) for x in _ARGS), beta=0.5)
    np.testing.assert_allclose(out, [_SOFTPLUS_M1, _SOFTPLUS_P1], rtol=1e-6)

  def test_errors_name_the_argument(self):
    with pytest.raises(ValueError, match=r"`kind` must be one of 'sigmoid', 'robust', 'hinge'"):
      dpo_loss(*_ARGS, kind="kto")
    with pytest.raises(ValueError, match="`label_smoothing` must be in"):
      dpo_loss(*_ARGS, label_smoothing=0.5)
    with pytest.raises(ValueError, match="`label_smoothing` applies only"):
      dpo_loss(*_ARGS, kind="ipo", label_smoothing=0.1)
    with pytest.raises(ValueError, match="`beta` must be > 0"):
      dpo_loss(*_ARGS, beta=0.0)
    with pytest.raises(AssertionError, match="ref_chosen_logp"):
      dpo_loss(_CHOSEN, _REJECTED, _REF[None], _REF)
