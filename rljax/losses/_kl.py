"""Per-token KL estimators between the policy and a reference policy."""

import chex
import jax
import jax.numpy as jnp

from rljax.losses import _utils

KINDS = ("k1", "k2", "k3", "k3+")


def _k3(d: jax.Array) -> jax.Array:
  """exp(d) - d - 1, >= 0 and accurate for small |d| (series) as well as large."""
  small = jnp.abs(d) < 1e-3
  d_small = jnp.where(small, d, 0)
  series = d_small * d_small * (0.5 + d_small * (1.0 / 6.0 + d_small / 24.0))
  d_large = jnp.where(small, 1.0, d)
  return jnp.where(small, series, jnp.expm1(d_large) - d_large)


def kl_penalty(logp: jax.Array, ref_logp: jax.Array, kind: str = "k3") -> jax.Array:
  r"""Per-token estimate of KL(pi || pi_ref) from the sampled tokens' log-probs.

  With d = ref_logp - logp (clamped to +-20):
  k1 = -d;  k2 = d^2 / 2;  k3 = exp(d) - d - 1 (non-negative, low variance; the default);
  "k3+" has the value of k3 and the gradient of k2 (``k2 - sg(k2) + sg(k3)``, as in verl).
  k1 has zero expected gradient on-policy, so it regularises almost nothing as a loss term.

  Args:
    logp: ``[B, T]`` (any shape) log-probs of the sampled tokens under the policy.
    ref_logp: log-probs of the same tokens under the reference policy, same shape.
    kind: ``"k1"``, ``"k2"``, ``"k3"`` or ``"k3+"``.

  Returns:
    Per-token penalty, same shape; mask and reduce it with :func:`aggregate`.

  Reference: J. Schulman, "Approximating KL divergence" (2020); GRPO (arXiv 2402.03300) uses k3.
  """
  fn = "kl_penalty"
  _utils.check_choice(fn, "kind", kind, KINDS)
  _utils.check_float(fn, "logp", logp)
  _utils.check_float(fn, "ref_logp", ref_logp)
  chex.assert_equal_shape([logp, ref_logp], custom_message=f"{fn}: `ref_logp` must match `logp`")
  dtype = _utils.compute_dtype(logp, ref_logp)
  d = ref_logp.astype(dtype) - logp.astype(dtype)
  d = jnp.clip(d, -_utils.MAX_LOG_RATIO, _utils.MAX_LOG_RATIO)
  if kind == "k1":
    return -d
  k2 = 0.5 * d * d
  if kind == "k2":
    return k2
  k3 = _k3(d)
  if kind == "k3":
    return k3
  sg = jax.lax.stop_gradient
  return k2 - sg(k2) + sg(k3)
