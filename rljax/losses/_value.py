"""The clipped value-function loss of PPO."""

import chex
import jax
import jax.numpy as jnp

from rljax.losses import _utils


def clipped_value_loss(
  values: jax.Array,
  old_values: jax.Array,
  returns: jax.Array,
  *,
  eps: float,
) -> jax.Array:
  r"""Per-token clipped value loss (to minimise), clipped like the policy.

  L = 0.5 max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2).

  Args:
    values: ``[B, T]`` current critic values V.
    old_values: ``[B, T]`` values at rollout time V_old.
    returns: ``[B, T]`` targets R (e.g. from :func:`gae`).
    eps: value clip range (> 0).

  Returns:
    ``[B, T]`` unreduced loss; reduce it with :func:`aggregate`.

  Paper: PPO as implemented in OpenAI baselines; "The 37 implementation details of PPO"
  (Huang et al. 2022) and verl's ``compute_value_loss``.
  """
  fn = "clipped_value_loss"
  if isinstance(eps, (int, float)) and not eps > 0:
    raise ValueError(f"{fn}: `eps` must be > 0, got {eps}")
  _utils.check_float(fn, "values", values, 2)
  _utils.check_float(fn, "old_values", old_values, 2)
  _utils.check_float(fn, "returns", returns, 2)
  chex.assert_equal_shape(
    [values, old_values, returns], custom_message=f"{fn}: `old_values`, `returns` must match"
  )
  dtype = _utils.compute_dtype(values, old_values, returns)
  v, v_old, ret = (a.astype(dtype) for a in (values, old_values, returns))
  v_clipped = v_old + jnp.clip(v - v_old, -eps, eps)
  return 0.5 * jnp.maximum(jnp.square(v - ret), jnp.square(v_clipped - ret))
