"""The PPO clipped surrogate (with DAPO's clip-higher and the dual clip) and its clip metrics."""

import typing

import chex
import jax
import jax.numpy as jnp

from rljax.losses import _utils


def _check_clip_args(fn: str, eps_low, eps_high, dual_clip):
  for name, eps in (("eps_low", eps_low), ("eps_high", eps_high)):
    if isinstance(eps, (int, float)) and not 0 <= eps:
      raise ValueError(f"{fn}: `{name}` must be >= 0, got {eps}")
  if isinstance(eps_low, (int, float)) and eps_low >= 1:
    raise ValueError(f"{fn}: `eps_low` must be < 1 (the lower bound is 1 - eps_low), got {eps_low}")
  if dual_clip is not None and isinstance(dual_clip, (int, float)) and dual_clip <= 1:
    raise ValueError(f"{fn}: `dual_clip` must be > 1 (or None), got {dual_clip}")


def _ratio_and_advantages(fn: str, logp, old_logp, advantages):
  """Checks the inputs; returns r = exp(clamp(logp - old_logp)) and A as ``[B, T]``."""
  _utils.check_float(fn, "logp", logp, 2)
  _utils.check_float(fn, "old_logp", old_logp, 2)
  _utils.check_float(fn, "advantages", advantages, {1, 2})
  chex.assert_equal_shape([logp, old_logp], custom_message=f"{fn}: `old_logp` must match `logp`")
  dtype = _utils.compute_dtype(logp, old_logp, advantages)
  if advantages.ndim == 1:
    chex.assert_equal_shape_prefix(
      [logp, advantages], 1, custom_message=f"{fn}: `advantages` [B] must match logp's B"
    )
    advantages = jnp.broadcast_to(advantages[:, None], logp.shape)
  else:
    chex.assert_equal_shape(
      [logp, advantages], custom_message=f"{fn}: `advantages` must be [B, T] or [B]"
    )
  log_ratio = logp.astype(dtype) - old_logp.astype(dtype)
  log_ratio = jnp.clip(log_ratio, -_utils.MAX_LOG_RATIO, _utils.MAX_LOG_RATIO)
  return jnp.exp(log_ratio), advantages.astype(dtype)


def clipped_surrogate(
  logp: jax.Array,
  old_logp: jax.Array,
  advantages: jax.Array,
  *,
  eps_low: float = 0.2,
  eps_high: float = 0.2,
  dual_clip: float | None = None,
) -> jax.Array:
  r"""Per-token PPO clipped surrogate loss (to minimise).

  L = max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high)),  r = exp(logp - old_logp),
  the same max for every sign of A (taking the max of r A for A < 0 is a known bug).
  With ``dual_clip=c`` and A < 0, L = min(L, -c A) (Ye et al. 2020, arXiv 1912.09729).
  ``eps_high > eps_low`` is DAPO's clip-higher (arXiv 2503.14476: 0.2 / 0.28).
  The log-ratio is clamped to +-20 before ``exp``, so values and gradients stay finite for any
  input; the gradient is exactly zero wherever a clip binds.

  Args:
    logp: ``[B, T]`` log-probs of the sampled tokens under the current policy.
    old_logp: ``[B, T]`` log-probs under the policy that sampled them.
    advantages: ``[B, T]``, or ``[B]`` broadcast over tokens.
    eps_low: lower clip, r >= 1 - eps_low.
    eps_high: upper clip, r <= 1 + eps_high.
    dual_clip: c > 1 bounding the loss of negative advantages by -c A, or None.

  Returns:
    ``[B, T]`` unreduced loss (float32 or wider); reduce it with :func:`aggregate`.

  Paper: Schulman et al. 2017, "Proximal policy optimization algorithms" (arXiv 1707.06347).
  """
  fn = "clipped_surrogate"
  _check_clip_args(fn, eps_low, eps_high, dual_clip)
  ratio, adv = _ratio_and_advantages(fn, logp, old_logp, advantages)
  unclipped = -adv * ratio
  clipped = -adv * jnp.clip(ratio, 1.0 - eps_low, 1.0 + eps_high)
  loss = jnp.maximum(unclipped, clipped)
  if dual_clip is not None:
    loss = jnp.where(adv < 0, jnp.minimum(loss, -dual_clip * adv), loss)
  return loss


class ClipFractions(typing.NamedTuple):
  """Per-token bools: where each clip of :func:`clipped_surrogate` binds (zero gradient)."""

  low: jax.Array  # A < 0 and r < 1 - eps_low
  high: jax.Array  # A > 0 and r > 1 + eps_high
  dual: jax.Array  # A < 0 and r > dual_clip (all False without a dual clip)


def clip_fractions(
  logp: jax.Array,
  old_logp: jax.Array,
  advantages: jax.Array,
  *,
  eps_low: float = 0.2,
  eps_high: float = 0.2,
  dual_clip: float | None = None,
) -> ClipFractions:
  r"""Where each clip of the PPO surrogate binds, per token.

  low = (A < 0) & (r < 1 - eps_low); high = (A > 0) & (r > 1 + eps_high);
  dual = (A < 0) & (r > c). These are exactly the tokens whose gradient the clip zeroes.
  Reduce with ``aggregate(x.astype(float), mask, "token-mean")`` for a logged fraction.

  Args:
    logp, old_logp, advantages, eps_low, eps_high, dual_clip: as :func:`clipped_surrogate`.

  Returns:
    :class:`ClipFractions` of three ``[B, T]`` bool arrays.
  """
  fn = "clip_fractions"
  _check_clip_args(fn, eps_low, eps_high, dual_clip)
  ratio, adv = _ratio_and_advantages(fn, logp, old_logp, advantages)
  low = (adv < 0) & (ratio < 1.0 - eps_low)
  high = (adv > 0) & (ratio > 1.0 + eps_high)
  if dual_clip is None:
    dual = jnp.zeros_like(low)
  else:
    dual = (adv < 0) & (ratio > dual_clip)
  return ClipFractions(low=low, high=high, dual=dual)


def clip_fraction(
  logp: jax.Array,
  old_logp: jax.Array,
  advantages: jax.Array,
  mask: jax.Array,
  *,
  eps_low: float = 0.2,
  eps_high: float = 0.2,
  dual_clip: float | None = None,
) -> jax.Array:
  r"""Fraction of valid tokens where a clip binds: sum(m * (low | high | dual)) / sum(m).

  Args:
    logp, old_logp, advantages, eps_low, eps_high, dual_clip: as :func:`clipped_surrogate`.
    mask: ``[B, T]`` bool (or 0/1) valid-token mask.

  Returns:
    Scalar in [0, 1]; 0 when no token is valid. See :func:`clip_fractions` for the parts.
  """
  fn = "clip_fraction"
  parts = clip_fractions(
    logp, old_logp, advantages, eps_low=eps_low, eps_high=eps_high, dual_clip=dual_clip
  )
  dtype = _utils.compute_dtype(logp, old_logp, advantages)
  m = _utils.as_mask(fn, mask, logp, dtype)
  binds = (parts.low | parts.high | parts.dual).astype(dtype)
  return _utils.safe_div(jnp.sum(binds * m), jnp.sum(m))
